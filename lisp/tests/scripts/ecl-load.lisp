;;;; Child for ECL: load py4cl2-cffi, start Python, make two calls, stop; prints ECL-OK.

(require :asdf)
(asdf:initialize-source-registry
 `(:source-registry (:directory ,(merge-pathnames "../../" (make-pathname :name nil :type nil :defaults *load-truename*)))
                    :inherit-configuration))
(handler-case
    (handler-bind ((warning #'muffle-warning))
      (let ((*standard-output* (make-broadcast-stream)))
        (asdf:load-system "py4cl2-cffi")))
  (error (e) (format t "ECL-ERROR while loading: ~A~%" e) (ext:quit 1)))
(defun call (name &rest args) (apply #'uiop:symbol-call :py4cl2-cffi name args))
(handler-case
    (progn
      (call :pystart)
      (let ((s (call :pycall "str" 42)) (r (call :pycall "math.sqrt" 16)))
        (format t "str: ~S sqrt: ~S~%" s r)
        (unless (and (equal "42" s) (= r 4)) (error "wrong results")))
      (handler-bind ((warning #'muffle-warning)) (call :pystop))
      (format t "ECL-OK~%")
      (ext:quit 0))
  (error (e) (format t "ECL-ERROR: ~A~%" e) (ext:quit 1)))
