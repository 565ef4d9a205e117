;;;; Child of tests/install/run.sh (SBCL or ECL): pystart :requires over the bare interpreter $P4T_PYTHON, in the mode $P4T_MODE (make, reuse, merge, fail, interrupt); prints KEY: value lines.

(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(asdf:initialize-source-registry
 `(:source-registry (:directory ,(merge-pathnames "../../lisp/" (make-pathname :name nil :type nil :defaults *load-truename*)))
                    :inherit-configuration))
(handler-bind ((warning #'muffle-warning))
  (let ((*standard-output* (make-broadcast-stream)))
    (asdf:load-system "py4cl2-cffi")))
(defun py (name &rest args) (apply #'uiop:symbol-call :py4cl2-cffi name args))
(let* ((python (uiop:getenv "P4T_PYTHON"))
       (mode (uiop:getenv "P4T_MODE"))
       (requires (if (equal mode "fail") '("six" "py4cl2-cffi-no-such-package-zzz") '("six")))
       (shown (make-string-output-stream))
       (start (get-internal-real-time)))
  (when (equal mode "merge")
    (py :require-python-packages "pip"))
  #+sbcl
  (when (equal mode "interrupt")
    ;; An interrupt (what C-c does) 1 s into the making: the installer is stopped, the
    ;; temporary folder removed, then the interrupt runs.
    (let ((main sb-thread:*current-thread*))
      (sb-thread:make-thread
       (lambda () (sleep 1) (sb-thread:interrupt-thread main (lambda () (throw 'interrupted t))))))
    (let ((start (get-internal-real-time))
          (thrown t))
      (catch 'interrupted
        (handler-case (progn (py :pystart :python python :requires '("six" "wheel"))
                             (setf thrown nil))
          (error (e) (format t "ERROR: ~A~%" e) (setf thrown nil))))
      (format t "~&INTERRUPTED: ~:[no~;yes~] after ~,1F s~%ALIVE: ~A~%" thrown
              (/ (- (get-internal-real-time) start) internal-time-units-per-second)
              (py :python-alive-p))
      (finish-output)
      (uiop:quit 0)))
  (handler-case
      (let ((*standard-output* (make-broadcast-stream *standard-output* shown)))
        (py :pystart :python python :requires requires)
        (format t "~&SECONDS: ~,3F~%" (/ (- (get-internal-real-time) start) internal-time-units-per-second))
        (format t "PREFIX: ~A~%" (py :pyeval "__import__('sys').prefix"))
        (format t "BASE: ~A~%" (py :pyeval "__import__('sys').base_prefix"))
        (format t "SIX: ~A~%" (py :pyeval "__import__('six').__file__"))
        (format t "MADE: ~:[no~;yes~]~%" (search "making a Python environment" (get-output-stream-string shown)))
        ;; What the environment was made for, as print-configuration shows it.
        (progv (list (find-symbol "*PYTHON-SPEC*" "PY4CL2-CFFI/CONFIG"))
            (list (py :pyeval "__import__('sys').prefix"))
          (uiop:symbol-call :py4cl2-cffi/config :print-configuration)))
    (error (e)
      (format t "~&ERROR-TYPE: ~A~%ERROR: ~A~%ALIVE: ~A~%" (type-of e)
              (substitute #\Space #\Newline (princ-to-string e)) (py :python-alive-p)))))
(finish-output)
(uiop:quit 0)
