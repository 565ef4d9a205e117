;;;; Tests: chain, pyref, remote objects, generators, wrapper equality, Lisp objects in Python.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)
