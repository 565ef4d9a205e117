;;;; py4cl2-cffi benchmarks: `sbcl --script bench/lisp/bench.lisp` from the repository.
;;;; Each Lisp figure is printed with its ratio to Python's own loop doing the same work in the
;;;; same embedded interpreter (measured in this run) and to the Rust floor (target/release/
;;;; floor-bench, the same calls made from Rust through the shim's C ABI), when that exists.
;;;; Interpreter: the configured one, or PY4CL2_CFFI_PYTHON. Every figure is the best of 5.

(load (merge-pathnames "load.lisp" *load-truename*))

(defpackage :py4cl2-cffi/bench (:use :cl :py4cl2-cffi :py4cl2-cffi/bench-common))
(in-package :py4cl2-cffi/bench)

(defconstant +str-n+ 1000000)
(defconstant +sin-n+ 100000)
(defparameter *repeat* 5)

(defmacro best-seconds (&body body)
  "The best wall time of BODY over *REPEAT* runs."
  `(loop repeat *repeat*
         minimize (let ((t0 (now))) ,@body (- (now) t0))))

;;; The benchmarked Lisp code: plain PYCALLs, out of the box.
(defun lisp-str-loop (n)
  (declare (fixnum n))
  (dotimes (i n) (pycall "str" i)))

(defun lisp-sin-loop (n)
  (declare (fixnum n))
  (let ((x 0d0))
    (declare (double-float x))
    (dotimes (i n) (pycall "math.sin" x) (incf x 0.001d0))))

;;; Python's own loops, inside the embedded interpreter.
(defun python-loop-seconds (name n)
  (raw-pyeval (format nil "min(__import__('timeit').repeat('~A(~D)', globals=globals(), number=1, repeat=~D))"
                      name n *repeat*)))

(defun define-python-loops ()
  (raw-pyexec "import math
def _bench_str_loop(n):
    for i in range(n):
        globals()['__builtins__'].__dict__['str'](i)
def _bench_sin_loop(n):
    x = 0.0
    for i in range(n):
        math.sin(x)
        x += 0.001
_bench_str_f = globals()['__builtins__'].__dict__['str']
def _bench_str_bound(n, f=_bench_str_f):
    for i in range(n):
        f(i)
def _bench_sin_bound(n, f=math.sin):
    for i in range(n):
        f(i)
"))

;;; The Rust floor.
(defun rust-floor ()
  "An alist (\"abi_str_per_call\" . calls/s) ... from floor-bench --json for the running Python,
or NIL when floor-bench was not built."
  (let ((exe (merge-pathnames "../../target/release/floor-bench" (make-pathname :name nil :type nil :defaults *load-truename*)))
        (python (raw-pyeval "__import__('sys').executable")))
    (when (probe-file exe)
      (let ((line (ignore-errors
                   (string-trim '(#\Newline #\Space)
                                (uiop:run-program (list (namestring exe) "--json" python)
                                                  :output :string :error-output nil)))))
        (when (and line (plusp (length line)))
          (ignore-errors (py4cl2-cffi/config::parse-json
                          (subseq line 0 (or (position #\Newline line) (length line))))))))))

(defun report (label n seconds python-seconds bound-seconds floor-rate)
  (let* ((rate (/ n seconds))
         (py-rate (/ n python-seconds))
         (bound-rate (/ n bound-seconds)))
    (format t "~&~40A ~8,4F s ~6,2F M/s | ~5,2Fx Python's loop (~,2F M/s) | ~5,2Fx bound loop (~,2F M/s) | floor: ~A~%"
            label seconds (/ rate 1d6) (/ rate py-rate) (/ py-rate 1d6)
            (/ rate bound-rate) (/ bound-rate 1d6)
            (if floor-rate
                (format nil "~5,2Fx Rust (~,2F M/s)" (/ rate floor-rate) (/ floor-rate 1d6))
                "n/a"))))

(defun main ()
  (pystart)
  (import-module "math")
  (define-python-loops)
  (format t "py4cl2-cffi benchmarks on Python ~{~A~^.~} (~A), ~A ~A~%"
          (subseq (pyversion-info) 0 3) (raw-pyeval "__import__('sys').executable")
          (lisp-implementation-type) (lisp-implementation-version))
  ;; Warm up (name cells, caches, page faults).
  (lisp-str-loop 100000) (lisp-sin-loop 10000)
  (let* ((py-str (python-loop-seconds "_bench_str_loop" +str-n+))
         (py-sin (python-loop-seconds "_bench_sin_loop" +sin-n+))
         (bound-str (python-loop-seconds "_bench_str_bound" +str-n+))
         (bound-sin (python-loop-seconds "_bench_sin_bound" +sin-n+))
         (str (best-seconds (lisp-str-loop +str-n+)))
         (sin (best-seconds (lisp-sin-loop +sin-n+)))
         (str-gil (best-seconds (with-python-gil (lisp-str-loop +str-n+))))
         (sin-gil (best-seconds (with-python-gil (lisp-sin-loop +sin-n+))))
         (floor (rust-floor))
         (floor-str (cdr (assoc "abi_str_per_call" floor :test #'string=)))
         (floor-str-held (cdr (assoc "abi_str_held" floor :test #'string=)))
         (floor-sin (cdr (assoc "abi_sin_per_call" floor :test #'string=))))
    (format t "~&Python's loop: `globals()['__builtins__'].__dict__['str'](i)` looked up each time; ~
               bound loop: the same callable bound once, `f(i)` (as floor-bench times it)~%")
    (report "1,000,000 x (pycall \"str\" i)" +str-n+ str py-str bound-str floor-str)
    (report "100,000 x (pycall \"math.sin\" x)" +sin-n+ sin py-sin bound-sin floor-sin)
    (report "... str in with-python-gil" +str-n+ str-gil py-str bound-str floor-str-held)
    (report "... math.sin in with-python-gil" +sin-n+ sin-gil py-sin bound-sin floor-sin)
    (format t "~&targets: str >= 0.40x Python's loop: ~:[MISSED~;met~] (~,2Fx; ~,2Fx the bound loop); ~
               100k math.sin <= 0.025 s: ~:[MISSED~;met~] (~,4F s)~%"
            (>= (/ py-str str) 0.4) (/ py-str str) (/ bound-str str) (<= sin 0.025) sin)
    (unless floor (format t "floor: n/a (build it: cargo build -p py4cl2-cffi-bench --release)~%"))))

(main)
