;;;; Tests with numpy (run first: after `import numpy` a restart cannot import it again).

(in-package :py4cl2-cffi/tests)
(fiveam:def-suite :py4cl2-cffi-numpy
  :description "Tests with numpy; RUN-SUITE runs them before the rest, whatever order the
Lisp's hash tables give fiveam.")
(fiveam:in-suite :py4cl2-cffi-numpy)

(defvar *sink* nil "Keeps a computed value alive so the compiler does not drop it.")

(fiveam:test float-traps-masked-in-python
  (fiveam:is (= 1 (raw-pyeval "1 if float('inf') - float('inf') != 0 else 0")))
  (with-numpy
    (let ((x (raw-pyeval "np.float64(1)/0")))
      (fiveam:is (and (floatp x) (> x most-positive-double-float)) "+inf, no trap"))
    (let ((x (pycall "np.log" 0)))
      (fiveam:is (and (floatp x) (< x most-negative-double-float)) "-inf, no trap"))
    (fiveam:is (equal "nan" (raw-pyeval "str(np.sqrt(np.float64(-1)))")))
    (fiveam:is (= 3 (length (pycall "np.divide" #(1d0 0d0 -1d0) 0)))))
  ;; Lisp's own traps are back after each call.
  (fiveam:signals division-by-zero (setf *sink* (/ 1d0 (pycall "float" 0)))))

(fiveam:test numpy-scalars-and-arrays
  (with-numpy
    (fiveam:is (eql 1.5d0 (raw-pyeval "np.float64(1.5)")))
    (fiveam:is (eql 1.5f0 (raw-pyeval "np.float32(1.5)")))
    (fiveam:is (eql 7 (raw-pyeval "np.int64(7)")))
    (fiveam:is (eql 7 (raw-pyeval "np.uint8(7)")))
    (fiveam:is (eq t (raw-pyeval "np.bool_(True)")))
    (let ((a (raw-pyeval "np.arange(6, dtype=np.float64).reshape(2, 3)")))
      (fiveam:is (equal '(2 3) (array-dimensions a)))
      (fiveam:is (eq 'double-float (array-element-type a)))
      (fiveam:is (= 5d0 (aref a 1 2))))
    (let ((a (raw-pyeval "np.arange(12, dtype=np.int32).reshape(3, 4).T")))
      (fiveam:is (equal '(4 3) (array-dimensions a)) "strided (transposed) arrays")
      (fiveam:is (= 4 (aref a 0 1))))
    (let ((a (make-array '(2 2) :element-type 'double-float :initial-contents '((1d0 2d0) (3d0 4d0)))))
      (fiveam:is (= 10d0 (pycall "np.sum" a)))
      (fiveam:is (equalp a (pycall "np.array" a))))
    (fiveam:is (equalp #(1f0 2f0) (pycall "np.array" (make-array 2 :element-type 'single-float :initial-contents '(1f0 2f0)))))))
