;;;; Lisp functions callable from Python: handles, the callback entry, export-function, pygenerator.

(in-package :py4cl2-cffi)

;;; A handle (an integer the shim keeps in the Python callable's capsule) names a callback
;;; entry: the Lisp function and what its lambda list accepts. Conditions raised inside
;;; callbacks get handles from the same counter (see conditions.lisp).
(defstruct (callback-entry (:constructor make-callback-entry (function spec)) (:copier nil))
  (function #'identity :type function :read-only t)
  (spec :unknown :read-only t))

(defvar *callback-functions* (make-sync-table) "Handle -> CALLBACK-ENTRY.")
(defvar *handle-lock* (bt:make-lock "py4cl2-cffi handles"))
(defvar *next-handle* 0)
(defvar *lisp-object-handles* (make-sync-table)
  "Handle -> the Lisp object a Python LispObject proxy stands for (see lisp-objects.lisp).")

(defun new-handle ()
  (bt:with-lock-held (*handle-lock*) (incf *next-handle*)))

;;; Conditions in flight. The shim calls CALLBACK-RELEASE when Python drops a LispError (it was
;;; swallowed, or it came back to Lisp and TAKE-PYTHON-ERROR, having read the condition, cleared
;;; it), so the table only holds conditions Python still references.
(defun store-condition (condition)
  "Keeps CONDITION under a new handle until the LispError carrying it is dropped by Python."
  (let ((h (new-handle)))
    (setf (gethash h *lisp-conditions*) condition)
    h))

(defun python-name-to-keyword (name)
  "\"foo_bar\" -> :FOO-BAR."
  (intern (substitute #\- #\_ (string-upcase name)) :keyword))

;;; What a Lisp lambda list accepts, to answer bad calls with a Python TypeError.
(defun function-lambda-list* (function)
  "The lambda list of FUNCTION when the implementation keeps it, else :UNKNOWN."
  (let ((ll (ignore-errors
             #+sbcl (if (typep function 'generic-function)
                        (sb-mop:generic-function-lambda-list function)
                        (sb-kernel:%fun-lambda-list function))
             #+ecl (multiple-value-bind (ll found) (ext:function-lambda-list function)
                     (if found ll :unknown))
             #-(or sbcl ecl) :unknown)))
    (if (listp ll) ll :unknown)))

(defun lambda-list-spec (lambda-list)
  "(REQUIRED OPTIONAL REST-P KEYS ALLOW-OTHER-KEYS-P) for LAMBDA-LIST, KEYS a list of keywords
or :NONE without &key; :UNKNOWN when it cannot be read."
  (when (eq lambda-list :unknown) (return-from lambda-list-spec :unknown))
  (let ((required 0) (optional 0) (rest nil) (keys :none) (allow nil) (state :required))
    (dolist (x lambda-list)
      (case x
        (&optional (setf state :optional))
        ((&rest &body) (setf state :rest rest t))
        (&key (setf state :key keys '()))
        (&allow-other-keys (setf allow t))
        (&aux (setf state :aux))
        ((&whole &environment) (return-from lambda-list-spec :unknown))
        (t (ecase state
             (:required (incf required))
             (:optional (incf optional))
             (:rest)
             (:key (push (cond ((symbolp x) (intern (symbol-name x) :keyword))
                               ((consp (car x)) (caar x))
                               (t (intern (symbol-name (car x)) :keyword)))
                         keys))
             (:aux)))))
    (list required optional rest (if (listp keys) (nreverse keys) keys) allow)))

(defun check-callback-arguments (spec name npositional keywords)
  "NIL if a function of SPEC takes NPOSITIONAL arguments then the keyword plist KEYWORDS, else
the message of the Python TypeError to raise."
  (when (eq spec :unknown) (return-from check-callback-arguments nil))
  (destructuring-bind (required optional rest keys allow) spec
    (let ((max (+ required optional)))
      (cond ((< npositional required)
             (format nil "~A() missing ~D required positional argument~:P" name
                     (- required npositional)))
            ((and (> npositional max) (or (not rest) (listp keys)))
             (format nil "~A() takes ~:[from ~D to ~D~;~*~D~] positional argument~:P but ~D ~:[were~;was~] given"
                     name (zerop optional) required max npositional (= npositional 1)))
            ((null keywords) nil)
            ((< npositional max)
             (format nil "~A() takes keyword arguments only after all ~D positional arguments (its ~
                          &optional ones cannot be skipped), but ~D were given"
                     name max npositional))
            ((eq keys :none)
             (unless rest
               (format nil "~A() got an unexpected keyword argument '~A'" name
                       (lisp-name-to-python (first keywords)))))
            ((or allow (getf keywords :allow-other-keys)) nil)
            (t (loop for k in keywords by #'cddr
                     unless (member k keys)
                       do (return (format nil "~A() got an unexpected keyword argument '~A'"
                                          name (lisp-name-to-python k)))))))))

(defun set-python-type-error (message)
  (let ((type (lookup-object "TypeError")))
    (unwind-protect (with-utf8 (m n message) (%error-set type m n))
      (%decref type))))

(defun raise-lisp-condition (c)
  "Sets a py4cl2_cffi.LispError carrying the condition C (stored under a handle)."
  (let ((h (store-condition c))
        (text (or (ignore-errors (princ-to-string c)) "a Lisp error")))
    (with-utf8 (m n text) (%error-set-lisp h m n))))

(define-condition callback-non-local-exit (error) ()
  (:report "A non-local exit (throw, return-from, go or a restart) tried to leave a Lisp
function called by Python; it was stopped at the Python boundary, which cannot be unwound.")
  (:documentation "Signalled when a THROW, RETURN-FROM, GO or restart tried to leave a Lisp
function called by Python: it is stopped at the Python boundary (C frames cannot be unwound),
Python sees a LispError, and this condition comes back to Lisp."))

(defvar *max-callback-depth* 500
  "How deeply Lisp functions called by Python may nest (Lisp calls Python calls Lisp...).
Beyond it the innermost call signals CALLBACK-DEPTH-EXCEEDED instead of running out of stack.")

(defvar *callback-depth* 0 "How many Lisp functions called by Python this thread is inside.")

(define-condition callback-depth-exceeded (error)
  ((depth :initarg :depth :reader callback-depth-exceeded-depth))
  (:report (lambda (c s)
             (format s "Lisp functions called by Python nest ~D deep, more than ~
                        *MAX-CALLBACK-DEPTH* allows; the innermost was not run"
                     (callback-depth-exceeded-depth c))))
  (:documentation "Signalled, instead of running out of stack, when Lisp functions called by
Python (callbacks) nest deeper than *MAX-CALLBACK-DEPTH*. Python sees a LispError; the
condition comes back to the Lisp code that called Python."))

(setf (documentation 'callback-depth-exceeded-depth 'function)
      "The nesting depth of Lisp functions called by Python that a CALLBACK-DEPTH-EXCEEDED reached.")

;;; Threads that Python makes call Lisp only through callbacks and output. SBCL attaches such a
;;; foreign thread to Lisp by itself for the duration of the callback. ECL must be told: the
;;; shim calls these two C functions around the callback (ecl_import_current_thread and
;;; ecl_release_current_thread, ECL's documented way to run Lisp in a thread it did not make).
#+ecl
(ffi:clines "
static int p4s_ecl_attach(void) { return ecl_import_current_thread(ECL_NIL, ECL_NIL) ? 1 : 0; }
static void p4s_ecl_detach(void) { ecl_release_current_thread(); }")

(defun install-thread-hooks ()
  "Tells the shim how to attach threads that Python made to this Lisp (ECL; nothing on SBCL)."
  #+ecl (%set-thread-hooks (ffi:c-inline () () :pointer-void "(void*)p4s_ecl_attach" :one-liner t)
                           (ffi:c-inline () () :pointer-void "(void*)p4s_ecl_detach" :one-liner t))
  #-ecl (%set-thread-hooks (cffi:null-pointer) (cffi:null-pointer)))

(cffi:defcallback callback-handler :pointer ((handle :int64) (args :pointer) (kwargs :pointer))
  ;; Python holds the GIL and called a Lisp function. Never unwind through the shim: a Lisp
  ;; error becomes a Python exception that carries the condition back to Lisp; any other
  ;; non-local exit is stopped here (its cleanup returns from this block) and reported so.
  (block callback
    (let ((done nil) (signalled nil))
      (unwind-protect
           (running-lisp-for-python
            (handler-case
             (handler-bind ((condition (lambda (c) (setf signalled c))))
               (let* ((*callback-depth* (if (>= *callback-depth* *max-callback-depth*)
                                            (error 'callback-depth-exceeded :depth (1+ *callback-depth*))
                                            (1+ *callback-depth*)))
                      (entry (or (gethash handle *callback-functions*)
                                 (error "py4cl2-cffi: no Lisp function for callback handle ~D" handle)))
                      (*remote-objects* nil)
                      (positional (let ((a (lispify args))) (if (listp a) a '())))
                      (keywords (unless (cffi:null-pointer-p kwargs)
                                  (loop for (k v) in (let ((items (pycall "lambda d: tuple(d.items())" kwargs)))
                                                     (if (listp items) items '()))
                                        collect (python-name-to-keyword k) collect v)))
                      (function (callback-entry-function entry))
                      (problem (check-callback-arguments (callback-entry-spec entry)
                                                         (callback-python-name function)
                                                         (length positional) keywords)))
                 (if problem
                     (progn (set-python-type-error problem)
                            (setf done t)
                            (cffi:null-pointer))
                     (prog1 (pythonize (apply function (nconc positional keywords)))
                       (setf done t)))))
             (serious-condition (c)
               (raise-lisp-condition c)
               (setf done t)
               (cffi:null-pointer))))
        (unless done
          ;; A handler outside (HANDLER-CASE on a warning...) or a THROW / RETURN-FROM / restart
          ;; tried to unwind through Python. Python gets a LispError; back in Lisp the condition
          ;; being signalled (if any) is signalled again, so an outer HANDLER-CASE still gets it.
          (ignore-errors (raise-lisp-condition (or signalled (make-condition 'callback-non-local-exit))))
          (return-from callback (cffi:null-pointer)))))))

(cffi:defcallback callback-release :void ((handle :int64))
  ;; Python dropped a callable made for HANDLE, or a LispError carrying HANDLE's condition.
  (remhash handle *callback-functions*)
  (remhash handle *lisp-object-handles*)
  (remhash handle *lisp-conditions*))

(defun callback-python-name (function)
  (let ((n (ignore-errors (nth-value 2 (function-lambda-expression function)))))
    (if (and n (symbolp n)) (lisp-name-to-python n) "lisp_function")))

(defun make-callable (function name)
  "A new reference to a Python callable calling FUNCTION; its handle as second value."
  (python-start-if-not-alive)
  (let ((h (new-handle)))
    (setf (gethash h *callback-functions*)
          (make-callback-entry function (lambda-list-spec (function-lambda-list* function))))
    (with-utf8 (s n name)
      (let ((p (%make-callable h s n)))
        (when (cffi:null-pointer-p p) (remhash h *callback-functions*))
        (values (check-pointer p) h)))))

(defun function-object (function &optional name)
  "A new reference to a Python callable that calls the Lisp FUNCTION: Python's positional
arguments become FUNCTION's first arguments, its keyword arguments (foo_bar=1) follow as Lisp
keywords (:foo-bar 1). Arguments FUNCTION's lambda list cannot take raise a Python TypeError."
  (values (make-callable function (or name (callback-python-name function)))))

(defun export-function (function python-name)
  "Makes the Lisp FUNCTION (a function or a symbol naming one) callable in Python as the global
PYTHON-NAME of __main__ (positional and keyword arguments as FUNCTION-OBJECT maps them). A Lisp
error inside it raises py4cl2_cffi.LispError in Python. Returns PYTHON-NAME."
  (python-start-if-not-alive)
  (let ((p (function-object (if (symbolp function) (fdefinition function) function)
                            (let ((dot (position #\. python-name :from-end t)))
                              (if dot (subseq python-name (1+ dot)) python-name)))))
    (setf (pyvalue python-name) (wrap-new-reference p)))
  python-name)

(defun pygenerator (function stop-value)
  "A Python generator (a PYOBJECT-WRAPPER) yielding the values of calling the Lisp FUNCTION
with no arguments until it returns something equal (in Python) to STOP-VALUE."
  (let ((*remote-objects* t))
    (call-helper "generator" function stop-value)))
