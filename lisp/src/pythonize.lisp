;;;; Lisp -> Python: packing values for the shim, making objects, and user pythonizers.

(in-package :py4cl2-cffi)

(defvar *pythonizers* nil
  "An alist of (TYPE . PYTHON-FUNCTION): a Lisp argument of TYPE is first converted the usual
way, then handed to PYTHON-FUNCTION (a name such as \"tuple\" or a wrapper) inside Python, and
its result is what the callee receives. Bind it with WITH-PYTHONIZERS.")

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
  (:documentation "Converts LISP-VALUE-OR-OBJECT to a Python object and returns a foreign
pointer to it: a new reference, owned by the caller.
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
        (let ((dst (offset-pointer arena (* 4 used))))
          (typecase s
            ((simple-array character (*))
             (when (plusp n)
               (with-utf32-storage (src s)
                 (copy-foreign-bytes src dst (* 4 n)))))
            (t (dotimes (k n) (setf (cffi:mem-aref dst :uint32 k) (char-code (char s k))))))
          (setf (v-tag p i) +tag-str-utf32+ (v-aux p i) 0 (v-a-pointer p i) dst (v-b p i) n)
          (+ used n))
        (progn (pack-object p i (string-object s)) used))))

(defun string-object (s)
  "A new Python str with the text of S."
  (cffi:with-foreign-pointer (v +value-size+)
    (let ((s (if (typep s '(simple-array character (*))) s (coerce s '(simple-array character (*))))))
      (with-utf32-storage (p s)
        (setf (v-tag v) +tag-str-utf32+ (v-a-pointer v) p (v-b v) (length s))
        (check-pointer (%from-value v))))))

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
    ;; Any other float (ECL's long-float): the nearest double.
    (float (pack-float p i (coerce x 'double-float)))
    (integer (if (<= (- +max-fixnum-int64+) x +max-fixnum-int64+)
                 (pack-int p i x)
                 (pack-object p i (bigint-object x))))
    (pyobject-wrapper (pack-borrowed p i (wrapper-live-pointer x)))
    (symbol (cond ((eq x +py-none+) (setf (v-tag p i) +tag-none+))
                  (t (pack-object p i (pythonize x)))))
    ;; A LispCharacter in Python (a str of length 1), which comes back as a character.
    (character (setf (v-tag p i) +tag-char+ (v-aux p i) 0 (v-a p i) (char-code x)))
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
  (declare (notinline pycall)) ; compiled before PYCALL's compiler macro exists
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
owned objects made for them are released afterwards, also when packing fails halfway (one
UNWIND-PROTECT, so nested conversions cost one frame per level)."
  (let ((vals (gensym)) (chars (gensym)) (arena (gensym)) (used (gensym)) (i (gensym)) (v (gensym "V")))
    `(let* ((,vals ,values)
            (,n (length ,vals))
            (,chars (loop for ,v in ,vals when (stringp ,v) sum (length ,v)))
            (,i 0)
            (,p (cffi:null-pointer)))
       (declare (ignorable ,n) (type fixnum ,n ,chars ,i))
       (unwind-protect
            (progn
              (setf ,p (cffi:foreign-alloc :uint8 :count (+ (* (max 1 ,n) +value-size+)
                                                           (* 4 (max 1 ,chars)))))
              (let ((,arena (offset-pointer ,p (* (max 1 ,n) +value-size+)))
                    (,used 0))
                (declare (type fixnum ,used))
                (dolist (,v ,vals)
                  (setf ,used (pack-value ,v ,p ,i ,arena ,used ,chars))
                  (incf ,i))
                ,@body))
         (unless (cffi:null-pointer-p ,p)
           (release-owned ,p ,i)
           (cffi:foreign-free ,p))))))

(defun pythonize-default (x)
  "The new reference of the default Python object of the Lisp value X."
  (cffi:with-foreign-pointer (v (+ +value-size+ (* 4 (if (stringp x) (length x) 1))))
    (let ((*pythonizers* nil))
      (pack-value x v 0 (offset-pointer v +value-size+) 0 (if (stringp x) (length x) 0)))
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
  (unless (list-length x)                 ; circular
    (let ((*conversion-depth* (1+ *conversion-depth*)))
      (conversion-depth-error :to-python :circular)))
  (with-conversion-level (:to-python)
    (with-packed-values (p n) x
      (check-pointer (%tuple-from p n)))))

(defun number-array-p (x)
  "T if the Lisp array X is specialized to a subtype of NUMBER."
  (let ((type (array-element-type x)))
    (and (not (eq type t)) (subtypep type 'number))))

(defmethod pythonize ((x vector))
  (cond ((stringp x) (pythonize-default x))
        ((number-array-p x) (array-object x))
        (t (with-conversion-level (:to-python)
             (with-packed-values (p n) (coerce x 'list)
               (check-pointer (%list-from p n)))))))

(defmethod pythonize ((x array))
  ;; Not a vector: rank 0 or at least 2.
  (cond ((number-array-p x) (array-object x))
        ((numpy-available-p) (object-array-object x))
        (t (nested-lists-object x))))

(defmethod pythonize ((x hash-table))
  ;; The dict gets the keys in the table's iteration order. Keys then values are packed in
  ;; one block.
  (let ((keys '()) (vals '()))
    (maphash (lambda (k v) (push k keys) (push v vals)) x)
    (let ((count (length keys)))
      (with-conversion-level (:to-python)
        (with-packed-values (p n) (nreconc keys (nreverse vals))
          (check-pointer (%dict-from p (offset-pointer p (* count +value-size+)) count)))))))

(defmethod pythonize ((x function))
  (function-object x))

;;; Arrays of numbers: ARRAY-OBJECT in arrays.lisp (numpy arrays over Lisp memory during a
;;; PYCALL, copies elsewhere; nested lists without numpy).
