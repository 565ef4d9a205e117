;;;; The interrupt watcher: a Lisp interrupt aimed at a thread that is inside Python becomes a
;;;; KeyboardInterrupt in Python (see CALLING-PYTHON in ffi.lisp for why interrupts are
;;;; deferred there). SBCL only: it reads another thread's pending interruptions. On ECL the
;;;; interrupt is deferred until Python returns, without being forwarded.

(in-package :py4cl2-cffi)

(defvar *interrupt-poll-seconds* 0.05
  "How often the interrupt watcher looks for interrupts pending in threads inside Python.")

#+sbcl
(progn
  (defvar *interrupt-watcher* nil "The watcher thread, or NIL.")
  (defvar *interrupt-watcher-stop* nil "Set to T to make the watcher exit.")

  (defun forward-pending-interrupts (forwarded)
    "Asks Python to raise KeyboardInterrupt in each thread that is inside Python with a Lisp
interrupt pending, once per pending interrupt list (FORWARDED: thread -> the list forwarded)."
    (dolist (thread (sb-thread:list-all-threads))
      (unless (eq thread sb-thread:*current-thread*)
        (let* ((in-python (ignore-errors (sb-thread:symbol-value-in-thread '*in-python* thread nil)))
               ;; An interruption queued by INTERRUPT-THREAD, or a signal that arrived while
               ;; interrupts were deferred (C-c and timers on the thread that gets SIGINT and
               ;; SIGALRM, usually the main thread: the handler only notes it as pending).
               (pending (or (sb-thread::thread-interruptions thread)
                            (and in-python
                                 (ignore-errors
                                  (sb-thread:symbol-value-in-thread 'sb-sys:*interrupt-pending* thread nil))
                                 :deferred-signal))))
          (cond ((or (not in-python) (null pending)) (remhash thread forwarded))
                ((not (eq pending (gethash thread forwarded)))
                 ;; The lifecycle lock keeps PYSTOP from finalizing Python meanwhile; when it is
                 ;; busy, try again at the next poll.
                 (when (bt:acquire-lock *lifecycle-lock* nil)
                   (unwind-protect
                        (when (and (= 1 (%is-started))
                                   (sb-thread::thread-alive-p thread))
                          (%interrupt-thread (sb-thread::thread-os-thread thread))
                          (setf (gethash thread forwarded) pending))
                     (bt:release-lock *lifecycle-lock*)))))))))

  (defun interrupt-watcher-loop ()
    (let ((forwarded (make-hash-table :test 'eq :weakness :key)))
      (loop until *interrupt-watcher-stop*
            do (sleep *interrupt-poll-seconds*)
               (handler-case (forward-pending-interrupts forwarded)
                 (error (e)
                   (ignore-errors
                    (format *error-output* "~&;; py4cl2-cffi interrupt watcher: ~A~%" e)))))))

  (defun stop-interrupt-watcher ()
    "Stops the watcher thread (before saving an image, which must have one thread)."
    (let ((thread *interrupt-watcher*))
      (when (and thread (sb-thread:thread-alive-p thread))
        (setf *interrupt-watcher-stop* t)
        (sb-thread:join-thread thread :default nil))
      (setf *interrupt-watcher* nil *interrupt-watcher-stop* nil)))

  (pushnew 'stop-interrupt-watcher sb-ext:*save-hooks*))

(defun ensure-interrupt-watcher ()
  "Starts the interrupt watcher thread unless it runs (SBCL; nothing elsewhere)."
  #+sbcl
  (unless (and *interrupt-watcher* (sb-thread:thread-alive-p *interrupt-watcher*))
    (setf *interrupt-watcher-stop* nil
          *interrupt-watcher* (sb-thread:make-thread #'interrupt-watcher-loop
                                                     :name "py4cl2-cffi interrupt watcher"))))
