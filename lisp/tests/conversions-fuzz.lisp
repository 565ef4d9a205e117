;;;; Tests: a seeded fuzz of conversions both ways (Lisp -> Python -> Lisp compared in Lisp, Python-made -> Lisp -> Python compared in Python), zero mismatches.

(in-package :py4cl2-cffi/tests)
;;; In the numpy suite (run first) because it makes numpy arrays; without numpy it runs
;;; without them and says so.
(fiveam:in-suite :py4cl2-cffi-numpy)

(defparameter *fuzz-count* 10000 "Random values made in each direction.")
(defparameter *fuzz-default-seed* 20240917)

(defun fuzz-seed ()
  "PY4CL2_CFFI_FUZZ_SEED, else the fixed default."
  (let ((env (uiop:getenv "PY4CL2_CFFI_FUZZ_SEED")))
    (or (and env (parse-integer env :junk-allowed t)) *fuzz-default-seed*)))

;;; A small PRNG (xorshift32) that gives the same values on every Lisp.
(defvar *fuzz-state* 1)
(declaim (type (unsigned-byte 32) *fuzz-state*))

(defun fuzz-next ()
  (let ((x *fuzz-state*))
    (setf x (logxor x (logand #xFFFFFFFF (ash x 13))))
    (setf x (logxor x (ash x -17)))
    (setf x (logxor x (logand #xFFFFFFFF (ash x 5))))
    (setf *fuzz-state* x)))

(defun fuzz-bits (k)
  "K random bits, an integer."
  (let ((n 0))
    (loop for got from 0 below k by 32
          do (setf n (logior (ash n 32) (fuzz-next))))
    (ldb (byte k 0) n)))

(defun fuzz-below (n)
  (if (<= n #xFFFFFFFF) (mod (fuzz-next) n) (mod (fuzz-bits (+ 32 (integer-length n))) n)))
(defun fuzz-pick (&rest choices) (nth (fuzz-below (length choices)) choices))
(defun fuzz-range (lo hi) "An integer in [LO, HI)." (+ lo (fuzz-below (- hi lo))))

;;; Floats from their bits (through foreign memory: no arithmetic, so NaNs stay as they are).
(defun double-from-bits (bits)
  (cffi:with-foreign-object (p :uint64)
    (setf (cffi:mem-ref p :uint64) bits)
    (cffi:mem-ref p :double)))
(defun double-bits (x)
  (cffi:with-foreign-object (p :double)
    (setf (cffi:mem-ref p :double) x)
    (cffi:mem-ref p :uint64)))
(defun single-from-bits (bits)
  (cffi:with-foreign-object (p :uint32)
    (setf (cffi:mem-ref p :uint32) bits)
    (cffi:mem-ref p :float)))
(defun single-bits (x)
  (cffi:with-foreign-object (p :float)
    (setf (cffi:mem-ref p :float) x)
    (cffi:mem-ref p :uint32)))

(defun fuzz-double ()
  (case (fuzz-below 8)
    (0 (double-from-bits (fuzz-pick 0 #x8000000000000000 #x7FF0000000000000 #xFFF0000000000000
                                    #x7FF8000000000000 #xFFF8000000000000 1 #x000FFFFFFFFFFFFF
                                    #x7FEFFFFFFFFFFFFF)))
    ((1 2 3) (let ((b (fuzz-bits 64)))
               ;; A NaN is made quiet: ECL traps on a signalling one as soon as it is boxed.
               (double-from-bits (if (= (ldb (byte 11 52) b) 2047) (logior b (ash 1 51)) b))))
    (t (/ (coerce (fuzz-range -1000000000 1000000000) 'double-float) (fuzz-range 1 1000)))))

(defun fuzz-single ()
  (case (fuzz-below 6)
    (0 (single-from-bits (fuzz-pick 0 #x80000000 #x7F800000 #xFF800000 #x7FC00000 1)))
    ((1 2) (let ((b (fuzz-bits 32)))
             ;; A NaN is made quiet: ECL traps on a signalling one, and widening one traps.
             (single-from-bits (if (= (ldb (byte 8 23) b) 255) (logior b #x400000) b))))
    (t (/ (coerce (fuzz-range -100000 100000) 'single-float) (fuzz-range 1 100)))))

(defun fuzz-code ()
  "A code point: mostly ASCII, also controls, Latin-1, the BMP, astral planes, lone surrogates."
  (case (fuzz-below 10)
    ((0 1 2 3 4) (fuzz-range 32 127))
    (5 (fuzz-below 32))
    (6 (fuzz-range 128 256))
    (7 (let ((c (fuzz-range 256 #xFFFE))) (if (<= #xD800 c #xDFFF) (+ c #x800) c)))
    (8 (fuzz-range #x10000 #x110000))
    (t (fuzz-range #xD800 #xE000))))

(defun fuzz-string ()
  (let* ((n (if (< (fuzz-below 100) 97) (fuzz-pick 0 1 1 2 3 5 8 13) (fuzz-range 1000 1200)))
         (codes (loop repeat n collect (fuzz-code))))
    (case (fuzz-below 6)
      (0 (let ((s (make-array n :element-type 'character :adjustable t :fill-pointer n)))
           (loop for c in codes for i from 0 do (setf (aref s i) (code-char c)))
           s))
      (1 (coerce (loop for c in codes collect (code-char (mod c 128))) 'base-string))
      (t (map 'string #'code-char codes)))))

(defun fuzz-integer ()
  (case (fuzz-below 4)
    ((0 1) (fuzz-range -1000 1000))
    (2 (fuzz-range (- (expt 2 62)) (expt 2 62)))
    (t (* (fuzz-pick -1 1) (fuzz-bits (fuzz-range 64 300))))))

(defun fuzz-key ()
  "A hash key that no other key equals in Python either."
  (case (fuzz-below 3)
    (0 (fuzz-integer))
    (1 (let ((s (fuzz-string))) (if (< (length s) 2) (format nil "k~A~D" s (fuzz-below 1000)) s)))
    (t (loop repeat (fuzz-range 1 3) collect (fuzz-integer)))))

(defparameter *fuzz-array-types*
  '(double-float single-float (signed-byte 8) (signed-byte 16) (signed-byte 32) (signed-byte 64)
    (unsigned-byte 8) (unsigned-byte 16) (unsigned-byte 32) (unsigned-byte 64)
    (complex single-float) (complex double-float) bit fixnum (unsigned-byte 4) t character))

(defun fuzz-element (type depth)
  (cond ((eq type 'double-float) (fuzz-double))
        ((eq type 'single-float) (fuzz-single))
        ((equal type '(complex single-float)) (complex (fuzz-single) (fuzz-single)))
        ((equal type '(complex double-float)) (complex (fuzz-double) (fuzz-double)))
        ((eq type 'bit) (fuzz-below 2))
        ((eq type 'fixnum) (fuzz-range most-negative-fixnum most-positive-fixnum))
        ((eq type 'character) (code-char (fuzz-code)))
        ((eq type t) (fuzz-lisp-value (1+ depth)))
        ((eq (first type) 'signed-byte)
         (let ((k (second type))) (fuzz-range (- (expt 2 (1- k))) (expt 2 (1- k)))))
        (t (fuzz-below (expt 2 (second type))))))

(defun fuzz-array (depth)
  (let* ((type (nth (fuzz-below (length *fuzz-array-types*)) *fuzz-array-types*))
         (rank (if (member type '(t character)) (fuzz-pick 0 2 2 3) (fuzz-below 4)))
         (dims (loop repeat rank collect (fuzz-below 4)))
         (size (reduce #'* dims))
         (offset (if (and (plusp rank) (zerop (fuzz-below 3))) (fuzz-range 1 4) 0))
         (storage (make-array (+ size offset 2) :element-type type)))
    (dotimes (i (length storage)) (setf (aref storage i) (fuzz-element type depth)))
    (if (plusp offset)
        ;; A view into a larger array: what Lisp has for a strided array.
        (make-array dims :element-type type :displaced-to storage :displaced-index-offset offset)
        (let ((a (make-array dims :element-type type)))
          (dotimes (i size a) (setf (row-major-aref a i) (aref storage i)))))))

(defun fuzz-lisp-value (depth)
  (let ((k (fuzz-below 100))
        (leaf (>= depth 3)))
    (cond ((< k 12) (fuzz-integer))
          ((< k 20) (fuzz-double))
          ((< k 24) (fuzz-single))
          ((< k 33) (fuzz-string))
          ((< k 37) (code-char (fuzz-code)))
          ((< k 40) (fuzz-pick t nil +py-none+ +py-empty-tuple+ :foo-bar :x))
          ((< k 43) (/ (fuzz-integer) (fuzz-pick 3 7 (1+ (fuzz-bits 80)))))
          ((< k 46) (fuzz-pick (complex (fuzz-double) (fuzz-double)) (complex (fuzz-single) (fuzz-single))
                               (complex (fuzz-range -9 9) (fuzz-range 1 9))))
          ((< k 58) (fuzz-array depth))
          (leaf (fuzz-integer))
          ((< k 70) (loop repeat (fuzz-range 1 5) collect (fuzz-lisp-value (1+ depth))))
          ((< k 80) (let ((n (fuzz-below 5)))
                      (if (zerop (fuzz-below 4))
                          (let ((v (make-array (+ n 2) :adjustable t :fill-pointer n)))
                            (dotimes (i (+ n 2) v) (setf (aref v i) (fuzz-lisp-value (1+ depth)))))
                          (coerce (loop repeat n collect (fuzz-lisp-value (1+ depth))) 'simple-vector))))
          (t (let ((h (make-hash-table :test (fuzz-pick 'equal 'eql))))
               (dotimes (i (fuzz-below 4) h)
                 (setf (gethash (if (eq (hash-table-test h) 'eql) (fuzz-integer) (fuzz-key)) h)
                       (fuzz-lisp-value (1+ depth)))))))))

;;; What a Lisp value comes back as from Python (the type table), with and without numpy.
(defun expected-element-type (type)
  "The element type of the Lisp array that a Lisp array of element TYPE comes back as."
  (cond ((py4cl2-cffi::shared-format (make-array 0 :element-type type)) (upgraded-array-element-type type))
        ((subtypep type 'bit) 'bit)
        ((subtypep type '(signed-byte 64)) '(signed-byte 64))
        ((subtypep type '(unsigned-byte 64)) '(unsigned-byte 64))
        ((subtypep type 'float) 'double-float)
        (t t)))

(defun fuzz-expected (x numpy)
  (labels ((nested (a dims offset)
             (if (null dims)
                 (fuzz-expected (row-major-aref a offset) numpy)
                 (let ((stride (reduce #'* (rest dims))))
                   (coerce (loop for k below (first dims)
                                 collect (nested a (rest dims) (+ offset (* k stride))))
                           'simple-vector)))))
    (typecase x
      ((or null (eql t) (eql +py-none+) (eql +py-empty-tuple+)) x)
      (symbol (py4cl2-cffi::lisp-name-to-python x))
      (float (coerce x 'double-float))
      (complex (complex (coerce (realpart x) 'double-float) (coerce (imagpart x) 'double-float)))
      ((or rational character) x)
      (string (coerce x '(simple-array character (*))))
      (cons (mapcar (lambda (e) (fuzz-expected e numpy)) x))
      (hash-table (let ((h (make-hash-table :test 'equal)))
                    (maphash (lambda (k v) (setf (gethash (fuzz-expected k numpy) h) (fuzz-expected v numpy))) x)
                    h))
      (array
       (let ((type (array-element-type x)))
         (cond ((and (vectorp x) (not (py4cl2-cffi::number-array-p x)))
                (map 'simple-vector (lambda (e) (fuzz-expected e numpy)) x))
               ((not numpy) (nested x (array-dimensions x) 0))
               (t (let* ((etype (expected-element-type type))
                         (out (make-array (array-dimensions x) :element-type etype)))
                    (dotimes (i (array-total-size x) out)
                      (setf (row-major-aref out i)
                            (if (eq etype t)
                                (fuzz-expected (row-major-aref x i) numpy)
                                (row-major-aref x i)))))))))
      (t x))))

(defun fuzz-same-p (e a)
  "T if A is the value E exactly: same types, floats bit for bit."
  (typecase e
    (double-float (and (typep a 'double-float) (= (double-bits e) (double-bits a))))
    (single-float (and (typep a 'single-float) (= (single-bits e) (single-bits a))))
    (complex (and (complexp a) (fuzz-same-p (realpart e) (realpart a)) (fuzz-same-p (imagpart e) (imagpart a))))
    (string (and (typep a '(simple-array character (*))) (string= e a)))
    (cons (and (consp a) (= (length e) (length a)) (every #'fuzz-same-p e a)))
    (hash-table (and (hash-table-p a) (eq 'equal (hash-table-test a))
                     (= (hash-table-count e) (hash-table-count a))
                     (loop for k being the hash-keys of e using (hash-value v)
                           always (multiple-value-bind (w found) (gethash k a)
                                    (and found (fuzz-same-p v w))))))
    (array (and (arrayp a) (not (stringp a))
                (equal (array-dimensions e) (array-dimensions a))
                (equal (array-element-type e) (array-element-type a))
                (eq (simple-vector-p e) (simple-vector-p a))
                (loop for i below (array-total-size e)
                      always (fuzz-same-p (row-major-aref e i) (row-major-aref a i)))))
    (t (eql e a))))

(defun fuzz-describe (x)
  (let ((*print-length* 6) (*print-level* 3) (*print-pretty* nil))
    (let ((s (prin1-to-string x))) (if (> (length s) 200) (subseq s 0 200) s))))

;;; Python's side: values made there, what they come back as, and the comparison.
(defparameter *fuzz-python-code* "
import random as _fz_random, struct as _fz_struct, math as _fz_math
import fractions as _fz_fr, collections as _fz_col
_fz_Point = _fz_col.namedtuple('_fz_Point', 'x y')
class _FzSame:
    __slots__ = ('obj',)
    def __init__(self, obj):
        self.obj = obj
def _fz_bits(x):
    return _fz_struct.pack('<d', x)
def _fz_quiet(x):
    b = _fz_struct.unpack('<Q', _fz_struct.pack('<d', x))[0]
    if b & 0x7FF0000000000000 == 0x7FF0000000000000 and b & 0x000FFFFFFFFFFFFF:
        b |= 0x0008000000000000
    return _fz_struct.unpack('<d', _fz_struct.pack('<Q', b))[0]
def _fz_float(r):
    k = r.random()
    if k < 0.15:
        return r.choice([0.0, -0.0, _fz_math.inf, -_fz_math.inf, _fz_math.nan, 5e-324, -1.5, 1e308, 2.0 ** 60])
    if k < 0.6:
        return _fz_struct.unpack('<d', _fz_struct.pack('<Q', r.getrandbits(64)))[0]
    return r.uniform(-1e6, 1e6)
def _fz_code(r):
    k = r.randrange(10)
    if k < 5: return 32 + r.randrange(95)
    if k == 5: return r.randrange(32)
    if k == 6: return 128 + r.randrange(128)
    if k == 7:
        c = 256 + r.randrange(0xFFFE - 256)
        return c + 0x800 if 0xD800 <= c <= 0xDFFF else c
    if k == 8: return 0x10000 + r.randrange(0x100000)
    return 0xD800 + r.randrange(0x800)
def _fz_str(r):
    n = r.choice([0, 1, 1, 2, 3, 5, 8, 13]) if r.random() < 0.97 else r.randrange(1000, 1200)
    return ''.join(chr(_fz_code(r)) for _ in range(n))
def _fz_int(r):
    k = r.random()
    if k < 0.5: return r.randrange(-1000, 1000)
    if k < 0.8: return r.randrange(-2 ** 63, 2 ** 63)
    return r.choice([-1, 1]) * r.getrandbits(r.randrange(64, 300))
def _fz_key(r):
    k = r.randrange(3)
    if k == 0: return _fz_int(r)
    if k == 1: return _fz_str(r)
    return tuple(_fz_int(r) for _ in range(r.randrange(1, 3)))
_fz_dtypes = ['float64', 'float32', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
              'uint64', 'bool', 'complex64', 'complex128', 'float16', 'longdouble', '>f8', '>i4', 'object']
def _fz_array(r, np, depth):
    dt = r.choice(_fz_dtypes)
    rank = r.randrange(4)
    shape = tuple(r.randrange(4) for _ in range(rank))
    n = 1
    for d in shape:
        n *= d
    if dt == 'object':
        a = np.empty(n, dtype=object)
        for i in range(n):
            a[i] = _fz_value(r, np, depth + 1)
        a = a.reshape(shape)
    else:
        d = np.dtype(dt)
        raw = np.frombuffer(bytes(r.getrandbits(8) for _ in range(n * d.itemsize)), dtype=np.uint8)
        if d.kind == 'b':
            a = (raw[:n] & 1).astype(bool).reshape(shape)
        else:
            a = raw.view(d).reshape(shape).copy()
    if rank >= 1 and r.random() < 0.4:
        k = r.randrange(3)
        a = a[::-1] if k == 0 else (a[::2] if k == 1 else a.T)
    return a
def _fz_npscalar(r, np):
    k = r.randrange(8)
    if k == 0: return np.float64(_fz_float(r))
    if k == 1: return np.float32(r.uniform(-1e3, 1e3))
    if k == 2: return np.int64(r.randrange(-2 ** 63, 2 ** 63))
    if k == 3: return np.uint8(r.randrange(256))
    if k == 4: return np.bool_(r.random() < 0.5)
    if k == 5: return np.complex64(complex(r.uniform(-9, 9), r.uniform(-9, 9)))
    if k == 6: return np.complex128(complex(_fz_float(r), _fz_float(r)))
    return np.uint64(r.randrange(2 ** 64))
def _fz_value(r, np, depth):
    k = r.randrange(100)
    leaf = depth >= 3
    if k < 12: return _fz_int(r)
    if k < 22: return _fz_float(r)
    if k < 32: return _fz_str(r)
    if k < 35: return r.random() < 0.5
    if k < 37: return None
    if k < 40: return complex(_fz_float(r), _fz_float(r))
    if k < 43: return _fz_fr.Fraction(r.randrange(-10 ** 9, 10 ** 9), r.randrange(2, 10 ** 6))
    if k < 45: return _fz_LC(chr(_fz_code(r)))
    if k < 48:
        return r.choice([lambda: {1, 2}, lambda: frozenset(['a']), lambda: _fz_Point(1, 'b'),
                         lambda: _fz_col.Counter('aab'), lambda: _fz_col.OrderedDict(a=1),
                         lambda: _fz_col.defaultdict(list)])()
    if np is not None and k < 54: return _fz_npscalar(r, np)
    if np is not None and k < 66: return _fz_array(r, np, depth)
    if leaf: return _fz_int(r)
    if k < 76: return tuple(_fz_value(r, np, depth + 1) for _ in range(r.randrange(5)))
    if k < 86: return [_fz_value(r, np, depth + 1) for _ in range(r.randrange(5))]
    return {_fz_key(r): _fz_value(r, np, depth + 1) for _ in range(r.randrange(4))}
def _fz_expect(v):
    np = _fz_np
    t = type(v)
    if t is float: return _fz_quiet(v)
    if t is complex: return complex(_fz_quiet(v.real), _fz_quiet(v.imag))
    if t in (bool, int, str, type(None)) or t is _fz_LC: return v
    if t is tuple: return tuple(_fz_expect(x) for x in v)
    if t is list: return [_fz_expect(x) for x in v]
    if t is dict: return {_fz_expect(k): _fz_expect(x) for k, x in v.items()}
    if t is _fz_fr.Fraction: return int(v) if v.denominator == 1 else v
    if np is not None:
        if t is np.ndarray:
            dt = v.dtype
            if dt.kind == 'O':
                if v.ndim == 1:
                    return [_fz_expect(x) for x in v]
                out = np.empty(v.shape, dtype=object)
                for idx in np.ndindex(*v.shape):
                    out[idx] = _fz_expect(v[idx])
                return out
            if dt.kind == 'f' and dt.itemsize < 4: return v.astype(np.float32)
            if dt.kind == 'f' and dt.itemsize > 8: return v.astype(np.float64)
            if dt.kind == 'c' and dt.itemsize > 16: return v.astype(np.complex128)
            if not dt.isnative: return v.astype(dt.newbyteorder('='))
            return v
        if isinstance(v, np.bool_): return bool(v)
        if isinstance(v, np.integer): return int(v)
        if isinstance(v, np.floating): return _fz_quiet(float(v))
        if isinstance(v, np.complexfloating): return _fz_expect(complex(v))
    return _FzSame(v)
def _fz_same(e, a):
    np = _fz_np
    if type(e) is _FzSame: return a is e.obj
    t = type(e)
    if t is not type(a): return False
    if t is float: return _fz_bits(e) == _fz_bits(a)
    if t is complex: return _fz_bits(e.real) == _fz_bits(a.real) and _fz_bits(e.imag) == _fz_bits(a.imag)
    if t is tuple or t is list: return len(e) == len(a) and all(_fz_same(x, y) for x, y in zip(e, a))
    if t is dict: return len(e) == len(a) and all(k in a and _fz_same(e[k], a[k]) for k in e)
    if np is not None and t is np.ndarray:
        if e.dtype != a.dtype or e.shape != a.shape: return False
        if e.dtype.kind == 'O': return all(_fz_same(x, y) for x, y in zip(e.flat, a.flat))
        return e.tobytes() == a.tobytes()
    return e == a
def _fz_setup(seed, n, use_numpy, lisp_char):
    global _fz_np, _fz_LC, _fz_vals, _fz_filters
    import warnings
    _fz_filters = warnings.filters[:]
    # Casting random long doubles and float16s to float warns; the values are what is tested.
    warnings.simplefilter('ignore', RuntimeWarning)
    _fz_np = __import__('numpy') if use_numpy else None
    _fz_LC = type(lisp_char)
    r = _fz_random.Random(seed)
    _fz_vals = [_fz_value(r, _fz_np, 0) for _ in range(n)]
    return len(_fz_vals)
def _fz_done():
    import warnings
    warnings.filters[:] = _fz_filters
    globals().pop('_fz_vals', None)
def _fz_slice(i, j):
    return _fz_vals[i:j]
def _fz_get(i):
    return _fz_vals[i]
def _fz_check(i, back):
    bad = []
    for k, a in enumerate(back):
        v = _fz_vals[i + k]
        if not _fz_same(_fz_expect(v), a):
            bad.append('%d: %.200r came back as %.200r' % (i + k, v, a))
    return bad
def _fz_check1(i, a):
    return _fz_check(i, [a])
def _fz_echo(x):
    return x
")

(defun fuzz-lisp-made (n numpy)
  "Sends N random Lisp values to Python and back (one in four on their own, the rest 20 to a
vector); returns the mismatches (index, value, result)."
  (let ((bad '()) (i 0))
    (loop while (< i n)
          do (if (zerop (fuzz-below 4))
                 (let* ((x (fuzz-lisp-value 0))
                        (back (pycall "_fz_echo" x)))
                   (unless (fuzz-same-p (fuzz-expected x numpy) back)
                     (push (list i x back) bad))
                   (incf i))
                 (let* ((k (min 20 (- n i)))
                        (xs (coerce (loop repeat k collect (fuzz-lisp-value 0)) 'simple-vector))
                        (back (pycall "_fz_echo" xs)))
                   (dotimes (j k)
                     (unless (and (simple-vector-p back) (fuzz-same-p (fuzz-expected (svref xs j) numpy)
                                                                      (svref back j)))
                       (push (list (+ i j) (svref xs j) (and (simple-vector-p back) (svref back j))) bad)))
                   (incf i k))))
    (nreverse bad)))

(defun fuzz-python-made (n)
  "Brings the N values Python made to Lisp and sends them back for Python to compare (one in
four on its own, the rest 20 at a time); returns Python's mismatch descriptions."
  (let ((bad '()) (i 0))
    (loop while (< i n)
          do (flet ((note (result) (when (vectorp result) (setf bad (append bad (coerce result 'list))))))
               (if (zerop (fuzz-below 4))
                   (progn (note (pycall "_fz_check1" i (pycall "_fz_get" i)))
                          (incf i))
                   (let ((j (min n (+ i 20))))
                     (note (pycall "_fz_check" i (pycall "_fz_slice" i j)))
                     (setf i j)))))
    bad))

(fiveam:test conversion-fuzz
  "At least 10,000 random values each way (numbers of every kind incl. -0.0/inf/NaN, strings
with astral characters and lone surrogates, characters, nested containers, 0-d, strided and
object arrays of every element type) come back exactly as the type table says."
  (let* ((seed (fuzz-seed))
         (numpy (numpy-p))
         (start (get-internal-real-time)))
    (when numpy (import-module "numpy"))
    (format t "~&fuzz: seed ~D (PY4CL2_CFFI_FUZZ_SEED overrides), ~D values each way~:[, WITHOUT ~
               numpy (Lisp arrays go as nested lists, Python makes no arrays): numpy is not ~
               importable by ~A~;~*~]~%"
            seed *fuzz-count* numpy py4cl2-cffi/config:*python-executable-path*)
    (raw-pyexec *fuzz-python-code*)
    (setf *fuzz-state* (1+ (mod seed #xFFFFFFFE)))
    (pycall "_fz_setup" seed *fuzz-count* numpy #\c)
    (multiple-value-bind (lisp-bad python-bad)
        (unwind-protect (values (fuzz-lisp-made *fuzz-count* numpy) (fuzz-python-made *fuzz-count*))
          (pycall "_fz_done"))
      (format t "~&fuzz: ~D Lisp-made and ~D Python-made mismatches in ~,1F s~%"
              (length lisp-bad) (length python-bad)
              (/ (- (get-internal-real-time) start) internal-time-units-per-second))
      (fiveam:is (null lisp-bad) "seed ~D, Lisp -> Python -> Lisp mismatches:~{~%  ~A~}" seed
                 (loop for (i x back) in (subseq lisp-bad 0 (min 10 (length lisp-bad)))
                       collect (format nil "~D: ~A came back as ~A" i (fuzz-describe x) (fuzz-describe back))))
      (fiveam:is (null python-bad) "seed ~D, Python -> Lisp -> Python mismatches:~{~%  ~A~}" seed
                 (subseq python-bad 0 (min 10 (length python-bad)))))))

(fiveam:test signalling-nan-arrives-quiet
  "A signalling NaN made in Python (from bytes) arrives as the quiet NaN of the same payload;
other NaNs, infinities and -0.0 keep their bits."
  (dolist (case '((#x7FF0000000000001 #x7FF8000000000001) (#xFFF0000000000123 #xFFF8000000000123)
                  (#x7FF8000000000005 #x7FF8000000000005) (#x7FF0000000000000 #x7FF0000000000000)
                  (#x8000000000000000 #x8000000000000000) (#x0000000000000001 #x0000000000000001)))
    (destructuring-bind (sent expected) case
      (let ((x (raw-pyeval (format nil "__import__('struct').unpack('<d', (~D).to_bytes(8, 'little'))[0]" sent))))
        (fiveam:is (= expected (double-bits x)) "~16,'0X came as ~16,'0X" sent (double-bits x)))
      (let ((z (raw-pyeval (format nil "complex(0.0, __import__('struct').unpack('<d', (~D).to_bytes(8, 'little'))[0])" sent))))
        (fiveam:is (= expected (double-bits (imagpart z))) "in a complex")))))

(fiveam:test x87-flags-raised-in-python-do-not-trap-later
  "numpy's long-double code raises x87 flags with traps masked; they must not trap in the next
call (a FLOATING-POINT-INVALID-OPERATION from the shim's next entry, found by the fuzz)."
  (with-numpy
    (if (/= 16 (pycall "lambda: __import__('numpy').dtype(__import__('numpy').longdouble).itemsize"))
        (skip-test "numpy's longdouble is not the 80-bit x87 type here")
        (progn
          ;; An x87 "unnormal" (exponent set, integer bit clear): loading it is an invalid operation.
          (fiveam:is (pycall "lambda: __import__('math').isnan(float(__import__('numpy').frombuffer(bytes([1,0,0,0,0,0,0,0,0xff,0x3f,0,0,0,0,0,0]), dtype=__import__('numpy').longdouble)[0]))"))
          (fiveam:is (= 1 (pycall "len" "x")) "the next call")
          (fiveam:is (= 2d0 (+ 1d0 (pycall "float" 1))) "and Lisp arithmetic")))))
