;;;; pyobject-wrapper: a Python object held from Lisp, released by a finalizer through the decref queue.

(in-package :py4cl2-cffi)

(defvar *print-pyobject* t
  "If non-NIL, python's 'str' is called on the python-object before printing.")

(defvar *print-pyobject-wrapper-identity* t
  "If non-NIL, print's the lisp type and identity of the pyobject-wrapper.")

(defstruct (pyobject-wrapper (:constructor %make-pyobject-wrapper (pointer generation))
                             (:copier nil))
  "A wrapper around a pointer to a python object. It owns one reference, released (through the
shim's decref queue, never taking the GIL) when the wrapper is garbage collected."
  (pointer (cffi:null-pointer) :read-only t)
  (generation 0 :type (unsigned-byte 64) :read-only t))

(defun wrap-new-reference (pointer &optional (generation (%generation)))
  "Makes a PYOBJECT-WRAPPER owning the new reference POINTER; a finalizer queues its release."
  (let ((w (%make-pyobject-wrapper pointer generation))
        (address (cffi:pointer-address pointer)))
    (tg:finalize w (lambda () (%decref-later (cffi:make-pointer address) generation)))
    w))

(defun wrapper-live-pointer (wrapper)
  "The pointer of WRAPPER, after checking it belongs to the running Python."
  (unless (= (pyobject-wrapper-generation wrapper) (%generation))
    (error 'stale-pyobject-error
           :message (format nil "this Python object is from an earlier start of Python (it died with it)")))
  (pyobject-wrapper-pointer wrapper))

(defun pyobject-wrapper-eq (o1 o2)
  "Returns T if o1 and o2 are both pyobject-wrapper with the same pointer, or the same lisp
objects which are EQ to each other. Returns NIL in all other cases."
  (if (and (pyobject-wrapper-p o1) (pyobject-wrapper-p o2))
      (pyobject-wrapper-eq* o1 o2)
      (eq o1 o2)))

(defun pyobject-wrapper-eq* (o1 o2)
  "Like pyobject-wrapper-eq but assumes that o1 and o2 are pyobject-wrapper each."
  (cffi:pointer-eq (pyobject-wrapper-pointer o1) (pyobject-wrapper-pointer o2)))

(defun object-string (pointer fn)
  "str() or repr() (FN: %STR or %REPR) of the object at POINTER as a Lisp string, or NIL."
  (let ((s (funcall fn pointer)))
    (if (cffi:null-pointer-p s)
        (progn (%error-clear) nil)
        (unwind-protect (str-object-to-lisp s)
          (%decref s)))))

(defun str-object-to-lisp (pointer)
  "The text of the Python str at POINTER (borrowed) as a Lisp string."
  (let ((n (%str-utf32 pointer (cffi:null-pointer) 0)))
    (when (< n 0) (signal-status (if (= n -1) +pyerror+ +shim-error+)))
    (let ((out (make-string n)))
      (when (plusp n)
        #+sbcl
        (sb-sys:with-pinned-objects (out)
          (%str-utf32 pointer (sb-sys:vector-sap out) n))
        #-sbcl
        (cffi:with-foreign-object (buf :uint32 n)
          (%str-utf32 pointer buf n)
          (dotimes (i n) (setf (char out i) (code-char (cffi:mem-aref buf :uint32 i))))))
      out)))

(defmethod print-object ((o pyobject-wrapper) stream)
  (let* ((live (and (= (pyobject-wrapper-generation o) (%generation)) (= 1 (%is-started))))
         (text (cond ((not live) "<dead: from an earlier start of Python>")
                     (*print-pyobject* (object-string (pyobject-wrapper-pointer o) #'%str))
                     (t nil)))
         (type (and live (let ((p (%type-name (pyobject-wrapper-pointer o))))
                           (if (cffi:null-pointer-p p) "?" (foreign-utf8 p))))))
    (cond ((and *print-pyobject-wrapper-identity* (not *print-readably*))
           (print-unreadable-object (o stream :identity t)
             (format stream "PYOBJECT-WRAPPER :type ~A~@[~%  ~A~]" type text)))
          (text (write-string text stream))
          (t (print-unreadable-object (o stream :identity t)
               (format stream "PYOBJECT-WRAPPER ~A" type))))))
