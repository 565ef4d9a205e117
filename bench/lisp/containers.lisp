;;;; py4cl2-cffi container benchmarks, for SBCL and ECL:
;;;;   sbcl --script bench/lisp/containers.lisp
;;;;   ecl --norc --shell bench/lisp/containers.lisp
;;;; Python objects are made once in __main__ (raw-pyexec) and read with (pyvalue "name"), which
;;;; looks the name up and converts the object to a Lisp value; nothing is compiled per read.
;;;;   a. a 1000-entry {str: int} dict -> Lisp hash table, us per dict (target <= 250 us);
;;;;      Python baseline dict(d);
;;;;   b. a 1000-int list -> Lisp simple-vector, us (target <= 10 us); Python baseline list(l);
;;;;   c. a nested list of 100 lists of 100 short str ('name12') -> Lisp, and a flat list of
;;;;      10,000 int, in M elements/s; ratio nested / flat (target >= 0.5);
;;;;   d. 100,000 x (pycall "str.upper" s), s a 29-character Lisp string, us per call (target
;;;;      <= 0.3 us); Python baseline: its plain loop `for _ in range(n): str.upper(s)`;
;;;;   e. a 1,000,000-character ASCII str -> Lisp, M chars/s, against a memcpy-speed baseline in
;;;;      the same run: Lisp REPLACE of a 1,000,000-character string into a fresh string (the
;;;;      same copy and allocation a conversion does, done by the Lisp itself) (target >= 0.5);
;;;;      also against Python copying the same 4 MB of UTF-32 into a fresh bytearray (libc's
;;;;      memcpy and a fresh allocation: the other honest memcpy-speed figure);
;;;;   f. 1000 x (pycall "len" v), v a 1000-element simple-vector of fixnums (becomes a list):
;;;;      us per call; Python baseline list(range(1000)) (making the same 1000 int and list);
;;;;   g. numpy.ones(10_000_000) -> Lisp (pycall "numpy.ones" ...), seconds; baseline
;;;;      numpy.ones alone timed in Python. Skipped, saying why, without numpy.
;;;; Every figure is the best of 5 measurements after a warm-up. Ratios to Python are Lisp time
;;;; / Python time (lower is better). Results: target/bench/containers-<lisp>-<X.Y>.csv.
;;;; Interpreter: the configured one, or PY4CL2_CFFI_PYTHON.

(load (merge-pathnames "load.lisp" *load-truename*))

(defpackage :py4cl2-cffi/bench-containers (:use :cl :py4cl2-cffi :py4cl2-cffi/bench-common))
(in-package :py4cl2-cffi/bench-containers)

(defparameter *repeat* 5)
(defvar *sink* nil "Keeps results alive.")

(defmacro best-seconds (times &body body)
  "The best wall time of BODY, per run, over *REPEAT* measurements of TIMES runs each, after
one untimed measurement."
  `(flet ((measure ()
            (let ((t0 (now))) (loop repeat ,times do (setf *sink* (progn ,@body))) (- (now) t0))))
     (measure)
     (/ (loop repeat *repeat* minimize (measure)) ,times)))

(defun python-seconds (statement times)
  "The best time of one run of STATEMENT in __main__, timed by Python's timeit."
  (/ (raw-pyeval (format nil "min(__import__('timeit').repeat(~S, globals=globals(), number=~D, repeat=~D))"
                         statement times *repeat*))
     times))

(defun gc-now ()
  #+sbcl (sb-ext:gc) #+ecl (si:gc t) #-(or sbcl ecl) nil)

(defun check (label ok)
  (unless ok (format t "~&FAILED: ~A~%" label) (uiop:quit 1)))

(defun main ()
  (pystart)
  (format t "py4cl2-cffi container benchmarks on Python ~{~A~^.~} (~A), ~A ~A~%"
          (subseq (pyversion-info) 0 3) (raw-pyeval "__import__('sys').executable")
          (lisp-implementation-type) (lisp-implementation-version))
  (raw-pyexec "_c_dict = {'name%d' % i: i for i in range(1000)}
_c_list = list(range(1000))
_c_nested = [['name%d' % (i * 100 + j) for j in range(100)] for i in range(100)]
_c_flat = list(range(10000))
_c_s29 = 'the quick brown fox jumps ove'
_c_long = ('The quick brown fox jumps over the lazy dog. ' * 22223)[:1000000]")
  (format t "Ratios to Python: Lisp time / Python time (lower is better)~%")
  ;; a. dict -> hash table
  (let ((d (pyvalue "_c_dict")))
    (check "dict read" (and (hash-table-p d) (= (hash-table-count d) 1000)
                            (eql (gethash "name999" d) 999))))
  (let ((lisp (best-seconds 200 (pyvalue "_c_dict")))
        (python (python-seconds "dict(_c_dict)" 200)))
    (record "1000-entry {str: int} dict -> hash table" "us" (* 1d6 lisp)
            :baseline-name "Python dict(d)" :baseline-value (* 1d6 python) :ratio (/ lisp python)
            :target '(:value <= 250)))
  ;; b. list of int -> simple-vector
  (let ((l (pyvalue "_c_list")))
    (check "list read" (and (simple-vector-p l) (= (length l) 1000) (eql (svref l 999) 999))))
  (let ((lisp (best-seconds 2000 (pyvalue "_c_list")))
        (python (python-seconds "list(_c_list)" 2000)))
    (record "1000-int list -> simple-vector" "us" (* 1d6 lisp)
            :baseline-name "Python list(l)" :baseline-value (* 1d6 python) :ratio (/ lisp python)
            :target '(:value <= 10)))
  ;; c. nested list of short str against a flat list of int
  (let ((n (pyvalue "_c_nested")))
    (check "nested read" (and (= (length n) 100) (string= (svref (svref n 1) 2) "name102"))))
  (let* ((nested (best-seconds 50 (pyvalue "_c_nested")))
         (flat (best-seconds 200 (pyvalue "_c_flat")))
         (nested-rate (/ 1d4 nested 1d6))
         (flat-rate (/ 1d4 flat 1d6)))
    (record "100 x 100 str list -> Lisp" "M/s" nested-rate
            :baseline-name "flat 10,000-int list" :baseline-value flat-rate
            :ratio (/ nested-rate flat-rate) :target '(:ratio >= 0.5)))
  ;; d. str.upper round trip
  (let ((s (pyvalue "_c_s29")) (n 100000))
    (check "str.upper" (and (= (length s) 29) (string= (pycall "str.upper" s) (string-upcase s))))
    (pycall "str.upper" s)
    (let ((lisp (/ (best-seconds 1 (dotimes (i n) (pycall "str.upper" s))) n))
          (python (/ (raw-pyeval (format nil "min(__import__('timeit').repeat('for _ in range(~D): str.upper(s)', setup='s = _c_s29', globals=globals(), number=1, repeat=~D))"
                                         n *repeat*))
                     n)))
      (record "(pycall \"str.upper\" <29 chars>)" "us" (* 1d6 lisp)
              :baseline-name "Python loop str.upper(s)" :baseline-value (* 1d6 python)
              :ratio (/ lisp python) :target '(:value <= 0.3))))
  ;; e. 1M-char str -> Lisp against a Lisp copy of the same size
  (let ((long (pyvalue "_c_long")))
    (check "long str read" (and (= (length long) 1000000) (char= (char long 4) #\q)))
    (let* ((lisp (best-seconds 20 (pyvalue "_c_long")))
           (source (make-string 1000000 :initial-element #\x))
           (copy (best-seconds 20 (replace (make-string 1000000) source)))
           (bytes (progn (raw-pyexec "_c_long32 = _c_long.encode('utf-32-le')")
                         (python-seconds "bytearray(_c_long32)" 20))))
      (record "1,000,000-char ASCII str -> Lisp" "M/s" (/ 1d0 lisp)
              :baseline-name "Lisp REPLACE into a fresh string" :baseline-value (/ 1d0 copy)
              :ratio (/ copy lisp) :target '(:ratio >= 0.5)
              :others (list (list "Python bytearray(4 MB) copy" (/ 1d0 bytes) (/ bytes lisp))))))
  ;; f. a simple-vector argument
  (let ((v (let ((v (make-array 1000))) (dotimes (i 1000 v) (setf (svref v i) i)))))
    (check "len of a vector" (= (pycall "len" v) 1000))
    (let ((lisp (/ (best-seconds 1 (dotimes (i 1000) (pycall "len" v))) 1000))
          (python (python-seconds "list(range(1000))" 2000)))
      (record "(pycall \"len\" <1000-element simple-vector>)" "us" (* 1d6 lisp)
              :baseline-name "Python list(range(1000))" :baseline-value (* 1d6 python)
              :ratio (/ lisp python))))
  ;; g. numpy
  (if (not (raw-pyeval "__import__('importlib.util').util.find_spec('numpy') is not None"))
      (format t "~&SKIPPED numpy.ones(10_000_000) -> Lisp: numpy is not installed for this Python~%")
      (progn
        (import-module "numpy")
        (let ((a (pycall "numpy.ones" 10000000)))
          (check "numpy read" (and (= (length a) 10000000) (= (aref a 9999999) 1d0))))
        (let ((lisp (loop repeat *repeat*
                          minimize (progn (setf *sink* nil) (gc-now)
                                          (let ((t0 (now)))
                                            (setf *sink* (pycall "numpy.ones" 10000000))
                                            (- (now) t0)))))
              (python (python-seconds "numpy.ones(10_000_000)" 1)))
          (setf *sink* nil)
          (record "numpy.ones(10_000_000) -> Lisp" "s" lisp
                  :baseline-name "numpy.ones alone" :baseline-value python :ratio (/ lisp python)))))
  (write-results "containers"))

(compile-natively 'main)
(main)
(uiop:quit 0)
