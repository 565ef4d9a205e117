;;;; Tests: matplotlib (Agg) from Lisp: a figure saved as a PNG.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi-numpy)
