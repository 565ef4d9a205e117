;;;; The test package, the suite, loud skips and the runner that prints `N passed, N failed`.

(defpackage :py4cl2-cffi/tests
  (:use :cl :py4cl2-cffi)
  (:export #:run-suite #:main))

(in-package :py4cl2-cffi/tests)

(fiveam:def-suite :py4cl2-cffi :description "py4cl2-cffi against a real Python.")
(fiveam:in-suite :py4cl2-cffi)

(defvar *skips* '() "(test-name . reason) for each loud skip.")

(defmacro skip-test (reason &rest args)
  "Skips the current test loudly: prints the reason and records it."
  `(let ((text (format nil ,reason ,@args))
         (name (ignore-errors (fiveam::name (symbol-value 'fiveam::current-test)))))
     (format t "~&SKIPPED ~A: ~A~%" name text)
     (push (cons name text) *skips*)
     (fiveam:skip "~A" text)))

(defun numpy-p ()
  "T if the running Python can import numpy."
  (python-start-if-not-alive)
  (py4cl2-cffi::numpy-available-p))

(defmacro with-numpy (&body body)
  `(if (numpy-p)
       (progn (import-module "numpy" :as "np") ,@body)
       (skip-test "numpy is not importable by ~A" py4cl2-cffi/config:*python-executable-path*)))

(defun repo-root ()
  (merge-pathnames "../" (asdf:system-source-directory "py4cl2-cffi")))

(defun venv-root ()
  (let ((env (uiop:getenv "PY4CL2_CFFI_VENVS")))
    (if (and env (plusp (length env)))
        (uiop:ensure-directory-pathname env)
        (merge-pathnames "py4cl2-cffi/venvs/"
                         (uiop:ensure-directory-pathname
                          (or (uiop:getenv "XDG_CACHE_HOME")
                              (merge-pathnames ".cache/" (user-homedir-pathname))))))))

(defun venv (xy)
  "The venv (with numpy) of Python XY made by tools/make-venvs.sh, or NIL."
  (let ((dir (merge-pathnames (format nil "~A/" xy) (venv-root))))
    (when (probe-file (merge-pathnames ".complete" dir))
      (namestring dir))))

(defun run-program-with-env (command env)
  "Runs COMMAND (a list of strings) with ENV (\"NAME=value\" strings) added to the environment,
through env(1) so it works on every Lisp. Returns the exit code and the output (stdout and
stderr together)."
  (multiple-value-bind (out err code)
      (uiop:run-program (list* "env" (append env command))
                        :output :string :error-output :output :ignore-error-status t)
    (declare (ignore err))
    (values code out)))

(defun run-child (script &rest env)
  "Runs lisp/tests/scripts/SCRIPT in a fresh SBCL with ENV (\"NAME=value\" strings) added.
Returns its exit code and its output."
  (let ((file (merge-pathnames (format nil "tests/scripts/~A" script)
                               (asdf:system-source-directory "py4cl2-cffi"))))
    (run-program-with-env (list "sbcl" "--script" (namestring file)) env)))

(defun result-test-name (result)
  (let ((tc (ignore-errors (fiveam::test-case result))))
    (if tc (fiveam::name tc) :unknown)))

(defvar *suites* '(:py4cl2-cffi-numpy :py4cl2-cffi)
  "The suites RUN-SUITE runs, in order (numpy first: once a test restarts Python, numpy cannot
be imported again).")

(defun run-suite ()
  "Runs the suite; prints each failure and, as the last line, `N passed, N failed, N skipped`.
Returns T if nothing failed."
  (setf *skips* '())
  (let* ((results (handler-bind ((warning (lambda (w)
                                            (when (search "stays loaded" (princ-to-string w))
                                              (muffle-warning w)))))
                    (let ((fiveam:*print-names* t))
                      (loop for suite in *suites* append (fiveam:run suite)))))
         (by-test (make-hash-table :test 'equal))
         (order '()))
    (dolist (r results)
      (let ((name (result-test-name r)))
        (unless (gethash name by-test) (push name order))
        (push r (gethash name by-test))))
    (let ((passed 0) (failed 0) (skipped 0))
      (dolist (name (reverse order))
        (let ((rs (gethash name by-test)))
          (cond ((some (lambda (r) (typep r 'fiveam::test-failure)) rs)
                 (incf failed)
                 (format t "~&FAILED ~A~%" name)
                 (dolist (r (reverse rs))
                   (when (typep r 'fiveam::test-failure)
                     (format t "  ~A~%" (string-right-trim '(#\Newline) (fiveam::reason r))))))
                ((some (lambda (r) (typep r 'fiveam::test-skipped)) rs)
                 (incf skipped))
                (t (incf passed)))))
      (when *skips*
        (format t "~&Skipped:~%")
        (dolist (s (reverse *skips*))
          (format t "  ~A: ~A~%" (car s) (cdr s))))
      (format t "~&~D passed, ~D failed~:[~;, ~D skipped~]~%" passed failed (plusp skipped) skipped)
      (finish-output)
      (zerop failed))))
