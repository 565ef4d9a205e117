;;;; Shared start of the Lisp benchmarks: loads py4cl2-cffi from this repository (quietly),
;;;; defines the clock they use and the one result writer (RECORD prints a figure and keeps it;
;;;; WRITE-RESULTS writes the kept figures to target/bench/<script>-<lisp>-<X.Y>.csv).
;;;; Each benchmark script loads this file first.

(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(asdf:initialize-source-registry
 `(:source-registry
   (:directory ,(merge-pathnames "../../lisp/" (make-pathname :name nil :type nil
                                                              :defaults *load-truename*)))
   :inherit-configuration))
(handler-bind ((warning #'muffle-warning))
  (let ((*standard-output* (make-broadcast-stream)))
    (asdf:load-system "py4cl2-cffi")))

(defpackage :py4cl2-cffi/bench-common
  (:use :cl)
  (:export #:now #:record #:write-results #:repository-file #:lisp-name #:compile-natively))
(in-package :py4cl2-cffi/bench-common)

(defun now ()
  "Seconds, with microsecond resolution (SBCL) or the implementation's clock tick."
  #+sbcl (multiple-value-bind (s us) (sb-ext:get-time-of-day) (+ s (/ us 1d6)))
  #-sbcl (/ (get-internal-real-time) (float internal-time-units-per-second 1d0)))

(defun compile-natively (&rest names)
  "On ECL, compile the functions NAMES to native code (a script run by `ecl --shell` is
otherwise compiled to ECL's bytecodes, and the benchmark would time that interpreter as well
as py4cl2-cffi); quietly, with ECL's C compiler (gcc). Elsewhere (SBCL compiles every form it loads) nothing."
  #+ecl (handler-bind ((warning #'muffle-warning))
          (let ((*standard-output* (make-broadcast-stream))
                (*error-output* (make-broadcast-stream))
                (*compile-verbose* nil) (*compile-print* nil))
            (ext:install-c-compiler)
            (dolist (name names) (compile name))))
  #-ecl (progn names nil))

(defparameter *repository*
  (merge-pathnames "../../" (make-pathname :name nil :type nil :defaults *load-truename*))
  "The repository's folder, from where this file is.")

(defun repository-file (relative)
  "The pathname of RELATIVE (a string like \"target/bench/x.csv\") in the repository."
  (merge-pathnames relative *repository*))

(defun lisp-name ()
  "sbcl or ecl (the CSV's lisp column)."
  (string-downcase (lisp-implementation-type)))

(defvar *rows* '() "The figures RECORD kept, newest first.")

(defun python-name ()
  "X.Y of the running Python, or NIL when none runs."
  (ignore-errors (format nil "~{~A~^.~}" (subseq (py4cl2-cffi:pyversion-info) 0 2))))

(defun target-met (target value ratio)
  "T or NIL for TARGET, a list (:ratio >= 0.33) or (:value <= 250), or :none without one."
  (if (null target)
      :none
      (destructuring-bind (on op limit) target
        (let ((x (if (eq on :ratio) ratio value)))
          (and x (if (string= (symbol-name op) ">=") (>= x limit) (<= x limit)))))))

(defun record (benchmark unit value &key baseline-name baseline-value ratio target others python)
  "Print one figure and keep it for WRITE-RESULTS. BENCHMARK names it, UNIT says what VALUE is
in (\"us\", \"s\", \"M/s\" ...). BASELINE-NAME and BASELINE-VALUE (same unit) are what it is
compared with and RATIO the comparison, stated as the target states it. TARGET is a list
(:ratio >= 0.33) or (:value <= 250). OTHERS, a list of (name value ratio), are further baselines:
printed as later columns and kept as rows of their own, without a target. PYTHON (X.Y) defaults
to the running interpreter. Returns whether the target is met (:none without a target)."
  (let ((met (target-met target value ratio))
        (python (or python (python-name) "none")))
    (format t "~&~50A ~12,4F ~5A" benchmark value unit)
    (when baseline-name
      (format t " | ~7,3Fx ~A (~,4F)" ratio baseline-name baseline-value))
    (loop for (name v r) in others
          do (format t " | ~7,3Fx ~A (~,4F)" r name v))
    (unless (eq met :none)
      (format t " | target ~(~A~) ~A ~A: ~:[MISSED~;met~]"
              (first target) (second target) (third target) met))
    (terpri)
    (flet ((row (bname bvalue r target met)
             (push (list (lisp-name) python benchmark unit value bname bvalue r
                         (if target (format nil "~(~A~) ~A ~A" (first target) (second target) (third target)) "")
                         (case met ((:none) "") ((nil) "MISSED") (t "met")))
                   *rows*)))
      (row baseline-name baseline-value ratio target met)
      (loop for (name v r) in others do (row name v r nil :none)))
    met))

(defun csv-field (x)
  (typecase x
    (null "")
    (string (if (find-if (lambda (c) (find c '(#\, #\" #\Newline))) x)
                (with-output-to-string (s)
                  (write-char #\" s)
                  (loop for c across x do (when (char= c #\") (write-char #\" s)) (write-char c s))
                  (write-char #\" s))
                x))
    (real (let ((*read-default-float-format* 'double-float))
            (prin1-to-string (float x 1d0))))
    (t (princ-to-string x))))

(defun write-results (script &key python)
  "Write the figures RECORD kept to target/bench/SCRIPT-<lisp>-<X.Y>.csv (PYTHON, else the
running interpreter's X.Y, else that of the first figure) and return the pathname."
  (let* ((rows (reverse *rows*))
         (python (or python (python-name) (second (first rows)) "none"))
         (file (repository-file (format nil "target/bench/~A-~A-~A.csv" script (lisp-name) python))))
    (ensure-directories-exist file)
    (with-open-file (s file :direction :output :if-exists :supersede)
      (format s "lisp,python,benchmark,unit,value,baseline_name,baseline_value,ratio,target,met~%")
      (dolist (row rows)
        (format s "~{~A~^,~}~%" (mapcar #'csv-field row))))
    (format t "~&wrote ~A~%" (enough-namestring file *repository*))
    file))
