;;;; Runs the py4cl2-cffi fiveam suite: `sbcl --script lisp/run-tests.lisp` (from anywhere).
;;;; The interpreter is the configured one, or the spec in PY4CL2_CFFI_PYTHON. The last line is
;;;; `N passed, N failed[, N skipped]`; the exit code is 0 only when nothing failed.

(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(defun quit-with (code)
  "Exits the Lisp process with CODE, on SBCL and ECL alike."
  (finish-output)
  (uiop:quit code nil))
(asdf:initialize-source-registry
 `(:source-registry (:directory ,(make-pathname :name nil :type nil :defaults *load-truename*))
                    :inherit-configuration))
(setf *debugger-hook* (lambda (c h) (declare (ignore h))
                        (format t "~&ERROR outside the tests: ~A~%0 passed, 1 failed~%" c)
                        (quit-with 1)))
(handler-case
    (handler-bind ((warning #'muffle-warning))
      (let ((*standard-output* (make-broadcast-stream))
            (*error-output* (make-broadcast-stream)))
        (asdf:load-system "py4cl2-cffi/tests")))
  (error (c)
    (format t "~&ERROR while loading the systems: ~A~%0 passed, 1 failed~%" c)
    (quit-with 1)))
(format t "py4cl2-cffi tests: Python ~A (~A), shim ~A~%"
        py4cl2-cffi/config:*python-version* py4cl2-cffi/config:*python-executable-path*
        (py4cl2-cffi/config:shim-library-path))
(finish-output)
(let ((ok (uiop:symbol-call :py4cl2-cffi/tests :run-suite)))
  (quit-with (if ok 0 1)))
