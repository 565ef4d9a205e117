;;;; Tests: single-threaded system and saved Lisp images.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)
