;;;; Tests: defpyfun and defpymodule: options, lambda lists and docstrings from Python.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)
