;;;; Tests: Lisp callbacks: lambda lists mapped from args/kwargs, re-entrancy, errors both ways.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(defun define-callers ()
  (raw-pyexec "def cb_call(fn, *args, **kwargs): return fn(*args, **kwargs)
def cb_error_name(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return 'no error'
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
"))

(defgeneric cb-generic (x))
(defmethod cb-generic ((x integer)) (list :int x))
(defmethod cb-generic (x) (list :other x))

(fiveam:test callback-lambda-lists
  (define-callers)
  ;; The original's example: keywords come back to Python as str.
  (fiveam:is (equal '(8 9 "a" 2 "b" 3 "d" 5)
                    (pycall "cb_call" (lambda (d e &rest args &key a b &allow-other-keys)
                                        (declare (ignore a b))
                                        (list* d e args))
                            8 9 :a 2 :b 3 :d 5)))
  (fiveam:is (equal '(1 7) (pycall "cb_call" (lambda (a &optional (b 7)) (list a b)) 1)))
  (fiveam:is (equal '(1 2) (pycall "cb_call" (lambda (a &optional (b 7)) (list a b)) 1 2)))
  (fiveam:is (equal '(1 (2 3)) (pycall "cb_call" (lambda (a &rest r) (list a r)) 1 2 3)))
  (fiveam:is (equal '(1 5 nil) (pycall "cb_call" (lambda (a &key b c) (list a b c)) 1 :b 5)))
  ;; Python keyword foo_bar -> Lisp :foo-bar, in Python's order.
  (fiveam:is (equal '(3 4) (pycall "lambda f: f(foo_bar=3, x=4)" (lambda (&key foo-bar x) (list foo-bar x)))))
  (fiveam:is (equal '("foo_bar" 3 "x" 4)
                    (pycall "lambda f: f(foo_bar=3, x=4)" (lambda (&rest all) all))))
  (fiveam:is (= 10 (pycall "lambda f: f(1, 2, c=3, d=4)" (lambda (a b &key c d) (+ a b c d)))))
  ;; Named functions and generic functions work too.
  (fiveam:is (equal "(3, 4)" (pycall "lambda f: str(f(3, 4))" #'list)))
  (fiveam:is (= 5 (pycall "cb_call" #'+ 2 3)))
  (fiveam:is (equal '("int" 4) (pycall "cb_call" #'cb-generic 4)) "a generic function")
  (fiveam:is (equal '("other" "x") (pycall "cb_call" #'cb-generic "x"))))

(fiveam:test callback-argument-errors-are-type-errors
  (define-callers)
  (flet ((err (fn &rest args) (apply #'pycall "cb_error_name" fn args)))
    (let ((r (err (lambda (a &key b) (list a b)) 1 :c 2)))
      (fiveam:is (search "TypeError" r) "unknown keyword: ~A" r)
      (fiveam:is (search "'c'" r)))
    (fiveam:is (equal "no error" (err (lambda (a &key b &allow-other-keys) (list a b)) 1 :c 2))
               "&allow-other-keys takes unknown keywords")
    (let ((r (err (lambda (a) a) 1 2)))
      (fiveam:is (search "TypeError" r) "too many positional: ~A" r)
      (fiveam:is (search "takes 1 positional argument but 2 were given" r) "~A" r))
    (let ((r (err (lambda (a b) (list a b)) 1)))
      (fiveam:is (search "TypeError" r) "missing argument: ~A" r))
    (let ((r (err (lambda (a &key b) (list a b)) 1 2)))
      (fiveam:is (search "TypeError" r) "positional into &key: ~A" r))
    (let ((r (err (lambda () 1) :x 1)))
      (fiveam:is (search "unexpected keyword argument 'x'" r) "no &key: ~A" r)))
  (fiveam:signals pyerror (pycall "cb_call" (lambda (a) a) 1 2))
  (fiveam:is (= 1 (pycall "cb_call" (lambda (a) a) 1)) "Python stays usable"))

(defun lisp-shout (text &key (times 1) (suffix-mark "!"))
  (format nil "~{~A~}" (loop repeat times collect (concatenate 'string (string-upcase text) suffix-mark))))

(fiveam:test export-function-binds-a-python-name
  (fiveam:is (equal "lisp_shout_py" (export-function #'lisp-shout "lisp_shout_py")))
  (fiveam:is (equal "HI!" (raw-pyeval "lisp_shout_py('hi')")))
  (fiveam:is (equal "HI?HI?" (raw-pyeval "lisp_shout_py('hi', times=2, suffix_mark='?')")))
  (raw-pyexec "def _shout_check():
    try:
        lisp_shout_py('x', nope=1)
    except TypeError as e:
        return 'TypeError ' + str(e)
    return 'no error'")
  (fiveam:is (search "TypeError" (pycall "_shout_check")))
  (export-function 'lisp-shout "lisp_shout_sym")
  (fiveam:is (equal "A!" (raw-pyeval "lisp_shout_sym('a')")) "a symbol names the function")
  (export-function (lambda (x) (* x 10)) "times_ten")
  (fiveam:is (equalp #(10 20 30) (raw-pyeval "[times_ten(x) for x in (1, 2, 3)]"))))

(defun lisp-factorial-through-python (n)
  (if (<= n 1)
      1
      (* n (pycall "lambda f, n: f(n)" #'lisp-factorial-through-python (1- n)))))

(fiveam:test callbacks-are-reentrant
  (fiveam:is (= 3628800 (lisp-factorial-through-python 10)) "Lisp -> Python -> Lisp ... 10 deep")
  (fiveam:is (= 6 (pycall "lambda f: f(2)"
                          (lambda (x) (pycall "lambda g, y: g(y) * 3"
                                              (lambda (z) (pycall "int" (format nil "~D" z)))
                                              x))))
             "Python -> Lisp -> Python -> Lisp -> Python")
  ;; Re-entrant calls with the GIL held explicitly as well.
  (fiveam:is (= 4 (with-python-gil (pycall "lambda f: f(f(1))" (lambda (x) (* 2 x)))))))

(define-condition callback-test-error (error)
  ((payload :initarg :payload :reader callback-test-payload))
  (:report (lambda (c s) (format s "callback test error with ~S" (callback-test-payload c)))))

(fiveam:test lisp-errors-become-python-lisp-errors
  (define-callers)
  (let ((r (pycall "cb_error_name" (lambda () (error 'callback-test-error :payload 42)))))
    (fiveam:is (equal "LispError: callback test error with 42" r) "~A" r))
  (fiveam:is (equal "True" (raw-pyeval "str(issubclass(__import__('py4cl2_cffi').LispError, Exception))")))
  (raw-pyexec "def catch_lisp_error(f):
    import py4cl2_cffi
    try:
        f()
    except py4cl2_cffi.LispError as e:
        return 'caught ' + str(e)")
  (fiveam:is (equal "caught boom" (pycall "catch_lisp_error" (lambda () (error "boom")))))
  ;; Back in Lisp: the original condition, through several levels.
  (let ((c (handler-case (pycall "cb_call" (lambda () (error 'callback-test-error :payload '(1 2))))
             (error (e) e))))
    (fiveam:is (typep c 'callback-test-error))
    (fiveam:is (equal '(1 2) (callback-test-payload c))))
  (let ((c (handler-case (pycall "cb_call" (lambda ()
                                             (pycall "cb_call" (lambda () (error 'callback-test-error :payload :deep)))))
             (error (e) e))))
    (fiveam:is (typep c 'callback-test-error) "two Python levels: ~S" c)
    (fiveam:is (eq :deep (callback-test-payload c))))
  (let ((c (handler-case (pycall "cb_call" (lambda () (car (symbol-value (gensym)))))
             (error (e) e))))
    (fiveam:is (typep c 'unbound-variable) "built-in condition types too: ~S" c)))

(fiveam:test python-error-inside-nested-call
  (define-callers)
  (let ((c (handler-case (pycall "cb_call" (lambda () (pycall "int" "not a number")))
             (pyerror (e) e))))
    (fiveam:is (typep c 'simple-pyerror))
    (fiveam:is (equal "ValueError" (pyerror-type c))))
  ;; Caught inside Lisp, the nested Python error does not disturb the outer call.
  (fiveam:is (equal "handled" (pycall "cb_call" (lambda () (handler-case (pycall "int" "x")
                                                             (pyerror () :handled)))))
             "a keyword result is a str in Python")
  (fiveam:is (equal "handled" (pycall "cb_call" (lambda () (handler-case (pycall "int" "x")
                                                             (pyerror () "handled"))))))
  ;; Python catches the LispError that carries a nested Python error.
  (let ((r (pycall "cb_error_name" (lambda () (pycall "int" "x")))))
    (fiveam:is (search "LispError" r) "~A" r)
    (fiveam:is (search "ValueError" r) "the report names the Python error: ~A" r)))

(fiveam:test swallowed-lisp-errors-do-not-leak
  (define-callers)
  (dotimes (i 500)
    (pycall "cb_error_name" (lambda () (error "swallowed ~D" i))))
  (let ((n (hash-table-count py4cl2-cffi::*lisp-conditions*)))
    (fiveam:is (<= n 40) "conditions kept after 500 swallowed errors: ~D" n))
  ;; Coming back to Lisp still works after the clean-ups.
  (fiveam:signals callback-test-error
    (pycall "cb_call" (lambda () (error 'callback-test-error :payload 1)))))

(fiveam:test non-local-exits-stop-at-python
  (define-callers)
  (fiveam:is (typep (handler-case (block out (pycall "cb_call" (lambda () (return-from out 5))))
                      (error (e) e))
                    'callback-non-local-exit))
  (fiveam:is (typep (handler-case (catch 'tag (pycall "cb_call" (lambda () (throw 'tag 5))))
                      (error (e) e))
                    'callback-non-local-exit))
  ;; A HANDLER-CASE outside for a non-error condition still gets it.
  (fiveam:is (equal '(:warned "careful")
                    (handler-case (pycall "cb_call" (lambda () (warn "careful") 3))
                      (warning (w) (list :warned (princ-to-string w))))))
  ;; Warnings nobody handles do not stop the callback.
  (fiveam:is (= 3 (handler-bind ((warning #'muffle-warning))
                    (pycall "cb_call" (lambda () (warn "ignored") 3)))))
  (fiveam:is (= 7 (pycall "cb_call" (lambda () 7))) "Python stays usable"))

;;; Lisp objects in Python.
(defstruct cb-point x y (long-name "default"))

(defclass cb-animal ()
  ((name :initarg :name :accessor cb-animal-name)
   (leg-count :initarg :legs)
   (unset)))

(defclass cb-thermometer ()
  ((celsius :initarg :celsius :accessor celsius)))

(defmethod python-getattr ((object cb-thermometer) slot-name)
  (if (string= slot-name "fahrenheit")
      (+ 32 (* 9/5 (celsius object)))
      (call-next-method)))

(defmethod python-setattr ((object cb-thermometer) slot-name value)
  (if (string= slot-name "fahrenheit")
      (setf (celsius object) (* 5/9 (- value 32)))
      (call-next-method)))

(fiveam:test structures-in-python
  (let ((p (make-cb-point :x 1 :y 2)))
    (fiveam:is (= 3 (pycall "lambda p: p.x + p.y" p)))
    (fiveam:is (equal "default" (pycall "lambda p: p.long_name" p)) "foo_bar -> FOO-BAR")
    (fiveam:is (eq p (pycall "lambda p: p" p)) "the same Lisp object comes back")
    (fiveam:is (eq p (aref (pycall "lambda p: [p, p]" p) 1)))
    (pycall "lambda p: setattr(p, 'x', 10)" p)
    (fiveam:is (= 10 (cb-point-x p)) "setattr sets the slot")
    (raw-pyexec "def cb_set_long(p): p.long_name = 'changed'")
    (pycall "cb_set_long" p)
    (fiveam:is (equal "changed" (cb-point-long-name p)))
    (fiveam:is (search "CB-POINT" (pycall "repr" p)))
    (fiveam:is (eq nil (pycall "lambda p: hasattr(p, 'z')" p)) "missing slots are AttributeErrors")
    (raw-pyexec "def cb_bad_set(p):
    try:
        p.nope = 1
    except AttributeError as e:
        return 'AttributeError'")
    (fiveam:is (equal "AttributeError" (pycall "cb_bad_set" p)))
    (fiveam:is (equal "LispObject" (pycall "lambda p: type(p).__name__" p)))
    (fiveam:is (member "long_name" (coerce (pycall "dir" p) 'list) :test #'equal))))

(fiveam:test clos-instances-in-python
  (let ((a (make-instance 'cb-animal :name "cat" :legs 4)))
    (fiveam:is (equal '("cat" 4) (pycall "lambda a: (a.name, a.leg_count)" a)))
    (pycall "lambda a: setattr(a, 'name', 'dog')" a)
    (fiveam:is (equal "dog" (cb-animal-name a)))
    (fiveam:is (eq nil (pycall "lambda a: hasattr(a, 'unset')" a)) "an unbound slot is missing")
    (fiveam:is (eq a (pycall "lambda a: a" a))))
  (let ((th (make-instance 'cb-thermometer :celsius 100)))
    (fiveam:is (= 212 (pycall "lambda t: t.fahrenheit" th)) "a user method of python-getattr")
    (fiveam:is (= 100 (pycall "lambda t: t.celsius" th)) "call-next-method reaches the slot")
    (pycall "lambda t: setattr(t, 'fahrenheit', 32)" th)
    (fiveam:is (= 0 (celsius th)) "a user method of python-setattr"))
  ;; A Lisp error inside a user method is a LispError in Python and the condition in Lisp.
  (let ((th (make-instance 'cb-thermometer :celsius "not a number")))
    (fiveam:signals type-error (pycall "lambda t: t.fahrenheit" th))))

(fiveam:test lisp-object-handles-are-released
  (let ((before (hash-table-count py4cl2-cffi::*lisp-object-handles*)))
    (dotimes (i 200)
      (pycall "lambda p: p.x" (make-cb-point :x i)))
    (pycall "lambda: __import__('gc').collect()")
    (let ((after (hash-table-count py4cl2-cffi::*lisp-object-handles*)))
      (fiveam:is (<= after (+ before 2)) "handles before ~D, after ~D" before after)))
  ;; Kept in Python, the object stays reachable.
  (let ((p (make-cb-point :x 99)))
    (setf (pyvalue "kept_point") p)
    (fiveam:is (eq p (pyvalue "kept_point")))
    (fiveam:is (= 99 (raw-pyeval "kept_point.x")))
    (raw-pyexec "del kept_point")))
