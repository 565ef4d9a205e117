;;;; Tests: defpyfun and defpymodule: options, lambda lists and docstrings from Python.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

;;; The forms are EVALuated at run time: macroexpanded when this file is compiled, they would
;;; bake the signatures of whichever Python compiled it into the fasl.

(defun lambda-list-of (symbol)
  "The lambda list of SYMBOL's function as symbol names (strings and lambda-list keywords), or
:UNKNOWN when the implementation does not keep it."
  (let ((ll (py4cl2-cffi::function-lambda-list* (fdefinition symbol))))
    (if (eq ll :unknown)
        :unknown
        (labels ((names (x) (cond ((member x lambda-list-keywords) x)
                                  ((symbolp x) (symbol-name x))
                                  ((consp x) (mapcar #'names x))
                                  (t x))))
          (mapcar #'names ll)))))

(defmacro with-lambda-list ((var symbol) &body body)
  `(let ((,var (lambda-list-of ,symbol)))
     (if (eq ,var :unknown)
         (skip-test "~A keeps no lambda list of ~S here" (lisp-implementation-type) ,symbol)
         (progn ,@body))))

(defun fresh-package-name (base)
  (let ((name (format nil "~A-~D" base (random 1000000))))
    (when (find-package name) (delete-package name))
    name))

(defun key-names (lambda-list)
  "The keyword names of the &key part of LAMBDA-LIST (as LAMBDA-LIST-OF gives it)."
  (loop for x in (rest (member '&key lambda-list))
        until (member x lambda-list-keywords)
        collect (if (consp x) (if (consp (first x)) (first (first x)) (first x)) x)))

(fiveam:test defpyfun-lambda-lists-and-docstrings
  (let ((*package* (find-package :py4cl2-cffi/tests)))
    (fiveam:is (eq (intern "PYSQRT-T" :py4cl2-cffi/tests)
                   (eval '(defpyfun "sqrt" "math" :lisp-fun-name "PYSQRT-T"))))
    (fiveam:is (= 3d0 (funcall (intern "PYSQRT-T" :py4cl2-cffi/tests) 9)))
    (let ((doc (documentation (intern "PYSQRT-T" :py4cl2-cffi/tests) 'function)))
      (fiveam:is (search "math.sqrt(x, /)" doc) "docstring: ~A" doc)
      (fiveam:is (search "square root" doc)))
    (with-lambda-list (ll (intern "PYSQRT-T" :py4cl2-cffi/tests))
      (fiveam:is (equal '("X") ll) "~S" ll))
    ;; Keyword parameters with defaults become &key; json.dumps has **kw too.
    (eval '(defpyfun "dumps" "json" :lisp-fun-name "JSON-DUMPS-T"))
    (let ((f (intern "JSON-DUMPS-T" :py4cl2-cffi/tests)))
      (fiveam:is (equal "[1, 2]" (funcall f #(1 2))))
      (fiveam:is (equal "[1,2]" (funcall f #(1 2) :separators '("," ":"))))
      (fiveam:is (equal (format nil "[~%  1~%]") (funcall f #(1) :indent 2)))
      (with-lambda-list (ll f)
        (fiveam:is (equal "OBJ" (first ll)))
        (fiveam:is (member '&key ll))
        (fiveam:is (member '&allow-other-keys ll) "**kw")
        (fiveam:is (subsetp '("INDENT" "SORT-KEYS" "ENSURE-ASCII") (key-names ll) :test #'string=)
                   "~S" ll)))
    ;; A builtin without a signature takes &rest.
    (eval '(defpyfun "log" "math" :lisp-fun-name "PYLOG-T"))
    (fiveam:is (= 3d0 (funcall (intern "PYLOG-T" :py4cl2-cffi/tests) 8 2)))
    (with-lambda-list (ll (intern "PYLOG-T" :py4cl2-cffi/tests))
      (fiveam:is (eq '&rest (first ll)) "~S" ll))
    ;; Positional-only with a default: &optional (int(x=0, /, base=10) varies by version;
    ;; use a Python function of our own).
    (raw-pyexec "def p4s_opt(a, b=2, /, c=3, *, d=4): return [a, b, c, d]")
    (eval '(defpyfun "p4s_opt" nil :lisp-fun-name "P4S-OPT-T"))
    (let ((f (intern "P4S-OPT-T" :py4cl2-cffi/tests)))
      (fiveam:is (equalp #(1 2 3 4) (funcall f 1)))
      (fiveam:is (equalp #(1 5 3 4) (funcall f 1 5)))
      (fiveam:is (equalp #(1 5 6 7) (funcall f 1 5 :c 6 :d 7)))
      (fiveam:is (equalp #(1 2 6 4) (funcall f 1 2 :c 6)))
      (with-lambda-list (ll f)
        (fiveam:is (equal "A" (first ll)))
        (fiveam:is (eq '&optional (second ll)) "~S" ll)
        (fiveam:is (equal '("C" "D") (key-names ll)) "~S" ll)))))

(fiveam:test defpyfun-options
  (let* ((pname (fresh-package-name "P4S-DEFPYFUN"))
         (package (make-package pname :use '())))
    ;; :lisp-package (a package or its name), :as (the default Lisp name), :cache nil.
    (eval `(defpyfun "hypot" "math" :as "hyp" :lisp-package ,pname))
    (fiveam:is (= 5d0 (funcall (find-symbol "HYP" package) 3 4)))
    (eval `(defpyfun "floor" "math" :lisp-fun-name "FL" :lisp-package ,package :cache nil))
    (fiveam:is (= 2 (funcall (find-symbol "FL" package) 2.5d0)))
    ;; A dotted name without a module: the Lisp name keeps the dots, as in the original.
    (let ((*package* package))
      (eval '(py4cl2-cffi:defpyfun "math.ceil")))
    (fiveam:is (= 3 (funcall (find-symbol "MATH.CEIL" package) 2.5d0)))
    ;; The function survives a restart of Python (it imports its module again).
    (delete-package package))
  (fiveam:signals pyerror (eval '(defpyfun "no_such_function" "math"))))

(fiveam:test defpymodule-math
  (let ((pname (fresh-package-name "P4S-MATH")))
    (fiveam:is (eq t (eval `(defpymodule "math" nil :lisp-package ,pname :silent t))))
    (let ((package (find-package pname)))
      (fiveam:is-true package)
      (fiveam:is (eq :external (nth-value 1 (find-symbol "SQRT" package))))
      (fiveam:is (= 2d0 (funcall (find-symbol "SQRT" package) 4)))
      (fiveam:is (= 25d0 (funcall (find-symbol "HYPOT" package) 7 24)))
      (fiveam:is (null (find-symbol "PI" package)) "only callables")
      (fiveam:is (search "Return the square root" (documentation (find-symbol "SQRT" package) 'function)))
      (with-lambda-list (ll (find-symbol "SQRT" package))
        (fiveam:is (equal '("X") ll) "~S" ll))
      ;; Called again: compiled on SBCL after the first call, same answers.
      (fiveam:is (= 3d0 (funcall (find-symbol "SQRT" package) 9)))
      (with-lambda-list (ll (find-symbol "SQRT" package))
        (fiveam:is (equal '("X") ll) "after compilation: ~S" ll))
      (delete-package package)))
  ;; :silent NIL prints the progress line; :silent T prints nothing.
  (let ((pname (fresh-package-name "P4S-MATH")))
    (fiveam:is (search "Defining" (with-output-to-string (*standard-output*)
                                    (eval `(defpymodule "math" nil :lisp-package ,pname :silent nil)))))
    (fiveam:is (equal "" (with-output-to-string (*standard-output*)
                           (eval `(defpymodule "math" nil :lisp-package ,pname :silent t)))))
    ;; :reload nil keeps an existing package as it is.
    (let ((sym (find-symbol "SQRT" pname)))
      (eval `(defpymodule "math" nil :lisp-package ,pname :silent t :reload nil))
      (fiveam:is (eq sym (find-symbol "SQRT" pname))))
    (delete-package pname)))

(fiveam:test defpymodule-json
  (let ((pname (fresh-package-name "P4S-JSON")))
    (eval `(defpymodule "json" nil :lisp-package ,pname :silent t))
    (let* ((package (find-package pname))
           (dumps (find-symbol "DUMPS" package))
           (loads (find-symbol "LOADS" package)))
      (fiveam:is (equal "{\"a\": 1}" (funcall dumps (alexandria:plist-hash-table '("a" 1) :test 'equal))))
      (fiveam:is (equal "[\"x\", 2]" (funcall dumps #("x" 2) :sort-keys t)))
      (fiveam:is (equalp #(1 2) (funcall loads "[1, 2]")))
      (fiveam:is-true (find-symbol "JSON-DECODER" package) "JSONDecoder -> JSON-DECODER")
      (fiveam:is (search "Serialize" (documentation dumps 'function)))
      (with-lambda-list (ll dumps)
        (fiveam:is (equal "OBJ" (first ll)) "~S" ll)
        (fiveam:is (member "INDENT" (key-names ll) :test #'string=) "~S" ll))
      (delete-package package)))
  ;; Submodules as a list; another package per submodule.
  (let ((pname (fresh-package-name "P4S-JSON")))
    (eval `(defpymodule "json" ("decoder") :lisp-package ,pname :silent t))
    (let ((sub (find-package (format nil "~A.DECODER" pname))))
      (fiveam:is-true sub)
      (when sub
        (fiveam:is (eq :external (nth-value 1 (find-symbol "JSON-DECODER" sub))))
        (delete-package sub)))
    (delete-package pname)))

(fiveam:test defpymodule-errors
  ;; :continue-ignoring-errors T skips a submodule that does not import; NIL signals.
  (let ((pname (fresh-package-name "P4S-JSON")))
    (eval `(defpymodule "json" ("no_such_submodule_p4s") :lisp-package ,pname :silent t))
    (fiveam:is-true (find-package pname))
    (fiveam:is (null (find-package (format nil "~A.NO-SUCH-SUBMODULE-P4S" pname))))
    (delete-package pname))
  (let ((pname (fresh-package-name "P4S-JSON")))
    (let ((c (handler-case (eval `(defpymodule "json" ("no_such_submodule_p4s") :lisp-package ,pname
                                                :silent t :continue-ignoring-errors nil))
               (pyerror (e) e))))
      (fiveam:is (typep c 'simple-pyerror))
      (fiveam:is (search "ModuleNotFoundError" (pyerror-type c)) "~A" (pyerror-type c)))
    (fiveam:is (null (find-package pname)) "nothing defined"))
  ;; The module itself must import.
  (fiveam:signals pyerror (eval '(defpymodule "no_such_module_p4s" nil :silent t))))

;;; numpy: with the numpy suite (run before anything restarts Python).
(fiveam:in-suite :py4cl2-cffi-numpy)

(fiveam:test defpymodule-numpy-with-submodules
  (with-numpy
    (let* ((start (get-internal-real-time))
           (result (eval '(defpymodule "numpy" t :lisp-package "P4S-NUMPY" :silent t)))
           (seconds (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
      (format t "~&; (defpymodule \"numpy\" t) took ~,2F s~%" seconds)
      (fiveam:is (eq t result))
      ;; SBCL: under a second here. ECL: 7-18 s, most of it converting the names and ~3 MB of
      ;; docstrings to Lisp strings character by character (no UTF-32 fast path there).
      (fiveam:is (< seconds #+ecl 60 #-ecl 15) "defpymodule numpy t took ~,2F s" seconds)
      (let ((linspace (find-symbol "LINSPACE" "P4S-NUMPY")))
        (fiveam:is (equalp #(0d0 0.25d0 0.5d0 0.75d0 1d0) (funcall linspace 0 1 :num 5)))
        (fiveam:is (equalp #(0d0 0.25d0 0.5d0 0.75d0) (funcall linspace 0 1 :num 4 :endpoint nil)))
        (fiveam:is (search "evenly spaced" (documentation linspace 'function)))
        (with-lambda-list (ll linspace)
          (fiveam:is (equal '("START" "STOP") (subseq ll 0 2)) "~S" ll)
          (fiveam:is (subsetp '("NUM" "ENDPOINT" "RETSTEP" "DTYPE" "AXIS") (key-names ll) :test #'string=)
                     "~S" ll)))
      (fiveam:is-true (find-package "P4S-NUMPY.RANDOM"))
      (fiveam:is-true (find-package "P4S-NUMPY.LINALG"))
      (fiveam:is (equal '(2 3) (array-dimensions (funcall (find-symbol "RANDOM" "P4S-NUMPY.RANDOM") '(2 3)))))
      (fiveam:is (= 5d0 (funcall (find-symbol "NORM" "P4S-NUMPY.LINALG") #(3d0 4d0))))
      (fiveam:is (= 6 (funcall (find-symbol "SUM" "P4S-NUMPY") #(1 2 3)))))))
