;;;; Python -> Lisp: decoding packed results, containers, numbers, arrays, and user lispifiers.

(in-package :py4cl2-cffi)

(defconstant +py-none+ '+py-none+
  "What Python's None lispifies to; pythonizes back to None.")
(defconstant +py-empty-tuple+ '+py-empty-tuple+
  "What Python's () lispifies to; pythonizes back to ().")

(defvar *lispifiers* nil
  "An alist of (TYPE . FUNCTION). After a Python value has been converted the usual way, a Lisp
result of TYPE is passed to FUNCTION and what it returns is used instead. Bind it with
WITH-LISPIFIERS.")

(defvar *remote-objects* nil
  "When non-NIL (inside WITH-REMOTE-OBJECTS), results stay in Python as PYOBJECT-WRAPPERs.")

(defmacro with-lispifiers ((&rest overriding-lispifiers) &body body)
  "Each entry of OVERRIDING-LISPIFIERS is a two-element list (TYPE LISPIFIER): TYPE is
unevaluated, LISPIFIER is evaluated to a function of one argument, the default-lispified object
of that TYPE, returning what the user wants instead. Applies at every level of nesting.
Returns the values of BODY."
  `(let ((*lispifiers* (list* ,@(loop for (type fn) in overriding-lispifiers
                                      collect `(cons ',type ,fn))
                              *lispifiers*)))
     ,@body))

(declaim (inline apply-lispifiers))
(defun apply-lispifiers (value)
  (if *lispifiers*
      (loop for (type . fn) in *lispifiers*
            when (typep value type) do (return (funcall fn value))
            finally (return value))
      value))

;;; Python type name -> lispifier of objects of that type (taking a borrowed pointer).
(defvar *type-lispifiers* (make-sync-table :test 'equal)
  "Python type name (\"fractions.Fraction\") -> function of a borrowed pointer returning a Lisp
value, for objects the shim does not convert itself.")

(defvar *type-cache* (make-sync-table)
  "Type object address -> lispifier function or :WRAP, for the running Python.")

(defmacro define-lispifier (name (pyobject-var) &body body)
  "Defines how objects of the Python type NAME (a string: its qualified name as
type(x).__module__ + '.' + type(x).__qualname__, e.g. \"fractions.Fraction\"; builtins without a
module) become Lisp values. BODY runs with PYOBJECT-VAR bound to a borrowed foreign pointer to
the object (valid during BODY; pass it to PYCALL, PYSLOT-VALUE...) and returns the Lisp value."
  `(progn
     (setf (gethash ,name *type-lispifiers*) (lambda (,pyobject-var) ,@body))
     (clrhash *type-cache*)
     ,name))

(defun type-lispifier (pointer)
  (let* ((type (%type-of pointer))
         (key (cffi:pointer-address type)))
    (or (gethash key *type-cache*)
        (setf (gethash key *type-cache*)
              (let ((name (foreign-utf8 (%type-name pointer))))
                (or (and name (gethash name *type-lispifiers*))
                    (and name (numpy-scalar-lispifier name))
                    :wrap))))))

(defun numpy-scalar-lispifier (name)
  (declare (notinline pycall)) ; compiled before PYCALL's compiler macro exists
  (when (and (> (length name) 6) (string= "numpy." name :end2 6))
    (let ((short (subseq name 6)))
      (cond ((member short '("float32" "float16") :test #'string=)
             (lambda (p) (coerce (pycall "float" p) 'single-float)))
            ((or (member short '("longdouble" "float128") :test #'string=))
             (lambda (p) (pycall "float" p)))
            ((or (string= short "int" :end1 (min 3 (length short)))
                 (string= short "uint" :end1 (min 4 (length short)))
                 (member short '("longlong" "ulonglong" "intc" "uintc" "short" "ushort" "byte" "ubyte")
                         :test #'string=))
             (lambda (p) (pycall "int" p)))
            ((member short '("bool" "bool_") :test #'string=)
             (lambda (p) (pycall "bool" p)))
            ((string= short "complex64")
             (lambda (p) (coerce (pycall "complex" p) '(complex single-float))))
            ((string= short "ndarray")
             #'ndarray-to-lisp)))))

(define-lispifier "fractions.Fraction" (o)
  (/ (pyslot-value o "numerator") (pyslot-value o "denominator")))

;;; Reading strings.
(declaim (inline scratch-string))
(defun scratch-string (scratch n)
  "A fresh Lisp string of the N UTF-32 characters at SCRATCH."
  (declare (type fixnum n) (optimize speed (safety 0)))
  (let ((s (make-string n)))
    (when (plusp n)
      (with-utf32-storage (p s)
        (copy-foreign-bytes scratch p (* 4 n))))
    s))

;;; Objects (new references) -> Lisp.
(defun take-object (pointer tag len)
  "Lispifies the object POINTER (a new reference, whose kind the shim put in TAG, with length
LEN for containers) and releases it unless it is kept in a wrapper."
  (declare (type fixnum tag len))
  (if *remote-objects*
      (wrap-new-reference pointer)
      (let ((keep nil))
        (unwind-protect
             (cond
               ((= tag +tag-str+) (str-object-to-lisp pointer))
               ((= tag +tag-tuple+) (if (zerop len) +py-empty-tuple+ (sequence-items pointer len)))
               ((= tag +tag-list+) (coerce (sequence-items pointer len) 'simple-vector))
               ((= tag +tag-dict+) (dict-items pointer len))
               ((= tag +tag-bigint+) (bigint-value pointer))
               ((= tag +tag-bytes+) (bytes-value pointer))
               (t (let ((fn (type-lispifier pointer)))
                    (if (eq fn :wrap)
                        (progn (setf keep t) (wrap-new-reference pointer))
                        (funcall fn pointer)))))
          (unless keep (%decref pointer))))))

(defmacro with-value-array ((var n) &body body)
  "Binds VAR to foreign room for N packed values during BODY."
  (let ((nn (gensym)))
    `(let ((,nn (max 1 ,n)))
       (cffi:with-foreign-pointer (,var (* ,nn +value-size+))
         ,@body))))

(defun decode-value (p i scratch)
  "The Lisp value of packed value I at P (taking ownership of any reference in it). SCRATCH is
the buffer strings with aux = 1 were copied to, or NIL."
  (declare (type fixnum i))
  (let ((tag (v-tag p i)))
    (apply-lispifiers
     (case tag
       (#.+tag-int+ (v-a p i))
       (#.+tag-float+ (v-a-double p i))
       (#.+tag-none+ +py-none+)
       (#.+tag-bool+ (/= 0 (v-a p i)))
       (#.+tag-complex+ (complex (v-a-double p i) (v-b-double p i)))
       (#.+tag-str+ (if (= 1 (v-aux p i))
                        (scratch-string scratch (v-b p i))
                        (take-object (v-a-pointer p i) tag (v-b p i))))
       (t (take-object (v-a-pointer p i) tag (v-b p i)))))))

(defun sequence-items (pointer len)
  "The items of the tuple/list/set POINTER (borrowed) as a Lisp list."
  (with-value-array (vals len)
    (let ((n (%items pointer vals len)))
      (when (< n 0) (signal-status n))
      (let ((i 0))
        (unwind-protect
             (loop while (< i n) collect (prog1 (decode-value vals i nil) (incf i)))
          ;; On a non-local exit, release what was not converted.
          (loop for j from i below n do (%release-value (cffi:inc-pointer vals (* j +value-size+)))))))))

(defun dict-items (pointer len)
  "The dict POINTER (borrowed) as an EQUAL hash table."
  (let ((table (make-hash-table :test 'equal :size (max 8 len))))
    (with-value-array (keys len)
      (with-value-array (vals len)
        (let ((n (%dict-items pointer keys vals len)))
          (when (< n 0) (signal-status n))
          (dotimes (i n)
            (let ((k (decode-value keys i nil)))
              (setf (gethash k table) (decode-value vals i nil)))))))
    table))

(defun bigint-value (pointer)
  (let ((s (check-pointer (%long-to-hex pointer))))
    (unwind-protect
         (let* ((text (str-object-to-lisp s))
                (neg (char= (char text 0) #\-))
                (digits (subseq text (if neg 3 2))))
           (let ((n (parse-integer digits :radix 16)))
             (if neg (- n) n)))
      (%decref s))))

(defun bytes-value (pointer)
  (cffi:with-foreign-object (len :int64)
    (let ((p (check-pointer (%bytes-data pointer len))))
      (let* ((n (cffi:mem-ref len :int64))
             (out (make-array n :element-type '(unsigned-byte 8))))
        (dotimes (i n out) (setf (aref out i) (cffi:mem-aref p :uint8 i)))))))

;;; numpy arrays -> Lisp arrays: NDARRAY-TO-LISP in arrays.lisp (the "numpy.ndarray" lispifier).

(defun lispify (object)
  "The default Lisp value of OBJECT, a PYOBJECT-WRAPPER or a foreign pointer to a Python object
(borrowed), converted as the type table says; other Lisp objects are returned as they are."
  (let ((pointer (typecase object
                   (pyobject-wrapper (wrapper-live-pointer object))
                   (t (if (cffi:pointerp object) object (return-from lispify object))))))
    (with-value-array (out 1)
      (check-status (%to-value pointer out (cffi:null-pointer) 0))
      (let ((*remote-objects* nil))
        (decode-value out 0 nil)))))
