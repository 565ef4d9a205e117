;;;; Shared start of the child scripts: load ASDF and py4cl2-cffi quietly, exit 1 on any error.

(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(asdf:initialize-source-registry
 `(:source-registry (:directory ,(merge-pathnames "../../" (make-pathname :name nil :type nil :defaults *load-truename*)))
                    :inherit-configuration))
(setf *debugger-hook* (lambda (c h) (declare (ignore h))
                        (format t "~&CHILD-ERROR: ~A~%" c) (finish-output) (sb-ext:exit :code 1 :abort t)))
(handler-bind ((warning #'muffle-warning))
  (let ((*standard-output* (make-broadcast-stream)))
    (asdf:load-system "py4cl2-cffi")))
