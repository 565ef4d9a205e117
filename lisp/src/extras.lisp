;;;; The None and empty-tuple pointers, and the pygc switches kept for compatibility.

(in-package :py4cl2-cffi)

;;; Pointers of None and ().
(defun none-pointer () (python-start-if-not-alive) (%none))

(define-session-cache *empty-tuple* (cons -1 nil))
(defun empty-tuple-pointer ()
  (python-start-if-not-alive)
  (let ((g (%generation)))
    (if (eql (car *empty-tuple*) g)
        (cdr *empty-tuple*)
        (cdr (setf *empty-tuple* (cons g (check-pointer (%tuple-from (cffi:null-pointer) 0))))))))

(define-symbol-macro +py-none-pointer+ (none-pointer))
(define-symbol-macro +py-empty-tuple-pointer+ (empty-tuple-pointer))

;;; Garbage collection: finalizers and the shim's decref queue already release references, at
;;; no cost to calls; these keep their documented meaning for code written for the original.
(defvar *pygc-threshold* 1000
  "Kept so that code written for the original library still compiles; it changes nothing here,
because each wrapper's reference is released by its finalizer through the shim's queue.")

(defmacro with-pygc (&body body)
  "Compatibility form: runs BODY like PROGN. References Python objects hold for Lisp are given
back by finalizers through the decref queue at any time, so there is nothing to batch."
  `(progn ,@body))

(defmacro enable-pygc ()
  "Compatibility: reference release is always on. Returns NIL."
  nil)

(defmacro disable-pygc ()
  "Compatibility: reference release is always on (finalizers queue decrefs). Returns NIL."
  nil)

;;; Documentation of accessors and symbol macros defined without a docstring place.
(setf (documentation '+py-none-pointer+ 'variable)
      "A foreign pointer to Python's None (borrowed; valid until Python stops)."
      (documentation '+py-empty-tuple-pointer+ 'variable)
      "A foreign pointer to an empty Python tuple (valid until Python stops)."
      (documentation 'pyobject-wrapper-p 'function)
      "T if OBJECT is a PYOBJECT-WRAPPER."
      (documentation 'pyobject-wrapper-pointer 'function)
      "The foreign pointer of a PYOBJECT-WRAPPER (borrowed: valid while the wrapper lives)."
      (documentation 'pyerror-message 'function)
      "str() of the Python exception of a PYERROR."
      (documentation 'pyerror-traceback 'function)
      "The formatted Python traceback of a PYERROR, ending with the `Type: message` line."
      (documentation 'pyerror-type 'function)
      "The qualified type name of the Python exception of a SIMPLE-PYERROR (\"ValueError\")."
      (documentation 'shim-error-message 'function)
      "The shim's text explaining a SHIM-ERROR."
      (documentation 'py4cl2-cffi/config:shim-not-found-searched 'function)
      "The places SHIM-NOT-FOUND looked at, with why each failed.")
