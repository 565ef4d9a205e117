;;;; Tests: Python's stdout and stderr into Lisp streams, in order, and captured as strings.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(fiveam:test stdout-to-lisp
  (let ((text (with-output-to-string (*standard-output*)
                (raw-pyexec "print('one')")
                (write-string "lisp
")
                (pycall "print" "two"))))
    (fiveam:is (equal (format nil "one~%lisp~%two~%") text) "in order with Lisp's own output")))

(fiveam:test stderr-to-lisp
  (let ((text (with-output-to-string (*error-output*)
                (raw-pyexec "import sys; sys.stderr.write('oops\\n')"))))
    (fiveam:is (equal (format nil "oops~%") text))))

(fiveam:test with-python-output-captures
  (fiveam:is (equal (format nil "hello~%") (with-python-output (pycall "print" "hello"))))
  (fiveam:is (equal (format nil "ünïcode 😀~%") (with-python-output (raw-pyexec "print('ünïcode 😀')"))))
  (fiveam:is (equal "" (with-python-output (pycall "len" "quiet"))) "nothing printed")
  (fiveam:is (equal "" (with-python-output (format t "lisp only"))) "Lisp output is not captured")
  (fiveam:is (equal (format nil "e~%") (with-python-error-output
                                         (raw-pyexec "import sys; print('e', file=sys.stderr)"))))
  (fiveam:is (equal "" (with-python-error-output (pycall "print" "to stdout")))))

(fiveam:test output-interleaving
  (let* ((out (make-string-output-stream))
         (both (make-broadcast-stream out)))
    (let ((*standard-output* both) (*error-output* both))
      (raw-pyexec "import sys
print('a'); print('b', file=sys.stderr); print('c')"))
    (fiveam:is (equal (format nil "a~%b~%c~%") (get-output-stream-string out)))))

(fiveam:test output-after-error
  (fiveam:signals pyerror (raw-pyexec "print('before'); raise KeyError('k')"))
  (fiveam:is (equal (format nil "after~%") (with-python-output (pycall "print" "after")))))
