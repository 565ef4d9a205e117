;;;; Python's sys.stdout and sys.stderr written to Lisp streams, in order, as Python writes.

(in-package :py4cl2-cffi)

(defvar *python-output* nil
  "The stream receiving Python's sys.stdout; NIL means *STANDARD-OUTPUT* at the time of writing.")
(defvar *python-error-output* nil
  "The stream receiving Python's sys.stderr; NIL means *ERROR-OUTPUT* at the time of writing.")

(defvar *default-python-output* nil
  "Where sys.stdout text of a thread that Python made goes when no route is known for it (the
thread was started outside any call from Lisp): *STANDARD-OUTPUT* as it was at PYSTART.")
(defvar *default-python-error-output* nil
  "As *DEFAULT-PYTHON-OUTPUT*, for sys.stderr: *ERROR-OUTPUT* as it was at PYSTART.")

;;; Routes. A thread that Python makes (threading.Thread, a ThreadPoolExecutor worker) has no
;;; Lisp dynamic bindings. When it is started from code that Lisp called, the shim asks
;;; ROUTE-HANDLER for a handle naming the Lisp streams current there, and that thread's output
;;; carries the handle: so a thread started inside WITH-PYTHON-OUTPUT writes into its string.
;;; Once the capture has returned, the route is dead and the output goes to the defaults.
(defstruct (route (:constructor make-route (handle out err)) (:copier nil))
  (handle 0 :read-only t)
  (out nil :read-only t)
  (err nil :read-only t)
  (live t))

(defvar *routes* (make-sync-table) "Route handle -> ROUTE.")
(defvar *stream-routes* (make-sync-table :test 'eq)
  "Capture stream -> its ROUTE, so that one WITH-PYTHON-OUTPUT gives one route.")
(defvar *route-lock* (bt:make-lock "py4cl2-cffi routes"))

(defun current-route-handle ()
  "The handle of a route to this thread's current Python output streams (0: the defaults)."
  (let ((out (or *python-output* *standard-output*))
        (err (or *python-error-output* *error-output*)))
    (if (and (eq out *default-python-output*) (eq err *default-python-error-output*))
        0
        (bt:with-lock-held (*route-lock*)
          (let ((known (or (gethash out *stream-routes*) (gethash err *stream-routes*))))
            (if (and known (eq (route-out known) out) (eq (route-err known) err) (route-live known))
                (route-handle known)
                (let ((r (make-route (new-handle) out err)))
                  (setf (gethash (route-handle r) *routes*) r)
                  (unless (eq out *default-python-output*) (setf (gethash out *stream-routes*) r))
                  (unless (eq err *default-python-error-output*) (setf (gethash err *stream-routes*) r))
                  (route-handle r))))))))

(defun end-route (stream)
  "Marks the route of the capture STREAM dead (its capture returned) and forgets it."
  (when (plusp (hash-table-count *stream-routes*))
    (bt:with-lock-held (*route-lock*)
      (let ((r (gethash stream *stream-routes*)))
        (when r
          (setf (route-live r) nil)
          (remhash (route-handle r) *routes*)
          (dolist (s (list (route-out r) (route-err r)))
            (when (eq (gethash s *stream-routes*) r) (remhash s *stream-routes*))))))))

(defun output-target (stream route)
  "The Lisp stream for Python's STREAM (1 stdout, 2 stderr) written on ROUTE (-1: the
writing Lisp thread's bindings; 0: none; else a route handle)."
  (let ((r (and (plusp route) (gethash route *routes*))))
    (cond ((= route -1) (if (= stream 2)
                            (or *python-error-output* *error-output*)
                            (or *python-output* *standard-output*)))
          ((and r (route-live r)) (if (= stream 2) (route-err r) (route-out r)))
          ((= stream 2) (or *default-python-error-output* *error-output*))
          (t (or *default-python-output* *standard-output*)))))

(cffi:defcallback output-handler :void ((stream :int32) (data :pointer) (len :int64) (route :int64))
  ;; Runs in the thread that wrote (a Lisp thread inside a call, or a thread Python made,
  ;; attached to Lisp for the moment). Never unwinds through the shim: errors are reported
  ;; and dropped.
  (handler-case
      (let ((text (cffi:foreign-string-to-lisp data :count len :encoding :utf-8)))
        (write-string text (output-target stream route))
        (when (/= route -1) (force-output (output-target stream route))))
    (serious-condition (e)
      (ignore-errors (format *error-output* "~&;; py4cl2-cffi: Python output lost: ~A~%" e)))))

(cffi:defcallback route-handler :int64 ()
  ;; Python is starting a thread from code Lisp called: name this thread's output streams.
  (handler-case (current-route-handle)
    (serious-condition () 0)))

(defmacro with-python-output (&body forms-decl)
  "Runs FORMS-DECL and returns, as a string, everything Python printed to sys.stdout meanwhile
(Lisp's own output still goes to *STANDARD-OUTPUT*), including what threads that Python started
meanwhile printed before the body returned."
  (let ((s (gensym "S")))
    `(with-output-to-string (,s)
       (unwind-protect
            (let ((*python-output* ,s))
              ,@forms-decl)
         (end-route ,s)))))

(defmacro with-python-error-output (&body forms-decl)
  "Runs FORMS-DECL and returns, as a string, everything Python wrote to sys.stderr meanwhile
(warnings, tracebacks printed by Python code), including what threads that Python started
meanwhile wrote before the body returned."
  (let ((s (gensym "S")))
    `(with-output-to-string (,s)
       (unwind-protect
            (let ((*python-error-output* ,s))
              ,@forms-decl)
         (end-route ,s)))))
