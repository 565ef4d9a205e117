;;;; Tests: chain, pyref, remote objects, generators, wrapper equality, Lisp objects in Python.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(fiveam:test chain-macro
  (fiveam:is (equal "Hello world" (chain "hello {0}" (format "world") (capitalize))))
  (fiveam:is (equal "e" (chain "hello {0}" (format "world") (capitalize) (aref 1))))
  (fiveam:is (= 3 (chain (slice 3) stop)))
  (fiveam:is (equal "o" (chain (aref "hello" 4))))
  (fiveam:is (equal "ll" (chain (aref "hello" (slice 2 4)))))
  (fiveam:is (equalp #(#(1 2 3) #(4 5 6)) (chain (aref #(#(1 2 3) #(4 5 6)) (slice 0 2)))))
  (let ((argument "world"))
    (fiveam:is (equal "hello world" (chain "hello {0}" (format argument))) "arguments are Lisp forms"))
  (fiveam:is (equal "result: 3" (chain "result: {0}" (format (+ 1 2)))))
  (raw-pyexec "class ChainTestClass:
    def doThing(self, value = 42):
        return value
    def pair(self, p):
        return list(p)")
  (fiveam:is (= 31 (chain ("ChainTestClass") ("doThing" :value 31))))
  (fiveam:is (= 42 (chain ("ChainTestClass") ("doThing"))))
  (fiveam:is (equalp #(3 4) (chain ("ChainTestClass") ("pair" (3 4)))) "a literal list argument")
  (fiveam:is (equal "AB" (let ((name "upper")) (chain "ab" (@ name)))) "(@ name) calls a computed method")
  (fiveam:is (= 3 (chain "abc" (__len__))))
  (fiveam:is (equal "abc" (pycall (chain "ABC" "lower"))) "a string link is an attribute")
  (fiveam:signals pyerror (chain "abc" (no-such-method))))

(fiveam:test chain-function
  (let ((format-str "hello {0}") (argument "world"))
    (fiveam:is (equal "hello world" (chain* format-str `(format ,argument)))))
  (fiveam:is (equal "result: 3" (chain* "result: {0}" `(format ,(+ 1 2)))))
  (fiveam:is (equal "HELLO" (chain* "hello" '(upper))))
  (fiveam:is (= 5 (chain* '(slice 5) 'stop)))
  (fiveam:is (equal "l" (chain* '(aref "hello" 2))))
  (fiveam:is (pyobject-wrapper-p (with-remote-objects (chain* "hello" '(upper))))
             "inside with-remote-objects the last result stays in Python"))

(fiveam:test setf-chain
  (fiveam:is (equalp #(4 2 3)
                     (with-remote-objects*
                       (let ((lst (pycall "list" '(1 2 3))))
                         (setf (chain* `(aref ,lst 0)) 4)
                         lst))))
  (fiveam:is (equalp #(1 2 3)
                     (let ((lst (pycall "list" '(1 2 3))))
                       (setf (chain* `(aref ,lst 0)) 4)
                       lst))
             "a Lisp vector is copied to Python for the call; the Lisp value does not change")
  (raw-pyexec "class ChainHolder:
    def __init__(self):
        self.items = [0, 0, 0]
        self.name = 'x'")
  (with-remote-objects
    (let ((h (pycall "ChainHolder")))
      (fiveam:is (= 5 (setf (chain h items (aref 1)) 5)) "SETF returns the new value")
      (setf (chain h name) "y")
      (setf (chain* h "name2") '(1 2))
      (fiveam:is (equalp #(0 5 0) (lispify (chain h items))))
      (fiveam:is (equal "y" (lispify (pyslot-value h "name"))))
      (fiveam:is (equal '(1 2) (lispify (chain h name2))))))
  (fiveam:signals error (setf (chain* "just-a-target") 1)))

(fiveam:test pyref-slices-and-tuples
  (fiveam:is (equal "e" (pyref "hello" 1)))
  (fiveam:is (= 2 (pyref #(1 2 3) 1)))
  (fiveam:is (= 3 (pyref #(1 2 3) -1)))
  (fiveam:is (equalp #(4 5) (pyref #(1 2 3 4 5) '(slice 3 5))))
  (fiveam:is (equalp #(1 3 5) (pyref #(1 2 3 4 5) '(:slice 0 nil 2))) "keyword slice, NIL bound")
  (fiveam:is (equalp #(5 4 3 2 1) (pyref #(1 2 3 4 5) `(slice ,+py-none+ ,+py-none+ -1))))
  (fiveam:is (equal "b" (pyref (alexandria:plist-hash-table '((1 2) "b") :test 'equal) 1 2))
             "several indices index with their tuple")
  (fiveam:is (equal "b" (pyref (alexandria:plist-hash-table '((1 2) "b") :test 'equal) '(1 2)))
             "a list index is a tuple")
  (fiveam:signals pyerror (pyref #(1 2 3) 10))
  (with-remote-objects
    (let ((l (pycall "list" '(1 2 3 4))))
      (setf (pyref l 0) 10)
      (setf (pyref l '(slice 1 3)) #(20 30))
      (fiveam:is (equalp #(10 20 30 4) (lispify l))))))

(fiveam:test (pyref-numpy-tuples :suite :py4cl2-cffi-numpy)
  (if (not (numpy-p))
      (skip-test "numpy is not importable by ~A" py4cl2-cffi/config:*python-executable-path*)
      (progn
        (import-module "numpy")
        (fiveam:is (equalp #(0 4 8)
                           (with-remote-objects*
                             (pyref (chain ("numpy.arange" 12) ("reshape" (3 4)))
                                    `(slice ,+py-none+) 0))))
        (fiveam:is (equalp #(4 6)
                           (with-remote-objects*
                             (pyref (chain ("numpy.arange" 12) ("reshape" (3 4))) 1 '(slice 0 nil 2)))))
        (fiveam:is (= 7 (with-remote-objects*
                          (pyref (chain ("numpy.arange" 12) ("reshape" (3 4))) 1 3)))))))

(fiveam:test remote-objects
  (with-remote-objects
    (let ((n (pycall "int" "5"))
          (s (pyvalue "sys.version"))
          (l (raw-pyeval "[1, 2]"))
          (m (pymethod "a,b" "split" ",")))
      (fiveam:is (every #'pyobject-wrapper-p (list n s l m)) "every result is a wrapper")
      (fiveam:is (= 6 (lispify (pycall "int.__add__" n 1))) "a wrapper pythonizes to its object")
      (fiveam:is (pyobject-wrapper-p (pycall "int.__add__" n 1))))
    (export-function (lambda (x) (list (pyobject-wrapper-p x) x)) "remote_test_cb")
    (let ((r (lispify (pycall "remote_test_cb" 3))))
      (fiveam:is (equal '(nil 3) r) "callbacks still receive Lisp values: ~S" r)))
  (fiveam:is (= 5 (with-remote-objects* (pycall "int" "5"))) "with-remote-objects* converts the last value")
  (fiveam:is (equalp #(1 2) (with-remote-objects* (raw-pyeval "[1, 2]"))))
  (fiveam:is (equal "x" (with-remote-objects* "x")) "a Lisp value is returned as it is")
  (fiveam:is (integerp (pycall "int" "5")) "outside, results are Lisp values again"))

(fiveam:test pygenerator-yields-until-stop
  (let ((k 0))
    (let ((g (pygenerator (lambda () (incf k)) 4)))
      (fiveam:is (pyobject-wrapper-p g))
      (fiveam:is (equal "generator" (pycall "lambda g: type(g).__name__" g)))
      (fiveam:is (equal '(1 2 3) (coerce (pycall "list" g) 'list)))))
  (let ((items (list "a" "b" "c")))
    (fiveam:is (equal "a-b-c" (pycall "'-'.join" (pygenerator (lambda () (or (pop items) +py-none+))
                                                              +py-none+)))))
  (let ((g (pygenerator (lambda () (error "boom from Lisp")) 0)))
    (fiveam:signals error (pycall "next" g))))

(fiveam:test wrapper-equality
  (with-remote-objects
    (let* ((a (pycall "object"))
           (a-again (pycall "lambda x: x" a))
           (l1 (raw-pyeval "[1, 2]"))
           (l2 (raw-pyeval "[1, 2]")))
      (fiveam:is (not (eq a a-again)) "two Lisp wrappers")
      (fiveam:is-true (pyobject-wrapper-eq a a-again) "the same Python object (is)")
      (fiveam:is-true (pyobject-wrapper-eq* a a-again))
      (fiveam:is-true (pycall "lambda a, b: a == b" l1 l2) "equal in Python")
      (fiveam:is-false (pyobject-wrapper-eq l1 l2) "but not the same object")
      (fiveam:is-false (pyobject-wrapper-eq* l1 l2))
      (fiveam:is-false (pyobject-wrapper-eq a l1))
      (fiveam:is-false (pyobject-wrapper-eq a 1) "a wrapper and a Lisp value")))
  (fiveam:is-true (pyobject-wrapper-eq :x :x) "Lisp objects: EQ")
  (fiveam:is-false (pyobject-wrapper-eq (list 1) (list 1))))
