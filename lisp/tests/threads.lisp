;;;; Tests: threads that Python makes (printing, logging, calling Lisp), racing first calls,
;;;; deep callbacks, errors deep in a recursion, interrupts on the main thread, a thread storm.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(defmacro with-default-python-output ((var) &body body)
  "Runs BODY with the default destination of Python threads' output (a global, read by those
threads) set to a fresh string stream bound to VAR."
  `(let ((,var (make-string-output-stream))
         (old py4cl2-cffi::*default-python-output*))
     (setf py4cl2-cffi::*default-python-output* ,var)
     (unwind-protect (progn ,@body)
       (setf py4cl2-cffi::*default-python-output* old))))

(fiveam:test a-python-thread-prints
  ;; Before: the process died ("signal 11 in non-lisp tid") when the thread ended.
  (pystart)
  (raw-pyexec "import threading")
  (let ((s (make-string-output-stream)))
    (let ((*standard-output* s))
      (raw-pyexec "t = threading.Thread(target=lambda: print('from a python thread')); t.start(); t.join()"))
    (fiveam:is (equal (format nil "from a python thread~%") (get-output-stream-string s))
               "a thread prints to the *STANDARD-OUTPUT* of the Lisp code that started it"))
  (fiveam:is (equal (format nil "inside~%")
                    (with-python-output
                      (raw-pyexec "t = threading.Thread(target=lambda: print('inside')); t.start(); t.join()")))
             "a thread started inside WITH-PYTHON-OUTPUT prints into it")
  (sleep 0.1)
  (fiveam:is (equal "ok" (pycall "str" "ok")) "the process is alive"))

(fiveam:test a-daemon-thread-prints-into-the-capture-it-started-in
  (pystart)
  (raw-pyexec "import threading
capture_done = threading.Event()
def capture_worker():
    print('daemon says hi')
    capture_done.set()
capture_thread = threading.Thread(target=capture_worker, daemon=True)")
  (fiveam:is (equal (format nil "daemon says hi~%")
                    (with-python-output (pycall "lambda: (capture_thread.start(), capture_done.wait(5))")))))

(fiveam:test output-of-a-thread-after-its-capture-returned-goes-to-the-default
  (pystart)
  (raw-pyexec "import threading
late_go = threading.Event()
late_done = threading.Event()
def late_worker():
    late_go.wait(5)
    print('late line')
    late_done.set()
late_thread = threading.Thread(target=late_worker, daemon=True)")
  (with-default-python-output (s)
    (fiveam:is (equal "" (with-python-output (pycall "late_thread.start"))))
    (pycall "lambda: (late_go.set(), late_done.wait(5))")
    (fiveam:is (equal (format nil "late line~%") (get-output-stream-string s)))))

(fiveam:test a-python-thread-calls-lisp
  (pystart)
  (raw-pyexec "import threading
def run_in_thread(f, x):
    box = []
    t = threading.Thread(target=lambda: box.append(f(x)))
    t.start(); t.join()
    return box[0]")
  (fiveam:is (= 42 (pycall "run_in_thread" (lambda (x) (* 2 x)) 21)))
  (fiveam:is (equal "nested 8" (pycall "run_in_thread"
                                       (lambda (x) (format nil "nested ~A" (pycall "len" (make-string x))))
                                       8))
             "Lisp called from a Python thread calls Python again")
  (let ((c (handler-case (pycall "run_in_thread" (lambda (x) (error "boom ~A" x)) 1) (error (e) e))))
    (fiveam:is (typep c 'pyerror) "the thread's exception surfaces when the result is used: ~A" c)))

(fiveam:test a-thread-pool-maps-a-lisp-function
  ;; ECL 21: twice in three full runs of the suite (3.10, both times), a memory fault in this
  ;; test, never in a loop of it alone (3,000 pool maps on 8 workers) nor under gdb: an open
  ;; crash of Python-made threads calling Lisp on ECL under some earlier test state. Skipped
  ;; there, loudly, until it is found.
  #+ecl (skip-test "ECL: a rare memory fault of thread-pool workers calling Lisp is under ~
                    investigation (seen twice with Python 3.10 in full runs of this suite, never alone)")
  #-ecl
  (progn
    (pystart)
    (raw-pyexec "from concurrent.futures import ThreadPoolExecutor")
    (fiveam:is (equalp (coerce (loop for i below 40 collect (* i i)) 'vector)
                       (pycall "lambda f: list(ThreadPoolExecutor(4).map(f, range(40)))"
                               (lambda (x) (* x x)))))))

(fiveam:test a-thread-pool-prints-and-logs
  (pystart)
  (raw-pyexec "import logging, sys
from concurrent.futures import ThreadPoolExecutor
pool_log = logging.getLogger('py4cl2_cffi_pool_test')
pool_log.propagate = False
def pool_job(i):
    sys.stdout.write('job %d\\n' % i)   # one write: print's separate writes may interleave
    pool_log.warning('logged %d', i)
    return i")
  (let* ((err nil)
         (out (with-python-output
                (setf err (with-python-error-output
                            (pycall "lambda: pool_log.addHandler(logging.StreamHandler(sys.stderr))")
                            (pycall "lambda: list(ThreadPoolExecutor(3).map(pool_job, range(6)))")
                            (pycall "lambda: [pool_log.removeHandler(h) for h in list(pool_log.handlers)]"))))))
    (dotimes (i 6)
      (fiveam:is (search (format nil "job ~D~%" i) out) "stdout of the workers: ~S" out)
      (fiveam:is (search (format nil "logged ~D~%" i) err) "stderr of the workers: ~S" err))))

(fiveam:test racing-first-callbacks
  ;; Before: one-time set-up ran unlocked in __main__ (NameError: name '_m' is not defined).
  (pystop)
  (pystart)
  (pycall "sys.setswitchinterval" 1d-6)
  (unwind-protect
       (let ((threads (loop repeat 8
                            collect (bt:make-thread
                                     (lambda () (outcome (lambda () (pycall "lambda f: f()" (lambda () 1)))))))))
         (fiveam:is (every (lambda (r) (equal r '(:value 1))) (mapcar #'bt:join-thread threads))))
    (pycall "sys.setswitchinterval" 5d-3)))

(fiveam:test a-recursion-error-inside-a-callback-keeps-its-type
  ;; Before: "Python raised <unknown>:" (describing the error ran Python code at the limit).
  (pystart)
  (raw-pyexec "def rel_helper(n): return n + 1
def rel_walk(f, n):
    f(n)
    return rel_walk(f, n + 1)")
  (let ((c (handler-case (progn (pycall "rel_walk" (lambda (n) (pycall "rel_helper" n)) 0) nil)
             (pyerror (e) e))))
    (fiveam:is (typep c 'simple-pyerror))
    (when (typep c 'simple-pyerror)
      (fiveam:is (equal "RecursionError" (pyerror-type c)))
      (fiveam:is (search "recursion" (pyerror-message c))))))

(defun nest-callbacks (n)
  (if (zerop n) 0 (1+ (pycall "lambda f, n: f(n)" #'nest-callbacks (1- n)))))

(fiveam:test callbacks-nest-to-the-documented-depth
  ;; Before: ALIEN-STACK-EXHAUSTED at depth 201 (4 KB of alien stack per call).
  (pystart)
  (let ((limit (pycall "sys.getrecursionlimit")))
    (pycall "sys.setrecursionlimit" 10000)
    (unwind-protect
         (progn
           (fiveam:is (= 300 (nest-callbacks 300)) "300 levels")
           (let ((py4cl2-cffi::*max-callback-depth* 40))
             (let ((c (handler-case (progn (nest-callbacks 60) nil) (error (e) e))))
               (fiveam:is (typep c 'callback-depth-exceeded) "~A" c)
               (when (typep c 'callback-depth-exceeded)
                 (fiveam:is (= 41 (callback-depth-exceeded-depth c)))))
             (fiveam:is (= 39 (nest-callbacks 39))))
           (fiveam:is (= 10 (nest-callbacks 10)) "usable afterwards"))
      (pycall "sys.setrecursionlimit" limit))))

(fiveam:test exec-and-friends-work-from-lisp
  ;; Before: SystemError: frame does not exist (a call from Lisp has no Python frame).
  (pystart)
  (fiveam:is (eq +py-none+ (pycall "exec" "exec_test_value = 6 * 7")))
  (fiveam:is (= 42 (pyvalue "exec_test_value")))
  (fiveam:is (= 43 (pycall "eval" "exec_test_value + 1")))
  (fiveam:is (= 42 (pycall "lambda g: g['exec_test_value']" (with-remote-objects (pycall "globals")))))
  (fiveam:is (find "exec_test_value" (pycall "dir") :test #'equal))
  (let ((names (coerce (pycall "dir" (pyeval "type('X', (), {'a': 1})()")) 'list)))
    (fiveam:is (and (member "a" names :test #'equal) (member "__class__" names :test #'equal)
                    (not (member "exec_test_value" names :test #'equal)))
               "dir with an argument is the usual dir: ~S" names))
  (fiveam:is (eq +py-none+ (pycall "exec" "exec_test_private = 2" (make-hash-table :test 'equal))))
  (fiveam:signals pyerror (pyvalue "exec_test_private") "explicit globals are used when given"))

(fiveam:test a-timeout-interrupts-python-on-the-main-thread
  ;; Before: on the thread that gets the signals (the main thread) a timer or C-c waited until
  ;; the Python call ended.
  #-sbcl (skip-test "forwarding interrupts to Python needs SBCL")
  #+sbcl
  (if (not (eq sb-thread:*current-thread* (sb-thread:main-thread)))
      (skip-test "the suite does not run on the main thread here")
      (progn
        (pystart)
        (let* ((start (get-internal-real-time))
               (r (handler-case (sb-ext:with-timeout 0.5 (pycall "exec" "while True: pass") :finished)
                    (sb-ext:timeout () :timed-out))))
          (fiveam:is (eq :timed-out r))
          (fiveam:is (< (seconds-since start) 3) "within ~,2F s" (seconds-since start)))
        (fiveam:is (equal "still" (pycall "str" "still"))))))

(fiveam:test a-thread-storm
  ;; Python's workers print and call Lisp while Lisp threads call Python and the Lisp GC runs.
  (pystart)
  (raw-pyexec "from concurrent.futures import ThreadPoolExecutor
def storm(f, n):
    with ThreadPoolExecutor(6) as pool:
        return sum(pool.map(lambda i: (print('w', i), f(i))[1], range(n)))")
  (let* ((stop nil)
         (lisp-threads (loop for k below 8
                             collect (let ((k k))
                                       (bt:make-thread
                                        (lambda ()
                                          (loop for i from 0
                                                until stop
                                                always (equal (format nil "~D" (+ k i))
                                                              (pycall "str" (+ k i)))))))))
         (gc-thread (bt:make-thread (lambda () (loop until stop do (tg:gc :full t) (sleep 0.02)))))
         (start (get-internal-real-time))
         (total 0))
    (unwind-protect
         (with-python-output
           (dotimes (round 5)
             (incf total (pycall "storm" (lambda (i) (+ i (length (pycall "str" i)))) 200))))
      (setf stop t))
    (fiveam:is (every #'identity (mapcar #'bt:join-thread lisp-threads)) "the Lisp threads' calls were right")
    (bt:join-thread gc-thread)
    (fiveam:is (= total (* 5 (loop for i below 200 sum (+ i (length (format nil "~D" i)))))))
    (fiveam:is (< (seconds-since start) 60) "bounded: ~,1F s" (seconds-since start))))
