;;;; Child (SBCL or ECL): with PY4CL2_CFFI_CONFIG naming a FIFO, loading, print-configuration and pystart must fail at once, not block.

(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(asdf:initialize-source-registry
 `(:source-registry (:directory ,(merge-pathnames "../../" (make-pathname :name nil :type nil :defaults *load-truename*)))
                    :inherit-configuration))
(handler-case
    (handler-bind ((warning (lambda (w)
                              (format t "LOAD-WARNING: ~A~%" (substitute #\Space #\Newline (princ-to-string w)))
                              (muffle-warning w))))
      (let ((*standard-output* (make-broadcast-stream)))
        (asdf:load-system "py4cl2-cffi")))
  (error (e) (format t "LOAD-ERROR: ~A~%" e) (uiop:quit 1)))
(flet ((one-line (c) (substitute #\Space #\Newline (princ-to-string c))))
  (handler-case (progn (py4cl2-cffi/config:print-configuration) (format t "PRINT-CONFIGURATION: no error~%"))
    (error (e) (format t "PRINT-CONFIGURATION: ~A~%" (one-line e))))
  (handler-case (progn (py4cl2-cffi:pystart) (format t "PYSTART: no error~%"))
    (error (e) (format t "PYSTART: ~A~%" (one-line e)))))
(format t "DONE~%")
(finish-output)
(uiop:quit 0)
