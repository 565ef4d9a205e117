;;;; The interrupt watcher: a Lisp interrupt aimed at a thread that is inside Python becomes a
;;;; KeyboardInterrupt in Python (see CALLING-PYTHON in ffi.lisp for why interrupts are
;;;; deferred there). SBCL only: it reads another thread's pending interruptions. On ECL the
;;;; interrupt is deferred until Python returns, without being forwarded.
;;;;
;;;; Signals need more: C-c (SIGINT) and timers (SIGALRM, WITH-TIMEOUT) reach the thread that
;;;; receives them, usually the main thread, and when that thread is inside Python its Lisp
;;;; handler is deferred, so nothing is queued that the watcher could see. So the watcher also
;;;; runs timers that are due (a timer for a thread inside Python then queues its interruption
;;;; as usual), and counts SIGINTs through the shim's observer (p4s_observe_signal, in front of
;;;; SBCL's own handler): a C-c while the foreground thread is inside Python asks Python to
;;;; raise KeyboardInterrupt there, and SBCL's deferred handler runs when the call returns.

(in-package :py4cl2-cffi)

(defvar *interrupt-poll-seconds* 0.05
  "How often the interrupt watcher looks for interrupts pending in threads inside Python.")

#+sbcl
(progn
  (defvar *interrupt-watcher* nil "The watcher thread, or NIL.")
  (defvar *interrupt-watcher-stop* nil "Set to T to make the watcher exit.")

  (defvar *sigints-seen* 0 "SIGINTs the watcher has accounted for.")

  (defun sigint-arrived-p ()
    "True once per SIGINT the shim's observer counted since the last call."
    (let ((n (%signal-count sb-unix:sigint)))
      (when (/= n *sigints-seen*)
        (setf *sigints-seen* n)
        t)))

  (defun run-due-timers ()
    "Runs the timers that are due, in this thread: their SIGALRM may be deferred in a thread
that is inside Python."
    (let ((next (ignore-errors (sb-impl::peek-schedule))))
      (when (and next (ignore-errors (<= (sb-impl::%timer-expire-time next) (get-internal-real-time))))
        (ignore-errors (sb-impl::run-expired-timers)))))

  (defun forward-pending-interrupts (forwarded)
    "Asks Python to raise KeyboardInterrupt in each thread that is inside Python with a Lisp
interrupt pending, once per pending interrupt list (FORWARDED: thread -> the list forwarded)."
    (run-due-timers)
    (dolist (thread (sb-thread:list-all-threads))
      (unless (eq thread sb-thread:*current-thread*)
        (let* ((in-python (ignore-errors (sb-thread:symbol-value-in-thread '*in-python* thread nil)))
               (pending (or (sb-thread::thread-interruptions thread)
                            (and in-python (eq thread (sb-thread::foreground-thread))
                                 (sigint-arrived-p)
                                 :sigint))))
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
  #+sbcl (%observe-signal sb-unix:sigint)
  #+sbcl
  (unless (and *interrupt-watcher* (sb-thread:thread-alive-p *interrupt-watcher*))
    (setf *interrupt-watcher-stop* nil
          *interrupt-watcher* (sb-thread:make-thread #'interrupt-watcher-loop
                                                     :name "py4cl2-cffi interrupt watcher"))))
