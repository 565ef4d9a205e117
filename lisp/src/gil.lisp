;;;; The GIL held over a block from Lisp (the shim takes it per call otherwise).

(in-package :py4cl2-cffi)

(defmacro with-python-gil (&body body)
  "Holds Python's GIL for this thread during BODY (nestable). Calls inside BODY skip taking and
releasing it each time. Starts Python first if needed. Decrefs queued by finalizers still run
at the next call. Returns the values of BODY."
  `(call-with-python-gil (lambda () ,@body)))

(defun call-with-python-gil (function)
  (python-start-if-not-alive)
  (check-status (%gil-acquire))
  (unwind-protect (funcall function)
    (%gil-release)))
