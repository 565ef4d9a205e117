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
(defparameter *module-info-code* "
import sys as _sys, types as _types
_m = _sys.modules.get('py4cl2_cffi') or _types.ModuleType('py4cl2_cffi')
exec('''
def _signature(o):
    import inspect
    try:
        s = inspect.signature(o)
    except Exception:
        return None, None
    # Builtins and Cython functions are called positionally: their positional-or-keyword
    # parameters with a default are reported as positional-only (&optional in Lisp).
    try:
        f = inspect.unwrap(getattr(o, '__func__', o))
    except Exception:
        f = o
    python = inspect.isfunction(f) or inspect.isclass(o)
    params = []
    for p in s.parameters.values():
        d = p.default
        if d is p.empty:
            flag, value = 0, None
        elif d is None or isinstance(d, (bool, int, float, str)):
            flag, value = 1, d
        else:
            try:
                flag, value = 2, repr(d)
            except Exception:
                flag, value = 2, '?'
        kind = int(p.kind)
        if kind == 1 and flag and not python:
            kind = 0
        params.append((p.name, kind, flag, value))
    return str(s), params

def _doc(o):
    import inspect
    try:
        d = inspect.getdoc(o)
    except Exception:
        d = None
    return d if isinstance(d, str) else None

def _entry(name, o):
    s, params = _signature(o)
    return (name, s, params, _doc(o))

def module_info(name, submodules, ignore_errors):
    import importlib, pkgutil, types, warnings
    out = []
    def walk(modname, subs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                m = importlib.import_module(modname)
        except BaseException as e:
            if not ignore_errors or modname == name:
                raise
            return
        funcs = []
        for n in dir(m):
            if n.startswith('_'):
                continue
            try:
                o = getattr(m, n)
            except Exception:
                continue
            if callable(o) and not isinstance(o, types.ModuleType):
                funcs.append(_entry(n, o))
        out.append((modname, funcs))
        if subs is True or subs == 'hidden':
            if hasattr(m, '__path__'):
                for info in pkgutil.iter_modules(m.__path__):
                    if info.name in ('tests', 'conftest', 'setup'):
                        continue
                    if subs == 'hidden' or not info.name.startswith('_'):
                        walk(modname + '.' + info.name, subs)
        elif subs:
            for s in subs:
                if isinstance(s, (list, tuple)):
                    walk(modname + '.' + s[0], list(s[1:]))
                else:
                    walk(modname + '.' + s, None)
    walk(name, submodules)
    return out

def function_info(module, name):
    import importlib
    if module:
        o = getattr(importlib.import_module(module), name)
    else:
        import __main__, builtins
        parts = name.split('.')
        if hasattr(__main__, parts[0]):
            o = getattr(__main__, parts[0])
        elif hasattr(builtins, parts[0]):
            o = getattr(builtins, parts[0])
        else:
            o = importlib.import_module(parts[0])
        for p in parts[1:]:
            o = getattr(o, p)
    return _entry(name, o)
''', _m.__dict__)
_sys.modules['py4cl2_cffi'] = _m
del _m, _sys, _types
")

(defvar *module-info-generation* 0)

(defun ensure-module-info-code ()
  (python-start-if-not-alive)
  (unless (= *module-info-generation* (%generation))
    (with-utf8 (s n *module-info-code*)
      (check-status (%exec s n (cffi:null-pointer) (cffi:null-pointer))))
    (setf *module-info-generation* (%generation))))

(defun as-list (x) (if (listp x) x (coerce x 'list)))

(defun normalize-entry (entry)
  "(NAME SIGNATURE-STRING-OR-NIL PARAMS-OR-NIL DOC-OR-NIL) from Python's tuple."
  (destructuring-bind (name sig params doc) entry
    (list name
          (if (stringp sig) sig nil)
          (if (eq params +py-none+) nil (mapcar #'as-list (as-list params)))
          (if (stringp doc) doc nil))))

(defun module-info (name submodules continue-ignoring-errors)
  "((MODULE-NAME (ENTRY...))...) for the module NAME and the SUBMODULES asked for."
  (ensure-module-info-code)
  (let ((subs (cond ((null submodules) +py-none+)
                    ((eq submodules t) t)
                    ((eq submodules :hidden) "hidden")
                    (t (labels ((conv (s) (if (consp s)
                                              (coerce (cons (string (car s)) (mapcar #'conv (cdr s))) 'simple-vector)
                                              (string s))))
                         (coerce (mapcar #'conv submodules) 'simple-vector))))))
    (loop for (module entries) in (as-list (pycall "py4cl2_cffi.module_info" name subs
                                                   (if continue-ignoring-errors t nil)))
          collect (list module (mapcar #'normalize-entry (as-list entries))))))

(defun function-info (module name)
  (ensure-module-info-code)
  (normalize-entry (as-list (pycall "py4cl2_cffi.function_info" (or module +py-none+) name))))

;;; Lambda lists from Python signatures. Parameter kinds (inspect.Parameter.kind):
;;; 0 positional-only, 1 positional-or-keyword, 2 *args, 3 keyword-only, 4 **kwargs.
;;; Without default: required. Positional-only with a default: &optional. Others with a
;;; default, and keyword-only: &key; except in builtins and Cython functions (not def-ined in
;;; Python), where positional-or-keyword parameters with a default are &optional, as they are
;;; called positionally: (numpy.random:random '(2 3)). *args: the leading required ones, then &rest (the rest is
;;; passed as PYCALL passes arguments). **kwargs: &allow-other-keys (other keys passed on).
;;; No signature (many builtins): (&rest args).

(defun param-symbol (name package)
  "A variable for the Python parameter NAME in PACKAGE, avoiding symbols Lisp reserves."
  (let* ((lisp (lispify-name name))
         (existing (find-symbol lisp package)))
    (if (and existing
             (or (not (eq (symbol-package existing) package))
                 (constantp existing)
                 #+sbcl (member (sb-int:info :variable :kind existing) '(:special :global))
                 #-sbcl (boundp existing)))
        (intern (concatenate 'string lisp "-ARG") package)
        (intern lisp package))))

(defun default-form (flag value)
  (case flag
    (1 (cond ((eq value +py-none+) '+py-none+)
             ((or (numberp value) (stringp value) (null value) (eq value t)) value)
             (t `',value)))
    (2 value)                           ; the repr, for the reader only
    (t nil)))

(defconstant +unsupplied+ '+unsupplied+)

(defun pyfun-lambda (cell params package doc)
  "The LAMBDA form of a function calling the Python callable of CELL with PARAMS."
  (let ((varargs (find 2 params :key #'second)))
    (cond
      ((or (null params) varargs)
       (let* ((required (loop for (name kind flag) in params
                              while (and (member kind '(0 1)) (= flag 0))
                              collect (param-symbol name package)))
              (rest (if (member "ARGS" required :key #'symbol-name :test #'string=)
                        (intern "MORE-ARGS" package)
                        (intern "ARGS" package))))
         `(lambda (,@required &rest ,rest)
            ,doc
            (%pycall (cell-pointer ',cell) (list* ,@required ,rest)))))
      (t
       (let ((required '()) (optional '()) (keys '()) (kwargs (find 4 params :key #'second)))
         (dolist (p params)
           (destructuring-bind (name kind flag value) p
             (let ((var (param-symbol name package)))
               (cond ((= kind 4))
                     ((and (member kind '(0 1)) (= flag 0)) (push var required))
                     ((= kind 0) (push (list var (default-form flag value)
                                             (intern (concatenate 'string (symbol-name var) "-SUPPLIED-P") package))
                                       optional))
                     (t (push (list name var (default-form flag value)
                                    (intern (concatenate 'string (symbol-name var) "-SUPPLIED-P") package))
                              keys))))))
         (setf required (nreverse required) optional (nreverse optional) keys (nreverse keys))
         (let ((rest (and kwargs (intern "MORE-KEYS" package))))
           `(lambda (,@required
                     ,@(when optional `(&optional ,@optional))
                     ,@(when rest `(&rest ,rest))
                     ,@(when (or keys rest) '(&key))
                     ,@(loop for (name var default supplied) in keys
                             collect (if (string= (symbol-name var) (lispify-name name))
                                         `(,var ,default ,supplied)
                                         `((,(intern (lispify-name name) :keyword) ,var) ,default ,supplied)))
                     ,@(when rest '(&allow-other-keys)))
              ,doc
              (declare (ignorable ,@(mapcar #'first optional) ,@(mapcar #'second keys)))
              (call-pyfun ',cell (list ,@required)
                          (list ,@(loop for (var nil supplied) in optional collect supplied collect var))
                          ',(coerce (mapcar #'first keys) 'simple-vector)
                          (list ,@(loop for (nil var nil supplied) in keys collect supplied collect var))
                          ,rest))))))))

(defvar *pyfun-kwnames* (make-sync-table :test 'equal)
  "List of Python keyword names -> (generation . tuple of str).")

(defun pyfun-kwnames (names)
  (let ((entry (gethash names *pyfun-kwnames*))
        (generation (%generation)))
    (if (and entry (= (car entry) generation))
        (cdr entry)
        (let ((tuple (with-packed-values (p n) names (check-pointer (%tuple-from p n)))))
          (setf (gethash names *pyfun-kwnames*) (cons generation tuple))
          tuple))))

(defun call-pyfun (cell positional optionals key-names keys more-keys)
  "Calls CELL's callable with POSITIONAL, the supplied leading OPTIONALS (a supplied-p/value
plist), the supplied KEYS (supplied-p/value pairs named by KEY-NAMES, Python strings) and the
other keywords MORE-KEYS (a plist; known keys skipped)."
  (let ((args (copy-list positional)) (names '()) (values '()))
    (loop for (supplied value) on optionals by #'cddr
          while supplied do (setf args (nconc args (list value))))
    (loop for (supplied value) on keys by #'cddr
          for name across key-names
          when supplied do (push name names) (push value values))
    (loop for (k v) on more-keys by #'cddr
          for name = (if (symbolp k) (lisp-name-to-python k) (string k))
          unless (find name key-names :test #'string=)
            do (push name names) (push v values))
    (if (null names)
        (%pycall (cell-pointer cell) args)
        (let ((pointer (cell-pointer cell))
              (kwnames (pyfun-kwnames (reverse names))))
          (with-packed-values (p n) (nconc args (nreverse values))
            (with-result-frame (out scratch)
              (let ((status (%call-packed pointer p n kwnames out scratch +scratch-chars+)))
                (if (= status 0)
                    (decode-result out scratch)
                    (signal-status status)))))))))

;;; Making the functions: interpreted at first on SBCL (made in microseconds, with their real
;;; lambda list and docstring), compiled on their first call; evaluated (bytecode) on ECL.
(defun compile-pyfun (symbol form interpreted)
  (when (eq (and (fboundp symbol) (fdefinition symbol)) interpreted)
    (let ((compiled (handler-bind ((warning #'muffle-warning))
                      (let ((*error-output* (make-broadcast-stream)))
                        (compile nil form)))))
      (when (eq (fdefinition symbol) interpreted)
        (setf (fdefinition symbol) compiled)))))

(defun make-pyfun (symbol form)
  (declare (ignorable symbol)) ; used on SBCL only
  #+sbcl
  (let* ((box (list nil))
         (lazy `(lambda ,(second form) ,(third form)
                  ,@(let ((decl (fourth form))) (when (and (consp decl) (eq (car decl) 'declare)) (list decl)))
                  (compile-pyfun ',symbol ',form (car ',box))
                  ,@(last form)))
         (fn (let ((sb-ext:*evaluator-mode* :interpret)) (eval lazy))))
    (setf (car box) fn)
    fn)
  #-sbcl (eval form))

(defun pyfun-cell (module name)
  (make-name-cell (if module
                      (format nil "__import__('importlib').import_module('~A').~A" module name)
                      name)))

(defun pyfun-docstring (module name sig doc)
  (format nil "Calls the Python callable ~@[~A.~]~A~@[~A~].~@[~%~%~A~]" module name sig doc))

(defun install-pyfun (symbol module entry)
  "Defines the function SYMBOL calling the Python callable of ENTRY (from FUNCTION-INFO) in
MODULE (or a dotted / builtin name when MODULE is NIL)."
  (destructuring-bind (name sig params doc) entry
    (let* ((package (symbol-package symbol))
           (docstring (pyfun-docstring module name sig doc))
           (form (pyfun-lambda (pyfun-cell module name)
                               (if sig params nil)
                               package docstring)))
      (when (and sig (null params))
        ;; A signature without parameters: (lambda () ...).
        (setf form `(lambda () ,docstring (%pycall (cell-pointer ',(pyfun-cell module name)) '()))))
      (setf (fdefinition symbol) (make-pyfun symbol form))
      #+ecl (si::set-documentation symbol 'function docstring) ; ECL's SETF DOCUMENTATION ignores it
      #-ecl (setf (documentation symbol 'function) docstring)
      symbol)))

;;; defpyfun
(defmacro defpyfun (fun-name &optional pymodule-name
                    &key (as fun-name) (cache t) (lisp-fun-name (lispify-name as))
                      (lisp-package *package*) (safety t))
  "Defines a function which calls python: (defpyfun \"sqrt\" \"math\") defines SQRT in the
current package calling math.sqrt. Its lambda list comes from Python's inspect.signature
(positional parameters without default are required, positional-only ones with a default
&optional, the others &key: (defpyfun \"dumps\" \"json\") takes (OBJ &KEY SKIPKEYS ... INDENT
...)); callables without a signature take (&REST ARGS) as PYCALL does. Its docstring is the
Python signature and __doc__.
Arguments: FUN-NAME, the Python name (a dotted name when PYMODULE-NAME is NIL); PYMODULE-NAME,
the module; AS, the name the default LISP-FUN-NAME is made from; LISP-FUN-NAME, the name of the
Lisp symbol; LISP-PACKAGE, the package (or its name) to intern it in. CACHE non-NIL asks Python
when the form is macroexpanded (the expansion holds the signature); NIL asks when it is loaded.
SAFETY is accepted for compatibility: the function always finds its callable again (importing
the module) after Python is restarted, at no cost per call. Returns the symbol."
  (declare (ignore safety))
  (let* ((package (if (packagep lisp-package) lisp-package (string lisp-package)))
         (symbol (intern (string lisp-fun-name) package)))
    `(eval-when (:compile-toplevel :load-toplevel :execute)
       (install-pyfun ',symbol ,pymodule-name
                      ,(if cache
                           `',(function-info pymodule-name fun-name)
                           `(function-info ,pymodule-name ,fun-name)))
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
(see DEFPYFUN). Example: (defpymodule \"math\" nil :lisp-package \"M\") then (m:sqrt 4) => 2.0d0.
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
