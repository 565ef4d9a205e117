;;;; Lisp functions callable from Python: handles, the callback entry, export-function, pygenerator.

(in-package :py4cl2-cffi)

;;; Lisp functions called from Python. Handles index functions (and conditions in flight).
(defvar *callback-functions* (make-sync-table) "Handle -> Lisp function.")
(defvar *handle-lock* (bt:make-lock "py4cl2-cffi handles"))
(defvar *next-handle* 0)

(defun new-handle ()
  (bt:with-lock-held (*handle-lock*) (incf *next-handle*)))

(defun store-condition (condition)
  (let ((h (new-handle)))
    (setf (gethash h *lisp-conditions*) condition)
    h))

(defun python-name-to-keyword (name)
  (intern (substitute #\- #\_ (string-upcase name)) :keyword))

(cffi:defcallback callback-handler :pointer ((handle :int64) (args :pointer) (kwargs :pointer))
  ;; Python holds the GIL and called a Lisp function. Never unwind through the shim: a Lisp
  ;; error becomes a Python exception that carries the condition back to Lisp.
  (handler-case
      (let* ((fn (or (gethash handle *callback-functions*)
                     (error "py4cl2-cffi: no Lisp function for callback handle ~D" handle)))
             (*remote-objects* nil)
             (positional (let ((a (lispify args))) (if (listp a) a '())))
             (keywords (unless (cffi:null-pointer-p kwargs)
                         (let ((table (lispify kwargs)) (plist '()))
                           (maphash (lambda (k v) (push v plist) (push (python-name-to-keyword k) plist))
                                    table)
                           plist))))
        (pythonize (apply fn (append positional keywords))))
    (serious-condition (c)
      (let ((h (store-condition c))
            (text (or (ignore-errors (princ-to-string c)) "a Lisp error")))
        (with-utf8 (m n text) (%error-set-lisp h m n))
        (cffi:null-pointer)))))

(cffi:defcallback callback-release :void ((handle :int64))
  (remhash handle *callback-functions*))

(defun function-object (function &optional name)
  "A new reference to a Python callable that calls the Lisp FUNCTION."
  (python-start-if-not-alive)
  (let ((h (new-handle))
        (name (or name (let ((n (ignore-errors (nth-value 2 (function-lambda-expression function)))))
                         (if (symbolp n) (lisp-name-to-python n) "lisp_function")))))
    (setf (gethash h *callback-functions*) function)
    (with-utf8 (s n name)
      (let ((p (%make-callable h s n)))
        (when (cffi:null-pointer-p p) (remhash h *callback-functions*))
        (check-pointer p)))))

(defun export-function (function python-name)
  "Makes a lisp function available in python process as python-name. Returns PYTHON-NAME."
  (python-start-if-not-alive)
  (let ((p (function-object function python-name)))
    (unwind-protect
         (let ((w (wrap-new-reference (progn (%incref p) p))))
           (setf (pyvalue python-name) w))
      (%decref p)))
  python-name)

(defun pygenerator (function stop-value)
  "A Python generator (a PYOBJECT-WRAPPER) yielding the values of calling the Lisp FUNCTION
with no arguments until it returns something equal (in Python) to STOP-VALUE."
  (let ((*remote-objects* t))
    (call-helper "generator" function stop-value)))
