;;;; py4cl2-cffi string benchmark, for SBCL and ECL:
;;;;   sbcl --script bench/lisp/strings.lisp
;;;;   ecl --norc --shell bench/lisp/strings.lisp
;;;; Strings cross the boundary as UTF-32, copied in one block into or out of the Lisp string.
;;;; Figures (best of 5 measurements, each of several runs, after one warm-up):
;;;;   1. a 1,000,000-character Python str -> Lisp, in M characters/s;
;;;;   2. a Python list of 100,000 short str (identifiers and sentences, like a module's names
;;;;      and docstrings) -> Lisp, in k strings/s;
;;;;   3. a 1,000,000-character Lisp string -> Python (pycall "len" s), in M characters/s;
;;;;   4. (defpymodule "json" t) and, when numpy is installed, (defpymodule "numpy" t):
;;;;      seconds, once each (the second is dominated by reading names, signatures and
;;;;      docstrings).
;;;; Each text has a non-Latin-1 character, so the Python side is a 4-byte-kind str.
;;;; Interpreter: the configured one, or PY4CL2_CFFI_PYTHON. Results: target/bench/strings-<lisp>-<X.Y>.csv
;;;; (M/s: M characters/s; k/s: k strings/s).

(load (merge-pathnames "load.lisp" *load-truename*))

(defpackage :py4cl2-cffi/bench-strings (:use :cl :py4cl2-cffi :py4cl2-cffi/bench-common))
(in-package :py4cl2-cffi/bench-strings)

(defparameter *repeat* 5)

(defmacro best-seconds (times &body body)
  "The best wall time of BODY, per run, over *REPEAT* measurements of TIMES runs each (enough
runs to outlast a clock that ticks in milliseconds), after one untimed run."
  `(progn ,@body
          (/ (loop repeat *repeat*
                   minimize (let ((t0 (now))) (loop repeat ,times do (progn ,@body)) (- (now) t0)))
             ,times)))

(defmacro once-seconds (&body body)
  "The wall time of BODY run once, its printed output discarded (the time of a terminal is not
the benchmark's)."
  `(let ((t0 (now)))
     (let ((*standard-output* (make-broadcast-stream))) ,@body)
     (- (now) t0)))

(defun check (label ok)
  (unless ok (format t "~&FAILED: ~A~%" label) (uiop:quit 1)))

(defun main ()
  (pystart)
  (format t "py4cl2-cffi string benchmark on Python ~{~A~^.~}, ~A ~A~%"
          (subseq (pyversion-info) 0 3) (lisp-implementation-type) (lisp-implementation-version))
  (raw-pyexec "_bench_long = ('abc\\u03bb' * 250000)
_bench_words = [('name_%d' % i) if i % 2 else ('A sentence for docstring %d \\u2014 with more words.' % i) for i in range(100000)]")
  (let* ((long-seconds (best-seconds 20 (pyeval "_bench_long")))
         (long (pyeval "_bench_long"))
         (words-seconds (best-seconds 3 (pyeval "_bench_words")))
         (words (pyeval "_bench_words"))
         (lisp-long (make-string 1000000 :initial-element (code-char #x3bb)))
         (to-python-seconds (best-seconds 50 (pycall "len" lisp-long))))
    (check "long string read" (and (= (length long) 1000000) (char= (char long 3) (code-char #x3bb))))
    (check "word list read" (and (= (length words) 100000) (string= (aref words 1) "name_1")))
    (check "Lisp string sent" (= (pycall "len" lisp-long) 1000000))
    (record "1,000,000-char str -> Lisp" "M/s" (/ 1d0 long-seconds))
    (record "list of 100,000 short str -> Lisp" "k/s" (/ 100d0 words-seconds))
    (record "1,000,000-char Lisp string -> Python" "M/s" (/ 1d0 to-python-seconds))
    (record "(defpymodule \"json\" t)" "s"
            (once-seconds (eval '(defpymodule "json" t :lisp-package "BENCH-JSON"))))
    (if (pyeval "__import__('importlib.util').util.find_spec('numpy') is not None")
        (record "(defpymodule \"numpy\" t)" "s"
                (once-seconds (eval '(defpymodule "numpy" t :lisp-package "BENCH-NP"))))
        (format t "~&(defpymodule \"numpy\" t): SKIPPED, numpy is not installed for this Python~%"))
    (write-results "strings")))

(compile-natively 'main)
(main)
(uiop:quit 0)
