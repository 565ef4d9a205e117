;;;; Tests: restarting Python, another version in the same process, and the numpy pin (children).

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(fiveam:test restart-same-interpreter-repeatedly
  (dotimes (i 3)
    (pystop)
    (fiveam:is (not (python-alive-p)))
    (pystart)
    (fiveam:is (equal "ok" (pycall "str" "ok")))
    (fiveam:is (equal (format nil "x~%") (with-python-output (pycall "print" "x"))))))

;;; The versions to switch between: the host's pyenv set when all of it is there, else every
;;; venv found (inside the Debian sid root: 3.14 and 3.15).
(defun venv-versions ()
  "The X.Y of every venv with numpy under (VENV-ROOT), oldest first."
  (let ((names (loop for dir in (ignore-errors (uiop:subdirectories (venv-root)))
                     for name = (car (last (pathname-directory dir)))
                     when (and (stringp name) (venv name)) collect name)))
    (sort names #'< :key (lambda (xy) (parse-integer xy :start (1+ (position #\. xy)))))))

(defun needed-venvs (preferred minimum)
  "The venvs of the PREFERRED versions if all exist, else of every version found when there are
at least MINIMUM. Second value: the versions, or NIL and why not."
  (let ((versions (if (every #'venv preferred)
                      preferred
                      (let ((found (venv-versions)))
                        (and (>= (length found) minimum) found)))))
    (if versions
        (values (mapcar #'venv versions) versions)
        (values nil (format nil "no venv for Python ~{~A~^, ~} under ~A, nor ~D others (run tools/make-venvs.sh)"
                            (remove-if #'venv preferred) (venv-root) minimum)))))

(fiveam:test switch-versions-in-one-process
  (multiple-value-bind (venvs versions) (needed-venvs '("3.8" "3.12" "3.13" "3.10") 2)
    (if (null venvs)
        (skip-test "~A" versions)
        (multiple-value-bind (code output)
            (run-child "switch-versions.lisp" (format nil "P4T_SPECS=~{~A~^;~}" venvs))
          (fiveam:is (eql 0 code) "child exit code ~A:~%~A" code output)
          (fiveam:is (search "SWITCH-OK" output) "child output:~%~A" output)
          (dolist (xy versions)
            (fiveam:is (search (format nil "Python ~A." xy) output) "Python ~A did not run:~%~A" xy output))))))

(fiveam:test numpy-pins-libpython
  (multiple-value-bind (venvs versions) (needed-venvs '("3.12" "3.11") 2)
    (if (null venvs)
        (skip-test "~A" versions)
        ;; Pin the newest, then ask for the one before it.
        (let ((a (car (last venvs))) (b (car (last venvs 2))))
          (when (equal versions '("3.12" "3.11")) (setf a (first venvs) b (second venvs)))
          (multiple-value-bind (code output)
              (run-child "numpy-pin.lisp" (format nil "P4T_A=~A" a) (format nil "P4T_B=~A" b))
            (fiveam:is (eql 0 code) "child exit code ~A:~%~A" code output)
            (fiveam:is (search "PIN-OK" output) "child output:~%~A" output)
            (fiveam:is (search "refused:" output))
            (fiveam:is (search "fresh" output) "the refusal says a fresh process is needed:~%~A" output))))))

(fiveam:test loads-and-runs-on-ecl
  (let ((ecl (ignore-errors (string-trim '(#\Newline) (uiop:run-program '("sh" "-c" "command -v ecl") :output :string)))))
    (if (or (null ecl) (zerop (length ecl)))
        (skip-test "ECL is not installed (apt-get install ecl)")
        (let ((file (merge-pathnames "tests/scripts/ecl-load.lisp" (asdf:system-source-directory "py4cl2-cffi"))))
          (multiple-value-bind (code text) (run-program-with-env (list ecl "--norc" "--load" (namestring file)) '())
            (fiveam:is (eql 0 code) "ecl exit code ~A:~%~A" code (subseq text (max 0 (- (length text) 2000))))
            (fiveam:is (search "ECL-OK" text)))))))

(defun this-venv ()
  "The venv of the Python version the suite runs on, if made."
  (pystart)
  (let ((v (pyversion-info)))
    (venv (format nil "~D.~D" (first v) (second v)))))

(fiveam:test soft-stop-soak-with-numpy
  ;; 200 cycles of (import numpy, compute, pystop, pystart); the RSS growth is printed.
  (let ((venv (this-venv)))
    (if (null venv)
        (skip-test "no venv with numpy for this Python under ~A" (venv-root))
        (multiple-value-bind (code output)
            (run-child "soft-stop-soak.lisp" (format nil "P4T_A=~A" venv) "P4T_CYCLES=200"
                       "P4T_MAX_GROWTH_KB=16384")
          (format t "~&~A" (subseq output (or (search "soak:" output) 0)))
          (fiveam:is (eql 0 code) "child exit code ~A:~%~A" code output)
          (fiveam:is (search "SOAK-OK" output) "child output:~%~A" output)))))

(fiveam:test pystop-finalize-after-numpy
  (let ((venv (this-venv))
        (marker (format nil "/tmp/py4cl2-cffi-atexit-~36R" (random (expt 36 8) (make-random-state t)))))
    (if (null venv)
        (skip-test "no venv with numpy for this Python under ~A" (venv-root))
        (unwind-protect
             (multiple-value-bind (code output)
                 (run-child "finalize-stop.lisp" (format nil "P4T_A=~A" venv)
                            (format nil "P4T_ATEXIT=~A" marker))
               (fiveam:is (eql 0 code) "child exit code ~A:~%~A" code output)
               (fiveam:is (search "FINALIZE-OK" output) "child output:~%~A" output))
          (ignore-errors (delete-file marker))))))
