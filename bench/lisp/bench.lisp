;;;; py4cl2-cffi benchmarks: `sbcl --script bench/lisp/bench.lisp` or
;;;; `ecl --norc --shell bench/lisp/bench.lisp` from the repository.
;;;; 1,000,000 x (pycall "str" i) and 100,000 x (pycall "math.sin" x), out of the box and inside
;;;; with-python-gil. The first ratio of each is to Python's plain loop doing the same work in the
;;;; same embedded interpreter, measured in this run (`for i in range(n): str(i)`; `math.sin(x)`
;;;; with x += 0.001); then to the loop that looks str up in the builtins dict each time, to the
;;;; loop with the callable bound once (as floor-bench times it), and to the Rust floor
;;;; (target/release/floor-bench: the same calls made from Rust through the shim's C ABI), when
;;;; that was built. str ratios are Python seconds / Lisp seconds (higher is better), math.sin
;;;; ratios Lisp seconds / Python seconds (lower is better), as the targets state them.
;;;; Interpreter: the configured one, or PY4CL2_CFFI_PYTHON. Every figure is the best of 5.
;;;; Results: target/bench/bench-<lisp>-<X.Y>.csv.

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
def _bench_str_plain(n):
    for i in range(n):
        str(i)
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

(defun main ()
  (pystart)
  (import-module "math")
  (define-python-loops)
  (format t "py4cl2-cffi benchmarks on Python ~{~A~^.~} (~A), ~A ~A~%"
          (subseq (pyversion-info) 0 3) (raw-pyeval "__import__('sys').executable")
          (lisp-implementation-type) (lisp-implementation-version))
  ;; Warm up (name cells, caches, page faults).
  (lisp-str-loop 100000) (lisp-sin-loop 10000)
  (let* ((plain-str (python-loop-seconds "_bench_str_plain" +str-n+))
         (plain-sin (python-loop-seconds "_bench_sin_loop" +sin-n+))
         (dict-str (python-loop-seconds "_bench_str_loop" +str-n+))
         (bound-str (python-loop-seconds "_bench_str_bound" +str-n+))
         (bound-sin (python-loop-seconds "_bench_sin_bound" +sin-n+))
         (str (best-seconds (lisp-str-loop +str-n+)))
         (sin (best-seconds (lisp-sin-loop +sin-n+)))
         (str-gil (best-seconds (with-python-gil (lisp-str-loop +str-n+))))
         (sin-gil (best-seconds (with-python-gil (lisp-sin-loop +sin-n+))))
         (floor (rust-floor)))
    (labels ((floor-seconds (key n)
             (let ((rate (cdr (assoc key floor :test #'string=))))
               (and rate (/ n rate))))
           (str-row (label seconds floor-key target)
             (let ((others (list (list "builtins-dict loop" dict-str (/ dict-str seconds))
                                 (list "bound loop" bound-str (/ bound-str seconds)))))
               (let ((f (floor-seconds floor-key +str-n+)))
                 (when f (setf others (append others (list (list "Rust floor" f (/ f seconds)))))))
               (record label "s" seconds :baseline-name "plain loop" :baseline-value plain-str
                                         :ratio (/ plain-str seconds) :target target :others others)))
           (sin-row (label seconds floor-key target)
             (let ((others (list (list "bound loop" bound-sin (/ seconds bound-sin)))))
               (let ((f (floor-seconds floor-key +sin-n+)))
                 (when f (setf others (append others (list (list "Rust floor" f (/ seconds f)))))))
               (record label "s" seconds :baseline-name "plain loop" :baseline-value plain-sin
                                         :ratio (/ seconds plain-sin) :target target :others others))))
      (format t "~&str ratios: Python seconds / Lisp seconds (higher is better); ~
                 math.sin ratios: Lisp seconds / Python seconds (lower is better)~%")
      (str-row "1M (pycall \"str\" i)" str "abi_str_per_call" '(:ratio >= 0.33))
      (sin-row "100k (pycall \"math.sin\" x)" sin "abi_sin_per_call" '(:ratio <= 3.5))
      (str-row "1M (pycall \"str\" i) in with-python-gil" str-gil "abi_str_held" nil)
      (sin-row "100k (pycall \"math.sin\" x) in with-python-gil" sin-gil "abi_sin_per_call" nil)
      (record "(pycall \"str\" i), one call" "us" (/ (* 1d6 str) +str-n+)
              :baseline-name "plain loop, one str(i)" :baseline-value (/ (* 1d6 plain-str) +str-n+)
              :ratio (/ str plain-str) :target '(:value <= 1))
      (unless floor (format t "floor: n/a (build it: cargo build -p py4cl2-cffi-bench --release)~%"))
      (write-results "bench"))))

(compile-natively 'lisp-str-loop 'lisp-sin-loop 'main)
(main)
(uiop:quit 0)
