;;;; numpy arrays <-> Lisp arrays through the buffer protocol (no numpy C API).

(in-package :py4cl2-cffi)
