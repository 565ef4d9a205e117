;;;; defpyfun and defpymodule: Python functions and modules as Lisp functions and packages.

(in-package :py4cl2-cffi)

(defvar *defpymodule-silent-p* nil
  "defpymodule avoids printing progress if this is T.")

(defun lispify-name (name)
  "A Python name as a Lisp symbol name: foo_bar -> FOO-BAR, camelCase -> CAMEL-CASE,
JSONDecoder -> JSON-DECODER (dots are kept)."
  (let ((name (string name)))
    (with-output-to-string (out)
      (loop for i from 0 below (length name)
            for c = (char name i)
            for prev = (and (plusp i) (char name (1- i)))
            for next = (and (< (1+ i) (length name)) (char name (1+ i)))
            do (when (and prev (upper-case-p c)
                          (or (lower-case-p prev) (digit-char-p prev)
                              (and (upper-case-p prev) next (lower-case-p next))))
                 (write-char #\- out))
               (write-char (if (char= c #\_) #\- (char-upcase c)) out)))))

;;; What Python says about callables: one call per module tree (names, signatures, docs).
(defun as-list (x) (if (listp x) x (coerce x 'list)))

(defun normalize-entry (entry)
  "(NAME SIGNATURE-STRING-OR-NIL PARAMS-OR-NIL DOC-OR-NIL CLASSP) from Python's tuple."
  (destructuring-bind (name sig params doc &optional classp) entry
    (list name
          (if (stringp sig) sig nil)
          (if (eq params +py-none+) nil (mapcar #'as-list (as-list params)))
          (if (stringp doc) doc nil)
          (eq classp t))))

(defun module-info (name submodules continue-ignoring-errors)
  "((MODULE-NAME (ENTRY...))...) for the module NAME and the SUBMODULES asked for (one call of
_py4cl2_cffi.module_info, loader/src/helpers.py)."
  (let ((subs (cond ((null submodules) +py-none+)
                    ((eq submodules t) t)
                    ((eq submodules :hidden) "hidden")
                    (t (labels ((conv (s) (if (consp s)
                                              (coerce (cons (string (car s)) (mapcar #'conv (cdr s))) 'simple-vector)
                                              (string s))))
                         (coerce (mapcar #'conv submodules) 'simple-vector))))))
    (loop for (module entries) in (as-list (call-helper "module_info" name subs
                                                        (if continue-ignoring-errors t nil)))
          collect (list module (mapcar #'normalize-entry (as-list entries))))))

(defun function-info (module name)
  (normalize-entry (as-list (call-helper "function_info" (or module +py-none+) name))))

;;; Calling convention. One rule for every function defpyfun and defpymodule make, the same
;;; as PYCALL's: arguments are positional until the first keyword that is followed by another
;;; argument; from there on they are keyword/value pairs. So (foo 4 3), (foo :a 4 :b 3) and
;;; (foo 4 :b 3) all call foo(A, b). A keyword names a Python parameter by its Lisp name (:a for
;;; A, :sort-keys for sort_keys, :camel-case for camelCase; a name that would be a constant of
;;; the function's package has a dot in front, :.nil for nil where CL is used, and works without
;;; it too); other keywords are passed as PYCALL passes them (:foo-bar as foo_bar), for
;;; **kwargs, and Python checks them.
;;; Python binds the arguments, so its TypeError reports a wrong call. Only the arguments given
;;; are passed, so Python's own defaults apply (including those Lisp cannot represent).
;;;
;;; The Lisp lambda list is (&REST ARGS); the one that describe, documentation tools and SLIME
;;; show is made from Python's signature (inspect.Parameter.kind: 0 positional-only, 1
;;; positional-or-keyword, 2 *args, 3 keyword-only, 4 **kwargs):
;;;   positional parameters, in order: required ones, then &optional those with a default;
;;;   *args: &rest args;
;;;   &key: every parameter Python accepts by keyword (positional-or-keyword ones again);
;;;   **kwargs: &allow-other-keys.
;;; def foo(A, b) shows (A B &KEY A B); numpy.linspace shows (START STOP &OPTIONAL (NUM 50) ...
;;; &KEY START STOP NUM ... DEVICE). No signature (many builtins, ufuncs): (&REST ARGS).

(defstruct (python-default (:constructor python-default (text)))
  "A default value that has no Lisp equivalent, shown in a lambda list as Python's repr."
  (text "" :type string :read-only t))

(defmethod print-object ((x python-default) stream)
  (write-string (python-default-text x) stream))

(defun param-lisp-name (name package)
  "The Lisp name of the Python parameter NAME for a function in PACKAGE: lispified (sort_keys ->
SORT-KEYS, camelCase -> CAMEL-CASE), with a dot in front when that would name a constant in
PACKAGE (nil -> .NIL and t -> .T where CL is used)."
  (let ((lisp (lispify-name name)))
    (if (multiple-value-bind (existing status) (find-symbol lisp package)
          (and status (constantp existing)))
        (concatenate 'string "." lisp)
        lisp)))

(defun default-form (flag value)
  "How the default of a parameter (FLAG and VALUE from Python) is shown."
  (case flag
    (1 value)                           ; a number, string, boolean or +py-none+
    (2 (python-default value))          ; Python's repr
    (t nil)))

(defun shown-lambda-list (params package)
  "The lambda list shown for a callable with the Python PARAMS, symbols interned in PACKAGE."
  (flet ((var (name) (intern (param-lisp-name name package) package)))
    (let ((required '()) (optional '()) (rest nil) (keys '()) (other-keys nil))
      (dolist (p params)
        (destructuring-bind (name kind flag value) p
          (case kind
            ((0 1) (if (and (= flag 0) (null optional))
                       (push (var name) required)
                       (push (if (= flag 0) (var name) (list (var name) (default-form flag value)))
                             optional))
                   (when (= kind 1) (push (var name) keys)))
            (2 (setf rest (var name)))
            (3 (push (if (= flag 0) (var name) (list (var name) (default-form flag value))) keys))
            (4 (setf other-keys t)))))
      (append (nreverse required)
              (when optional (cons '&optional (nreverse optional)))
              (when rest (list '&rest rest))
              (when (or keys other-keys) (cons '&key (nreverse keys)))
              (when other-keys '(&allow-other-keys))))))

(defun keyword-map (params package)
  "An alist (keyword . Python name) for the parameters in PARAMS that Python accepts by keyword
and whose keyword PYCALL would not spell right: A, camelCase, the dotted names of those
PARAM-LISP-NAME dots in PACKAGE, and :.NIL / :.T for nil and t in any package (as the original
py4cl2-cffi named them). NIL when there is none."
  (let ((map '()))
    (loop for (name kind) in params
          for key = (intern (param-lisp-name name package) :keyword)
          when (member kind '(1 3))
            do (when (string/= name (lisp-name-to-python key))
                 (push (cons key name) map))
               (when (member name '("nil" "t") :test #'string=)
                 (pushnew (cons (intern (concatenate 'string "." (string-upcase name)) :keyword) name)
                          map :test #'equal)))
    (nreverse map)))

(define-session-cache *pyfun-kwnames* (make-sync-table :test 'equal)
  "List of Python keyword names -> (generation . tuple of str).")

(defun pyfun-kwnames (names)
  (let ((entry (gethash names *pyfun-kwnames*))
        (generation (%generation)))
    (if (and entry (= (car entry) generation))
        (cdr entry)
        (let ((tuple (with-packed-values (p n) names (check-pointer (%tuple-from p n)))))
          (setf (gethash names *pyfun-kwnames*) (cons generation tuple))
          tuple))))

(defun call-with-keyword-names (pointer positional names values)
  "Calls the Python callable POINTER with the Lisp POSITIONAL arguments and the keyword
arguments NAMES (Python strings) = VALUES, lending specialized Lisp arrays as PYCALL does."
  (flet ((call ()
           (with-packed-values (p n) (append positional values)
             (with-result-frame (out scratch)
               (let ((status (%call-packed pointer p n (pyfun-kwnames names) out scratch +scratch-chars+)))
                 (if (= status 0)
                     (decode-result out scratch)
                     (signal-status status)))))))
    (if (or (some #'borrowable-array-p positional) (some #'borrowable-array-p values))
        (call-with-borrowed-arrays (append positional values) #'call)
        (call))))

(define-condition pyfun-argument-error (program-error simple-condition) ()
  (:documentation "Signalled when a function made by defpyfun or defpymodule gets arguments
that do not follow the calling convention (something other than keyword/value pairs after the
first keyword)."))

(defun call-pyfun (cell keyword-map args)
  "Calls CELL's callable with ARGS by the calling convention above; KEYWORD-MAP is the function's
(keyword . Python name) alist (see KEYWORD-MAP)."
  (let ((tail (loop for rest on args
                    when (and (keywordp (car rest)) (cdr rest)) return rest)))
    (if (null tail)
        (%pycall (cell-pointer cell) args)
        (let ((names '()) (values '()))
          (loop for rest on tail by #'cddr
                for key = (car rest)
                do (unless (and (keywordp key) (cdr rest))
                     (error 'pyfun-argument-error
                            :format-control "after the first keyword, the arguments of a Python ~
                                             function come as keyword/value pairs; found ~S in ~S"
                            :format-arguments (list key tail)))
                   (push (or (cdr (assoc key keyword-map)) (lisp-name-to-python key)) names)
                   (push (cadr rest) values))
          (call-with-keyword-names (cell-pointer cell) (ldiff args tail)
                                   (nreverse names) (nreverse values))))))

(defun pyfun-lambda (cell params signature-p docstring package)
  "The LAMBDA form of a function calling the Python callable of CELL, whose parameters are
PARAMS (when SIGNATURE-P, else unknown), with DOCSTRING; the lambda list it shows is declared."
  (let ((shown (if signature-p (shown-lambda-list params package) (list '&rest (intern "ARGS" package))))
        (map (keyword-map params package)))
    (values
     `(lambda (&rest args)
        ,docstring
        (declare (dynamic-extent args)
                 #+sbcl (sb-c::lambda-list ,shown))
        ,(if map
             `(call-pyfun ',cell ',map args)
             `(%pycall (cell-pointer ',cell) args)))
     shown)))

;;; Making the functions: interpreted at first on SBCL (made in microseconds, with their real
;;; lambda list and docstring), compiled on their first call; evaluated (bytecode) on ECL.
(defun compile-pyfun (symbol form interpreted)
  (when (eq (and (fboundp symbol) (fdefinition symbol)) interpreted)
    (let ((compiled (handler-bind ((warning #'muffle-warning))
                      (let ((*error-output* (make-broadcast-stream)))
                        (compile nil form)))))
      (when (eq (fdefinition symbol) interpreted)
        (setf (pyfun-cell-of compiled) (pyfun-cell-of interpreted))
        (setf (fdefinition symbol) compiled)))))

(defun make-pyfun (symbol form shown)
  "The function of the LAMBDA FORM for SYMBOL, showing the lambda list SHOWN."
  (declare (ignorable symbol shown))      ; SYMBOL is used on SBCL only, SHOWN on ECL only
  #+sbcl
  (let* ((box (list nil))
         (lazy `(lambda ,(second form) ,(third form)
                  ,@(let ((decl (fourth form))) (when (and (consp decl) (eq (car decl) 'declare)) (list decl)))
                  (compile-pyfun ',symbol ',form (car ',box))
                  ,@(last form)))
         (fn (let ((sb-ext:*evaluator-mode* :interpret)) (eval lazy))))
    (setf (car box) fn)
    fn)
  #-sbcl
  (let ((fn (eval form)))
    ;; ECL reads a function's lambda list from its lambda expression: show SHOWN there.
    (let ((expression (ignore-errors (function-lambda-expression fn))))
      (when (and (consp expression) (eq (car expression) 'lambda))
        (setf (second expression) shown)))
    fn))

(defvar *pyfun-cells* (tg:make-weak-hash-table :test 'eq :weakness :key)
  "Function made by defpyfun / defpymodule -> the name cell of its Python callable. Used under
*PYFUN-CELLS-LOCK* (ECL's synchronized weak tables fail with \"Thread already owns this lock\"
when filled fast).")

(defvar *pyfun-cells-lock* (bt:make-lock "py4cl2-cffi pyfun cells"))

(defun pyfun-cell-of (function)
  (bt:with-lock-held (*pyfun-cells-lock*) (gethash function *pyfun-cells*)))

(defun (setf pyfun-cell-of) (cell function)
  (bt:with-lock-held (*pyfun-cells-lock*) (setf (gethash function *pyfun-cells*) cell)))

(defmethod pythonize :around ((x function))
  ;; A function made by defpyfun or defpymodule stands for its Python callable: Python gets
  ;; that callable itself, not a callback into Lisp that calls it.
  (let ((cell (pyfun-cell-of x)))
    (if cell
        (let ((p (cell-pointer cell))) (%incref p) p)
        (call-next-method))))

(defun pyfun-cell (module name &optional alias)
  "The name cell of NAME in MODULE (NAME itself, a dotted or builtin name, when MODULE is NIL).
With ALIAS, each lookup also binds ALIAS to the callable in __main__ unless ALIAS is bound
there (so after a restart it is bound again, and a binding made in Python is left alone)."
  (let ((callable (format nil "__import__('importlib').import_module('~A').~A" module name)))
    (make-name-cell (cond ((null module) name)
                          (alias (format nil "(lambda f: (globals().setdefault('~A', f), f)[1])(~A)"
                                         alias callable))
                          (t callable)))))

(defun pyfun-docstring (module name sig doc)
  (format nil "Calls the Python callable ~@[~A.~]~A~@[~A~].~@[~%~%~A~]" module name sig doc))

(defun install-pyfun (symbol module entry &optional alias)
  "Defines the function SYMBOL calling the Python callable of ENTRY (from FUNCTION-INFO) in
MODULE (or a dotted / builtin name when MODULE is NIL). With ALIAS (an identifier), the callable
is also bound to ALIAS in __main__, now and, when ALIAS is not bound there (after a restart),
whenever the function looks it up again."
  (destructuring-bind (name sig params doc &optional classp) entry
    (declare (ignore classp))
    (let* ((package (symbol-package symbol))
           (docstring (pyfun-docstring module name sig doc))
           (cell (pyfun-cell module name alias)))
      (multiple-value-bind (form shown) (pyfun-lambda cell params (and sig t) docstring package)
        (let ((fn (make-pyfun symbol form shown)))
          (setf (pyfun-cell-of fn) cell)
          (setf (fdefinition symbol) fn)))
      #+ecl (si::set-documentation symbol 'function docstring) ; ECL's SETF DOCUMENTATION ignores it
      #-ecl (setf (documentation symbol 'function) docstring)
      (when alias
        ;; As from MODULE import NAME as ALIAS (a name bound before is replaced).
        (raw-pyexec (format nil "~A = __import__('importlib').import_module('~A').~A" alias module name)))
      symbol)))

;;; defpyfun
(defun python-identifier-p (name)
  (and (stringp name) (plusp (length name))
       (not (digit-char-p (char name 0)))
       (every (lambda (c) (or (alphanumericp c) (char= c #\_))) name)))

(defmacro defpyfun (fun-name &optional pymodule-name
                    &key (as fun-name) (cache t) (lisp-fun-name (lispify-name as))
                      (lisp-package *package*) (safety t))
  "Defines a function which calls python: (defpyfun \"sqrt\" \"math\") defines SQRT in the
current package calling math.sqrt.
Arguments: FUN-NAME, the Python name (a dotted name when PYMODULE-NAME is NIL); PYMODULE-NAME,
the module (\"\" for the builtins); AS, the name the callable gets in Python's __main__ (as
from MODULE import FUN-NAME as AS does; default FUN-NAME; only when PYMODULE-NAME is given) and
that the default LISP-FUN-NAME is made from; LISP-FUN-NAME, the name of the Lisp symbol;
LISP-PACKAGE, the package (or its name) to intern it in. CACHE non-NIL asks Python when the form
is macroexpanded (the expansion holds the signature); NIL asks when it is loaded. SAFETY is
accepted for compatibility: the function always finds its callable again (importing the module)
after Python is restarted, at no cost per call.
Calling it: arguments are positional until the first keyword that is followed by another
argument, then keyword/value pairs, as for PYCALL; each Python parameter that can be passed by
keyword has its keyword (:sort-keys for sort_keys, :a for A, :.nil for nil). So for def foo(A,
b), (foo 4 3), (foo :a 4 :b 3) and (foo 4 :b 3) are the same call. Its shown lambda list says
which parameters are positional and which keywords (for foo: (A B &KEY A B)); callables without
a signature show (&REST ARGS). Its docstring is the Python signature and __doc__. Returns the
symbol."
  (declare (ignore safety))
  (let* ((package (if (packagep lisp-package) lisp-package (string lisp-package)))
         (symbol (intern (string lisp-fun-name) package))
         (module (if (equal pymodule-name "") "builtins" pymodule-name))
         (alias (and module (python-identifier-p as) as)))
    `(eval-when (:compile-toplevel :load-toplevel :execute)
       (install-pyfun ',symbol ,module
                      ,(if cache
                           `',(function-info module fun-name)
                           `(function-info ,module ,fun-name))
                      ,alias)
       ',symbol)))

;;; defpymodule
(defun submodule-package-name (root-package root-module module)
  "NUMPY.RANDOM for numpy.random under the root package NUMPY of numpy."
  (if (string= module root-module)
      root-package
      (format nil "~A.~A" root-package
              (lispify-name (subseq module (1+ (length root-module)))))))

(defun install-pymodule (info pymodule-name lisp-package reload silent)
  "Makes a package per module of INFO (from MODULE-INFO) with an exported function per callable.
Returns T."
  (loop for (module entries) in info
        for package-name = (submodule-package-name lisp-package pymodule-name module)
        do (let ((existing (find-package package-name)))
             (when (or reload (not existing))
               (unless silent
                 (format t "~&; Defining ~A for accessing python package ~A..~%" package-name module))
               (let ((package (or existing (make-package package-name :use '())))
                     (seen (make-hash-table :test 'equal)))
                 (when existing
                   ;; Forget the functions of an earlier definition.
                   (let ((old '()))
                     (do-external-symbols (s package) (push s old))
                     (dolist (s old)
                       (when (eq (symbol-package s) package)
                         (when (fboundp s) (fmakunbound s))
                         (unexport s package)))))
                 (dolist (entry entries)
                   (let ((lisp-name (lispify-name (first entry))))
                     ;; A class is also NAME/CLASS (as in the original py4cl2-cffi), which no
                     ;; function of the same name can take.
                     (when (fifth entry)
                       (let ((symbol (intern (concatenate 'string lisp-name "/CLASS") package)))
                         (install-pyfun symbol module entry)
                         (export symbol package)))
                     ;; numpy has Inf and inf...: the first (dir() order: upper case first)
                     ;; loses to a later all-lower-case name.
                     (when (or (not (gethash lisp-name seen))
                               (string= (first entry) (string-downcase (first entry))))
                       (setf (gethash lisp-name seen) t)
                       (let ((symbol (intern lisp-name package)))
                         (install-pyfun symbol module entry)
                         (export symbol package)))))))))
  t)

(defmacro defpymodule (pymodule-name &optional submodules
                       &key (cache t) (continue-ignoring-errors t)
                         (lisp-package (lispify-name pymodule-name)) (reload t)
                         (recompile-on-change nil) (safety t) (silent *defpymodule-silent-p*))
  "Makes a Lisp package out of a Python module (and, on request, its submodules): each public callable of
PYMODULE-NAME becomes an exported function of the package LISP-PACKAGE (default: the module
name lispified, \"numpy\" -> NUMPY) calling it, with the lambda list and docstring Python gives
and the calling convention of DEFPYFUN (positional arguments, then keyword/value pairs:
(numpy:linspace 0 1 :num 5) or (numpy:linspace :start 0 :stop 1 :num 5)). A class is also
exported as NAME/CLASS (xml.etree.ElementTree.Element: ELEMENT and ELEMENT/CLASS). Example:
(defpymodule \"math\" nil :lisp-package \"M\") then (m:sqrt 4) => 2.0d0.
SUBMODULES: NIL; T for the public submodules (recursively: NUMPY.RANDOM, NUMPY.LINALG...;
test suites, modules named tests, conftest or setup, are left out);
:HIDDEN for those starting with _ too; or a list of names, each a string or a list (NAME
SUBMODULE...) in the same format. CONTINUE-IGNORING-ERRORS (default T) skips submodules that
fail to import; NIL signals the error. RELOAD (default T) redefines existing packages; NIL
keeps them. SILENT (default *DEFPYMODULE-SILENT-P*) does not print the progress lines. CACHE
non-NIL asks Python when the form is macroexpanded (the expansion holds every name, lambda list
and docstring, so a compiled file loads without asking again); NIL asks when it is loaded.
SAFETY and RECOMPILE-ON-CHANGE are accepted for compatibility. The packages exist once the form
is compiled or loaded. Returns T."
  (declare (ignore safety recompile-on-change))
  (let ((lisp-package (string lisp-package)))
    `(eval-when (:compile-toplevel :load-toplevel :execute)
       (install-pymodule ,(if cache
                              `',(module-info pymodule-name submodules continue-ignoring-errors)
                              `(module-info ,pymodule-name ',submodules ,continue-ignoring-errors))
                         ,pymodule-name ,lisp-package ,reload ,silent))))
