;;;; Child: (pystop :finalize t) after numpy finalizes anyway, warns, and leaves the process
;;;; pinned: on 3.8-3.13 the same interpreter starts again without numpy, on 3.14+ not at all.

(load (merge-pathnames "prelude.lisp" *load-truename*))
(in-package :py4cl2-cffi)

(let ((a (uiop:getenv "P4T_A")) (warned nil))
  (pystart :python a)
  (import-module "numpy" :as "np")
  (raw-pyexec "import atexit, os
atexit.register(lambda: open(os.environ['P4T_ATEXIT'], 'w').write('ran'))")
  (handler-bind ((warning (lambda (w) (setf warned (princ-to-string w)) (muffle-warning w))))
    (pystop :finalize t))
  (format t "warned: ~A~%" warned)
  (unless (search "finalized" warned) (error "no warning about the finalized pin"))
  (unless (probe-file (uiop:getenv "P4T_ATEXIT")) (error "atexit handlers did not run"))
  (format t "kind: ~A~%" (py4cl2-cffi/config::json-get (stop-report) "kind"))
  (let ((minor (parse-integer (subseq (py4cl2-cffi/config::json-get (py4cl2-cffi/config:python-facts a) "version") 2)
                              :junk-allowed t)))
    (if (>= minor 14)
        (let ((c (handler-case (progn (pystart :python a) nil) (python-pinned-error (e) e))))
          (unless c (error "3.~D started again after a pinned finalization" minor))
          (format t "refused: ~A~%" c))
        (progn
          (pystart :python a)
          (format t "restarted: ~A~%" (pycall "str" 12))
          (let ((c (handler-case (progn (import-module "numpy") nil) (pyerror (e) e))))
            (unless c (error "numpy was imported again after finalization"))
            (format t "numpy refused: ~A~%" (pyerror-type c)))
          (pystop)))))
(format t "FINALIZE-OK~%")
