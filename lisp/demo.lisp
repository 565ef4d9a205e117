;;;; A tour of py4cl2-cffi: `sbcl --script lisp/demo.lisp` starts Python from Lisp and uses it.

(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(asdf:initialize-source-registry
 `(:source-registry (:directory ,(make-pathname :name nil :type nil :defaults *load-truename*))
                    :inherit-configuration))
(handler-bind ((warning #'muffle-warning))
  (let ((*standard-output* (make-broadcast-stream)))
    (asdf:load-system "py4cl2-cffi")))

(defpackage :py4cl2-cffi/demo (:use :cl :py4cl2-cffi))
(in-package :py4cl2-cffi/demo)

(defmacro show (form)
  `(format t "~&~50S => ~S~%" ',form ,form))

(format t "~&;; Starting Python...~%")
(pystart)
(format t ";; Python ~{~A~^.~} from ~A~%~%" (subseq (pyversion-info) 0 3)
        py4cl2-cffi/config:*python-executable-path*)

(format t ";; Math~%")
(import-module "math")
(show (pycall "math.sqrt" 2))
(show (pycall "math.factorial" 30))
(show (pycall "pow" 2 100))
(show (pycall "fractions.Fraction" 3 12))
(show (pycall "complex" 1 2))

(format t "~%;; Strings~%")
(show (pymethod "hello {0}" "format" "world"))
(show (chain "hello {0}" (format "world") (capitalize)))
(show (pycall "len" "日本語 😀"))
(show (pymethod ", " "join" '("Lisp" "Python" "Rust")))

(format t "~%;; A dict, built in Python and read back as a hash table~%")
(let ((table (raw-pyeval "{'language': 'Python', 'year': 1991, 'typing': ['dynamic', 'strong']}")))
  (maphash (lambda (k v) (format t "  ~10A -> ~S~%" k v)) table))
(let ((h (make-hash-table :test 'equal)))
  (setf (gethash "lisp" h) 1958 (gethash "python" h) 1991)
  (show (pycall "sorted" (pymethod h "items"))))

(format t "~%;; Python output goes to Lisp streams~%")
(pycall "print" "printed by Python's print()")
(show (with-python-output (raw-pyexec "print('captured', 6 * 7)")))

(format t "~%;; A Python error, caught in Lisp~%")
(handler-case (pycall "int" "not a number")
  (pyerror (e)
    (format t "  caught a ~A: ~A~%" (pyerror-type e) (pyerror-message e))))
(handler-case (raw-pyeval "1/0")
  (pyerror (e)
    (format t "  the full report:~%~A~%" e)))
(show (pycall "int" "42"))

(format t "~%;; A Lisp function called from Python~%")
(show (pycall "list" (pycall "map" (lambda (x) (* x x)) '(1 2 3 4))))

(format t "~%;; numpy, if installed~%")
(if (handler-case (progn (import-module "numpy" :as "np") t) (pyerror () nil))
    (progn
      (show (pycall "np.arange" 6))
      (show (pycall "np.linalg.det" (make-array '(2 2) :element-type 'double-float
                                                       :initial-contents '((1d0 2d0) (3d0 4d0)))))
      (show (raw-pyeval "np.float64(1) / 0"))
      (show (pycall "np.mean" #(1 2 3 4))))
    (format t "  numpy is not installed for this Python; skipped~%"))

(handler-bind ((warning #'muffle-warning)) ; numpy keeps libpython loaded: expected here
  (pystop))
(format t "~%;; Python stopped. Done.~%")
