;;;; Tests: numpy arrays both ways: dtypes, orders, strides, in-place :out, wrappers for object dtypes.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi-numpy)

(defparameter *dtype-element-types*
  '(("float64" double-float) ("float32" single-float)
    ("int8" (signed-byte 8)) ("int16" (signed-byte 16)) ("int32" (signed-byte 32)) ("int64" (signed-byte 64))
    ("uint8" (unsigned-byte 8)) ("uint16" (unsigned-byte 16)) ("uint32" (unsigned-byte 32))
    ("uint64" (unsigned-byte 64)) ("bool" bit)
    ("complex64" (complex single-float)) ("complex128" (complex double-float)))
  "numpy dtype -> the Lisp element type its arrays become.")

(defun same-type-p (a b) (and (subtypep a b) (subtypep b a)))

(defun expected-element (dtype k)
  "Element K of np.arange(...).astype(DTYPE) as Lisp sees it."
  (cond ((string= dtype "bool") (if (zerop k) 0 1))
        ((string= dtype "float64") (coerce k 'double-float))
        ((string= dtype "float32") (coerce k 'single-float))
        ((string= dtype "complex128") (complex (coerce k 'double-float) 0d0))
        ((string= dtype "complex64") (complex (coerce k 'single-float) 0f0))
        (t k)))

(fiveam:test numpy-dtypes-to-lisp
  "Every numeric dtype becomes a Lisp array of the same shape and element type."
  (with-numpy
    (loop for (dtype type) in *dtype-element-types*
          do (let ((a (raw-pyeval (format nil "np.arange(6).reshape(2, 3).astype('~A')" dtype))))
               (fiveam:is (arrayp a) "~A: an array" dtype)
               (when (arrayp a)
                 (fiveam:is (equal '(2 3) (array-dimensions a)) "~A: shape" dtype)
                 (fiveam:is (same-type-p type (array-element-type a))
                            "~A: element type ~S, expected ~S" dtype (array-element-type a) type)
                 (fiveam:is (loop for k below 6 always (eql (expected-element dtype k) (row-major-aref a k)))
                            "~A: elements ~S" dtype a))))
    ;; Extremes survive.
    (fiveam:is (equalp #(-128 127) (raw-pyeval "np.array([-128, 127], dtype=np.int8)")))
    (fiveam:is (eql (1- (expt 2 64)) (aref (raw-pyeval "np.array([2**64-1], dtype=np.uint64)") 0)))
    (fiveam:is (eql (- (expt 2 63)) (aref (raw-pyeval "np.array([-2**63], dtype=np.int64)") 0)))
    (fiveam:is (eql #c(1d0 -2d0) (aref (raw-pyeval "np.array([1-2j])") 0)))
    ;; Converted in Python first: float16, big-endian, longdouble.
    (fiveam:is (equalp #(1f0 2f0) (raw-pyeval "np.array([1, 2], dtype=np.float16)")))
    (fiveam:is (equalp #(1d0 2d0) (raw-pyeval "np.array([1, 2], dtype='>f8')")))
    (fiveam:is (equalp #(-3 4) (raw-pyeval "np.array([-3, 4], dtype='>i4')")))
    (fiveam:is (equalp #(1d0 2d0) (raw-pyeval "np.array([1, 2], dtype=np.longdouble)")))))

(fiveam:test numpy-orders-and-strides-to-lisp
  (with-numpy
    (raw-pyexec "_t_a = np.arange(12, dtype=np.float64).reshape(3, 4)")
    (fiveam:is (equalp #2A((0d0 1d0 2d0 3d0) (4d0 5d0 6d0 7d0) (8d0 9d0 10d0 11d0)) (raw-pyeval "_t_a")))
    (fiveam:is (equalp #2A((0d0 1d0 2d0 3d0) (4d0 5d0 6d0 7d0) (8d0 9d0 10d0 11d0))
                       (raw-pyeval "np.asfortranarray(_t_a)"))
               "Fortran order: same elements in the same places")
    (fiveam:is (equalp #2A((3d0 2d0 1d0 0d0) (11d0 10d0 9d0 8d0)) (raw-pyeval "_t_a[::2, ::-1]"))
               "strided view a[::2, ::-1]")
    (fiveam:is (equalp #2A((0d0 4d0 8d0) (1d0 5d0 9d0) (2d0 6d0 10d0) (3d0 7d0 11d0)) (raw-pyeval "_t_a.T")))
    (fiveam:is (equalp #(1d0 5d0 9d0) (raw-pyeval "_t_a[:, 1]")) "a column")
    (fiveam:is (equalp #(#c(0d0 0d0) #c(2d0 2d0)) (raw-pyeval "(np.arange(4.) + 1j*np.arange(4.))[::2]"))
               "strided complex128")
    (fiveam:is (equalp #(#c(1f0 1f0) #c(3f0 3f0)) (raw-pyeval "(np.arange(4, dtype=np.float32) * (1+1j)).astype(np.complex64)[1::2]"))
               "strided complex64")
    (let ((big (raw-pyeval "np.arange(24, dtype=np.int16).reshape(2, 3, 4).transpose(2, 0, 1)")))
      (fiveam:is (equal '(4 2 3) (array-dimensions big)))
      (fiveam:is (= 13 (aref big 1 1 0))))))

(fiveam:test numpy-0d-and-empty-to-lisp
  (with-numpy
    (let ((a (raw-pyeval "np.array(2.5)")))
      (fiveam:is (and (arrayp a) (null (array-dimensions a))) "a 0-d array")
      (fiveam:is (eql 2.5d0 (aref a))))
    (let ((a (raw-pyeval "np.array(7, dtype=np.int32)")))
      (fiveam:is (eql 7 (aref a))))
    (let ((a (raw-pyeval "np.zeros((0,))")))
      (fiveam:is (and (vectorp a) (zerop (length a)) (eq 'double-float (array-element-type a)))))
    (let ((a (raw-pyeval "np.zeros((2, 0, 3), dtype=np.int8)")))
      (fiveam:is (equal '(2 0 3) (array-dimensions a)))
      (fiveam:is (same-type-p '(signed-byte 8) (array-element-type a))))))

(fiveam:test numpy-datetime-string-record-arrays-are-wrappers
  ;; Object arrays convert (conversions-compat.lisp); these dtypes have no Lisp counterpart.
  (with-numpy
    (dolist (code '("np.array(['2024-01-01', '2025-06-30'], dtype='datetime64[D]')"
                    "np.array([1, 2], dtype='timedelta64[s]')"
                    "np.array(['ab', 'c'])"
                    "np.zeros(2, dtype=[('x', 'f8'), ('y', 'i4')])"))
      (let ((a (raw-pyeval code)))
        (fiveam:is (typep a 'pyobject-wrapper) "~A: a wrapper, got ~S" code a)
        (when (typep a 'pyobject-wrapper)
          (fiveam:is (eql 2 (min 2 (pycall "len" a)))))))
    (let ((w (raw-pyeval "np.array(['2024-01-01'], dtype='datetime64[D]')")))
      (fiveam:is (equal "2024-01-01" (pycall "str" (pycall "lambda a: a[0]" w)))))))

(defun dvec (&rest xs)
  (make-array (length xs) :element-type 'double-float :initial-contents (mapcar (lambda (x) (float x 1d0)) xs)))

(fiveam:test lisp-arrays-to-numpy-share-memory
  (with-numpy
    ;; In place: numpy writes into the Lisp array.
    (let ((a (dvec 1 2 3)) (b (dvec 10 20 30)))
      (pycall "numpy.add" a b :out a)
      (fiveam:is (equalp (dvec 11 22 33) a) "numpy.add a b :out a changes A")
      (fiveam:is (equalp (dvec 10 20 30) b)))
    (let ((a (make-array 4 :element-type 'single-float :initial-contents '(1f0 2f0 3f0 4f0))))
      (pycall "numpy.multiply" a 2 :out a)
      (fiveam:is (equalp #(2f0 4f0 6f0 8f0) a)))
    (let ((m (make-array '(2 3) :element-type '(signed-byte 32) :initial-contents '((1 2 3) (4 5 6)))))
      (pycall "numpy.negative" m :out m)
      (fiveam:is (equalp #2A((-1 -2 -3) (-4 -5 -6)) m) "2-d (signed-byte 32) in place"))
    ;; Python sees the Lisp memory itself (writes through a Python function).
    (raw-pyexec "def _t_fill(a, v):
    a[...] = v
    return a.flags['C_CONTIGUOUS'], a.flags['OWNDATA'], a.flags['WRITEABLE']")
    (let ((a (make-array '(2 2) :element-type '(unsigned-byte 16))))
      (fiveam:is (equalp #(t nil t) (coerce (pycall "_t_fill" a 7) 'vector)) "C-contiguous, not owning its data, writable")
      (fiveam:is (equalp #2A((7 7) (7 7)) a)))
    ;; The same array twice in one call.
    (let ((a (dvec 1 2)))
      (pycall "numpy.add" a a :out a)
      (fiveam:is (equalp (dvec 2 4) a)))
    ;; A displaced array shares its part of the parent.
    (let* ((parent (dvec 1 2 3 4 5))
           (middle (make-array 3 :element-type 'double-float :displaced-to parent :displaced-index-offset 1)))
      (pycall "numpy.negative" middle :out middle)
      (fiveam:is (equalp (dvec 1 -2 -3 -4 5) parent) "displaced array"))
    ;; pymethod lends arrays too.
    (let ((a (dvec 3 1 2)))
      (pymethod (raw-pyeval "np.copyto") "__call__" a (dvec 9 8 7))
      (fiveam:is (equalp (dvec 9 8 7) a)))))

(fiveam:test lisp-arrays-to-numpy-shapes-and-types
  (with-numpy
    (raw-pyexec "def _t_desc(a):
    return (a.shape, str(a.dtype), a.tolist())")
    (flet ((desc (x) (coerce (pycall "_t_desc" x) 'list)))
      (loop for (type dtype) in '((double-float "float64") (single-float "float32")
                                  ((signed-byte 8) "int8") ((unsigned-byte 8) "uint8")
                                  ((signed-byte 16) "int16") ((unsigned-byte 16) "uint16")
                                  ((signed-byte 32) "int32") ((unsigned-byte 32) "uint32")
                                  ((signed-byte 64) "int64") ((unsigned-byte 64) "uint64"))
            do (let* ((a (make-array '(2 3) :element-type type :initial-element (coerce 1 type)))
                      (d (desc a)))
                 (fiveam:is (equal '(2 3) (first d)) "~S: shape ~S" type (first d))
                 (fiveam:is (equal dtype (second d)) "~S: dtype ~S" type (second d))))
      (let ((d (desc (make-array '(2 2 2) :element-type 'double-float :initial-element 0.5d0))))
        (fiveam:is (equal '(2 2 2) (first d)) "3-d shape preserved"))
      (let ((d (desc (make-array '() :element-type 'double-float :initial-element 4d0))))
        (fiveam:is (eq +py-empty-tuple+ (first d)) "0-d")
        (fiveam:is (eql 4d0 (third d))))
      (let ((d (desc (make-array '(0 3) :element-type 'single-float))))
        (fiveam:is (equal '(0 3) (first d)) "empty")
        (fiveam:is (equal "float32" (second d))))
      (let ((d (desc (make-array 4 :element-type 'bit :initial-contents '(1 0 0 1)))))
        (fiveam:is (equal "bool" (second d)) "bit vector -> bool (a copy)")
        (fiveam:is (equalp #(t nil nil t) (third d))))
      (let ((d (desc (make-array 3 :element-type 'fixnum :initial-contents '(1 -2 3)))))
        (fiveam:is (equal "int64" (second d)) "other integer types: int64 (a copy)")
        (fiveam:is (equalp #(1 -2 3) (third d))))
      (let ((d (desc (make-array 6 :element-type 'double-float :fill-pointer 2 :initial-element 1d0))))
        (fiveam:is (equal '(2) (first d)) "a fill pointer limits the length")))
    ;; Round trips.
    (let ((m (make-array '(2 3) :element-type 'double-float :initial-contents '((1d0 2d0 3d0) (4d0 5d0 6d0)))))
      (fiveam:is (equalp m (pycall "numpy.array" m)))
      (fiveam:is (equalp #2A((1d0 4d0) (2d0 5d0) (3d0 6d0)) (pycall "numpy.transpose" m)))
      (fiveam:is (equalp #(5d0 7d0 9d0) (pycall "numpy.sum" m :axis 0))))
    ;; Results that are views of the argument come back as fresh Lisp arrays.
    (let* ((a (dvec 1 2 3))
           (r (pycall "numpy.asarray" a)))
      (fiveam:is (and (equalp a r) (not (eq a r))))
      (setf (aref r 0) 100d0)
      (fiveam:is (= 1d0 (aref a 0))))
    ;; Outside a call (setf pyvalue) the array is copied.
    (let ((a (dvec 1 2)))
      (setf (pyvalue "_t_copy") a)
      (raw-pyexec "_t_copy += 1")
      (fiveam:is (equalp (dvec 1 2) a))
      (fiveam:is (equalp (dvec 2 3) (pyvalue "_t_copy"))))))

(fiveam:test complex-arrays-both-ways
  (with-numpy
    (let ((a (make-array '(2 2) :element-type '(complex double-float)
                                :initial-contents '((#c(1d0 2d0) #c(3d0 4d0)) (#c(5d0 6d0) #c(7d0 8d0))))))
      (fiveam:is (equal "complex128" (pycall "lambda a: str(a.dtype)" a)))
      (fiveam:is (equal '(2 2) (pycall "lambda a: a.shape" a)))
      (fiveam:is (eql #c(7d0 8d0) (pycall "lambda a: complex(a[1, 1])" a)))
      (fiveam:is (equalp a (pycall "numpy.array" a)) "round trip")
      (pycall "numpy.conjugate" a :out a)
      (fiveam:is (eql #c(3d0 -4d0) (aref a 0 1)) "in place"))
    (let ((a (make-array 3 :element-type '(complex single-float) :initial-element #c(1f0 -1f0))))
      (fiveam:is (equal "complex64" (pycall "lambda a: str(a.dtype)" a)))
      (pycall "numpy.multiply" a #c(0 1) :out a)
      (fiveam:is (eql #c(1f0 1f0) (aref a 2))))
    (let ((a (make-array '() :element-type '(complex double-float) :initial-element #c(0d0 1d0))))
      (fiveam:is (equal "()complex128" (pycall "lambda a: str(a.shape) + str(a.dtype)" a)) "0-d complex"))))

(fiveam:test lent-memory-must-not-outlive-the-call
  (with-numpy
    ;; A result that is a view of a lent array, kept in Python: an error, not a dangling view.
    (fiveam:signals py4cl2-cffi:borrowed-array-error
      (with-remote-objects (pycall "numpy.asarray" (dvec 1 2 3))))
    (raw-pyexec "_t_kept = []")
    (fiveam:signals py4cl2-cffi:borrowed-array-error
      (pycall "_t_kept.append" (dvec 1 2 3)))
    (raw-pyexec "del _t_kept[:]")
    ;; Copies may be kept.
    (let ((w (with-remote-objects (pycall "numpy.array" (dvec 1 2 3)))))
      (fiveam:is (typep w 'pyobject-wrapper))
      (fiveam:is (= 6d0 (pycall "numpy.sum" w))))
    ;; A Python error inside the call: the array is released, the pyerror comes through.
    (raw-pyexec "def _t_fail(a):
    a[0] = 42
    raise ValueError('boom')")
    (let ((a (dvec 1 2)))
      (fiveam:signals pyerror (pycall "_t_fail" a))
      (fiveam:is (= 42d0 (aref a 0))))))

(fiveam:test big-arrays-both-ways
  (with-numpy
    (let ((a (raw-pyeval "np.arange(1000000, dtype=np.float64)")))
      (fiveam:is (= 1000000 (length a)))
      (fiveam:is (= 999999d0 (aref a 999999)))
      (fiveam:is (= (* 999999 1000000 1/2) (pycall "numpy.sum" a)))
      (pycall "numpy.multiply" a 2 :out a)
      (fiveam:is (= 1999998d0 (aref a 999999))))))
