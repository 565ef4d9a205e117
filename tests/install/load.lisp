;;;; Child of tests/install/run.sh: a plain SBCL loads py4cl2-cffi from ~/common-lisp/ (ASDF's default place), starts Python, calls it; prints KEY: value lines.

(require :asdf)
(defun seconds-since (start) (/ (- (get-internal-real-time) start) internal-time-units-per-second))
;; The libraries it depends on first, timed apart: the rest is py4cl2-cffi's own share.
(let ((start (get-internal-real-time)))
  (asdf:load-systems "cffi" "alexandria" "trivial-garbage" "bordeaux-threads")
  (format t "~&DEPS-SECONDS: ~,3F~%" (seconds-since start)))
(let ((start (get-internal-real-time)))
  (asdf:load-system "py4cl2-cffi")
  (format t "~&LOAD-SECONDS: ~,3F~%" (seconds-since start)))
(format t "SHIM: ~A~%" (uiop:symbol-call :py4cl2-cffi/config :shim-library-path))
(format t "SYSTEM: ~A~%" (asdf:system-source-directory "py4cl2-cffi"))
(uiop:symbol-call :py4cl2-cffi :pystart)
(format t "SUM: ~A~%" (uiop:symbol-call :py4cl2-cffi :pycall "sum" #(1 2 3)))
(format t "PYTHON: ~A~%" (uiop:symbol-call :py4cl2-cffi :pyeval "__import__('sys').executable"))
(finish-output)
(uiop:quit 0)
