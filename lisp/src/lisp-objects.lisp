;;;; Lisp objects (structures, CLOS instances) seen from Python: python-getattr, python-setattr.

(in-package :py4cl2-cffi)

;;; A structure or CLOS instance given to Python becomes a py4cl2_cffi.LispObject: a proxy
;;; holding a Lisp callable (whose handle also names the object) and that handle. Attribute
;;; reads and writes call PYTHON-GETATTR / PYTHON-SETATTR; the proxy coming back to Lisp is the
;;; same (EQ) object. When Python drops the proxy, the handle and the object are forgotten.

(define-condition python-attribute-missing (error)
  ((object :initarg :object :reader python-attribute-missing-object)
   (name :initarg :name :reader python-attribute-missing-name))
  (:report (lambda (c s)
             (format s "~S has no slot for the Python attribute ~S"
                     (python-attribute-missing-object c) (python-attribute-missing-name c))))
  (:documentation "Signalled by the default PYTHON-GETATTR / PYTHON-SETATTR methods when the
object has no slot for the name; Python sees an AttributeError. Signal it from your own methods
for the same effect."))

(defgeneric python-getattr (object slot-name)
  (:documentation "Called when Python reads the attribute SLOT-NAME (a string, as Python spells
it) of the Lisp OBJECT; returns the Lisp value Python gets. The default methods (structures and
standard objects) return the slot whose name is SLOT-NAME lispified (foo_bar -> FOO-BAR, any
package), and signal PYTHON-ATTRIBUTE-MISSING (an AttributeError in Python) when there is none.
Specialise it for your classes."))

(defgeneric python-setattr (object slot-name value)
  (:documentation "Called when Python sets the attribute SLOT-NAME (a string) of the Lisp
OBJECT to VALUE (already a Lisp value). The default methods set the slot named by SLOT-NAME
lispified, or signal PYTHON-ATTRIBUTE-MISSING. Specialise it for your classes."))

(defun object-slot-names (object)
  "The slot names of OBJECT's class (NIL where the MOP is not reachable)."
  (ignore-errors
   (mapcar #+sbcl #'sb-mop:slot-definition-name #+ecl #'clos:slot-definition-name
           #-(or sbcl ecl) #'identity
           #+sbcl (sb-mop:class-slots (class-of object))
           #+ecl (clos:class-slots (class-of object))
           #-(or sbcl ecl) '())))

(defun find-slot-name (object slot-name)
  "The slot name symbol of OBJECT that the Python attribute SLOT-NAME means, or NIL."
  (let ((wanted (lispify-name slot-name))
        (names (object-slot-names object)))
    (or (find wanted names :key #'symbol-name :test #'string=)
        (find slot-name names :key #'symbol-name :test #'string-equal))))

(defun object-slot (object slot-name)
  (or (find-slot-name object slot-name)
      (error 'python-attribute-missing :object object :name slot-name)))

(defmethod python-getattr ((object structure-object) slot-name)
  (slot-value object (object-slot object slot-name)))
(defmethod python-getattr ((object standard-object) slot-name)
  (let ((slot (object-slot object slot-name)))
    (if (slot-boundp object slot)
        (slot-value object slot)
        (error 'python-attribute-missing :object object :name slot-name))))

(defmethod python-setattr ((object structure-object) slot-name value)
  (setf (slot-value object (object-slot object slot-name)) value))
(defmethod python-setattr ((object standard-object) slot-name value)
  (setf (slot-value object (object-slot object slot-name)) value))

(define-session-cache *lisp-object-class* (cons 0 nil)
  "(generation . new reference to py4cl2_cffi.LispObject).")

(defun lisp-object-class ()
  "The borrowed pointer of py4cl2_cffi.LispObject in the running Python (the class lives in the
helper module that the shim installs at start)."
  (python-start-if-not-alive)
  (let ((entry *lisp-object-class*)
        (generation (%generation)))
    (if (and (= (car entry) generation) (cdr entry))
        (cdr entry)
        (let ((class (lookup-object "_py4cl2_cffi.LispObject")))
          (setf *lisp-object-class* (cons generation class))
          class))))

(defun lisp-object-dispatch (object)
  "The Lisp function behind OBJECT's proxy: op 0 getattr, 1 setattr, 2 repr, 3 dir."
  (lambda (op &optional name value)
    (ecase op
      (0 (handler-case (list t (python-getattr object name))
           (python-attribute-missing (c) (list nil (princ-to-string c)))))
      (1 (handler-case (progn (python-setattr object name value) (list t nil))
           (python-attribute-missing (c) (list nil (princ-to-string c)))))
      (2 (let ((*print-readably* nil)) (prin1-to-string object)))
      (3 (coerce (mapcar #'lisp-name-to-python (object-slot-names object)) 'simple-vector)))))

(defun lisp-object-proxy (object)
  "A new reference to a py4cl2_cffi.LispObject standing for the Lisp OBJECT."
  (let ((class (lisp-object-class)))
    (multiple-value-bind (callable handle) (make-callable (lisp-object-dispatch object) "lisp_object")
      (setf (gethash handle *lisp-object-handles*) object)
      (unwind-protect
           (cffi:with-foreign-pointer (vals (* 2 +value-size+))
             (pack-borrowed vals 0 callable)
             (pack-int vals 1 handle)
             (with-result-frame (out scratch)
               (check-status (%call-packed class vals 2 (cffi:null-pointer) out scratch +scratch-chars+))
               (result-object out scratch)))
        (%decref callable)))))

;;; Generic functions are functions: callables, not proxies (ECL puts STANDARD-OBJECT before
;;; FUNCTION in their class precedence list).
(defmethod pythonize ((x generic-function)) (function-object x))
(defmethod pythonize ((x structure-object)) (lisp-object-proxy x))
(defmethod pythonize ((x standard-object)) (lisp-object-proxy x))
(defun refuse-to-pythonize (x)
  (error "py4cl2-cffi cannot pythonize ~S, a ~S: define a PYTHONIZE method for its class"
         x (type-of x)))
;;; Streams and conditions are structures or standard objects in some Lisps (SBCL, ECL); they
;;; are no data for Python and stay refused.
(defmethod pythonize ((x stream)) (refuse-to-pythonize x))
(defmethod pythonize ((x condition)) (refuse-to-pythonize x))

(define-lispifier "py4cl2_cffi.LispObject" (pointer)
  (let ((handle (pyslot-value pointer "_lisp_handle")))
    (multiple-value-bind (object found) (gethash handle *lisp-object-handles*)
      (if found
          object
          (error "py4cl2-cffi: the Lisp object of this py4cl2_cffi.LispObject is gone (handle ~D)"
                 handle)))))
