;;;; Tests: pyvalue, pycall, pymethod, attributes, imports, code as text, cached lookups.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(fiveam:test pyvalue-and-setf
  (setf (pyvalue "answer_to_everything") 42)
  (fiveam:is (= 42 (pyvalue "answer_to_everything")))
  (setf (pyvalue "answer_to_everything") "forty-two")
  (fiveam:is (equal "forty-two" (pyvalue "answer_to_everything")))
  (fiveam:is (< 3.14 (pyvalue "math.pi") 3.15) "a dotted name imports its module")
  (raw-pyexec "import types; ns = types.SimpleNamespace(a=1)")
  (setf (pyvalue "ns.a") 5)
  (fiveam:is (= 5 (pyvalue "ns.a")))
  (fiveam:is (vectorp (pyvalue "sys.path")))
  (let ((c (handler-case (pyvalue "no_such_name_here") (pyerror (e) e))))
    (fiveam:is (typep c 'simple-pyerror))
    (fiveam:is (equal "NameError" (pyerror-type c))))
  (fiveam:signals pyerror (pyvalue "math.no_such_attribute")))

(fiveam:test pycall-callable-designators
  (fiveam:is (equal "42" (pycall "str" 42)))
  (fiveam:is (equal 3 (pycall 'len "abc")) "a symbol names a callable")
  (let ((w (with-remote-objects (pyvalue "len"))))
    (fiveam:is (pyobject-wrapper-p w))
    (fiveam:is (= 4 (pycall w "abcd")) "a wrapper")
    (fiveam:is (= 5 (pycall (pyobject-wrapper-pointer w) "abcde")) "a foreign pointer"))
  (fiveam:is (= 3 (pycall "lambda x: x + 1" 2)) "an expression giving a callable")
  (fiveam:is (equal '(2 4 6) (coerce (pycall "list" (pycall "map" (lambda (x) (* 2 x)) '(1 2 3))) 'list))
             "a Lisp function")
  (let ((name "str"))
    (fiveam:is (equal "1.5" (pycall name 1.5d0)) "a non-constant name"))
  (fiveam:is (equal "2" (apply #'pycall "str" (list 2))) "through APPLY")
  (fiveam:is (= 34 (length (apply #'pycall "max" (loop for i below 35 collect (make-string i :initial-element #\a)))))
             "more arguments than a frame has slots"))

(fiveam:test pycall-keywords
  (fiveam:is (= 255 (pycall "int" "ff" :base 16)))
  (raw-pyexec "def kw(a, b=2, *, long_name=0): return (a, b, long_name)")
  (fiveam:is (equal '(1 2 0) (pycall "kw" 1)))
  (fiveam:is (equal '(1 5 7) (pycall "kw" 1 :long-name 7 :b 5)))
  (fiveam:is (equal '(1 5 7) (pycall "kw" :a 1 :b 5 :long-name 7)))
  (fiveam:signals pyerror (pycall "kw" 1 :no-such-keyword 3))
  (fiveam:signals pyerror (pycall "kw")))

(fiveam:test pycall-errors
  (fiveam:signals pyerror (pycall "undefined_function_xyz" 1))
  (setf (pyvalue "not_callable") 3)
  (let ((c (handler-case (pycall "not_callable") (pyerror (e) e))))
    (fiveam:is (equal "TypeError" (pyerror-type c))))
  (fiveam:signals pyerror (pycall "int" "not a number"))
  (fiveam:is (= 1 (pycall "int" "1")) "Python is usable after errors"))

(fiveam:test pymethod-and-slots
  (fiveam:is (equal "ABC" (pymethod "abc" "upper")))
  (fiveam:is (equal "a-b-c" (pymethod "-" "join" '("a" "b" "c"))))
  (fiveam:is (equal '("a" "b") (coerce (pymethod "a,b" 'split ",") 'list)) "a symbol method name")
  (raw-pyexec "class Obj:
    def __init__(self): self.x = 1; self.y_value = 'y'
    def double(self, n=1): return 2 * n")
  (let ((o (pycall "Obj")))
    (fiveam:is (pyobject-wrapper-p o))
    (fiveam:is (= 1 (pyslot-value o "x")))
    (fiveam:is (equal "y" (pyslot-value o 'y-value)))
    (setf (pyslot-value o "x") 10)
    (fiveam:is (= 10 (pyslot-value o "x")))
    (fiveam:is (= 14 (pymethod o "double" :n 7)))
    (fiveam:is (member "x" (pyslot-list o) :test #'string=))
    (fiveam:is (not (member "double" (pyslot-list o) :test #'string=)))
    (fiveam:is (member "double" (pymethod-list o) :test #'string=))
    (fiveam:is (vectorp (pymethod-list o :as-vector t)))
    (fiveam:signals pyerror (pyslot-value o "nope"))
    (fiveam:signals pyerror (pymethod o "nope"))))

(fiveam:test pyhelp-prints
  (let ((text (with-python-output (pyhelp "len"))))
    (fiveam:is (search "len" text)))
  (fiveam:signals pyerror (pyhelp "no_such_thing_for_help")))

(fiveam:test imports
  (fiveam:is (eq t (import-module "json")))
  (fiveam:is (equal "[1, 2]" (pycall "json.dumps" '(1 2))))
  (fiveam:is (eq t (import-module "collections" :as "col")))
  (fiveam:is (pyobject-wrapper-p (pycall "col.deque")))
  (fiveam:is (eq t (import-function "hypot" "math")))
  (fiveam:is (= 13 (pycall "hypot" 12 5)))
  (fiveam:is (eq t (import-function "sqrt" "math" :as "msqrt")))
  (fiveam:is (= 3 (pycall "msqrt" 9)))
  (let ((c (handler-case (import-module "no_such_module_abc") (pyerror (e) e))))
    (fiveam:is (equal "ModuleNotFoundError" (pyerror-type c))))
  (fiveam:signals pyerror (import-function "nothing" "math")))

(fiveam:test dotted-names-import-their-module
  ;; The first part of a dotted name that is not bound is imported (in the one crossing that
  ;; resolves the name); an unimportable one is a NameError, as for any unbound name.
  (pystart)
  (fiveam:is (null (pycall "lambda n: n in __import__('sys').modules" "colorsys"))
             "colorsys is not imported at start")
  (fiveam:is (equalp '(0.0d0 0.0d0 1.0d0) (coerce (pycall "colorsys.rgb_to_hsv" 1 1 1) 'list)))
  (fiveam:is (= 1 (pyvalue "wave.WAVE_FORMAT_PCM")) "pyvalue imports too")
  (fiveam:is (string= "b" (pycall "os.path.basename" "/a/b")))
  (fiveam:signals pyerror (pyvalue "sndhdr_no_such_module.x"))
  (let ((c (handler-case (pycall "no_such_module_xyz.f") (pyerror (e) e))))
    (fiveam:is (equal "NameError" (and c (pyerror-type c))))
    (fiveam:is (search "no_such_module_xyz" (princ-to-string c))))
  (let ((c (handler-case (pycall "colorsys.no_such_function") (pyerror (e) e))))
    (fiveam:is (equal "AttributeError" (and c (pyerror-type c))))))

(fiveam:test eval-and-exec
  (fiveam:is (= 6 (raw-pyeval "1 + " "2 + 3")))
  (raw-pyexec "def twice(x):" (string #\Newline) "    return 2 * x")
  (fiveam:is (= 8 (pycall "twice" 4)))
  (fiveam:is (equalp #(1 2 1 2) (pyeval 2 " * " #(1 2))) "Lisp values inside pyeval")
  (pyexec "lisp_given = " '(1 "two" 3.0d0))
  (fiveam:is (equal '(1 "two" 3.0d0) (pyvalue "lisp_given")))
  (fiveam:signals pyerror (raw-pyeval "1 +"))
  (fiveam:signals pyerror (raw-pyexec "raise ValueError('x')"))
  (fiveam:signals pyerror (pyeval "undefined_in_pyeval")))

(fiveam:test cached-lookups-follow-rebinding
  (raw-pyexec "def cached_f(): return 1")
  (flet ((call () (pycall "cached_f")))
    (fiveam:is (= 1 (call)))
    (raw-pyexec "def cached_f(): return 2")
    (fiveam:is (= 2 (call)) "raw-pyexec invalidates the cached callable")
    (setf (pyvalue "cached_f") (pyvalue "len"))
    (fiveam:is (= 3 (pycall "cached_f" "abc")) "setf pyvalue invalidates it")
    (import-function "floor" "math" :as "cached_f")
    (fiveam:is (= 2 (pycall "cached_f" 2.5d0)) "import-function invalidates it")
    (pystop)
    (pystart)
    (fiveam:signals pyerror (call) "after a restart the name is looked up again (and is gone)")
    (raw-pyexec "def cached_f(): return 3")
    (fiveam:is (= 3 (call)))))

(fiveam:test chain-and-pyref
  (fiveam:is (equal "Hello world" (chain "hello {0}" (format "world") (capitalize))))
  (fiveam:is (equal "e" (chain "hello {0}" (format "world") (capitalize) (aref 1))))
  (fiveam:is (= 3 (chain (slice 3) stop)))
  (fiveam:is (equal "hello world" (let ((f "hello {0}") (a "world")) (chain* f `(format ,a)))))
  (fiveam:is (equal "o" (chain (aref "hello" 4))))
  (fiveam:is (equal "ll" (chain (aref "hello" (slice 2 4)))))
  (pyexec "class TestClass:
    def doThing(self, value = 42):
        return value")
  (fiveam:is (= 31 (chain ("TestClass") ("doThing" :value 31))))
  (fiveam:is (equal "e" (pyref "hello" 1)))
  (fiveam:is (= 2 (pyref #(1 2 3) 1)))
  (fiveam:is (equalp #(4 5) (pyref #(1 2 3 4 5) '(slice 3 5))))
  (fiveam:is (equalp #(4 2 3)
                     (with-remote-objects*
                       (let ((lst (pycall "list" '(1 2 3))))
                         (setf (chain* `(aref ,lst 0)) 4)
                         lst))))
  (fiveam:signals pyerror (pyref #(1 2) 5)))

(fiveam:test defpyfun-defines-functions
  (eval '(defpyfun "hypot" "math" :lisp-fun-name "TEST-PYHYPOT"))
  (fiveam:is (= 5 (funcall (intern "TEST-PYHYPOT" :py4cl2-cffi/tests) 3 4)))
  (eval '(defpymodule "math" nil :lisp-package "TEST-PYMATH" :silent t))
  (fiveam:is (= 25 (funcall (find-symbol "HYPOT" "TEST-PYMATH") 7 24)))
  (fiveam:signals pyerror (funcall (find-symbol "SQRT" "TEST-PYMATH") "x")))
