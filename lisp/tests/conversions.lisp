;;;; Tests: the type table both ways, exact numbers, unicode, containers, wrappers, user conversions.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(defun py-repr (x) (pycall "repr" x))
(defun round-trip (x) (pycall "lambda x: x" x))

(fiveam:test integers-exact
  (dolist (n (list 0 1 -1 most-positive-fixnum most-negative-fixnum (1- (expt 2 63)) (- (expt 2 63))
                   (expt 2 63) (expt 2 64) (- (expt 2 200)) (1+ (expt 10 40)) (- (expt 3 333))))
    (fiveam:is (eql n (round-trip n)) "round trip of ~D" n)
    (fiveam:is (equal (format nil "~D" n) (py-repr n)) "Python sees ~D" n))
  (fiveam:is (= (expt 2 100) (raw-pyeval "2**100")))
  (fiveam:is (= (- (expt 7 77)) (raw-pyeval "-(7**77)"))))

(fiveam:test floats-ratios-complex
  (fiveam:is (eql 1.5d0 (round-trip 1.5d0)))
  (fiveam:is (eql 0.5d0 (round-trip 0.5f0)) "single floats go as Python floats (doubles)")
  (fiveam:is (equal "0.1" (py-repr 0.1d0)))
  (fiveam:is (eql 1/3 (round-trip 1/3)))
  (fiveam:is (equal "Fraction(-22, 7)" (py-repr -22/7)))
  (fiveam:is (eql (/ (expt 10 30) 7) (round-trip (/ (expt 10 30) 7))))
  (fiveam:is (eql #C(1.5d0 -2d0) (round-trip #C(1.5d0 -2d0))))
  (fiveam:is (equal "(1+2j)" (py-repr #C(1 2))))
  (fiveam:is (eql #C(0d0 1d0) (raw-pyeval "1j"))))

(fiveam:test strings-and-unicode
  (dolist (s (list "" "abc" "héllo wörld" "日本語" "emoji 😀 and 𝄞 beyond the BMP"
                   (coerce "base" 'base-string) (make-string 3000 :initial-element #\λ)
                   (format nil "a~%b~Cc" #\Tab)))
    (fiveam:is (string= s (round-trip s)) "round trip of ~S" (subseq s 0 (min 20 (length s)))))
  (fiveam:is (= 2 (pycall "len" "😀𝄞")) "astral characters are one character each in Python")
  (fiveam:is (= #x1F600 (pycall "ord" "😀")))
  (fiveam:is (equal "😀" (pycall "chr" #x1F600)))
  (fiveam:is (equal "x" (round-trip #\x)) "a character is a str")
  (fiveam:is (= 100000 (length (raw-pyeval "'ab' * 50000"))))
  (fiveam:is (equal "'foo_bar'" (py-repr :foo-bar)) "keywords are lower-cased names")
  (fiveam:is (equal "'some_symbol'" (py-repr 'some-symbol))))

(fiveam:test booleans-none-empty-tuple
  (fiveam:is (eq t (round-trip t)))
  (fiveam:is (eq nil (round-trip nil)))
  (fiveam:is (equal "True" (py-repr t)))
  (fiveam:is (equal "False" (py-repr nil)))
  (fiveam:is (eq +py-none+ (raw-pyeval "None")))
  (fiveam:is (equal "None" (py-repr +py-none+)))
  (fiveam:is (eq +py-none+ (pycall "print" "")) "a function returning None")
  (fiveam:is (eq +py-empty-tuple+ (raw-pyeval "()")))
  (fiveam:is (equal "()" (py-repr +py-empty-tuple+)))
  (fiveam:is (cffi:pointerp +py-none-pointer+))
  (fiveam:is (equal "None" (py-repr +py-none-pointer+)))
  (fiveam:is (equal "()" (py-repr +py-empty-tuple-pointer+))))

(fiveam:test containers
  (fiveam:is (equal "(1, 2, 3)" (py-repr '(1 2 3))) "a list is a tuple")
  (fiveam:is (equal "[1, 2, 3]" (py-repr #(1 2 3))) "a vector is a list")
  (fiveam:is (equal '(1 "a" 2.5d0) (raw-pyeval "(1, 'a', 2.5)")))
  (fiveam:is (equalp #(1 #(2 3) (4 5)) (raw-pyeval "[1, [2, 3], (4, 5)]")))
  (let ((h (raw-pyeval "{'a': 1, 'b': [1, 2], 3: 'c'}")))
    (fiveam:is (hash-table-p h))
    (fiveam:is (eq 'equal (hash-table-test h)))
    (fiveam:is (= 1 (gethash "a" h)))
    (fiveam:is (equalp #(1 2) (gethash "b" h)))
    (fiveam:is (equal "c" (gethash 3 h))))
  (let ((h (make-hash-table :test 'equal)))
    (setf (gethash "k" h) '(1 (2 #(3))) (gethash 7 h) "seven")
    (let ((back (round-trip h)))
      (fiveam:is (equalp '(1 (2 #(3))) (gethash "k" back)))
      (fiveam:is (equal "seven" (gethash 7 back)))))
  (let ((deep (list 1 (list 2 (list 3 (list 4 (vector 5 "six" (list 7.0d0))))))))
    (fiveam:is (equalp deep (round-trip deep)) "nested containers"))
  (fiveam:is (equalp (make-array 0 :element-type '(unsigned-byte 8)) (raw-pyeval "b''")))
  (fiveam:is (equalp #(104 105) (raw-pyeval "b'hi'")))
  (fiveam:is (pyobject-wrapper-p (raw-pyeval "{1, 2}")) "a set has no default conversion"))

(fiveam:test wrappers-and-printing
  (import-module "sys")
  (import-module "math")
  (let ((w (pyvalue "sys")))
    (fiveam:is (pyobject-wrapper-p w))
    (let ((*print-pyobject-wrapper-identity* t) (*print-pyobject* t))
      (let ((text (princ-to-string w)))
        (fiveam:is (search "PYOBJECT-WRAPPER" text))
        (fiveam:is (search "<module 'sys' (built-in)>" text))))
    (let ((*print-pyobject-wrapper-identity* nil) (*print-pyobject* t))
      (fiveam:is (equal "<module 'sys' (built-in)>" (princ-to-string w))))
    (let ((*print-pyobject-wrapper-identity* t) (*print-pyobject* nil))
      (fiveam:is (not (search "<module" (princ-to-string w)))))
    (fiveam:is (pyobject-wrapper-eq w (pyvalue "sys")) "the same object")
    (fiveam:is (pyobject-wrapper-eq* w (pyvalue "sys")))
    (fiveam:is (not (pyobject-wrapper-eq w (pyvalue "math"))))
    (fiveam:is (pyobject-wrapper-eq 1 1))
    (fiveam:is (not (pyobject-wrapper-eq w 1)))))

(fiveam:test user-lispifiers
  (fiveam:is (equal '(1 2 3)
                    (with-lispifiers ((vector (lambda (x) (coerce x 'list))))
                      (raw-pyeval "[1,2,3]"))))
  (fiveam:is (= 5 (with-lispifiers ((vector (lambda (x) (coerce x 'list))))
                    (raw-pyeval "5"))) "uncalled for other types")
  (fiveam:is (equal '(:int 2) (with-lispifiers ((integer (lambda (x) (list :int x))))
                                (raw-pyeval "2"))))
  (fiveam:is (equalp #(1 2 3) (raw-pyeval "[1,2,3]")) "only inside the form")
  (raw-pyexec "class Celsius:
    def __init__(self, d): self.degrees = d")
  (define-lispifier "__main__.Celsius" (o)
    (list :celsius (pyslot-value o "degrees")))
  (fiveam:is (equal '(:celsius 21) (pycall "Celsius" 21)))
  (fiveam:is (equal '((:celsius 1) (:celsius 2)) (raw-pyeval "(Celsius(1), Celsius(2))"))))

(defstruct test-point x y)
(defmethod pythonize ((p test-point))
  (pythonize (list (test-point-x p) (test-point-y p))))

(fiveam:test user-pythonizers
  (fiveam:is (equal "[1, 2, 3]" (py-repr #(1 2 3))))
  (fiveam:is (equal "(1, 2, 3)" (with-pythonizers ((vector "tuple")) (py-repr #(1 2 3)))))
  (fiveam:is (equal "5" (with-pythonizers ((vector "tuple")) (py-repr 5))))
  (fiveam:is (equal "(3, 4)" (py-repr (make-test-point :x 3 :y 4))) "a PYTHONIZE method")
  (fiveam:is (= 2 (pycall "len" (make-test-point :x 3 :y 4))) "inside a call"))

(fiveam:test unpythonizable-objects
  (fiveam:signals error (pycall "repr" (make-condition 'simple-error)))
  (fiveam:signals error (pycall "repr" *standard-output*))
  (fiveam:is (= 1 (pycall "len" "a")) "usable afterwards"))

