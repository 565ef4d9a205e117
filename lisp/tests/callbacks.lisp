;;;; Tests: Lisp callbacks: lambda lists mapped from args/kwargs, re-entrancy, errors both ways.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)
