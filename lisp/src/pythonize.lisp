;;;; Lisp -> Python: packing values for the shim, making objects, and user pythonizers.

(in-package :py4cl2-cffi)

(defvar *pythonizers* nil
  "Each entry in the alist PYTHONIZERS maps from a lisp-type to a single-argument
PYTHON-FUNCTION-DESIGNATOR. This python function takes as input the \"default\" python objects
and is expected to appropriately convert it to the corresponding python object.")

(defmacro with-pythonizers ((&rest overriding-pythonizers) &body body)
  "Each entry of OVERRIDING-PYTHONIZERS is a two-element list (TYPE PYTHONIZER): TYPE is
unevaluated, PYTHONIZER is evaluated to a Python function designator (a name such as \"tuple\",
a wrapper...) applied to the default Python object of a Lisp value of TYPE. Returns the values
of BODY."
  `(let ((*pythonizers* (list* ,@(loop for (type fn) in overriding-pythonizers
                                       collect `(cons ',type ,fn))
                               *pythonizers*)))
     ,@body))

(defgeneric pythonize (lisp-value-or-object)
  (:documentation "Given a lisp object, return a CFFI:FOREIGN-POINTER pointing to the python
object corresponding to the given lisp object: a new (strong) reference, which the caller owns.
Define methods for your own classes; built-in types follow the type table (pythonize calls
for them are short-circuited on the hot path of PYCALL)."))

(defun lisp-name-to-python (symbol)
  "FOO-BAR -> \"foo_bar\": lower-cased, - to _."
  (substitute #\_ #\- (string-downcase (symbol-name symbol))))

(defconstant +max-fixnum-int64+ (1- (expt 2 63)))

(declaim (inline pack-int pack-float))
(defun pack-int (p i n)
  (setf (v-tag p i) +tag-int+ (v-aux p i) 0 (v-a p i) n))
(defun pack-float (p i x)
  (setf (v-tag p i) +tag-float+ (v-aux p i) 0 (v-a-double p i) x))

(defun pack-object (p i pointer)
  "Packs the new reference POINTER as an owned object (aux 1: released after the call)."
  (setf (v-tag p i) +tag-object+ (v-aux p i) 1 (v-a-pointer p i) pointer))

(defun pack-borrowed (p i pointer)
  (setf (v-tag p i) +tag-object+ (v-aux p i) 0 (v-a-pointer p i) pointer))

(defun pack-string (s p i arena used cap)
  "Packs string S: copied as UTF-32 into the ARENA when it fits (returns the new USED count),
else made into an object first."
  (declare (type fixnum used cap) (optimize speed))
  (let ((n (length s)))
    (declare (type fixnum n))
    (if (<= (+ used n) cap)
        (let ((dst (cffi:inc-pointer arena (* 4 used))))
          (typecase s
            ((simple-array character (*))
             #+sbcl (sb-sys:with-pinned-objects (s)
                      (sb-kernel:system-area-ub8-copy (sb-sys:vector-sap s) 0 dst 0 (* 4 n)))
             #-sbcl (dotimes (k n) (setf (cffi:mem-aref dst :uint32 k) (char-code (char s k)))))
            (t (dotimes (k n) (setf (cffi:mem-aref dst :uint32 k) (char-code (char s k))))))
          (setf (v-tag p i) +tag-str-utf32+ (v-aux p i) 0 (v-a-pointer p i) dst (v-b p i) n)
          (+ used n))
        (progn (pack-object p i (string-object s)) used))))

(defun string-object (s)
  "A new Python str with the text of S."
  (cffi:with-foreign-pointer (v +value-size+)
    #+sbcl
    (let ((s (if (typep s '(simple-array character (*))) s (coerce s '(simple-array character (*))))))
      (sb-sys:with-pinned-objects (s)
        (setf (v-tag v) +tag-str-utf32+ (v-a-pointer v) (sb-sys:vector-sap s) (v-b v) (length s))
        (check-pointer (%from-value v))))
    #-sbcl
    (with-utf8 (bytes len s)
      (setf (v-tag v) +tag-str-utf8+ (v-a-pointer v) bytes (v-b v) len)
      (check-pointer (%from-value v)))))

(defun pack-value (x p i arena used cap)
  "Writes the packed form of the Lisp value X into slot I of the value array P. Strings go to
ARENA (USED of CAP UTF-32 characters taken). Returns the new USED."
  (declare (type fixnum i used cap))
  (when *pythonizers*
    (loop for (type . fn) in *pythonizers*
          when (typep x type)
            do (pack-object p i (apply-pythonizer fn x))
               (return-from pack-value used)))
  (typecase x
    (fixnum (pack-int p i x))
    (double-float (pack-float p i x))
    (string (return-from pack-value (pack-string x p i arena used cap)))
    ((eql t) (setf (v-tag p i) +tag-bool+ (v-a p i) 1))
    (null (setf (v-tag p i) +tag-bool+ (v-a p i) 0))
    (single-float (pack-float p i (coerce x 'double-float)))
    (integer (if (<= (- +max-fixnum-int64+) x +max-fixnum-int64+)
                 (pack-int p i x)
                 (pack-object p i (bigint-object x))))
    (pyobject-wrapper (pack-borrowed p i (wrapper-live-pointer x)))
    (symbol (cond ((eq x +py-none+) (setf (v-tag p i) +tag-none+))
                  (t (pack-object p i (pythonize x)))))
    (character (return-from pack-value (pack-string (string x) p i arena used cap)))
    (complex (setf (v-tag p i) +tag-complex+
                          (v-a-double p i) (coerce (realpart x) 'double-float)
                          (v-b-double p i) (coerce (imagpart x) 'double-float)))
    (t (if (cffi:pointerp x)
           (pack-borrowed p i x)
           (pack-object p i (pythonize x)))))
  used)

(defun release-owned (p n)
  "Releases the objects packed as owned in the first N slots of P."
  (declare (type fixnum n))
  (dotimes (i n)
    (when (and (= (v-tag p i) +tag-object+) (= (v-aux p i) 1))
      (setf (v-aux p i) 0)
      (%decref (v-a-pointer p i)))))

(defun apply-pythonizer (fn x)
  "The new reference of FN (a Python function designator) applied to X's default object."
  (let* ((default (let ((*pythonizers* nil)) (pythonize x)))
         (result (unwind-protect
                      (let ((*remote-objects* t)) (pycall fn default))
                   (%decref default))))
    (let ((p (pyobject-wrapper-pointer result)))
      (%incref p)
      p)))

(defun bigint-object (n)
  (let ((text (format nil "~(~x~)" n)))
    (cffi:with-foreign-pointer (v +value-size+)
      (with-utf8 (bytes len text)
        (setf (v-tag v) +tag-int-hex+ (v-a-pointer v) bytes (v-b v) len)
        (check-pointer (%from-value v))))))

(defmacro with-packed-values ((p n) values &body body)
  "Packs the Lisp VALUES (a list) into foreign memory bound to P with N their count during BODY;
owned objects made for them are released afterwards."
  (let ((vals (gensym)) (chars (gensym)) (arena (gensym)) (used (gensym)) (i (gensym)) (v (gensym "V")))
    `(let* ((,vals ,values)
            (,n (length ,vals))
            (,chars (loop for ,v in ,vals when (stringp ,v) sum (length ,v))))
       (declare (ignorable ,n))
       (cffi:with-foreign-pointer (,p (+ (* (max 1 ,n) +value-size+) (* 4 (max 1 ,chars))))
         (let ((,arena (cffi:inc-pointer ,p (* (max 1 ,n) +value-size+)))
               (,used 0) (,i 0))
           (unwind-protect
                (progn
                  (dolist (,v ,vals)
                    (setf ,used (pack-value ,v ,p ,i ,arena ,used ,chars))
                    (incf ,i))
                  ,@body)
             (release-owned ,p ,i)))))))

(defun pythonize-default (x)
  "The new reference of the default Python object of the Lisp value X."
  (cffi:with-foreign-pointer (v (+ +value-size+ (* 4 (if (stringp x) (length x) 1))))
    (let ((*pythonizers* nil))
      (pack-value x v 0 (cffi:inc-pointer v +value-size+) 0 (if (stringp x) (length x) 0)))
    (if (and (= (v-tag v) +tag-object+) (= (v-aux v) 1))
        (v-a-pointer v)
        (check-pointer (%from-value v)))))

(defmethod pythonize ((x t))
  (if (cffi:pointerp x)
      (progn (%incref x) x)
      (error "py4cl2-cffi cannot pythonize ~S, a ~S: define a PYTHONIZE method for its class"
             x (type-of x))))

(defmethod pythonize ((x number)) (pythonize-default x))
(defmethod pythonize ((x character)) (pythonize-default x))

(defmethod pythonize ((x pyobject-wrapper))
  (let ((p (wrapper-live-pointer x))) (%incref p) p))

(defmethod pythonize ((x symbol))
  (cond ((eq x t) (pythonize-default t))
        ((null x) (pythonize-default nil))
        ((eq x +py-none+) (%incref (%none)) (%none))
        ((eq x +py-empty-tuple+) (check-pointer (%tuple-from (cffi:null-pointer) 0)))
        (t (string-object (lisp-name-to-python x)))))

(defmethod pythonize ((x ratio))
  (with-packed-values (p n) (list (numerator x) (denominator x))
    (call-helper-object "fraction" p n)))

(defmethod pythonize ((x list))
  (with-packed-values (p n) x
    (check-pointer (%tuple-from p n))))

(defmethod pythonize ((x vector))
  (if (stringp x)
      (pythonize-default x)
      (let ((type (array-element-type x)))
        (if (and (not (eq type t)) (subtypep type 'number))
            (array-object x)
            (with-packed-values (p n) (coerce x 'list)
              (check-pointer (%list-from p n)))))))

(defmethod pythonize ((x array))
  (let ((type (array-element-type x)))
    (if (and (not (eq type t)) (subtypep type 'number))
        (array-object x)
        (let ((pointer (array-object (let ((a (make-array (array-dimensions x))))
                                       (dotimes (i (array-total-size x) a)
                                         (setf (row-major-aref a i) (row-major-aref x i)))))))
          pointer))))

(defmethod pythonize ((x hash-table))
  (let ((keys '()) (vals '()))
    (maphash (lambda (k v) (push k keys) (push v vals)) x)
    (with-packed-values (kp n) keys
      (with-packed-values (vp m) vals
        (check-pointer (%dict-from kp vp n))))))

(defmethod pythonize ((x function))
  (function-object x))

;;; Arrays: numpy arrays copied from Lisp memory (a memoryview over the pinned data, then
;;; numpy.array(view) copies it). Without numpy: nested lists.
(defun array-format (type)
  (cond ((subtypep type 'double-float) "d")
        ((subtypep type 'single-float) "f")
        ((subtypep type '(signed-byte 8)) "b")
        ((subtypep type '(unsigned-byte 8)) "B")
        ((subtypep type '(signed-byte 16)) "h")
        ((subtypep type '(unsigned-byte 16)) "H")
        ((subtypep type '(signed-byte 32)) "i")
        ((subtypep type '(unsigned-byte 32)) "I")
        ((subtypep type '(signed-byte 64)) "q")
        ((subtypep type '(unsigned-byte 64)) "Q")
        (t nil)))

(defun array-object (x)
  "A new numpy array with the shape and contents of the Lisp array X (copied), or nested
Python lists when numpy is missing or the element type has no native format."
  (let ((format (array-format (array-element-type x))))
    (if (and format #+sbcl t #-sbcl nil (numpy-available-p))
        #+sbcl
        (let* ((storage (sb-ext:array-storage-vector x))
               (itemsize (ecase (char format 0) ((#\d #\q #\Q) 8) ((#\f #\i #\I) 4) ((#\h #\H) 2) ((#\b #\B) 1)))
               (dims (array-dimensions x)))
          (cffi:with-foreign-object (shape :int64 (max 1 (length dims)))
            (loop for d in dims for k from 0 do (setf (cffi:mem-aref shape :int64 k) d))
            (cffi:with-foreign-string (f format)
              (sb-sys:with-pinned-objects (storage)
                (let ((mv (check-pointer (%memoryview (sb-sys:vector-sap storage)
                                                      (* itemsize (array-total-size x))
                                                      f (length dims) shape 1))))
                  (unwind-protect
                       (cffi:with-foreign-pointer (v +value-size+)
                         (pack-borrowed v 0 mv)
                         (call-helper-object "array_copy" v 1))
                    (%decref mv)))))))
        #-sbcl nil
        (labels ((nest (dims offset)
                   (if (null dims)
                       (row-major-aref x offset)
                       (let ((stride (reduce #'* (rest dims))))
                         (coerce (loop for k below (first dims)
                                       collect (nest (rest dims) (+ offset (* k stride))))
                                 'simple-vector)))))
          (pythonize-default-t (nest (array-dimensions x) 0))))))

(defun pythonize-default-t (x)
  (pythonize x))
