;;;; py4cl2-cffi/single-threaded: every Python call runs on one dedicated Lisp thread.

(in-package :py4cl2-cffi)
