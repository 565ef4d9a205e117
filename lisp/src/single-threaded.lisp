;;;; py4cl2-cffi/single-threaded: every Python call runs on one dedicated Lisp thread.
;;;;
;;;; Some Python libraries must only ever be used from one OS thread (GUI toolkits behind
;;;; matplotlib's interactive backends, some C extensions). Loading this system installs the
;;;; entry hook of py4cl2-cffi: while *SINGLE-THREADED* is true, a call made on any other thread is
;;;; queued to the Python thread, which runs it with the caller's dynamic bindings of
;;;; *FORWARDED-VARIABLES* and hands back its values, its warnings and its error. Calls made on
;;;; the Python thread itself (nested calls, Lisp callbacks called by Python) run directly.

(defpackage :py4cl2-cffi/single-threaded
  (:use :cl :py4cl2-cffi)
  (:export #:*single-threaded*
           #:*forwarded-variables*
           #:call-in-python-thread
           #:python-thread
           ;; The whole API of py4cl2-cffi (the same symbols), so code written for the
           ;; original's single-threaded package works with either package name. Listed here,
           ;; not exported afterwards, so that loading this file again finds no variance.
           . #.(let ((names '()))
                 (do-external-symbols (s :py4cl2-cffi names)
                   (push (symbol-name s) names)))))

(in-package :py4cl2-cffi/single-threaded)

(defvar *single-threaded* t
  "When true (the default once py4cl2-cffi/single-threaded is loaded), every call into Python
made by a Lisp thread other than the Python thread (see PYTHON-THREAD) is run on the Python
thread, and the caller waits for it. Set it to NIL globally (other threads see the global value)
to call Python from every thread directly again; binding it to NIL around a block makes that
thread's calls direct.")

(defvar *forwarded-variables*
  '(*standard-output* *error-output* *trace-output* *print-pretty* *print-readably*
    *print-escape* *print-circle* *package* *read-default-float-format*
    py4cl2-cffi:*print-pyobject* py4cl2-cffi:*print-pyobject-wrapper-identity*
    py4cl2-cffi:*lispifiers* py4cl2-cffi:*pythonizers*
    py4cl2-cffi::*remote-objects* py4cl2-cffi::*python-output* py4cl2-cffi::*python-error-output*
    py4cl2-cffi/config:*python-spec*)
  "Special variables whose values in the calling thread are bound on the Python thread while
it runs a call for that thread: streams (so Python's output reaches the caller's
*STANDARD-OUTPUT* or WITH-PYTHON-OUTPUT), printer settings, WITH-REMOTE-OBJECTS,
WITH-LISPIFIERS and WITH-PYTHONIZERS. Push your own variables here if your lispifiers or
pythonizers depend on them.")

;;; The queue and the thread.
(defvar *lock* (bt:make-lock "py4cl2-cffi python thread"))
(defvar *queue-cv* (bt:make-condition-variable :name "py4cl2-cffi python queue"))
(defvar *queue* '() "Tasks waiting for the Python thread, oldest first.")
(defvar *python-thread* nil)

(defstruct (task (:constructor make-task (thunk variables values)))
  (thunk nil :type function)
  (variables '() :type list)
  (values '() :type list)
  (results '() :type list)
  (condition nil)
  (warnings '() :type list)
  (done nil)
  (cv (bt:make-condition-variable :name "py4cl2-cffi task")))

(defvar *started-here* nil
  "True when the running Python was started on the Python thread (then PYSTOP runs there too).")

(defun python-thread ()
  "The Lisp thread that runs every call into Python while *SINGLE-THREADED* is true, or NIL
before the first such call (it is made on demand)."
  *python-thread*)

(defun python-thread-p ()
  (let ((thread *python-thread*))
    (and thread (eq thread (bt:current-thread)))))

(defun note-start (started)
  "Records whether PYSTART, which returned STARTED, started Python on the Python thread."
  (when started
    (setf *started-here* (python-thread-p)))
  started)

(defun run-directly-p ()
  (or (not *single-threaded*) (python-thread-p)))

(defun run-task (task)
  "Runs TASK on the Python thread, recording its values, or its condition and its warnings,
then wakes the caller. Never unwinds out of this thread."
  (let ((results '()) (condition nil) (warnings '()) (finished nil))
    (unwind-protect
         (handler-case
             (handler-bind ((warning (lambda (w)
                                       (push w warnings)
                                       (let ((r (find-restart 'muffle-warning w)))
                                         (when r (invoke-restart r))))))
               (progv (task-variables task) (task-values task)
                 (setf results (multiple-value-list (funcall (task-thunk task)))
                       finished t)))
           (serious-condition (c) (setf condition c finished t)))
      (unless finished
        (setf condition (make-condition 'simple-error
                                        :format-control "py4cl2-cffi: a call on the Python thread ~
                                                         was left by a non-local exit")))
      (bt:with-lock-held (*lock*)
        (setf (task-results task) results
              (task-condition task) condition
              (task-warnings task) (nreverse warnings)
              (task-done task) t)
        (bt:condition-notify (task-cv task))))))

(defun python-thread-loop ()
  (loop
    (let ((task (bt:with-lock-held (*lock*)
                  (loop until *queue* do (bt:condition-wait *queue-cv* *lock*))
                  (pop *queue*))))
      (when (eq task :quit)
        (return))
      (with-simple-restart (abort "Drop this call and keep the Python thread running.")
        (run-task task)))))

(defun ensure-python-thread ()
  "Starts the Python thread unless it runs. Call with *LOCK* held."
  (unless (and *python-thread* (bt:thread-alive-p *python-thread*))
    (setf *python-thread* (bt:make-thread #'python-thread-loop :name "py4cl2-cffi python thread"))))

(defun stop-python-thread ()
  "Ends the Python thread after the calls already queued (Python itself keeps running). Used
before saving a Lisp image, which must have one thread only."
  (let ((thread (bt:with-lock-held (*lock*)
                  (let ((thread *python-thread*))
                    (when (and thread (bt:thread-alive-p thread))
                      (setf *queue* (append *queue* (list :quit)))
                      (bt:condition-notify *queue-cv*)
                      thread)))))
    (when thread
      (bt:join-thread thread))
    (setf *python-thread* nil)))

(defun call-in-python-thread (function)
  "Calls FUNCTION (of no arguments) on the Python thread and returns its values: directly when
this is the Python thread or *SINGLE-THREADED* is NIL, otherwise queued, with the values of
*FORWARDED-VARIABLES* of this thread bound there, while this thread waits. Warnings signalled
during the call are signalled again here afterwards; an error (any SERIOUS-CONDITION) is
signalled again here with ERROR, after the Python thread unwound from it."
  (if (run-directly-p)
      (funcall function)
      (let* ((variables (remove-if-not #'boundp *forwarded-variables*))
             (task (make-task function variables (mapcar #'symbol-value variables))))
        (bt:with-lock-held (*lock*)
          (ensure-python-thread)
          (setf *queue* (append *queue* (list task)))
          (bt:condition-notify *queue-cv*)
          (loop until (task-done task)
                do (bt:condition-wait (task-cv task) *lock*)))
        (dolist (w (task-warnings task))
          (warn w))
        (if (task-condition task)
            (error (task-condition task))
            (values-list (task-results task))))))

;;; The entry hook. Every entry point of py4cl2-cffi (see DEFINE-ENTRY in its gil.lisp) calls
;;; ENTRY-HOOK with its name and a thunk that makes the call again; nothing is redefined.
(defun entry-hook (name thunk)
  "Runs THUNK, the call of the py4cl2-cffi entry point NAME, on the Python thread (or directly,
see CALL-IN-PYTHON-THREAD)."
  (case name
    (py4cl2-cffi:pystop
     ;; Python must be finalized on the thread that started it, whatever *SINGLE-THREADED*
     ;; says now: CPython's threading shutdown can wait forever otherwise.
     (if (or (python-thread-p) (and (not *single-threaded*) (not *started-here*)))
         (funcall thunk)
         (let ((*single-threaded* t))
           (call-in-python-thread thunk))))
    (py4cl2-cffi:pystart
     (if (run-directly-p)
         (note-start (funcall thunk))
         (call-in-python-thread (lambda () (note-start (funcall thunk))))))
    (t (if (run-directly-p)
           (funcall thunk)
           (call-in-python-thread thunk)))))

(defun install-entry-hook ()
  "Makes every call of a py4cl2-cffi entry point go through ENTRY-HOOK (done on loading this
system). Idempotent."
  (setf py4cl2-cffi::*entry-hook* 'entry-hook))

(defun uninstall-entry-hook ()
  "Makes the entry points of py4cl2-cffi run directly again (the Python thread keeps running
until it is stopped)."
  (when (eq py4cl2-cffi::*entry-hook* 'entry-hook)
    (setf py4cl2-cffi::*entry-hook* nil)))

;;; Printing a wrapper calls Python's str().
(defmethod print-object :around ((o py4cl2-cffi:pyobject-wrapper) stream)
  (if (run-directly-p)
      (call-next-method)
      (let ((next #'call-next-method))
        (call-in-python-thread (lambda () (funcall next))))))

#+sbcl (pushnew 'stop-python-thread sb-ext:*save-hooks*)

(install-entry-hook)
