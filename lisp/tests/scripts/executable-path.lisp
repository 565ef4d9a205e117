;;;; Child (SBCL or ECL): the original's venv recipe — set *python-executable-path* ($P4T_PYTHON) after loading py4cl2-cffi/config and before loading py4cl2-cffi; pystart must start that interpreter.

(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(asdf:initialize-source-registry
 `(:source-registry (:directory ,(merge-pathnames "../../" (make-pathname :name nil :type nil :defaults *load-truename*)))
                    :inherit-configuration))
(handler-case
    (progn
      (handler-bind ((warning #'muffle-warning))
        (let ((*standard-output* (make-broadcast-stream)))
          (asdf:load-system "py4cl2-cffi/config")))
      (setf (symbol-value (find-symbol "*PYTHON-EXECUTABLE-PATH*" "PY4CL2-CFFI/CONFIG"))
            (uiop:getenv "P4T_PYTHON"))
      (handler-bind ((warning #'muffle-warning))
        (let ((*standard-output* (make-broadcast-stream)))
          (asdf:load-system "py4cl2-cffi")))
      (uiop:symbol-call :py4cl2-cffi/config :print-configuration)
      (uiop:symbol-call :py4cl2-cffi :pystart)
      (format t "PREFIX: ~A~%" (uiop:symbol-call :py4cl2-cffi :pyeval "__import__('sys').prefix"))
      (finish-output)
      (uiop:quit 0))
  (error (e) (format t "CHILD-ERROR: ~A~%" e) (finish-output) (uiop:quit 1)))
