;;;; Tests: code written for the original py4cl2-cffi (issue 20, rows 1-8b, 12, 16).

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

;;; As in modules.lisp, DEFPYFUN / DEFPYMODULE forms are EVALuated at run time, so that the fasl
;;; holds no signature of whichever Python compiled it; LAMBDA-LIST-OF, WITH-LAMBDA-LIST,
;;; KEY-NAMES and FRESH-PACKAGE-NAME come from there.

(defun call-sym (package name &rest args)
  (apply (symbol-function (find-symbol name package)) args))

(defun define-test-module (name source)
  "Writes the Python module NAME with SOURCE into a temporary folder on sys.path (imports it
afresh)."
  (let* ((dir (uiop:ensure-directory-pathname
               (merge-pathnames (format nil "p4s-compat-~D/" (random 1000000))
                                (uiop:temporary-directory))))
         (file (merge-pathnames (format nil "~A.py" name) dir)))
    (ensure-directories-exist file)
    (with-open-file (o file :direction :output :if-exists :supersede)
      (write-string source o))
    (pycall "sys.path.insert" 0 (namestring dir))
    (pycall "sys.modules.pop" name +py-none+)
    dir))

(defun forget-test-module (name dir)
  "Undoes DEFINE-TEST-MODULE."
  (pycall "sys.modules.pop" name +py-none+)
  (pycall "sys.path.remove" (namestring dir))
  (uiop:delete-directory-tree dir :validate t :if-does-not-exist :ignore))

;;; Rows 1 and 2: Python parameters passed positionally or by keyword.

(fiveam:test compat-defpyfun-keywords-and-positions
  (raw-pyexec "def p4s_foo(A, b): return [A, b]")
  (let ((*package* (find-package :py4cl2-cffi/tests)))
    (eval '(defpyfun "p4s_foo" nil :lisp-fun-name "P4S-FOO")))
  (let ((foo (intern "P4S-FOO" :py4cl2-cffi/tests)))
    ;; The original's calls (every parameter by keyword) and this project's (positional).
    (fiveam:is (equalp #(4 3) (funcall foo :a 4 :b 3)))
    (fiveam:is (equalp #(4 3) (funcall foo :b 3 :a 4)))
    (fiveam:is (equalp #(4 3) (funcall foo 4 3)))
    (fiveam:is (equalp #(4 3) (funcall foo 4 :b 3)))
    ;; A keyword that is the last argument is a value, as in PYCALL.
    (fiveam:is (equalp #(4 "b") (funcall foo 4 :b)))
    ;; Python binds the arguments, and says what is wrong.
    (let ((c (handler-case (funcall foo 4 :a 5) (pyerror (e) e))))
      (fiveam:is (typep c 'pyerror))
      (fiveam:is (search "multiple values" (princ-to-string c)) "~A" c))
    (fiveam:signals pyerror (funcall foo 4))
    (fiveam:signals pyerror (funcall foo 4 :c 5))
    ;; After the first keyword, only keyword/value pairs.
    (fiveam:signals program-error (funcall foo :a 4 3 :b))
    (fiveam:signals py4cl2-cffi::pyfun-argument-error (funcall foo :a 4 3 :b))
    ;; The shown lambda list says both ways (what SLIME's arglist shows).
    (with-lambda-list (ll foo)
      (fiveam:is (equal '("A" "B" &key "A" "B") ll) "~S" ll))
    (fiveam:is (search "p4s_foo(A, b)" (documentation foo 'function)))))

(fiveam:test compat-shown-lambda-list-where-slime-reads-it
  ;; SLIME's arglist comes from sb-introspect:function-lambda-list (SBCL) and
  ;; ext:function-lambda-list of the symbol (ECL); on SBCL the function is interpreted until its
  ;; first call, then compiled.
  (raw-pyexec "def p4s_bar(A, b=1): return [A, b]")
  (let ((*package* (find-package :py4cl2-cffi/tests)))
    (eval '(defpyfun "p4s_bar" nil :lisp-fun-name "P4S-BAR")))
  (let ((bar (intern "P4S-BAR" :py4cl2-cffi/tests))
        (expected '("A" &optional ("B" 1) &key "A" "B")))
    (flet ((shown ()
             (let ((ll #+sbcl (progn (require :sb-introspect)
                                     (uiop:symbol-call :sb-introspect :function-lambda-list bar))
                       #+ecl (ext:function-lambda-list bar)
                       #-(or sbcl ecl) :unknown))
               (if (listp ll)
                   (mapcar (lambda (x) (cond ((member x lambda-list-keywords) x)
                                             ((symbolp x) (symbol-name x))
                                             ((consp x) (mapcar (lambda (y) (if (symbolp y) (symbol-name y) y)) x))
                                             (t x)))
                           ll)
                   ll))))
      (fiveam:is (equal expected (shown)) "before the first call: ~S" (shown))
      (fiveam:is (equalp #(4 1) (funcall bar :a 4)))
      (fiveam:is (equal expected (shown)) "after it: ~S" (shown))
      #+sbcl (fiveam:is (search "(A &OPTIONAL (B 1) &KEY A B)"
                                (with-output-to-string (*standard-output*) (describe bar)))))))

(fiveam:test compat-shown-lambda-lists-per-parameter-kind
  (raw-pyexec "def p4s_kinds(a, b=2, /, c=3, *rest, d, e=5, **kw):
    return repr((a, b, c, rest, d, e, sorted(kw.items())))")
  (let ((*package* (find-package :py4cl2-cffi/tests)))
    (eval '(defpyfun "p4s_kinds" nil :lisp-fun-name "P4S-KINDS")))
  (let ((f (intern "P4S-KINDS" :py4cl2-cffi/tests)))
    ;; positional-only a, b; positional-or-keyword c; *rest; keyword-only d, e; **kw.
    (with-lambda-list (ll f)
      (fiveam:is (equal '("A" &optional ("B" 2) ("C" 3) &rest "REST" &key "C" "D" ("E" 5)
                          &allow-other-keys)
                        ll)
                 "~S" ll))
    (fiveam:is (equal "(1, 2, 3, (), 4, 5, [])" (funcall f 1 :d 4)))
    (fiveam:is (equal "(1, 7, 8, (9, 10), 4, 5, [])" (funcall f 1 7 8 9 10 :d 4)))
    (fiveam:is (equal "(1, 2, 8, (), 4, 6, [('other_key', 0)])"
                      (funcall f 1 :c 8 :d 4 :e 6 :other-key 0)))
    ;; A positional-only parameter has no keyword: Python refuses it.
    (fiveam:signals pyerror (funcall f :a 1 :d 4)))
  ;; A default Lisp cannot represent is shown as Python writes it, and Python's own applies.
  (raw-pyexec "class P4sMarker:
    def __repr__(self): return '<marker>'
p4s_marker = P4sMarker()
def p4s_odd_default(x=p4s_marker): return x is p4s_marker")
  (let ((*package* (find-package :py4cl2-cffi/tests)))
    (eval '(defpyfun "p4s_odd_default" nil :lisp-fun-name "P4S-ODD-DEFAULT")))
  (let ((f (intern "P4S-ODD-DEFAULT" :py4cl2-cffi/tests)))
    (fiveam:is (eq t (funcall f)))
    (fiveam:is (eq nil (funcall f 1)))
    (with-lambda-list (ll f)
      (fiveam:is (equal "(X <marker>)" (princ-to-string (second ll))) "~S" ll)))
  ;; No signature (inspect.signature raises): (&REST ARGS), keywords as PYCALL passes them.
  (raw-pyexec "class P4sNoSignature:
    @property
    def __signature__(self): raise ValueError('no signature')
    def __call__(self, *args, **kw): return [list(args), sorted(kw.items())]
p4s_nosig = P4sNoSignature()")
  (let ((*package* (find-package :py4cl2-cffi/tests)))
    (eval '(defpyfun "p4s_nosig" nil :lisp-fun-name "P4S-NOSIG")))
  (let ((f (intern "P4S-NOSIG" :py4cl2-cffi/tests)))
    (with-lambda-list (ll f)
      (fiveam:is (equal '(&rest "ARGS") ll) "~S" ll))
    (fiveam:is (equalp #(#(1 2) #(("sort_keys" 3))) (funcall f 1 2 :sort-keys 3)))))

(fiveam:test compat-defpymodule-keywords
  ;; A module with scipy's odeint signature (func, y0, t, args=(), Dfun=None, ...), written
  ;; here so that the test needs no scipy: a Lisp callback passed by keyword, and camelCase.
  (let ((dir (define-test-module "p4s_integrate" "
def odeint(func, y0, t, args=(), Dfun=None, col_deriv=0, full_output=0, ml=None, mu=None,
           rtol=None, atol=None, tcrit=None, h0=0.0, hmax=0.0, hmin=0.0, ixpr=0, mxstep=0,
           mxhnil=0, mxordn=12, mxords=5, printmessg=0, tfirst=False):
    '''Euler steps of dy/dt = func(y, t, *args) over the times t.'''
    ys = [y0]
    for t0, t1 in zip(t, t[1:]):
        ys.append(ys[-1] + (t1 - t0) * func(ys[-1], t0, *args))
    return ys if Dfun is None else (ys, Dfun)
")))
  (let ((pname (fresh-package-name "P4S-INTEGRATE")))
    (eval `(defpymodule "p4s_integrate" nil :lisp-package ,pname :silent t))
    (let ((f (lambda (y tt) (declare (ignore tt)) (* 2 y)))
          (ts #(0 1/2 1)))
      (fiveam:is (equalp #(1 2 4) (call-sym pname "ODEINT" :func f :y0 1 :t ts)))
      (fiveam:is (equalp #(1 2 4) (call-sym pname "ODEINT" f 1 ts)))
      (fiveam:is (equalp #(1 2 4) (call-sym pname "ODEINT" f :t ts :y0 1)))
      (fiveam:is (equalp '(#(1 2 4) "jac") (call-sym pname "ODEINT" f 1 ts :dfun "jac")) "Dfun")
      (with-lambda-list (ll (find-symbol "ODEINT" pname))
        (fiveam:is (equal '("FUNC" "Y0" "T") (subseq ll 0 3)) "~S" ll)
        (fiveam:is (equal "T" (symbol-name (third (py4cl2-cffi::function-lambda-list*
                                                    (fdefinition (find-symbol "ODEINT" pname))))))
                   "a T of the module's package, not CL:T")
        (fiveam:is (subsetp '("FUNC" "Y0" "T" "DFUN" "TFIRST") (key-names ll) :test #'string=)
                   "~S" ll)))
    (delete-package pname)
    (forget-test-module "p4s_integrate" dir))))

(fiveam:test compat-defpyfun-function-given-to-python
  ;; A function made by defpyfun reaches Python as its Python callable, not a Lisp callback.
  (let ((*package* (find-package :py4cl2-cffi/tests)))
    (eval '(defpyfun "gcd" "math" :lisp-fun-name "P4S-GCD-FN")))
  (let ((f (fdefinition (intern "P4S-GCD-FN" :py4cl2-cffi/tests))))
    (fiveam:is (eq t (pycall "lambda f: f is __import__('math').gcd" f)))
    (fiveam:is (equalp #(2 3) (pycall "lambda f: [f(4, 6), f(9, 6)]" f)))))

;;; Row 3: parameters named nil and t, and other constants.

(fiveam:test compat-parameters-named-nil-and-t
  (raw-pyexec "def nilAndT(nil, t): return [nil, t]
def p4s_constants(pi, list): return [pi, list]")
  (let ((*package* (find-package :py4cl2-cffi/tests)))
    (eval '(defpyfun "nilAndT" nil :lisp-fun-name "P4S-NIL-AND-T"))
    (eval '(defpyfun "p4s_constants" nil :lisp-fun-name "P4S-CONSTANTS")))
  (let ((f (intern "P4S-NIL-AND-T" :py4cl2-cffi/tests)))
    (fiveam:is (equalp #(1 2) (funcall f :.nil 1 :.t 2)))
    (fiveam:is (equalp #(1 2) (funcall f :.t 2 :.nil 1)))
    (fiveam:is (equalp #(1 2) (funcall f 1 2)))
    (fiveam:is (equalp #(1 2) (funcall f :nil 1 :t 2)) "the plain keywords too")
    (with-lambda-list (ll f)
      (fiveam:is (equal '(".NIL" ".T" &key ".NIL" ".T") ll) "~S" ll)))
  ;; Any other constant of the package (PI here) gets the dot as well.
  (let ((f (intern "P4S-CONSTANTS" :py4cl2-cffi/tests)))
    (fiveam:is (equalp #(3 4) (funcall f :.pi 3 :list 4)))
    (fiveam:is (equalp #(3 4) (funcall f :pi 3 :list 4)))
    (with-lambda-list (ll f)
      (fiveam:is (equal '(".PI" "LIST" &key ".PI" "LIST") ll) "~S" ll)))
  ;; A defpymodule package uses no other package: there NIL and T are no constants, and the
  ;; keywords are :nil and :t (as scipy's (integrate:odeint ... :t ts)).
  (let ((dir (define-test-module "p4s_nil_t" "def nilAndT(nil, t): return [nil, t]
"))
        (pname (fresh-package-name "P4S-NIL-T")))
    (eval `(defpymodule "p4s_nil_t" nil :lisp-package ,pname :silent t))
    (fiveam:is (equalp #(5 6) (call-sym pname "NIL-AND-T" :nil 5 :t 6)))
    (fiveam:is (equalp #(5 6) (call-sym pname "NIL-AND-T" :.nil 5 :.t 6)) "the original's names")
    (with-lambda-list (ll (find-symbol "NIL-AND-T" pname))
      (fiveam:is (equal '("NIL" "T" &key "NIL" "T") ll) "~S" ll))
    (delete-package pname)
    (forget-test-module "p4s_nil_t" dir)))

(fiveam:test compat-nil-and-t-in-a-compiled-file
  ;; The file compiles and loads on every Lisp (ECL refused the whole file before).
  (raw-pyexec "def nilAndT(nil, t): return [nil, t]")
  (let* ((pname (fresh-package-name "P4S-NIL-FILE"))
         (dir (uiop:ensure-directory-pathname
               (merge-pathnames (format nil "p4s-nil-~D/" (random 1000000)) (uiop:temporary-directory))))
         (source (merge-pathnames "nil-and-t.lisp" dir)))
    (ensure-directories-exist source)
    (make-package pname :use '(:cl))
    (with-open-file (o source :direction :output :if-exists :supersede)
      (format o "(in-package ~S)
(py4cl2-cffi:defpyfun \"nilAndT\" nil :lisp-fun-name \"NIL-AND-T\")
(defun call-it () (list (nil-and-t :.nil 1 :.t 2) (nil-and-t 3 4)))
" pname))
    (let ((fasl (handler-bind ((warning #'muffle-warning))
                  (let ((*error-output* (make-broadcast-stream)))
                    (compile-file source :verbose nil :print nil)))))
      (fiveam:is-true fasl)
      (when fasl
        (fiveam:is-true (load fasl))
        (fiveam:is (equalp '(#(1 2) #(3 4)) (call-sym pname "CALL-IT")))))
    (delete-package pname)
    (uiop:delete-directory-tree dir :validate t :if-does-not-exist :ignore)))

;;; Row 4: classes are also NAME/CLASS.

(fiveam:test compat-defpymodule-classes
  (let ((pname (fresh-package-name "P4S-ET")))
    (eval `(defpymodule "xml.etree.ElementTree" nil :lisp-package ,pname :silent t))
    (let ((class (find-symbol "ELEMENT/CLASS" pname)))
      (fiveam:is-true class)
      (fiveam:is (eq :external (nth-value 1 (find-symbol "ELEMENT/CLASS" pname))))
      (when class
        (let ((e (funcall class "root")))
          (fiveam:is (typep e 'pyobject-wrapper))
          (fiveam:is (equal "root" (pyslot-value e "tag")))))
      ;; The names this project had stay.
      (fiveam:is (equal "leaf" (pyslot-value (call-sym pname "ELEMENT" "leaf") "tag")))
      ;; Functions get no /CLASS name.
      (fiveam:is-true (find-symbol "TOSTRING" pname))
      (fiveam:is (null (find-symbol "TOSTRING/CLASS" pname))))
    (delete-package pname)))

;;; Rows 5 and 6: defpyfun's :as, and "" for the builtins.

(fiveam:test compat-defpyfun-as-and-builtins
  (let ((pname (fresh-package-name "P4S-AS")))
    (make-package pname :use '())
    (eval `(defpyfun "gcd" "math" :as "p4s_g" :lisp-package ,pname))
    ;; AS is the name in Python (as from math import gcd as p4s_g) and the Lisp name.
    (fiveam:is (= 1 (pycall "p4s_g" 5 6)))
    (fiveam:is (= 6 (call-sym pname "P4S-G" 12 18)))
    ;; A binding made in Python afterwards is left alone by the Lisp function.
    (raw-pyexec "p4s_g = lambda a, b: 'mine'")
    (fiveam:is (= 6 (call-sym pname "P4S-G" 12 18)))
    (fiveam:is (equal "mine" (pycall "p4s_g" 5 6)))
    ;; Defining it again binds it again.
    (eval `(defpyfun "gcd" "math" :as "p4s_g" :lisp-package ,pname))
    (fiveam:is (= 1 (pycall "p4s_g" 5 6)))
    ;; Unbound (as after a restart of Python), the name is bound again by the next call.
    (raw-pyexec "del p4s_g")
    (fiveam:signals pyerror (pycall "p4s_g" 5 6))
    (fiveam:is (= 6 (call-sym pname "P4S-G" 12 18)))
    (fiveam:is (= 1 (pycall "p4s_g" 5 6)))
    (eval `(defpyfun "sum" "" :lisp-fun-name "PYSUM" :lisp-package ,pname))
    (fiveam:is (= 6 (call-sym pname "PYSUM" '(2 1 3))))
    (fiveam:is (= 16 (call-sym pname "PYSUM" '(2 1 3) 10)))
    (delete-package pname)))

;;; Row 7: SETF of PYEVAL.

(fiveam:test compat-setf-pyeval
  (fiveam:is (= 42 (setf (pyeval "test_value") 42)))
  (fiveam:is (= 42 (pyeval "test_value")))
  (fiveam:is (equal "hello" (setf (pyeval "test_value") "hello")))
  (fiveam:is (equal "hello" (pyvalue "test_value")) "a string value is a str, not code")
  (raw-pyexec "p4s_box = {}")
  (setf (pyeval "p4s_box['k']") #(1 2))
  (fiveam:is (equalp #(1 2) (pyeval "p4s_box['k']")))
  (setf (pyeval "p4s_box[" "'j'" "]") '(1 2))
  (fiveam:is (equal '(1 2) (pyeval "p4s_box['j']"))))

;;; Row 8b: strings that read as numbers are string literals.

(fiveam:test compat-pyeval-number-strings
  (fiveam:is (equal "42" (pyeval "42")))
  (fiveam:is (equal "-1.5e3" (pyeval "-1.5e3")))
  (fiveam:is (equal "1/2" (pyeval "1/2")))
  (fiveam:is (= 42 (pyeval "40 + 2")) "other strings are code")
  (fiveam:is (= 42 (pyeval "40+" 2)))
  (fiveam:is (= 42 (raw-pyeval "42")) "raw-pyeval is not concerned")
  (pyexec "p4s_s = " "7")
  (fiveam:is (equal "7" (pyvalue "p4s_s")))
  ;; The same inside a Lisp function that Python calls.
  (export-function (lambda () (pyeval "42")) "p4s_eval_42")
  (fiveam:is (equal "42" (pyeval "p4s_eval_42()")))
  (fiveam:is (equal "42" (pycall "p4s_eval_42")))
  (export-function (lambda (s) (pyeval s)) "p4s_eval_arg")
  (fiveam:is (equal "42" (pycall "p4s_eval_arg" "42")))
  (fiveam:is (= 5 (pycall "p4s_eval_arg" "2 + 3"))))

;;; Rows 8: floats written as numpy floats (numpy suite: numpy must import).

(defun single-nan ()
  "A single-float NaN (Lisps make one only with traps masked, so Python makes it)."
  (raw-pyeval "__import__('numpy').float32('nan')"))

(defun nan-p (x)
  #+sbcl (sb-ext:float-nan-p x)
  #+ecl (ext:float-nan-p x))

(fiveam:in-suite :py4cl2-cffi-numpy)

(fiveam:test compat-pyeval-floats
  (with-numpy
    (dolist (x (list 1.0 1.0e5 0.1 -2.5e-20 most-positive-single-float least-positive-normalized-single-float
                     #+sbcl sb-ext:single-float-positive-infinity #+ecl ext:single-float-positive-infinity
                     #+sbcl sb-ext:single-float-negative-infinity #+ecl ext:single-float-negative-infinity
                     1.0d0 0.1d0 most-positive-double-float
                     #+sbcl sb-ext:double-float-negative-infinity #+ecl ext:double-float-negative-infinity))
      (let ((r (pyeval x)))
        (fiveam:is (eql x r) "(pyeval ~S) => ~S" x r)))
    (let ((nan (single-nan)))
      (fiveam:is (and (typep nan 'single-float) (nan-p nan)) "NaN from Python: ~S" nan)
      (let ((r (pyeval nan)))
        (fiveam:is (and (typep r 'single-float) (nan-p r)) "NaN: ~S" r)))
    (fiveam:is (equal "float32" (pyeval "type(" 1.0 ").__name__")))
    (fiveam:is (equal "float64" (pyeval "type(" 1.0d0 ").__name__")))
    ;; Inside lists, vectors and other values too.
    (fiveam:is (equalp '(1.0 2.0d0) (pyeval (list 1.0 2.0d0))))
    (fiveam:is (equalp #(1.5 2) (pyeval (vector 1.5 2))))
    ;; Written into the code, so a function defined with it keeps working.
    (pyexec "def p4s_scale(x): return x * " 2.5d0)
    (fiveam:is (= 5d0 (pycall "p4s_scale" 2)))
    ;; PYCALL sends both as Python floats.
    (fiveam:is (eql 1.0d0 (pycall "lambda x: x" 1.0)))
    ;; Without numpy, floats are Python floats: a single-float comes back as a double-float.
    (let ((py4cl2-cffi::*numpy-floats* (cons (python-generation) nil)))
      (fiveam:is (eql 1.0d0 (pyeval 1.0)))
      (fiveam:is (eql 0.5d0 (pyeval 0.5d0)))
      (fiveam:is (equal "float" (pyeval "type(" 1.0 ").__name__"))))))

(fiveam:test compat-defpymodule-numpy-keywords
  (with-numpy
    (let ((pname (fresh-package-name "P4S-NP")))
      (eval `(defpymodule "numpy" ("linalg") :lisp-package ,pname :silent t))
      (let ((linspace (find-symbol "LINSPACE" pname))
            (sum (find-symbol "SUM" pname))
            (det (find-symbol "DET" (format nil "~A.LINALG" pname))))
        (let ((a (funcall linspace :start 0 :stop 6.28d0 :num 20)))
          (fiveam:is (= 20 (length a)))
          (fiveam:is (= 6.28d0 (aref a 19))))
        (fiveam:is (equalp #(0d0 0.5d0 1d0) (funcall linspace 0 1 :num 3)))
        (fiveam:is (equalp #(0d0 0.5d0 1d0) (funcall linspace 0 1 3)))
        (fiveam:is (equalp #(4 6) (funcall sum #2A((1 2) (3 4)) :axis 0)))
        (fiveam:is (equalp #(4 6) (funcall sum :a #2A((1 2) (3 4)) :axis 0)))
        ;; A literal #2A array has element type T (an object array in numpy, as in the
        ;; original); linear algebra wants a specialized one.
        (let ((m (make-array '(2 2) :element-type 'double-float
                                    :initial-contents '((1d0 2d0) (3d0 4d0)))))
          (fiveam:is (< (abs (- -2d0 (funcall det m))) 1d-9))
          (fiveam:is (< (abs (- -2d0 (funcall det :a m))) 1d-9)))
        ;; A Lisp array given by keyword is lent to numpy like a positional one.
        (let ((out (make-array 2 :element-type 'double-float :initial-element 0d0)))
          (funcall (find-symbol "ADD" pname) (make-array 2 :element-type 'double-float :initial-element 1d0)
                   (make-array 2 :element-type 'double-float :initial-element 2d0) :out out)
          (fiveam:is (equalp #(3d0 3d0) out))))
      (delete-package (format nil "~A.LINALG" pname))
      (delete-package pname))))

(fiveam:in-suite :py4cl2-cffi)

(fiveam:test compat-pyeval-floats-whether-numpy-imports-or-not
  ;; Here (after restarts) numpy may not import again: then floats are Python floats.
  (let ((r (pyeval 1.5))
        (type (pyeval "type(" 1.5 ").__name__")))
    (if (py4cl2-cffi::numpy-floats-p)
        (progn (fiveam:is (eql 1.5 r)) (fiveam:is (equal "float32" type)))
        (progn (fiveam:is (eql 1.5d0 r)) (fiveam:is (equal "float" type))))
    (fiveam:is (eql 2.5d0 (pyeval 2.5d0)))))

;;; Row 12: attribute forms in chains.

(defstruct p4s-doubler func value)
(defclass p4s-doubler-class () ((func :initarg :func) (value :initarg :value)))

(fiveam:test compat-chain-attribute-forms
  (dolist (obj (list (make-p4s-doubler :func (lambda (x) (* 2 x)) :value 21)
                     (make-instance 'p4s-doubler-class :func (lambda (x) (* 2 x)) :value 21)))
    (fiveam:is (= 42 (chain* `((@ ,obj func) (@ ,obj value)))) "~S" obj)
    (fiveam:is (= 21 (chain* `(@ ,obj value))))
    (fiveam:is (= 42 (chain ((@ obj func) (@ obj value)))))
    (fiveam:is (= 10 (chain ((@ obj func) 5)))))
  ;; On Python objects, nested.
  (raw-pyexec "class P4sBox:
    def __init__(self, v): self.v = v
    def twice(self, x): return 2 * x
p4s_outer = P4sBox(P4sBox(4))")
  (let ((outer (with-remote-objects (pyvalue "p4s_outer"))))
    (fiveam:is (= 4 (chain* `(@ ,outer v v))))
    (fiveam:is (= 8 (chain* `((@ ,outer twice) (@ (@ ,outer v) v)))))))

;;; Row 16: the iterate clause PYFOR.

(fiveam:test compat-iterate-pyfor
  (fiveam:is (equal '(0 1 2) (iterate:iter (iterate:for x pyfor (pyeval "range(3)"))
                               (iterate:collect x))))
  (fiveam:is (equal '(10 20) (iterate:iter (iterate:for x pyfor #(1 2)) (iterate:collect (* 10 x))))
             "a Lisp value is pythonized first")
  (fiveam:is (equal '() (iterate:iter (iterate:for x pyfor (pyeval "iter([])")) (iterate:collect x))))
  (fiveam:is (equal '(3 7) (iterate:iter (iterate:for (a b) pyfor (pyeval "[(1, 2), (3, 4)]"))
                             (iterate:collect (+ a b)))))
  (let ((k 0))
    (fiveam:is (equal '(1 2 3)
                      (iterate:iter (iterate:for x pyfor (pygenerator (lambda () (incf k)) 4))
                        (iterate:collect x)))))
  (fiveam:is (equal '(0 1 2) (iterate:iter (iterate:generate x pyfor (pyeval "range(100)"))
                               (iterate:repeat 3)
                               (iterate:collect (iterate:next x)))))
  (let ((wrappers (with-remote-objects
                    (iterate:iter (iterate:for x pyfor (pyeval "[1, 2]")) (iterate:collect x)))))
    (fiveam:is (= 2 (length wrappers)))
    (fiveam:is (every #'pyobject-wrapper-p wrappers)))
  ;; Python's errors while iterating come through.
  (fiveam:signals pyerror (iterate:iter (iterate:for x pyfor 5) (iterate:collect x)))
  (fiveam:is (search "iterate clause" (documentation 'pyfor 'function))))
