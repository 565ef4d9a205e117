;;;; Lisp objects (structures, CLOS instances) seen from Python: python-getattr, python-setattr.

(in-package :py4cl2-cffi)

;;; Lisp objects seen from Python (remote handles are completed with the callbacks work).
(defgeneric python-getattr (object slot-name)
  (:documentation "Called when python accesses an object's slot (getattr)"))

(defgeneric python-setattr (object slot-name value)
  (:documentation "Called when python sets an object's slot (setattr)"))
