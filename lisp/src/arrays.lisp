;;;; numpy arrays <-> Lisp arrays through the buffer protocol (no numpy C API).
;;;;
;;;; Python -> Lisp: any numeric buffer (numpy array of any order or strides, 0-d, empty) is
;;;; copied into a fresh Lisp array of the same shape and element type with P4S_BUFFER_COPY (one
;;;; memcpy when C-contiguous); an object array becomes a Lisp array of element type T of the
;;;; same shape, its elements converted one by one (P4S_BUFFER_OBJECTS). Lisp arrays of element
;;;; type T (or any other non-numeric type) of rank 0 or >= 2 become numpy object arrays. Lisp -> Python: a specialized Lisp array given as an argument of
;;;; PYCALL / PYMETHOD becomes a numpy array over the SAME memory during the call (pinned on
;;;; SBCL; ECL's collector does not move it), so Python can write into it (numpy's out=...).
;;;; Anywhere else (SETF PYVALUE, PYTHONIZE, nested in a list...) the array is copied.

(in-package :py4cl2-cffi)

;;; The Python side of these conversions is in the helper module (loader/src/helpers.py).

(defun array-helper-object (name &rest args)
  "A new reference to the result of the array helper NAME called with the Lisp ARGS (foreign
pointers pass as the objects they point to)."
  (with-packed-values (p n) args
    (call-helper-object name p n)))

(defun array-helper (name &rest args)
  "The Lisp result of the array helper NAME called with ARGS."
  (let ((*remote-objects* nil) (*lispifiers* nil))
    (apply #'call-helper name args)))

;;; ------------------------------------------------------------------------------------------
;;; Python -> Lisp
;;; ------------------------------------------------------------------------------------------

(defun buffer-element-type (format itemsize)
  "The Lisp element type of a buffer of struct FORMAT and ITEMSIZE, :BIT for bool, :OBJECT for
Python objects, or NIL when
it must be converted in Python first (non-native byte order, float16, longdouble) or cannot be
a Lisp array (objects, records, strings). Second value: :CONVERT when Python should convert."
  (let* ((start (if (and (plusp (length format)) (find (char format 0) "@=<>!")) 1 0))
         (order (and (= start 1) (char format 0)))
         (body (subseq format start)))
    (when (member order '(#+little-endian #\> #+little-endian #\! #-little-endian #\<))
      (return-from buffer-element-type (values nil :convert)))
    (flet ((bits () (* 8 itemsize)))
      (cond ((= (length body) 1)
             (case (char body 0)
               (#\d (if (= itemsize 8) 'double-float (values nil :convert)))
               (#\f (if (= itemsize 4) 'single-float (values nil :convert)))
               ((#\b #\h #\i #\l #\q #\n) `(signed-byte ,(bits)))
               ((#\B #\H #\I #\L #\Q #\N) `(unsigned-byte ,(bits)))
               (#\? (if (= itemsize 1) :bit nil))
               (#\O (if (= itemsize (cffi:foreign-type-size :pointer)) :object nil))
               ((#\e #\g) (values nil :convert))
               (t nil)))
            ((and (= (length body) 2) (char= (char body 0) #\Z))
             (case (char body 1)
               (#\d '(complex double-float))
               (#\f '(complex single-float))
               (#\g (values nil :convert))
               (t nil)))
            (t nil)))))

(defun wrap-borrowed (pointer)
  "A PYOBJECT-WRAPPER holding a new reference to the borrowed POINTER."
  (%incref pointer)
  (wrap-new-reference pointer))

(defmacro with-array-data ((pointer array) &body body)
  "Binds POINTER to the address of the first element of the simple Lisp ARRAY (pinned on SBCL)
during BODY."
  #+sbcl
  (let ((v (gensym "STORAGE")))
    `(let ((,v (sb-ext:array-storage-vector ,array)))
       (sb-sys:with-pinned-objects (,v)
         (let ((,pointer (sb-sys:vector-sap ,v)))
           ,@body))))
  #+ecl
  `(let ((,pointer (si::make-foreign-data-from-array ,array)))
     ,@body)
  #-(or sbcl ecl)
  (declare (ignore pointer array body))
  #-(or sbcl ecl)
  `(error "py4cl2-cffi: arrays need SBCL or ECL"))

(defun buffer-to-lisp-array (buf type dims nbytes)
  "A fresh Lisp array of element TYPE (:BIT for bool) and DIMS with the elements of the held
buffer BUF (NBYTES bytes), copied in row-major order."
  (if (eq type :bit)
      (let ((bytes (make-array nbytes :element-type '(unsigned-byte 8)))
            (out (make-array dims :element-type 'bit)))
        (when (plusp nbytes)
          (with-array-data (p bytes)
            (check-status (%buffer-copy buf p nbytes))))
        (dotimes (i nbytes out)
          (setf (row-major-aref out i) (if (zerop (aref bytes i)) 0 1))))
      (let ((array (make-array dims :element-type type)))
        (when (plusp nbytes)
          (with-array-data (p array)
            (check-status (%buffer-copy buf p nbytes))))
        array)))

(defun object-buffer-to-lisp-array (buf dims)
  "A fresh Lisp array of element type T and DIMS holding the Lisp values of the elements of the
held object buffer BUF, in row-major order (each converted as a list item is)."
  (with-conversion-level (:to-lisp)
    (let* ((count (reduce #'* dims))
           (out (make-array dims)))
      (with-value-array (vals count)
        (let ((n (%buffer-objects buf vals count)))
          (when (< n 0) (signal-status n))
          (%buffer-release buf)
          (do-decoded-values (x j vals n) (setf (row-major-aref out j) x))))
      out)))

(defun ndarray-to-lisp (pointer)
  "The Lisp array with the shape and elements of the numpy array (or any buffer exporter)
POINTER (borrowed): element types double-float, single-float, (signed-byte 8..64),
(unsigned-byte 8..64), (complex single-float), (complex double-float), BIT for bool, and T for
object arrays (their elements converted); float16 becomes single-float and longdouble
double-float. Arrays of other dtypes (datetime64, strings, records) are returned as a
PYOBJECT-WRAPPER."
  (cffi:with-foreign-object (buf '(:struct p4s-buffer))
    (let ((status (%buffer-get pointer 0 buf)))
      (cond ((= status +pyerror+)       ; no buffer: datetime64, timedelta64...
             (%error-clear)
             (return-from ndarray-to-lisp (wrap-borrowed pointer)))
            ((/= status 0) (signal-status status))))
    (let ((convert nil))
      (unwind-protect
           (let* ((format (foreign-utf8 (cffi:foreign-slot-value buf '(:struct p4s-buffer) 'format)))
                  (itemsize (cffi:foreign-slot-value buf '(:struct p4s-buffer) 'itemsize))
                  (ndim (cffi:foreign-slot-value buf '(:struct p4s-buffer) 'ndim))
                  (shape-p (cffi:foreign-slot-value buf '(:struct p4s-buffer) 'shape))
                  (nbytes (cffi:foreign-slot-value buf '(:struct p4s-buffer) 'len))
                  (dims (loop for k below ndim collect (cffi:mem-aref shape-p :int64 k))))
             (multiple-value-bind (type how) (buffer-element-type format itemsize)
               (cond ((eq type :object)
                      (return-from ndarray-to-lisp (object-buffer-to-lisp-array buf dims)))
                     (type (return-from ndarray-to-lisp
                             (buffer-to-lisp-array buf type dims nbytes)))
                     ((eq how :convert) (setf convert t))
                     (t (return-from ndarray-to-lisp (wrap-borrowed pointer))))))
        (%buffer-release buf))
      (when convert
        (let ((native (array-helper "array_native" pointer)))
          (if (eq native +py-none+) (wrap-borrowed pointer) native))))))

;;; ------------------------------------------------------------------------------------------
;;; Lisp -> Python
;;; ------------------------------------------------------------------------------------------

(defun shared-format (x)
  "For a Lisp array X whose memory numpy can use as it is: the struct format character (a
string), the bytes per element and whether the elements are complex. NIL otherwise."
  (typecase x
    ((array double-float) (values "d" 8 nil))
    ((array single-float) (values "f" 4 nil))
    ((array (signed-byte 8)) (values "b" 1 nil))
    ((array (unsigned-byte 8)) (values "B" 1 nil))
    ((array (signed-byte 16)) (values "h" 2 nil))
    ((array (unsigned-byte 16)) (values "H" 2 nil))
    ((array (signed-byte 32)) (values "i" 4 nil))
    ((array (unsigned-byte 32)) (values "I" 4 nil))
    ((array (signed-byte 64)) (values "q" 8 nil))
    ((array (unsigned-byte 64)) (values "Q" 8 nil))
    ((array (complex double-float)) (values "d" 16 t))
    ((array (complex single-float)) (values "f" 8 t))
    (t nil)))

(defun borrowable-array-p (x)
  "T if X is a Lisp array that a PYCALL passes to numpy over its own memory."
  (and (arrayp x) (not (stringp x)) (shared-format x) t))

(defun array-root (x)
  "The array X's memory lives in (following displacement) and X's offset in it, in elements."
  (let ((offset 0))
    (loop (multiple-value-bind (to off) (array-displacement x)
            (if to
                (setf offset (+ offset off) x to)
                (return (values x offset)))))))

(defun array-shape (x)
  "The numpy shape of X: its dimensions (its length for a vector with a fill pointer)."
  (if (and (vectorp x) (array-has-fill-pointer-p x))
      (list (length x))
      (array-dimensions x)))

(defun array-data-pointer (x itemsize)
  "The address of the first element of X. On SBCL the caller must have pinned the storage of
X's root array (see CALL-WITH-BORROWED-ARRAYS)."
  #+sbcl
  (multiple-value-bind (root offset) (array-root x)
    (sb-sys:sap+ (sb-sys:vector-sap (sb-ext:array-storage-vector root)) (* offset itemsize)))
  #+ecl
  (progn itemsize (si::make-foreign-data-from-array x))
  #-(or sbcl ecl)
  (error "py4cl2-cffi: cannot share the memory of ~S on this Lisp" (type-of x)))

(defun array-memoryview (x format itemsize complexp readonly)
  "A new memoryview over the memory of X (which must stay in place while it is used)."
  (let* ((shape (array-shape x))
         (count (reduce #'* shape))
         (dims (if complexp
                   (if shape (append (butlast shape) (list (* 2 (car (last shape))))) '())
                   shape)))
    (cffi:with-foreign-object (shape-p :int64 (max 1 (length dims)))
      (loop for d in dims for k from 0 do (setf (cffi:mem-aref shape-p :int64 k) d))
      (cffi:with-foreign-string (f format)
        (check-pointer (%memoryview (array-data-pointer x itemsize)
                                    (* count itemsize) f (length dims) shape-p
                                    (if readonly 1 0)))))))

;;; A borrow scope: the arrays pinned for a call and the memoryviews made over them.
(defstruct (borrow-scope (:constructor make-borrow-scope (arrays &aux (generation (%generation)))))
  (arrays '() :type list)
  (views '() :type list)
  (generation 0))

(defvar *borrow-scope* nil
  "Inside a PYCALL with array arguments: the BORROW-SCOPE of that call.")

(define-condition borrowed-array-error (error)
  ((count :initarg :count :reader borrowed-array-error-count))
  (:report (lambda (c s)
             (format s "Python kept ~D numpy array~:P over the memory of Lisp array arguments ~
                        after the call (e.g. a result kept as a PYOBJECT-WRAPPER, or the array ~
                        stored by the callee). That memory is only lent during the call: pass ~
                        a copy instead, e.g. (pycall \"numpy.array\" lisp-array) inside ~
                        WITH-REMOTE-OBJECTS, or lispify the result."
                     (borrowed-array-error-count c))))
  (:documentation "Signalled after a PYCALL that lent the memory of a Lisp array to numpy when
Python still refers to that memory once the call has returned (and its result has been
converted). The call's result is dropped; the memory must not be used from Python any more."))

#+sbcl
(defun call-pinned (objects thunk)
  (if objects
      (let ((o (car objects)))
        (sb-sys:with-pinned-objects (o)
          (call-pinned (cdr objects) thunk)))
      (funcall thunk)))

(defun release-borrow-scope (scope normal-exit)
  "Releases the memoryviews of SCOPE. Signals BORROWED-ARRAY-ERROR on a NORMAL-EXIT when Python
still uses one (warns instead while unwinding from another error)."
  (let ((kept 0))
    (unless (and (python-alive-p) (eql (%generation) (borrow-scope-generation scope)))
      ;; Python was stopped during the call: the views died with it.
      (setf (borrow-scope-views scope) '())
      (return-from release-borrow-scope nil))
    (dolist (mv (borrow-scope-views scope))
      (unwind-protect
           (unless (eq t (array-helper "array_release" mv))
             (incf kept))
        (%decref mv)))
    (setf (borrow-scope-views scope) '())
    (when (plusp kept)
      (if normal-exit
          (error 'borrowed-array-error :count kept)
          (warn "~A" (make-condition 'borrowed-array-error :count kept))))))

(defun call-with-borrowed-arrays (args thunk)
  "Calls THUNK (which makes a call with ARGS and converts its result) with the specialized Lisp
arrays among ARGS (positional arguments and keyword values) lent to Python: pinned on SBCL,
and pythonized as numpy arrays over their memory. Returns THUNK's value after releasing the
memoryviews."
  (let* ((arrays (loop for x in args when (borrowable-array-p x) collect x))
         (scope (make-borrow-scope arrays))
         (normal nil))
    (flet ((run ()
             (let ((*borrow-scope* scope))
               (unwind-protect
                    (multiple-value-prog1 (funcall thunk)
                      (setf normal t))
                 (release-borrow-scope scope normal)))))
      #+sbcl (call-pinned (mapcar (lambda (a) (sb-ext:array-storage-vector (array-root a))) arrays)
                          #'run)
      #-sbcl (run))))

(defun array-to-numpy (x format itemsize complexp)
  "A new reference to a numpy array for the Lisp array X: over X's memory inside the borrow
scope of a call that lists X, else a copy."
  (let* ((shape (array-shape x))
         (zero-d (null shape))
         (scope *borrow-scope*))
    (cond ((zerop (reduce #'* shape))
           (array-helper-object "array_empty" shape format complexp))
          ((and scope (member x (borrow-scope-arrays scope) :test #'eq))
           (let ((mv (array-memoryview x format itemsize complexp nil)))
             (push mv (borrow-scope-views scope))
             (array-helper-object "array_share" mv complexp zero-d)))
          (t
           #+sbcl
           (sb-sys:with-pinned-objects ((sb-ext:array-storage-vector (array-root x)))
             (let ((mv (array-memoryview x format itemsize complexp t)))
               (unwind-protect (array-helper-object "array_copy_of" mv complexp zero-d)
                 (%decref mv))))
           #-sbcl
           (let ((mv (array-memoryview x format itemsize complexp t)))
             (unwind-protect (array-helper-object "array_copy_of" mv complexp zero-d)
               (%decref mv)))))))

(defun copy-to-specialized (x type)
  "A fresh simple array like X with element type TYPE."
  (let ((out (make-array (array-shape x) :element-type type)))
    (dotimes (i (array-total-size out) out)
      (setf (row-major-aref out i) (row-major-aref x i)))))

(defun shape-tuple (x)
  "The shape of X as a Lisp value that pythonizes to a tuple: its dimensions, or +PY-EMPTY-TUPLE+
for a 0-d array (NIL would be False)."
  (or (array-shape x) +py-empty-tuple+))

(defun object-array-object (x)
  "A new reference to a numpy object array of the shape of the Lisp array X whose elements are
the Python objects of X's elements (a nested Lisp sequence is one element, not more axes)."
  (with-conversion-level (:to-python)
    (let ((flat (with-packed-values (p n) (loop for i below (array-total-size x)
                                                collect (row-major-aref x i))
                  (check-pointer (%tuple-from p n)))))
      (unwind-protect (array-helper-object "object_array" flat (shape-tuple x))
        (%decref flat)))))

(defun nested-lists-object (x)
  "A new reference to nested Python lists with the elements of X."
  (labels ((nest (dims offset)
             (if (null dims)
                 (row-major-aref x offset)
                 (let ((stride (reduce #'* (rest dims))))
                   (coerce (loop for k below (first dims)
                                 collect (nest (rest dims) (+ offset (* k stride))))
                           'simple-vector)))))
    (let ((v (nest (array-shape x) 0)))
      (if (arrayp v) (pythonize v) (pythonize-default v)))))

(defun array-object (x)
  "A new reference to the Python object for the Lisp array X of numbers: a numpy array of the
same shape and element type (over X's memory when X is an argument of the running PYCALL, else
a copy); a numpy bool array for a bit array (a copy); a numpy array of int64, uint64 or float64
for other integer or float element types (a copy); nested lists when numpy is missing."
  (if (not (numpy-available-p))
      (nested-lists-object x)
      (multiple-value-bind (format itemsize complexp) (shared-format x)
        (if format
            (array-to-numpy x format itemsize complexp)
            (let ((type (array-element-type x)))
              (cond ((subtypep type 'bit)
                     (let ((bytes (copy-to-specialized x '(unsigned-byte 8))))
                       (if (zerop (array-total-size bytes))
                           (array-helper-object "array_empty" (array-shape x) "?" nil)
                           (with-array-data (p bytes)
                             (cffi:with-foreign-string (f "B")
                               (let ((mv (check-pointer (%memoryview p (array-total-size bytes) f 0
                                                                     (cffi:null-pointer) 1))))
                                 (unwind-protect
                                      (array-helper-object "array_bool" mv (shape-tuple x))
                                   (%decref mv))))))))
                    ((subtypep type '(signed-byte 64))
                     (array-object (copy-to-specialized x '(signed-byte 64))))
                    ((subtypep type '(unsigned-byte 64))
                     (array-object (copy-to-specialized x '(unsigned-byte 64))))
                    ((subtypep type 'float)
                     (array-object (copy-to-specialized x 'double-float)))
                    (t (nested-lists-object x))))))))
