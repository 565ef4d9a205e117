;;;; Shared start of the Lisp benchmarks: loads py4cl2-cffi from this repository (quietly) and
;;;; defines the clock they use. Each benchmark script loads this file first.

(require :asdf)
(setf *compile-verbose* nil *load-verbose* nil)
(asdf:initialize-source-registry
 `(:source-registry
   (:directory ,(merge-pathnames "../../lisp/" (make-pathname :name nil :type nil
                                                              :defaults *load-truename*)))
   :inherit-configuration))
(handler-bind ((warning #'muffle-warning))
  (let ((*standard-output* (make-broadcast-stream)))
    (asdf:load-system "py4cl2-cffi")))

(defpackage :py4cl2-cffi/bench-common
  (:use :cl)
  (:export #:now))
(in-package :py4cl2-cffi/bench-common)

(defun now ()
  "Seconds, with microsecond resolution (SBCL) or the implementation's clock tick."
  #+sbcl (multiple-value-bind (s us) (sb-ext:get-time-of-day) (+ s (/ us 1d6)))
  #-sbcl (/ (get-internal-real-time) (float internal-time-units-per-second 1d0)))
