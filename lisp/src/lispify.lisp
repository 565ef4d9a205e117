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

(define-session-cache *type-cache* (make-sync-table)
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
(defun scratch-string (p i scratch)
  "The string of packed value I at P, which the shim copied into SCRATCH (aux 1): its A is the
character offset there, its B the length."
  (declare (type fixnum i) (optimize speed (safety 0)))
  (utf32-to-string (offset-pointer scratch (* 4 (the value-index (v-a p i)))) (v-b p i)))

;;; How deep nested data may be. Both directions recurse on the Lisp stack, one level per
;;; container. Running out of stack where foreign code runs (malloc, the shim) cannot be
;;; recovered from, and on ECL overflowing the frame stack (2048 frames per thread) jumps to
;;; the top level; so the conversion stops first, with a condition: at *MAX-CONVERSION-DEPTH*
;;; levels, or earlier when the thread's stack is nearly used up (SBCL: less than 256 KB of
;;; control stack left; ECL: more than 1900 frames in use). Each level costs one frame.
(defvar *max-conversion-depth* 1000
  "How deeply nested a value may be when it is converted between Lisp and Python: tuples,
lists, dicts and object arrays one way; lists, vectors, hash tables and arrays of element type
T the other; each container is one level. A deeper (or circular) value signals
CONVERSION-DEPTH-EXCEEDED instead of exhausting the stack. Python's own recursion limit (1000)
stops most of its code at a similar depth. A level takes about 0.5 KB of Lisp stack and one
frame; whatever this says, a conversion also stops when the thread's stack is nearly used up.")

(defvar *conversion-depth* 0
  "How many containers the conversion running in this thread is inside.")
(declaim (type fixnum *conversion-depth*))

(define-condition conversion-depth-exceeded (error)
  ((depth :initarg :depth :reader conversion-depth-exceeded-depth)
   (limit :initarg :limit :reader conversion-depth-exceeded-limit)
   (direction :initarg :direction :reader conversion-depth-exceeded-direction)
   (reason :initarg :reason :initform :depth :reader conversion-depth-exceeded-reason
           :documentation "Why: :DEPTH (beyond the limit), :CIRCULAR or :STACK (the thread's
stack nearly used up below the limit)."))
  (:report (lambda (c s)
             (let ((depth (conversion-depth-exceeded-depth c))
                   (limit (conversion-depth-exceeded-limit c))
                   (to-lisp (eq (conversion-depth-exceeded-direction c) :to-lisp)))
               (ecase (conversion-depth-exceeded-reason c)
                 (:depth
                  (format s "A value nested ~D levels deep was being converted ~
                             ~:[from Lisp to Python~;from Python to Lisp~]: beyond ~
                             PY4CL2-CFFI:*MAX-CONVERSION-DEPTH* (~D). "
                          depth to-lisp limit))
                 (:circular
                  (format s "A circular list (at nesting level ~D) was being converted from ~
                             Lisp to Python. " depth))
                 ;; Below the limit: the stack ran low, most often through recursion (Lisp
                 ;; functions that Python calls calling Python again), not the value itself.
                 (:stack
                  (format s "This thread's stack was nearly used up when a value (at nesting ~
                             level ~D) was being converted ~:[from Lisp to Python~;from Python ~
                             to Lisp~]: deep recursion through Python and Lisp, or deeply ~
                             nested data. "
                          depth to-lisp)))
               (format s "Nothing was converted; the ~:[Lisp value~;Python object~] is left ~
                          as it was. Bind *MAX-CONVERSION-DEPTH* higher for deeper data, or keep ~
                          the object in Python (WITH-REMOTE-OBJECTS)."
                       to-lisp))))
  (:documentation "Signalled when a value to convert (either way) is nested deeper than
*MAX-CONVERSION-DEPTH* (LIMIT), is circular, or would exhaust the thread's stack; DEPTH is the
level reached, DIRECTION :TO-LISP or :TO-PYTHON. What was converted so far is released; the
source value is unchanged."))

(setf (documentation 'conversion-depth-exceeded-depth 'function)
      "The nesting level a CONVERSION-DEPTH-EXCEEDED was signalled at."
      (documentation 'conversion-depth-exceeded-limit 'function)
      "The *MAX-CONVERSION-DEPTH* in effect when a CONVERSION-DEPTH-EXCEEDED was signalled."
      (documentation 'conversion-depth-exceeded-direction 'function)
      "Which way the conversion went: :TO-LISP or :TO-PYTHON."
      (documentation 'conversion-depth-exceeded-reason 'function)
      "Why the conversion stopped: :DEPTH (nested beyond the limit), :CIRCULAR (a circular list)
or :STACK (the thread's stack was nearly used up first, usually by deep recursion through Lisp
functions that Python calls).")

(declaim (inline stack-nearly-exhausted-p))
(defun stack-nearly-exhausted-p ()
  "T when the running thread has little stack left for one more level of conversion."
  #+#.(cl:if (cl:and (cl:member :sbcl cl:*features*) (cl:or (cl:member :x86-64 cl:*features*)
                                                            (cl:member :arm64 cl:*features*))
                     (cl:find-symbol "CURRENT-THREAD-OFFSET-SAP" "SB-VM")
                     (cl:find-symbol "THREAD-CONTROL-STACK-START-SLOT" "SB-VM"))
             '(:and) '(:or))
  (< (- (sb-sys:sap-int (sb-kernel:current-sp))
        (sb-sys:sap-int (sb-vm::current-thread-offset-sap sb-vm::thread-control-stack-start-slot)))
     262144)
  #+ecl (> (the fixnum (si::frs-top)) 1900)
  #-(or sbcl ecl) nil)

(defun conversion-depth-error (direction &optional (reason :depth))
  (error 'conversion-depth-exceeded :depth *conversion-depth* :limit *max-conversion-depth*
                                    :direction direction :reason reason))

(defmacro with-conversion-level ((direction) &body body)
  "Runs BODY, the conversion of one container in DIRECTION (:TO-LISP or :TO-PYTHON), one level
deeper; signals CONVERSION-DEPTH-EXCEEDED beyond *MAX-CONVERSION-DEPTH* or when the stack is
nearly used up. Establishes no frame (it binds a special variable)."
  `(let ((*conversion-depth* (1+ *conversion-depth*)))
     (cond ((> *conversion-depth* (the fixnum *max-conversion-depth*))
            (conversion-depth-error ,direction :depth))
           ((stack-nearly-exhausted-p)
            (conversion-depth-error ,direction :stack)))
     ,@body))

;;; Objects (new references) -> Lisp.
(defun take-object (pointer tag len)
  "Lispifies the object POINTER (a new reference, whose kind the shim put in TAG, with length
LEN for containers) and releases it unless it is kept in a wrapper."
  (declare (type fixnum tag len))
  (cond
    (*remote-objects* (wrap-new-reference pointer))
    ((or (= tag +tag-list+) (= tag +tag-dict+) (and (= tag +tag-tuple+) (plusp len)))
     (container-value pointer tag len))
    (t
     (let ((keep nil))
       (unwind-protect
            (cond
              ((= tag +tag-str+) (str-object-to-lisp pointer))
              ((= tag +tag-tuple+) +py-empty-tuple+)
              ((= tag +tag-bigint+) (bigint-value pointer))
              ((= tag +tag-bytes+) (bytes-value pointer))
              (t (let ((fn (type-lispifier pointer)))
                   (if (eq fn :wrap)
                       (progn (setf keep t) (wrap-new-reference pointer))
                       (funcall fn pointer)))))
         (unless keep (%decref pointer)))))))

(defmacro with-value-array ((var n) &body body)
  "Binds VAR to foreign room for N packed values during BODY."
  (let ((nn (gensym)))
    `(let ((,nn (max 1 ,n)))
       (cffi:with-foreign-pointer (,var (* ,nn +value-size+))
         ,@body))))

(defun decode-value (p i scratch)
  "The Lisp value of packed value I at P (taking ownership of any reference in it). SCRATCH is
the buffer strings with aux = 1 were copied to (each at its offset), or NIL."
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
                        (scratch-string p i scratch)
                        (take-object (v-a-pointer p i) tag (v-b p i))))
       (#.+tag-char+ (code-char (v-a p i)))
       (t (take-object (v-a-pointer p i) tag (v-b p i)))))))

(declaim (inline decode-item))
(defun decode-item (p i scratch)
  "DECODE-VALUE for the items of a container: ints, floats and strings copied into SCRATCH are
decoded in line when no lispifier is in effect (the common case of bulk data)."
  (declare (type fixnum i) (optimize speed))
  (if *lispifiers*
      (decode-value p i scratch)
      (let ((tag (v-tag p i)))
        (declare (type fixnum tag))
        (cond ((= tag +tag-int+) (v-a p i))
              ((= tag +tag-float+) (v-a-double p i))
              ((and (= tag +tag-str+) (= 1 (v-aux p i)))
               (scratch-string p i scratch))
              (t (decode-value p i scratch))))))

(defun release-values (vals start end)
  "Releases what the packed values START below END at VALS own (values not decoded)."
  (declare (type fixnum start end))
  (loop for j from start below end
        do (%release-value (offset-pointer vals (* j +value-size+)))))

;;; Partial conversions. Each packed value owns a reference until it is decoded, and decoding
;;; takes that ownership over from the moment it starts (DECODE-VALUE releases or keeps what it
;;; got, even when a lispifier then signals). So the count of values DONE goes up BEFORE a
;;; value is decoded, and a non-local exit releases exactly the values at DONE and after:
;;; none twice, none leaked. One UNWIND-PROTECT covers a whole container (the items, the
;;; foreign array and the container's own reference): one frame per level of nesting.
(defconstant +container-scratch-chars+ 24
  "UTF-32 characters of scratch room per item when a container is converted: its strings are
copied there, all in the one crossing that converts the items, while they fit.")

(defconstant +max-container-scratch-chars+ (* 1024 1024)
  "The most scratch room (characters) one container's conversion takes: strings beyond it come
as objects, one crossing each.")

(defun container-value (pointer tag len)
  "The Lisp value of the tuple, list or dict POINTER (a new reference, released here) of
length LEN: a list, a simple-vector or an EQUAL hash table (filled in the dict's order). The
items come in one crossing, strings among them copied into a scratch buffer allocated with
the items."
  (declare (type fixnum tag len))
  (let* ((dict (= tag +tag-dict+))
         (room (max 1 len))
         (slots (* (if dict 2 1) room))
         (chars (min (* +container-scratch-chars+ slots) +max-container-scratch-chars+))
         (vals (cffi:null-pointer))
         (scratch vals)
         (keys-done 0) (vals-done 0) (n 0))
    (declare (type fixnum room slots chars keys-done vals-done n))
    (unwind-protect
         (with-conversion-level (:to-lisp)
           (setf vals (cffi:foreign-alloc :uint8 :count (+ (* slots +value-size+) (* 4 chars)))
                 scratch (offset-pointer vals (* slots +value-size+)))
           (let* ((got (if dict
                           (%dict-items pointer vals (offset-pointer vals (* room +value-size+)) len
                                        scratch chars)
                           (%items pointer vals len scratch chars))))
             (declare (type fixnum got))
             (when (< got 0) (signal-status got))
             (setf n got))
           (cond
             (dict
              (let ((table (make-hash-table :test 'equal :size (max 8 n)))
                    (dvals (offset-pointer vals (* room +value-size+))))
                (loop while (< vals-done n)
                      do (let ((j vals-done))
                           (incf keys-done)
                           (let ((k (decode-item vals j scratch)))
                             (incf vals-done)
                             (setf (gethash k table) (decode-item dvals j scratch)))))
                table))
             ((= tag +tag-list+)
              (let ((out (make-array n)))
                (loop while (< vals-done n)
                      do (let ((j vals-done))
                           (incf vals-done)
                           (setf (svref out j) (decode-item vals j scratch))))
                out))
             (t
              (let* ((head (list nil)) (tail head))
                (loop while (< vals-done n)
                      do (let ((j vals-done))
                           (incf vals-done)
                           (setf tail (setf (cdr tail) (list (decode-item vals j scratch))))))
                (cdr head)))))
      (unless (cffi:null-pointer-p vals)
        (if dict
            (progn
              (when (< keys-done n) (release-values vals keys-done n))
              (when (< vals-done n)
                (release-values (offset-pointer vals (* room +value-size+)) vals-done n)))
            (when (< vals-done n) (release-values vals vals-done n)))
        (cffi:foreign-free vals))
      (%decref pointer))))

(defmacro do-decoded-values ((var index vals n) &body body)
  "Runs BODY with VAR bound to the Lisp value of each of the N packed values at VALS in turn
(INDEX its position), with the ownership rule of CONTAINER-VALUE: a non-local exit releases
the values not yet decoded."
  (let ((done (gensym "DONE")) (nn (gensym "N")) (v (gensym "VALS")))
    `(let ((,done 0) (,nn ,n) (,v ,vals))
       (declare (type fixnum ,done ,nn))
       (unwind-protect
            (loop while (< ,done ,nn)
                  do (let* ((,index ,done)
                            (,var (progn (incf ,done) (decode-value ,v ,index nil))))
                       (declare (ignorable ,index))
                       ,@body))
         (when (< ,done ,nn) (release-values ,v ,done ,nn))))))

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

(define-entry lispify (object)
  "The default Lisp value of OBJECT, a PYOBJECT-WRAPPER or a foreign pointer to a Python object
(borrowed), converted as the type table says; other Lisp objects are returned as they are."
  (let ((pointer (typecase object
                   (pyobject-wrapper (wrapper-live-pointer object))
                   (t (if (cffi:pointerp object) object (return-from lispify object))))))
    (with-value-array (out 1)
      (check-status (%to-value pointer out (cffi:null-pointer) 0))
      (let ((*remote-objects* nil))
        (decode-value out 0 nil)))))
