;;;; Tests: Python objects at the REPL — DESCRIBE shows type, repr and public attributes; *PRINT-READABLY* refuses.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(fiveam:test describe-a-python-object
  (raw-pyexec "class DescribeProbe:
    colour = 'red'
    def __init__(self):
        self.size = 3
        self._hidden = 1
    def grow(self):
        pass
    @property
    def broken(self):
        raise ValueError('no')
    def __repr__(self):
        return 'DescribeProbe(size=3)'")
  (let* ((o (pycall "DescribeProbe"))
         (text (with-output-to-string (s) (describe o s))))
    (fiveam:is (search "Python type: __main__.DescribeProbe" text) "~A" text)
    (fiveam:is (search "repr: DescribeProbe(size=3)" text) "~A" text)
    (fiveam:is (search "colour = 'red'" text) "~A" text)
    (fiveam:is (search "size = 3" text) "~A" text)
    (fiveam:is (search "broken = <ValueError>" text) "a failing property is shown, not raised: ~A" text)
    (fiveam:is (search "Methods:" text) "~A" text)
    (fiveam:is (search "grow" text) "~A" text)
    (fiveam:is (not (search "_hidden" text)) "private attributes are left out: ~A" text)
    (fiveam:is (not (search "__init__" text)) "~A" text))
  (let ((text (with-output-to-string (s) (describe (pyvalue "sys") s))))
    (fiveam:is (search "Python type: module" text) "~A" text)
    (fiveam:is (search "version_info = sys.version_info(" text) "~A" text)))

(fiveam:test print-readably-is-refused
  (let ((o (pycall "object")))
    (fiveam:signals print-not-readable
      (let ((*print-readably* t)) (write o :stream (make-broadcast-stream))))
    (let ((*print-pyobject-wrapper-identity* nil))
      (fiveam:signals print-not-readable
        (let ((*print-readably* t)) (write o :stream (make-broadcast-stream)))))
    (fiveam:is (search "PYOBJECT-WRAPPER" (prin1-to-string o)))
    (fiveam:is (search "<object object at" (princ-to-string o)))))
