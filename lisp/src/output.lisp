;;;; Python's sys.stdout and sys.stderr written to Lisp streams, in order, as Python writes.

(in-package :py4cl2-cffi)

(defvar *python-output* nil
  "The stream receiving Python's sys.stdout; NIL means *STANDARD-OUTPUT* at the time of writing.")
(defvar *python-error-output* nil
  "The stream receiving Python's sys.stderr; NIL means *ERROR-OUTPUT* at the time of writing.")

(cffi:defcallback output-handler :void ((stream :int32) (data :pointer) (len :int64))
  ;; Runs in the Lisp thread that called Python, so dynamic bindings apply. Never unwinds
  ;; through the shim: errors are reported and dropped.
  (handler-case
      (let ((text (cffi:foreign-string-to-lisp data :count len :encoding :utf-8)))
        (write-string text (if (= stream 2)
                               (or *python-error-output* *error-output*)
                               (or *python-output* *standard-output*))))
    (serious-condition (e)
      (ignore-errors (format *error-output* "~&;; py4cl2-cffi: Python output lost: ~A~%" e)))))

(defmacro with-python-output (&body forms-decl)
  "Runs FORMS-DECL and returns, as a string, everything Python printed to sys.stdout meanwhile
(Lisp's own output still goes to *STANDARD-OUTPUT*)."
  (let ((s (gensym "S")))
    `(with-output-to-string (,s)
       (let ((*python-output* ,s))
         ,@forms-decl))))

(defmacro with-python-error-output (&body forms-decl)
  "Runs FORMS-DECL and returns, as a string, everything Python wrote to sys.stderr meanwhile
(warnings, tracebacks printed by Python code)."
  (let ((s (gensym "S")))
    `(with-output-to-string (,s)
       (let ((*python-error-output* ,s))
         ,@forms-decl))))
