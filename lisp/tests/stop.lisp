;;;; Tests: pystop with other threads inside Python, the soft stop, transactional starts.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(defun seconds-since (start)
  (/ (- (get-internal-real-time) start) internal-time-units-per-second))

(defun outcome (thunk)
  "What THUNK gives: (:VALUE v) or (:CONDITION type-name text)."
  (handler-case (list :value (funcall thunk))
    (pyerror (e) (list :condition (if (typep e 'simple-pyerror) (pyerror-type e) "pyerror")
                       (princ-to-string e)))
    (error (e) (list :condition (string (type-of e)) (princ-to-string e)))))

(defun start-thread-and-wait (body &key (until (lambda () t)) (timeout 5))
  "Starts BODY in a new thread; returns the thread once UNTIL is true (or TIMEOUT passed)."
  (let ((thread (bt:make-thread body :name "a test thread inside Python"))
        (start (get-internal-real-time)))
    (loop until (or (funcall until) (> (seconds-since start) timeout)) do (sleep 0.01))
    thread))

(defun last-stop-kind ()
  (py4cl2-cffi/config::json-get (py4cl2-cffi::stop-report) "kind"))

(fiveam:test stop-while-a-thread-sleeps-in-python
  ;; Before: pystop returned T and the sleeping thread died in a memory fault.
  (pystart)
  (import-module "time")
  ;; The function is looked up first, so that the thread makes one crossing (the call): a
  ;; thread seen inside Python is then inside the sleep (as in the tests below).
  (let* ((sleep (pyvalue "time.sleep"))
         (thread (start-thread-and-wait (lambda () (outcome (lambda () (pycall sleep 1.5))))
                                        :until (lambda () (plusp (py4cl2-cffi::%threads-in-python)))))
         (start (get-internal-real-time)))
    (fiveam:is (eq t (pystop)))
    (fiveam:is (<= 0.5 (seconds-since start) 4.5) "pystop waited for the sleeping thread: ~,2F s"
               (seconds-since start))
    (let ((r (bt:join-thread thread)))
      (fiveam:is (or (equal r (list :value +py-none+))
                     (and (eq :condition (first r)) (search "PythonStopping" (second r))))
                 "the thread's call ended normally or with PythonStopping: ~S" r)))
  (fiveam:is (not (python-alive-p)))
  (fiveam:is (equal "3" (pycall "str" 3)) "Python starts again"))

(fiveam:test stop-asks-a-busy-python-loop-to-leave
  (pystart)
  (let* ((thread (start-thread-and-wait
                  (lambda () (outcome (lambda () (pycall "exec" "while True: pass"))))
                  :until (lambda () (plusp (py4cl2-cffi::%threads-in-python)))))
         (start (get-internal-real-time)))
    (fiveam:is (eq t (pystop :timeout 5)))
    (fiveam:is (< (seconds-since start) 3) "the loop was interrupted, not waited for")
    (let ((r (bt:join-thread thread)))
      (fiveam:is (eq :condition (first r)))
      (fiveam:is (equal "py4cl2_cffi.PythonStopping" (second r)) "~S" r)
      (fiveam:is (search "pystop" (third r)) "the message says why: ~A" (third r)))))

(fiveam:test stop-refused-while-another-thread-holds-the-gil
  (pystart)
  (let* ((inside nil)
         (thread (start-thread-and-wait
                  (lambda () (with-python-gil (setf inside t) (sleep 1.5) (pycall "str" 11)))
                  :until (lambda () inside)))
         (start (get-internal-real-time))
         (c (handler-case (progn (pystop :timeout 0.4) nil)
              (python-stop-busy-error (e) e))))
    (fiveam:is (typep c 'python-stop-busy-error))
    (fiveam:is (< (seconds-since start) 1.4) "the stop gave up at its timeout, no deadlock")
    (when c
      #+sbcl
      (fiveam:is (member thread (python-stop-busy-error-threads c))
                 "the condition names the Lisp thread: ~S" (python-stop-busy-error-threads c))
      #-sbcl
      ;; Threads that ended just before (their exit gives their Python state back, which
      ;; waits for the GIL too) may be named as well.
      (fiveam:is (plusp (length (python-stop-busy-error-threads c)))
                 "the condition names the threads by their identifiers: ~S"
                 (python-stop-busy-error-threads c))
      (fiveam:is (search "nothing was stopped" (princ-to-string c))))
    (fiveam:is (python-alive-p))
    (fiveam:is (equal "11" (bt:join-thread thread)) "the holder finished normally")
    (fiveam:is (eq t (pystop)) "once it left, the stop works")))

(fiveam:test stop-while-a-thread-runs-a-lisp-callback
  (pystart)
  (let* ((inside nil)
         (thread (start-thread-and-wait
                  (lambda () (outcome (lambda () (pycall "lambda f: f() + 1"
                                                         (lambda () (setf inside t) (sleep 0.5) 41)))))
                  :until (lambda () inside))))
    (fiveam:is (eq t (pystop)))
    (let ((r (bt:join-thread thread)))
      (fiveam:is (or (equal r '(:value 42))
                     (and (eq :condition (first r)) (search "PythonStopping" (second r))))
                 "~S" r))))

(fiveam:test stop-while-a-thread-joins-a-python-thread
  ;; t.join() cannot be interrupted; the stop gives up clearly and works once it returned.
  (pystart)
  (raw-pyexec "import threading, time
stop_test_thread = threading.Thread(target=time.sleep, args=(1.2,))
stop_test_thread.start()")
  ;; The bound method is looked up first, so that the thread makes one crossing (the call): a
  ;; thread seen inside Python is then inside the join, not between a lookup and the call.
  (let* ((join (pyeval "stop_test_thread.join"))
         (thread (start-thread-and-wait (lambda () (outcome (lambda () (pycall join))))
                                        :until (lambda () (plusp (py4cl2-cffi::%threads-in-python))))))
    (fiveam:signals python-stop-busy-error (pystop :timeout 0.3))
    (fiveam:is (python-alive-p))
    (fiveam:is (equal (list :value +py-none+) (bt:join-thread thread)))
    (fiveam:is (eq t (pystop)))))

(fiveam:test calls-that-arrive-during-a-stop-wait-and-see-it
  (pystart)
  (import-module "time")
  (let* ((sleep (pyvalue "time.sleep"))
         (sleeper (start-thread-and-wait (lambda () (outcome (lambda () (pycall sleep 0.8))))
                                         :until (lambda () (plusp (py4cl2-cffi::%threads-in-python)))))
         (stopper (bt:make-thread (lambda () (pystop))))
         (late (progn (sleep 0.2)
                      (bt:make-thread (lambda () (outcome (lambda () (pycall "str" 5))))))))
    (bt:join-thread sleeper)
    (fiveam:is (eq t (bt:join-thread stopper)))
    (let ((r (bt:join-thread late)))
      (fiveam:is (or (equal r '(:value "5"))
                     (and (eq :condition (first r)) (equal "PYTHON-NOT-STARTED" (second r))))
                 "a call that waited for the stop gets PYTHON-NOT-STARTED (or ran before): ~S" r))))

(fiveam:test start-is-all-or-nothing
  (pystop)
  (let ((*additional-init-codes* (list "init_ok = 1" "raise ValueError('init code failed')")))
    (let ((c (handler-case (progn (pystart) nil) (pyerror (e) e))))
      (fiveam:is (typep c 'pyerror))
      (fiveam:is (search "init code failed" (princ-to-string c))))
    (fiveam:is (not (python-alive-p)) "a failed start leaves Python stopped"))
  (fiveam:is (eq t (pystart)) "the next start works")
  (fiveam:signals pyerror (pyvalue "init_ok")))

(fiveam:test another-interpreter-while-one-runs
  (pystart)
  (let* ((running py4cl2-cffi/config:*python-executable-path*)
         (v (pyversion-info))
         (other (find-if (lambda (xy) (and (venv xy)
                                           (string/= xy (format nil "~D.~D" (first v) (second v)))))
                         '("3.8" "3.9" "3.10" "3.11" "3.12" "3.13"))))
    (fiveam:is (null (pystart :python running)) "the running interpreter again: NIL")
    (if other
        (let ((c (handler-case (progn (pystart :python (venv other)) nil)
                   (python-running-error (e) e))))
          (fiveam:is (typep c 'python-running-error))
          (fiveam:is (search "stop it first" (princ-to-string c)) "~A" c)
          (fiveam:is (equal v (pyversion-info)) "the running one is untouched"))
        (skip-test "no venv of another Python version under ~A" (venv-root)))))

(fiveam:test a-soft-stop-resets-the-session
  ;; Stops are soft in this process once something pins libpython (numpy, imported by the
  ;; numpy tests that run first); otherwise they unload. Either way a new session starts clean.
  (pystart)
  (let* ((dir (uiop:ensure-directory-pathname
               (format nil "/tmp/py4cl2-cffi-test-~36R/" (random (expt 36 8) (make-random-state t)))))
         (file (merge-pathnames "stoptestmod.py" dir)))
    (ensure-directories-exist dir)
    (unwind-protect
         (progn
           (with-open-file (s file :direction :output :if-exists :supersede)
             (write-line "VALUE = 1" s))
           (pycall "sys.path.insert" 0 (namestring dir))
           (import-module "stoptestmod")
           (fiveam:is (= 1 (pyvalue "stoptestmod.VALUE")))
           (raw-pyexec "session_marker = 'old'")
           (let ((old-wrapper (with-remote-objects (pyeval "[1, 2, 3]"))))
             (pystop)
             ;; Another size: Python's bytecode cache compares the source's size and mtime
             ;; (in seconds), and this rewrite happens within the same second.
             (with-open-file (s file :direction :output :if-exists :supersede)
               (write-line "VALUE = 22" s))
             (pystart)
             (fiveam:signals pyerror (pyvalue "session_marker") "__main__ is fresh")
             (fiveam:is (not (member (namestring dir) (coerce (pyvalue "sys.path") 'list)
                                     :test #'equal))
                        "sys.path is as at start")
             (fiveam:signals stale-pyobject-error (pycall "len" old-wrapper))
             (pycall "sys.path.insert" 0 (namestring dir))
             (import-module "stoptestmod")
             (fiveam:is (= 22 (pyvalue "stoptestmod.VALUE"))
                        "a module of user code is read again (stop kind: ~A)" (last-stop-kind))))
      (ignore-errors (pycall "sys.path.remove" (namestring dir)))
      (uiop:delete-directory-tree dir :validate t :if-does-not-exist :ignore))))

(fiveam:test a-lisp-function-kept-by-python-after-pystop
  (pystart)
  (raw-pyexec "import sys")
  (pycall "setattr" (pyvalue "sys") "stop_test_kept_function" (lambda () 1))
  (pystop)
  (pystart)
  (if (equal "soft" (last-stop-kind))
      (let ((c (handler-case (progn (pycall "sys.stop_test_kept_function") nil) (pyerror (e) e))))
        (fiveam:is (typep c 'pyerror))
        (fiveam:is (search "has ended" (princ-to-string c)) "~A" c))
      (fiveam:signals pyerror (pycall "sys.stop_test_kept_function")
        "after an unloading stop the attribute is gone with the old interpreter")))
