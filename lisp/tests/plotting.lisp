;;;; Tests: matplotlib (Agg) from Lisp: a figure saved as a PNG.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi-numpy)

(defun matplotlib-p ()
  "T if the running Python can import matplotlib."
  (python-start-if-not-alive)
  (eq t (raw-pyeval "__import__('importlib.util').util.find_spec('matplotlib') is not None")))

(defun png-signature-p (path)
  "T if the file PATH starts with the 8-byte PNG signature."
  (with-open-file (in path :element-type '(unsigned-byte 8))
    (let ((head (make-array 8 :element-type '(unsigned-byte 8) :initial-element 0)))
      (and (= 8 (read-sequence head in))
           (equalp head #(137 80 78 71 13 10 26 10))))))

(defun draw-plot (path)
  "Draws sin and cos (Lisp arrays, lent to matplotlib) with the Agg backend and saves a PNG at PATH."
  (pycall "matplotlib.use" "Agg")
  (import-module "matplotlib.pyplot" :as "plt")
  (let* ((n 200)
         (x (make-array n :element-type 'double-float))
         (y (make-array n :element-type 'double-float))
         (z (make-array n :element-type 'double-float)))
    (dotimes (i n)
      (let ((v (* i (/ (* 4 pi) (1- n)))))
        (setf (aref x i) v (aref y i) (sin v) (aref z i) (cos v))))
    (let ((fig (with-remote-objects (pycall "plt.figure" :figsize '(6 3.5) :dpi 100))))
      (pycall "plt.plot" x y :label "sin x")
      (pycall "plt.plot" x z :label "cos x" :linestyle "--")
      (pycall "plt.title" "py4cl2-cffi: matplotlib (Agg) from Lisp")
      (pycall "plt.xlabel" "x")
      (pycall "plt.legend")
      (pycall "plt.grid" t)
      (pycall "plt.tight_layout")
      (pycall "plt.savefig" (namestring path))
      (pycall "plt.close" fig))
    path))

(fiveam:test matplotlib-agg-saves-a-png
  (if (not (matplotlib-p))
      (skip-test "matplotlib is not importable by ~A (run tools/make-venvs.sh)"
                 py4cl2-cffi/config:*python-executable-path*)
      (let ((path (merge-pathnames (format nil "py4cl2-cffi-plot-~D.png" (random 1000000 (make-random-state t)))
                                   (uiop:temporary-directory))))
        (unwind-protect
             (progn
               (draw-plot path)
               (fiveam:is (probe-file path) "the PNG file exists")
               (when (probe-file path)
                 (fiveam:is (png-signature-p path) "the file starts with the PNG signature")
                 (with-open-file (in path :element-type '(unsigned-byte 8))
                   (fiveam:is (> (file-length in) 5000) "a drawn figure, not an empty image"))))
          (when (probe-file path) (delete-file path))))))
