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

(defun needed-venvs (&rest versions)
  (let ((missing (remove-if #'venv versions)))
    (if missing
        (values nil (format nil "no venv for Python ~{~A~^, ~} under ~A (run tools/make-venvs.sh)"
                            missing (venv-root)))
        (values (mapcar #'venv versions) nil))))

(fiveam:test switch-versions-in-one-process
  (multiple-value-bind (venvs why) (needed-venvs "3.8" "3.12" "3.13" "3.10")
    (if (null venvs)
        (skip-test "~A" why)
        (multiple-value-bind (code output)
            (run-child "switch-versions.lisp" (format nil "P4T_SPECS=~{~A~^;~}" venvs))
          (fiveam:is (eql 0 code) "child exit code ~A:~%~A" code output)
          (fiveam:is (search "SWITCH-OK" output) "child output:~%~A" output)
          (fiveam:is (search "Python 3.8" output))
          (fiveam:is (search "Python 3.13" output))))))

(fiveam:test numpy-pins-libpython
  (multiple-value-bind (venvs why) (needed-venvs "3.12" "3.11")
    (if (null venvs)
        (skip-test "~A" why)
        (multiple-value-bind (code output)
            (run-child "numpy-pin.lisp" (format nil "P4T_A=~A" (first venvs)) (format nil "P4T_B=~A" (second venvs)))
          (fiveam:is (eql 0 code) "child exit code ~A:~%~A" code output)
          (fiveam:is (search "PIN-OK" output) "child output:~%~A" output)
          (fiveam:is (search "refused:" output))
          (fiveam:is (search "fresh" output) "the refusal says a fresh process is needed:~%~A" output)))))

(fiveam:test loads-and-runs-on-ecl
  (let ((ecl (ignore-errors (string-trim '(#\Newline) (uiop:run-program '("sh" "-c" "command -v ecl") :output :string)))))
    (if (or (null ecl) (zerop (length ecl)))
        (skip-test "ECL is not installed (apt-get install ecl)")
        (let ((file (merge-pathnames "tests/scripts/ecl-load.lisp" (asdf:system-source-directory "py4cl2-cffi"))))
          (multiple-value-bind (code text) (run-program-with-env (list ecl "--norc" "--load" (namestring file)) '())
            (fiveam:is (eql 0 code) "ecl exit code ~A:~%~A" code (subseq text (max 0 (- (length text) 2000))))
            (fiveam:is (search "ECL-OK" text)))))))
