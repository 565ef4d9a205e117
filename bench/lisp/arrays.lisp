;;;; py4cl2-cffi array benchmark: `sbcl --script bench/lisp/arrays.lisp` from the repository.
;;;; 1. numpy -> Lisp: a 10,000,000-element float64 array lispified (a fresh Lisp array filled by
;;;;    one memcpy), in GB/s and as a ratio to plain copies of the same 80 MB into fresh memory
;;;;    measured in this run: numpy's own a.copy() timed in Python, and a Lisp REPLACE between
;;;;    two fresh (simple-array double-float) vectors. Target: >= 50 % of memcpy. The Lisp
;;;;    figures are taken after an untimed nursery GC (the collector's work for the previous
;;;;    80 MB result is not array conversion); the back-to-back figure, GC included, is printed too.
;;;; 2. Lisp -> numpy: (pycall "numpy.sum" v) on a (simple-array double-float) of 10,000,000,
;;;;    as a ratio to numpy summing its own array (timeit in Python). Target: <= 1.05x (no copy).
;;;; Interpreter: the configured one, or PY4CL2_CFFI_PYTHON. Every figure is the best of 11.

(load (merge-pathnames "load.lisp" *load-truename*))

(defpackage :py4cl2-cffi/bench-arrays (:use :cl :py4cl2-cffi :py4cl2-cffi/bench-common))
(in-package :py4cl2-cffi/bench-arrays)

(defconstant +n+ 10000000)
(defparameter *repeat* 11)

(defvar *sink* nil "Keeps results alive.")

(defmacro best-seconds (&body body)
  "The best wall time of BODY over *REPEAT* runs, back to back (the collection of the previous
run's 80 MB, when the allocation triggers one, is inside the timing)."
  `(loop repeat *repeat*
         minimize (let ((t0 (now))) ,@body (- (now) t0))))

(defmacro best-seconds-after-gc (&body body)
  "The best wall time of BODY over *REPEAT* runs, each after an untimed nursery collection
(SB-EXT:GC) that drops the previous run's result: the cost of the copy and of the fresh
memory, without the collector's work for the garbage of earlier runs."
  `(loop repeat *repeat*
         minimize (progn (setf *sink* nil)
                         #+sbcl (sb-ext:gc) #-sbcl (si:gc t)
                         (let ((t0 (now))) ,@body (- (now) t0)))))

(defun lisp-replace-seconds ()
  "Best time to copy +N+ doubles between two fresh Lisp vectors (the destination made each time,
as lispifying makes one)."
  (let ((src (make-array +n+ :element-type 'double-float :initial-element 1d0)))
    (best-seconds-after-gc
      (let ((dst (make-array +n+ :element-type 'double-float)))
        (replace dst src)
        (setf *sink* dst)))))

(defun python-seconds (statement setup)
  (raw-pyeval (format nil "min(__import__('timeit').repeat(~S, setup=~S, globals=globals(), number=1, repeat=~D))"
                      statement setup *repeat*)))

(defun interleaved-sum-seconds (v)
  "(best seconds of (pycall \"numpy.sum\" V), best seconds of np.sum on numpy's own array of the
same size timed in Python, the same for numpy's array on small pages), measured alternately so
that machine noise hits all three."
  (let ((lisp most-positive-double-float) (numpy most-positive-double-float)
        (small most-positive-double-float))
    (dotimes (k (* 3 *repeat*) (list lisp numpy small))
      (setf lisp (min lisp (let ((t0 (now))) (setf *sink* (pycall "numpy.sum" v)) (- (now) t0))))
      (setf numpy (min numpy (raw-pyeval "__import__('timeit').timeit('np.sum(_bench_a)', globals=globals(), number=1)")))
      (setf small (min small (raw-pyeval "__import__('timeit').timeit('np.sum(_bench_b)', globals=globals(), number=1)"))))))

(defun make-small-page-array ()
  "_bench_b: numpy's own copy of _bench_a allocated without transparent huge pages (numpy
advises huge pages for big arrays on Linux; Lisp memory has none), or a plain copy when this
numpy has no switch for it."
  (raw-pyexec "
try:
    from numpy._core.multiarray import _set_madvise_hugepage as _bench_thp
except ImportError:
    try:
        from numpy.core.multiarray import _set_madvise_hugepage as _bench_thp
    except ImportError:
        _bench_thp = None
_bench_old = _bench_thp(False) if _bench_thp else None
_bench_b = _bench_a.copy()
if _bench_thp: _bench_thp(_bench_old)
"))

(defun gb/s (seconds) (/ (* 8 +n+) seconds 1d9))

(defun main ()
  (pystart)
  (import-module "numpy" :as "np")
  (format t "py4cl2-cffi array benchmarks on Python ~{~A~^.~} (~A), numpy ~A, ~A ~A~%"
          (subseq (pyversion-info) 0 3) (raw-pyeval "__import__('sys').executable")
          (raw-pyeval "np.__version__")
          (lisp-implementation-type) (lisp-implementation-version))
  (raw-pyexec "_bench_a = np.random.default_rng(1).random(10000000)")
  ;; Warm up.
  (setf *sink* (pyvalue "_bench_a"))
  (let* ((to-lisp (best-seconds-after-gc (setf *sink* (pyvalue "_bench_a"))))
         (lisp-replace (lisp-replace-seconds))
         (numpy-copy (python-seconds "_bench_a.copy()" "pass"))
         (to-lisp-with-gc (best-seconds (setf *sink* (pyvalue "_bench_a"))))
         (memcpy (min numpy-copy lisp-replace))
         (v (let ((v (make-array +n+ :element-type 'double-float)))
              (dotimes (i +n+ v) (setf (aref v i) (/ (mod i 1000) 1000d0)))))
         (default-nursery #+sbcl (floor (sb-ext:bytes-consed-between-gcs) (* 1024 1024)) #-sbcl "?")
         (sums (progn (make-small-page-array) (pycall "numpy.sum" v) (interleaved-sum-seconds v)))
         (lisp-sum (first sums))
         (numpy-sum (second sums))
         (numpy-sum-small (third sums))
         (lend-overhead (let ((small (make-array 8 :element-type 'double-float :initial-element 1d0))
                              (w (with-remote-objects (pycall "numpy.ones" 8))))
                          (- (/ (best-seconds (dotimes (i 10000) (pycall "numpy.sum" small))) 10000)
                             (/ (best-seconds (dotimes (i 10000) (pycall "numpy.sum" w))) 10000))))
         (to-lisp-tuned (progn
                          (setf *sink* nil)
                          #+sbcl (sb-ext:gc :full t)
                          #+sbcl (setf (sb-ext:bytes-consed-between-gcs) (* 192 1024 1024))
                          (best-seconds (setf *sink* (pyvalue "_bench_a")))))
         (lisp-replace-tuned (lisp-replace-seconds)))
    (format t "~&10,000,000 float64: numpy -> Lisp          ~8,4F s ~6,2F GB/s~%" to-lisp (gb/s to-lisp))
    (format t "  ... back to back, GC of the last 80 MB included ~8,4F s ~6,2F GB/s (nursery ~D MB)~%"
            to-lisp-with-gc (gb/s to-lisp-with-gc) default-nursery)
    (format t "  memcpy, numpy a.copy() (in Python)        ~8,4F s ~6,2F GB/s~%" numpy-copy (gb/s numpy-copy))
    (format t "  memcpy, Lisp REPLACE into a fresh vector  ~8,4F s ~6,2F GB/s~%" lisp-replace (gb/s lisp-replace))
    (format t "  numpy -> Lisp at ~D % of the faster memcpy (~D % of numpy's copy)~%"
            (round (* 100 (/ memcpy to-lisp))) (round (* 100 (/ numpy-copy to-lisp))))
    (format t "  with a 192 MB nursery (SB-EXT:BYTES-CONSED-BETWEEN-GCS), back to back: ~
               numpy -> Lisp ~8,4F s ~6,2F GB/s, Lisp REPLACE ~8,4F s ~6,2F GB/s: ~D % of the faster memcpy~%"
            to-lisp-tuned (gb/s to-lisp-tuned) lisp-replace-tuned (gb/s lisp-replace-tuned)
            (round (* 100 (/ (min numpy-copy lisp-replace-tuned) to-lisp-tuned))))
    (format t "~&10,000,000 float64: (pycall \"numpy.sum\" lisp-vector) ~8,4F s~%" lisp-sum)
    (format t "  np.sum(a) on numpy's own array (in Python)    ~8,4F s~%" numpy-sum)
    (format t "  np.sum on numpy's own array on small pages     ~8,4F s~%" numpy-sum-small)
    (format t "  ratio ~,3Fx numpy alone (~,3Fx numpy alone on small pages, as Lisp memory is); lending a Lisp array costs ~,1F us per call (8 elements, ~
               vs the same call on a numpy array)~%"
            (/ lisp-sum numpy-sum) (/ lisp-sum numpy-sum-small) (* 1d6 lend-overhead))
    (format t "~&targets: numpy -> Lisp >= 50 % of memcpy: ~:[MISSED~;met~] by default (~D %), ~
               ~:[MISSED~;met~] with a 192 MB nursery (~D %); ~
               Lisp -> numpy.sum <= 1.05x numpy alone: ~:[MISSED~;met~] (~,3Fx), ~
               ~:[MISSED~;met~] against numpy on small pages (~,3Fx)~%"
            (>= (/ memcpy to-lisp) 0.5) (round (* 100 (/ memcpy to-lisp)))
            (>= (/ (min numpy-copy lisp-replace-tuned) to-lisp-tuned) 0.5)
            (round (* 100 (/ (min numpy-copy lisp-replace-tuned) to-lisp-tuned)))
            (<= (/ lisp-sum numpy-sum) 1.05) (/ lisp-sum numpy-sum)
            (<= (/ lisp-sum numpy-sum-small) 1.05) (/ lisp-sum numpy-sum-small))))

(main)
