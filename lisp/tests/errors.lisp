;;;; Tests: Python exceptions as pyerror conditions, Lisp conditions through Python, stale objects.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(fiveam:test pyerror-carries-type-message-traceback
  (let ((c (handler-case (raw-pyeval "1/0") (pyerror (e) e))))
    (fiveam:is (typep c 'simple-pyerror))
    (fiveam:is (typep c 'pyerror))
    (fiveam:is (equal "ZeroDivisionError" (pyerror-type c)))
    (fiveam:is (equal "division by zero" (pyerror-message c)))
    (fiveam:is (search "Traceback" (pyerror-traceback c)))
    (let ((report (princ-to-string c)))
      (fiveam:is (search "ZeroDivisionError" report))
      (fiveam:is (search "division by zero" report))
      (fiveam:is (search "Traceback" report))))
  (fiveam:is (= 42 (raw-pyeval "40 + 2")) "Python stays usable"))

(fiveam:test pyerror-from-python-functions
  (raw-pyexec "class MyErr(Exception): pass
def inner(): raise MyErr('custom message')
def outer(): inner()")
  (let ((c (handler-case (pycall "outer") (pyerror (e) e))))
    (fiveam:is (equal "__main__.MyErr" (pyerror-type c)))
    (fiveam:is (equal "custom message" (pyerror-message c)))
    (fiveam:is (search "inner" (pyerror-traceback c)) "the traceback names the frames"))
  (let ((c (handler-case (raw-pyexec "def f(:") (pyerror (e) e))))
    (fiveam:is (equal "SyntaxError" (pyerror-type c))))
  (let ((c (handler-case (pycall "int" "x") (pyerror (e) e))))
    (fiveam:is (equal "ValueError" (pyerror-type c)))
    (fiveam:is (search "invalid literal" (pyerror-message c))))
  (dotimes (i 100) (ignore-errors (pycall "int" "x")))
  (fiveam:is (= 5 (pycall "int" "5"))))

(define-condition test-lisp-condition (error) ((payload :initarg :payload :reader payload)))

(fiveam:test lisp-errors-through-python
  (raw-pyexec "def call_it(f, *a): return f(*a)")
  (let ((c (handler-case (pycall "call_it" (lambda () (error 'test-lisp-condition :payload 7)))
             (error (e) e))))
    (fiveam:is (typep c 'test-lisp-condition) "the original Lisp condition comes back")
    (fiveam:is (eql 7 (payload c))))
  (raw-pyexec "def catch_it(f):
    try:
        f()
    except Exception as e:
        return type(e).__name__")
  (fiveam:is (equal "LispError" (pycall "catch_it" (lambda () (error "inside")))) "Python can catch it")
  (fiveam:is (= 3 (pycall "call_it" (lambda (a b) (+ a b)) 1 2)))
  ;; Python -> Lisp -> Python error -> back out.
  (let ((c (handler-case (pycall "call_it" (lambda () (pycall "int" "bad"))) (pyerror (e) e))))
    (fiveam:is (equal "ValueError" (pyerror-type c)))))

(fiveam:test stale-objects-after-restart
  (let ((w (pyvalue "sys")))
    (pystop)
    (pystart)
    (fiveam:signals stale-pyobject-error (pycall "repr" w))
    (fiveam:is (search "earlier start" (princ-to-string w)))))

(fiveam:test not-started-conditions
  (pystop)
  (fiveam:is (not (python-alive-p)))
  (fiveam:signals python-not-started (py4cl2-cffi::check-status (py4cl2-cffi::%gil-release)))
  (pystart))
