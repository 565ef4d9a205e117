;;;; Conditions: Python exceptions, shim errors, start/stop refusals; and turning a status into one.

(in-package :py4cl2-cffi)

(define-condition pyerror (error)
  ((message :initarg :message :initform "" :reader pyerror-message
            :documentation "str() of the Python exception.")
   (traceback :initarg :traceback :initform nil :reader pyerror-traceback
              :documentation "The formatted Python traceback, ending with the `Type: message` line."))
  (:report (lambda (c s)
             (format s "A Python error occurred:~%~A" (pyerror-message c))))
  (:documentation "A Lisp error to indicate all kinds of Python error."))

(define-condition simple-pyerror (pyerror)
  ((type :initarg :type :initform nil :reader pyerror-type
         :documentation "The Python exception's type name: \"ValueError\", \"numpy.AxisError\"..."))
  (:report (lambda (c s)
             (format s "Python raised ~A: ~A~@[~%~%~A~]"
                     (pyerror-type c) (pyerror-message c)
                     (let ((tb (pyerror-traceback c)))
                       (and tb (plusp (length tb)) (string-right-trim '(#\Newline) tb))))))
  (:documentation "A specialization of PYERROR to hold the Python error type (PYERROR-TYPE), its
message (PYERROR-MESSAGE) and the formatted traceback (PYERROR-TRACEBACK)."))

(define-condition shim-error (error)
  ((message :initarg :message :reader shim-error-message))
  (:report (lambda (c s) (format s "py4cl2-cffi: ~A" (shim-error-message c))))
  (:documentation "The shim refused a request (bad argument, wrong state); the message says why."))

(define-condition python-not-started (shim-error) ()
  (:documentation "Python is not running and was not started automatically."))

(define-condition python-start-error (shim-error) ()
  (:report (lambda (c s) (format s "Python could not be started: ~A" (shim-error-message c))))
  (:documentation "PYSTART failed: no usable interpreter for the spec, a missing libpython..."))

(defun python-start-error-message (condition)
  "The reason a start failed, as the shim put it."
  (shim-error-message condition))

(define-condition python-pinned-error (python-start-error) ()
  (:report (lambda (c s) (format s "Python could not be started: ~A" (shim-error-message c))))
  (:documentation "Starting another Python version was refused because an extension module
(e.g. numpy) keeps the previous libpython mapped in this process; only that same interpreter
can start again here. The message names the pinned files. Use a fresh Lisp process."))

(define-condition python-running-error (python-start-error) ()
  (:report (lambda (c s) (format s "Python could not be started: ~A" (shim-error-message c))))
  (:documentation "PYSTART was asked for another interpreter than the one running. PYSTOP it
first; PYSTART of the running interpreter just returns NIL."))

(define-condition python-stop-error (shim-error) ()
  (:report (lambda (c s) (format s "Python could not be stopped: ~A" (shim-error-message c))))
  (:documentation "PYSTOP was refused: called inside WITH-PYTHON-GIL or from a Lisp function
that Python called, during another stop, asked to finalize while Python threads run, or other
threads stayed inside Python past its timeout (PYTHON-STOP-BUSY-ERROR). Nothing was stopped."))

(define-condition python-stop-busy-error (python-stop-error)
  ((threads :initarg :threads :initform '() :reader python-stop-busy-error-threads
            :documentation "The Lisp threads (or, for threads Python made, their identifiers)
that were still inside Python."))
  (:report (lambda (c s)
             (format s "Python could not be stopped: ~A~@[~%Lisp threads still inside Python: ~{~A~^, ~}~]"
                     (shim-error-message c)
                     (mapcar (lambda (x) (if (stringp x) x (format nil "~S" x)))
                             (python-stop-busy-error-threads c)))))
  (:documentation "PYSTOP gave up because other threads were still inside Python when its
timeout ran out (they were asked to leave with py4cl2_cffi.PythonStopping, a KeyboardInterrupt,
but were in Lisp code, blocked in a system call or in a lock). Nothing was stopped."))

(setf (documentation 'python-stop-busy-error-threads 'function)
      "The Lisp threads (or, for threads Python made, their identifiers) that were still inside
Python when a PYSTOP gave up with PYTHON-STOP-BUSY-ERROR.")

(define-condition stale-pyobject-error (shim-error) ()
  (:documentation "A PYOBJECT-WRAPPER from an earlier start of Python was used."))

(defun last-shim-error ()
  (or (foreign-utf8 (%last-error)) ""))

(defvar *lisp-conditions* (make-sync-table)
  "Lisp conditions raised inside callbacks, by handle, until they come back to Lisp.")

(defun take-python-error ()
  "Reads and clears this thread's kept Python exception; returns the condition to signal: the
original Lisp condition if the exception carries one, else a SIMPLE-PYERROR."
  (cffi:with-foreign-object (info '(:struct p4s-error-info))
    (if (/= 0 (%error-describe info))
        (make-condition 'simple-pyerror :type "<unknown>" :message "no Python exception was kept")
        (flet ((text (p n) (foreign-utf8 (cffi:foreign-slot-value info '(:struct p4s-error-info) p)
                                         (cffi:foreign-slot-value info '(:struct p4s-error-info) n))))
          (let* ((type (text 'type 'type-len))
                 (message (text 'message 'message-len))
                 (traceback (text 'traceback 'traceback-len))
                 (handle (cffi:foreign-slot-value info '(:struct p4s-error-info) 'lisp-handle))
                 ;; Read the Lisp condition before clearing: clearing drops the exception, whose
                 ;; release tells Lisp to forget the condition.
                 (original (and (>= handle 0) (gethash handle *lisp-conditions*))))
            (%error-clear)
            (when (>= handle 0) (remhash handle *lisp-conditions*))
            (or original
                (make-condition 'simple-pyerror :type (or type "<unknown>") :message (or message "")
                                                :traceback traceback)))))))

(defun shim-condition-class (code)
  "The condition class for the shim error CODE (p4s_last_error_code)."
  (case code
    (#.+code-not-started+ 'python-not-started)
    (#.+code-pinned+ 'python-pinned-error)
    (#.+code-other-running+ 'python-running-error)
    ((#.+code-busy+ #.+code-refused+) 'python-stop-error)
    (t 'shim-error)))

(defun signal-status (status)
  "Signals the condition for a failed shim STATUS (-1: the kept Python exception; -2: the shim's
message)."
  (declare (type fixnum status))
  (if (= status +pyerror+)
      (error (take-python-error))
      (error (shim-condition-class (%last-error-code)) :message (last-shim-error))))

(defmacro check-status (form)
  "Evaluates FORM, a shim call returning an int32 status; signals unless it is 0."
  (let ((s (gensym "STATUS")))
    `(let ((,s ,form))
       (declare (type fixnum ,s))
       (unless (= ,s 0) (signal-status ,s))
       ,s)))

(defun check-pointer (pointer)
  "Returns POINTER, or signals the pending error when it is NULL."
  (if (cffi:null-pointer-p pointer)
      (if (= 1 (%error-pending))
          (signal-status +pyerror+)
          (signal-status +shim-error+))
      pointer))
