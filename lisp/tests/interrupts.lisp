;;;; Tests: Lisp interrupts aimed at a thread that is inside Python. Before these were deferred,
;;;; an interrupt that unwound through Python's frames left the thread state pointing into the
;;;; abandoned stack, and the thread's next call crashed (a memory fault in PyEval_GetBuiltins on
;;;; 3.12; ECL crashed the same way).

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(defun define-spinner ()
  (raw-pyexec "import time
def _test_spin(seconds):
    global _test_spin_finished
    _test_spin_finished = False
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        n += 1
    _test_spin_finished = True
    return n"))

(defun run-in-thread-and-interrupt (body interruption &key (after 0.3))
  "Runs BODY in a new Lisp thread, interrupts that thread with INTERRUPTION after AFTER seconds,
and returns what BODY returned."
  (let ((thread (bt:make-thread body :name "interrupted by a test")))
    (sleep after)
    (bt:interrupt-thread thread interruption)
    (bt:join-thread thread)))

(fiveam:test an-interrupt-that-unwinds-leaves-python-usable
  (define-spinner)
  (let ((seconds #+sbcl 20 #-sbcl 1))
    (destructuring-bind (first second third)
        (run-in-thread-and-interrupt
         (lambda ()
           (list (catch 'interrupted (pycall "_test_spin" seconds) :completed)
                 (pyeval "sum(i for i in range(10))")
                 (pycall "str" 42)))
         (lambda () (throw 'interrupted :interrupted)))
      (fiveam:is (eq :interrupted first) "the interruption ran, after the Python call")
      (fiveam:is (= 45 second) "the same thread calls Python again")
      (fiveam:is (equal "42" third)))
    #+sbcl (fiveam:is (eq nil (pyeval "_test_spin_finished"))
                      "Python was stopped by a KeyboardInterrupt, not run to the end")
    #-sbcl (skip-test "interrupts are only deferred on ~A, not forwarded to Python: the watcher ~
                       reads other threads' pending interrupts, which only SBCL exposes"
                      (lisp-implementation-type))))

(fiveam:test an-interrupt-with-continue-becomes-keyboard-interrupt
  ;; SLIME's interrupt and SBCL's C-c offer a CONTINUE restart; taking it lets Python go on,
  ;; and the KeyboardInterrupt the watcher asked for comes back as a PYERROR.
  #-sbcl (skip-test "forwarding interrupts to Python needs SBCL (see the previous test)")
  #+sbcl
  (progn
    (define-spinner)
    (let ((result
            (run-in-thread-and-interrupt
             (lambda ()
               (handler-bind ((simple-error (lambda (c)
                                              (when (search "test interrupt" (princ-to-string c))
                                                (continue c)))))
                 (handler-case (progn (pycall "_test_spin" 20) :completed)
                   (pyerror (e) (pyerror-type e)))))
             (lambda () (cerror "Go on." "test interrupt")))))
      (fiveam:is (equal "KeyboardInterrupt" result))
      (fiveam:is (eq nil (pyeval "_test_spin_finished"))))))

(fiveam:test an-unused-interrupt-request-is-withdrawn
  ;; A request that arrives while the thread sleeps in C, with no bytecode left to run in
  ;; that call, must not surface in the thread's next call.
  (import-module "threading")
  (import-module "time")
  (let* ((ident nil)
         (thread (bt:make-thread
                  (lambda ()
                    (setf ident (pycall "threading.get_ident"))
                    (list (pycall "time.sleep" 0.5)
                          (handler-case (pyeval "sum(i for i in range(10))")
                            (pyerror (e) (pyerror-type e))))))))
    (loop repeat 100 until ident do (sleep 0.01))
    (sleep 0.1)
    (fiveam:is (= 1 (py4cl2-cffi::%interrupt-thread ident)) "the request was placed")
    (destructuring-bind (slept next) (bt:join-thread thread)
      (fiveam:is (eq +py-none+ slept))
      (fiveam:is (eql 45 next) "the next call ran without a KeyboardInterrupt"))
    (fiveam:is (= 0 (py4cl2-cffi::%interrupt-thread 1)) "no Python thread has that identifier")))
