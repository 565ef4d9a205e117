;;;; Child: saves an executable SBCL image with py4cl2-cffi loaded (P4T_IMAGE, P4T_MODE =
;;;; running | stopped | single-threaded); the image's toplevel checks that Python starts again.

(load (merge-pathnames "prelude.lisp" *load-truename*))
(in-package :py4cl2-cffi)

(defvar *mode* (uiop:getenv "P4T_MODE"))
(defvar *kept* nil "A wrapper made before the save: dead in the image.")

(when (string= *mode* "single-threaded")
  (handler-bind ((warning #'muffle-warning))
    (let ((*standard-output* (make-broadcast-stream)))
      (asdf:load-system "py4cl2-cffi/single-threaded"))))

(defun image-work (x)
  "Calls through every cache: a constant-name cell, keyword names, a method name, a dotted
lookup, chain*, None's pointer, pyfor's end marker, pyeval's numpy floats."
  (list (pycall "str" x) (pycall "math.sqrt" 16) (pycall "sum" '(1 2 3) :start x)
        (pymethod "a,b" "split" ",") (chain* "ab" '(upper))
        (cffi:pointerp +py-none-pointer+) (pyvalue "sys.version_info.major")
        (iterate:iter (iterate:for v pyfor (list x 7)) (iterate:collect v))
        (pyeval 1.5)))

(defun check-work (x)
  (let ((w (image-work x)))
    (unless (equalp w (list (princ-to-string x) 4.0d0 (+ 6 x) #("a" "b") "AB" t 3 (list x 7) 1.5))
      (error "wrong results ~S" w))
    w))

(format t "before the save (~A): ~S~%" *mode* (check-work 1))
(setf *kept* (pycall "object"))
(when (string= *mode* "stopped")
  (pystop))

(defun image-main ()
  (handler-case
      (progn
        (format t "restored: python alive ~A~%" (python-alive-p))
        (format t "work: ~S~%" (check-work 2))
        (handler-case (progn (pycall "repr" *kept*)
                             (error "a wrapper from the saving process was still usable"))
          (stale-pyobject-error () (format t "old wrapper: stale, as it should be~%")))
        (setf *kept* nil)
        (tg:gc :full t)
        (check-work 3)
        (when (string= *mode* "single-threaded")
          (let* ((thread-ident (bt:join-thread (bt:make-thread (lambda () (pycall "threading.get_ident")))))
                 (main-ident (pycall "threading.get_ident")))
            (unless (eql thread-ident main-ident)
              (error "calls ran on two Python threads: ~A ~A" thread-ident main-ident))
            (format t "single-threaded: one Python thread ~A~%" main-ident)))
        (format t "IMAGE-OK Python ~{~A~^.~}~%" (subseq (pyversion-info) 0 3))
        (finish-output)
        (sb-ext:exit :code 0 :abort t))
    (serious-condition (c)
      (format t "IMAGE-ERROR: ~A~%" c)
      (finish-output)
      (sb-ext:exit :code 1 :abort t))))

(sb-ext:save-lisp-and-die (uiop:getenv "P4T_IMAGE") :executable t :toplevel #'image-main)
