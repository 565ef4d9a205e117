;;;; Callbacks, export-function, generators, pyref/chain, defpyfun/defpymodule, remote objects, pygc.

(in-package :py4cl2-cffi)

;;; Lisp functions called from Python. Handles index functions (and conditions in flight).
(defvar *callback-functions* (make-sync-table) "Handle -> Lisp function.")
(defvar *handle-lock* (bt:make-lock "py4cl2-cffi handles"))
(defvar *next-handle* 0)

(defun new-handle ()
  (bt:with-lock-held (*handle-lock*) (incf *next-handle*)))

(defun store-condition (condition)
  (let ((h (new-handle)))
    (setf (gethash h *lisp-conditions*) condition)
    h))

(defun python-name-to-keyword (name)
  (intern (substitute #\- #\_ (string-upcase name)) :keyword))

(cffi:defcallback callback-handler :pointer ((handle :int64) (args :pointer) (kwargs :pointer))
  ;; Python holds the GIL and called a Lisp function. Never unwind through the shim: a Lisp
  ;; error becomes a Python exception that carries the condition back to Lisp.
  (handler-case
      (let* ((fn (or (gethash handle *callback-functions*)
                     (error "py4cl2-cffi: no Lisp function for callback handle ~D" handle)))
             (*remote-objects* nil)
             (positional (let ((a (lispify args))) (if (listp a) a '())))
             (keywords (unless (cffi:null-pointer-p kwargs)
                         (let ((table (lispify kwargs)) (plist '()))
                           (maphash (lambda (k v) (push v plist) (push (python-name-to-keyword k) plist))
                                    table)
                           plist))))
        (pythonize (apply fn (append positional keywords))))
    (serious-condition (c)
      (let ((h (store-condition c))
            (text (or (ignore-errors (princ-to-string c)) "a Lisp error")))
        (with-utf8 (m n text) (%error-set-lisp h m n))
        (cffi:null-pointer)))))

(cffi:defcallback callback-release :void ((handle :int64))
  (remhash handle *callback-functions*))

(defun function-object (function &optional name)
  "A new reference to a Python callable that calls the Lisp FUNCTION."
  (python-start-if-not-alive)
  (let ((h (new-handle))
        (name (or name (let ((n (ignore-errors (nth-value 2 (function-lambda-expression function)))))
                         (if (symbolp n) (lisp-name-to-python n) "lisp_function")))))
    (setf (gethash h *callback-functions*) function)
    (with-utf8 (s n name)
      (let ((p (%make-callable h s n)))
        (when (cffi:null-pointer-p p) (remhash h *callback-functions*))
        (check-pointer p)))))

(defun export-function (function python-name)
  "Makes a lisp function available in python process as python-name. Returns PYTHON-NAME."
  (python-start-if-not-alive)
  (let ((p (function-object function python-name)))
    (unwind-protect
         (let ((w (wrap-new-reference (progn (%incref p) p))))
           (setf (pyvalue python-name) w))
      (%decref p)))
  python-name)

(defun pygenerator (function stop-value)
  "A Python generator (a PYOBJECT-WRAPPER) yielding the values of calling the Lisp FUNCTION
with no arguments until it returns something equal (in Python) to STOP-VALUE."
  (let ((*remote-objects* t))
    (call-helper "generator" function stop-value)))

;;; Remote objects.
(defmacro with-remote-objects (&body body)
  "Ensures that all values returned by python functions and methods are kept in python, and
only pointers are returned to lisp. This is useful if performing operations on large datasets."
  `(let ((*remote-objects* t)) ,@body))

(defmacro with-remote-objects* (&body body)
  "Like WITH-REMOTE-OBJECTS, but lispifies the value of the last form."
  `(lispify (let ((*remote-objects* t)) ,@body)))

;;; Indexing and chains.
(defun slice-form-p (x)
  (and (consp x) (symbolp (car x)) (string= (symbol-name (car x)) "SLICE")))

(defun chain-arg (x)
  "(slice a b c) lists become Python slice objects; other values stay."
  (if (slice-form-p x)
      (let ((*remote-objects* t))
        (apply #'pycall "slice" (mapcar (lambda (v) (if (null v) +py-none+ v)) (cdr x))))
      x))

(defun pyref (object &rest indices)
  "Wrapper around python's getitem along with support for slicing: (pyref \"hello\" 1) =>
\"e\"; (pyref #(1 2 3 4 5) '(slice 3 5)) => #(4 5); several INDICES index as a tuple."
  (apply #'call-helper "getitem" object (mapcar #'chain-arg indices)))

(defun (setf pyref) (new-value object &rest indices)
  "Sets OBJECT[INDICES] (a wrapper's object is modified in Python). Returns NEW-VALUE."
  (apply #'call-helper "setitem" object new-value (mapcar #'chain-arg indices))
  new-value)

(defun chain-head-name (head)
  (if (stringp head) head (lisp-name-to-python head)))

(defun chain-target (x)
  (cond ((slice-form-p x) (chain-arg x))
        ((and (consp x) (symbolp (car x)) (string= (symbol-name (car x)) "AREF"))
         (apply #'pyref (second x) (cddr x)))
        ((consp x) (apply #'pycall (chain-head-name (car x)) (mapcar #'chain-arg (cdr x))))
        (t x)))

(defun chain-step (object link)
  (cond ((and (consp link) (symbolp (car link)) (string= (symbol-name (car link)) "AREF"))
         (apply #'pyref object (cdr link)))
        ((consp link) (apply #'pymethod object (chain-head-name (car link))
                             (mapcar #'chain-arg (cdr link))))
        (t (pyslot-value object (chain-head-name link)))))

(defun chain* (&rest chain)
  "The function behind CHAIN, with its elements evaluated: (chain* \"hello {0}\" '(format
\"world\") '(capitalize)) => \"Hello world\". A list (aref obj idx...) indexes."
  (let ((outer *remote-objects*)
        (obj (let ((*remote-objects* t)) (chain-target (first chain)))))
    (let ((*remote-objects* t))
      (dolist (link (rest chain))
        (setf obj (chain-step obj link))))
    (if outer obj (lispify obj))))

(defun (setf chain*) (new-value &rest chain)
  "Sets the place the last element of CHAIN denotes: an (aref ...) item or an attribute."
  (let* ((links (butlast chain))
         (last (car (last chain)))
         (obj (if (rest chain)
                  (let ((*remote-objects* t))
                    (let ((o (chain-target (first links))))
                      (dolist (l (rest links) o) (setf o (chain-step o l)))))
                  nil)))
    (cond ((and (null (rest chain)) (consp last)
                (string= (symbol-name (car last)) "AREF"))
           (apply #'(setf pyref) new-value (second last) (cddr last)))
          ((and (consp last) (string= (symbol-name (car last)) "AREF"))
           (apply #'(setf pyref) new-value obj (cdr last)))
          (t (setf (pyslot-value obj (chain-head-name last)) new-value)))))

(defun chain-quote (x &optional top)
  (cond ((slice-form-p x) `(list 'slice ,@(cdr x)))
        ((consp x) `(list ,(if (stringp (car x)) (car x) `',(car x))
                          ,@(mapcar (lambda (a) (if (slice-form-p a) (chain-quote a) a)) (cdr x))))
        (top x)
        ((symbolp x) `',x)
        (t x)))

(defmacro chain (&rest chain)
  "Applies a chain of method calls, attribute accesses and indexing to a target:
(chain \"hello {0}\" (format \"world\") (capitalize)) => \"Hello world\", i.e.
\"hello {0}\".format(\"world\").capitalize(). The target is evaluated unless it is a list
(name args...), which calls NAME; (aref x i...) indexes; a symbol or string link is an
attribute; a list link (name args...) a method call whose ARGS are evaluated Lisp forms."
  `(chain* ,(chain-quote (first chain) t) ,@(mapcar #'chain-quote (rest chain))))

(defsetf chain (&rest chain) (new-value)
  `(setf (chain* ,(chain-quote (first chain) t) ,@(mapcar #'chain-quote (rest chain))) ,new-value))

;;; defpyfun and defpymodule.
(defvar *defpymodule-silent-p* nil
  "defpymodule avoids printing progress if this is T.")

(defun lispify-name (name)
  (substitute #\- #\_ (string-upcase name)))

(defmacro defpyfun (fun-name &optional pymodule-name
                    &key (as fun-name) (cache t) (lisp-fun-name (lispify-name as))
                      (lisp-package *package*) (safety t))
  "Defines a function which calls python: (defpyfun \"sqrt\" \"math\") defines SQRT in the
current package calling math.sqrt with its arguments (as PYCALL passes them). LISP-FUN-NAME
and LISP-PACKAGE choose the symbol. With SAFETY, the module is imported again on each call if
Python was restarted. CACHE is accepted for compatibility."
  (declare (ignore cache))
  (let* ((full (if pymodule-name (format nil "~A.~A" pymodule-name fun-name) fun-name))
         (symbol (intern (string lisp-fun-name) (if (packagep lisp-package) lisp-package (string lisp-package)))))
    `(progn
       (defun ,symbol (&rest args)
         ,(format nil "Calls the Python callable ~A." full)
         ,@(when (and safety pymodule-name) `((python-start-if-not-alive)))
         (apply #'pycall ,full args))
       ',symbol)))

(defun define-pymodule-package (pymodule-name submodules lisp-package silent continue-ignoring-errors)
  (python-start-if-not-alive)
  (let ((package-name (string lisp-package)))
    (unless silent
      (format t "~&; Defining ~A for accessing python package ~A..~%" package-name pymodule-name))
    (let ((package (or (find-package package-name) (make-package package-name :use '()))))
      (let ((names (let ((*remote-objects* nil))
                     (coerce (pycall "_py4cl2_cffi.method_list" (let ((*remote-objects* t))
                                                                  (pyvalue pymodule-name)))
                             'list))))
        (dolist (name names)
          (unless (and (plusp (length name)) (char= (char name 0) #\_))
            (let ((symbol (intern (lispify-name name) package))
                  (full (format nil "~A.~A" pymodule-name name)))
              (handler-bind ((error (lambda (e) (when continue-ignoring-errors
                                                  (return-from nil (progn e nil))))))
                (block nil
                  (setf (fdefinition symbol)
                        (let ((cell (make-name-cell full)))
                          (lambda (&rest args) (%pycall (cell-pointer cell) args))))
                  (export symbol package)))))))
      (dolist (sub (cond ((eq submodules t)
                          (coerce (raw-pyeval
                                   "[m.name for m in __import__('pkgutil').iter_modules(__import__('"
                                   pymodule-name "').__path__) if not m.name.startswith('_')] if hasattr(__import__('"
                                   pymodule-name "'), '__path__') else []")
                                  'list))
                         ((listp submodules) (mapcar (lambda (s) (if (consp s) (car s) s)) submodules))))
        (let ((full (format nil "~A.~A" pymodule-name sub)))
          (if continue-ignoring-errors
              (ignore-errors (import-module full)
                             (define-pymodule-package full nil (format nil "~A.~A" package-name (lispify-name sub))
                               silent t))
              (progn (import-module full)
                     (define-pymodule-package full nil (format nil "~A.~A" package-name (lispify-name sub))
                       silent nil)))))
      package)))

(defmacro defpymodule (pymodule-name &optional submodules
                       &key (cache t) (continue-ignoring-errors t)
                         (lisp-package (lispify-name pymodule-name)) (reload t)
                         (recompile-on-change nil) (safety t) (silent *defpymodule-silent-p*))
  "Import a python module (and its submodules) as a lisp-package(s): each public callable of
PYMODULE-NAME becomes an exported function of the package LISP-PACKAGE calling it (math:hypot).
SUBMODULES: NIL, T (public submodules) or a list of names. The package is made when the form is
compiled or loaded, with Python started then. Returns T."
  (declare (ignore cache reload recompile-on-change safety))
  `(eval-when (:compile-toplevel :load-toplevel :execute)
     (import-module ,pymodule-name)
     (define-pymodule-package ,pymodule-name ',submodules ,(string lisp-package) ,silent
                              ,continue-ignoring-errors)
     t))

;;; Lisp objects seen from Python (remote handles are completed with the callbacks work).
(defgeneric python-getattr (object slot-name)
  (:documentation "Called when python accesses an object's slot (getattr)"))

(defgeneric python-setattr (object slot-name value)
  (:documentation "Called when python sets an object's slot (setattr)"))

;;; Pointers of None and ().
(defun none-pointer () (python-start-if-not-alive) (%none))

(defvar *empty-tuple* (cons -1 nil))
(defun empty-tuple-pointer ()
  (python-start-if-not-alive)
  (let ((g (%generation)))
    (if (eql (car *empty-tuple*) g)
        (cdr *empty-tuple*)
        (cdr (setf *empty-tuple* (cons g (check-pointer (%tuple-from (cffi:null-pointer) 0))))))))

(define-symbol-macro +py-none-pointer+ (none-pointer))
(define-symbol-macro +py-empty-tuple-pointer+ (empty-tuple-pointer))

;;; Garbage collection: finalizers and the shim's decref queue already release references, at
;;; no cost to calls; these keep their documented meaning for code written for the original.
(defvar *pygc-threshold* 1000
  "Number of references in PYTHON-NEW-REFERENCES after which PYGC manipulates reference counts.
Kept for compatibility: references are released by finalizers through the shim's queue.")

(defmacro with-pygc (&body body)
  "Code surrounded by with-pygc performs garbage collection only after executing all of body.
Here references are released by finalizers through the decref queue, so this is PROGN."
  `(progn ,@body))

(defmacro enable-pygc ()
  "Compatibility: reference release is always on. Returns NIL."
  nil)

(defmacro disable-pygc ()
  "Compatibility: reference release is always on (finalizers queue decrefs). Returns NIL."
  nil)

;;; Documentation of accessors and symbol macros defined without a docstring place.
(setf (documentation '+py-none-pointer+ 'variable)
      "A foreign pointer to Python's None (borrowed; valid until Python stops)."
      (documentation '+py-empty-tuple-pointer+ 'variable)
      "A foreign pointer to an empty Python tuple (valid until Python stops)."
      (documentation 'pyobject-wrapper-p 'function)
      "T if OBJECT is a PYOBJECT-WRAPPER."
      (documentation 'pyobject-wrapper-pointer 'function)
      "The foreign pointer of a PYOBJECT-WRAPPER (borrowed: valid while the wrapper lives)."
      (documentation 'pyerror-message 'function)
      "str() of the Python exception of a PYERROR."
      (documentation 'pyerror-traceback 'function)
      "The formatted Python traceback of a PYERROR, ending with the `Type: message` line."
      (documentation 'pyerror-type 'function)
      "The qualified type name of the Python exception of a SIMPLE-PYERROR (\"ValueError\")."
      (documentation 'shim-error-message 'function)
      "The shim's text explaining a SHIM-ERROR."
      (documentation 'py4cl2-cffi/config:shim-not-found-searched 'function)
      "The places SHIM-NOT-FOUND looked at, with why each failed.")
