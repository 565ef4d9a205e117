;;;; Tests: numpy arrays both ways: dtypes, orders, strides, in-place :out, wrappers for object dtypes.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi-numpy)
