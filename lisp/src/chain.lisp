;;;; Remote objects, chain / chain* and pyref: Python attribute and item paths from Lisp.

(in-package :py4cl2-cffi)

;;; Remote objects.
(defmacro with-remote-objects (&body body)
  "Runs BODY with results left in Python: nothing is converted to Lisp, which saves the copying
when intermediate values are large (arrays, data frames) and only the last step matters.
Inside BODY every result of PYCALL, PYVALUE, PYMETHOD, PYSLOT-VALUE, PYREF, CHAIN, RAW-PYEVAL...
is a PYOBJECT-WRAPPER, even for numbers and strings; Lisp functions called back from Python
still receive Lisp values. Returns the values of BODY."
  `(let ((*remote-objects* t)) ,@body))

(defmacro with-remote-objects* (&body body)
  "Like WITH-REMOTE-OBJECTS, but the value of the last form of BODY is lispified (converted to
a Lisp value as outside WITH-REMOTE-OBJECTS) before it is returned."
  `(lispify (let ((*remote-objects* t)) ,@body)))

;;; Slices and indices.
(defun link-head-p (x name)
  "T if X is a list whose head is a symbol named NAME, in any package (SLICE, :SLICE, AREF...)."
  (and (consp x) (symbolp (car x)) (string= (symbol-name (car x)) name)))

(defun slice-form-p (x)
  (link-head-p x "SLICE"))

(defun at-form-p (x)
  "T if X is an attribute form (@ object name...)."
  (link-head-p x "@"))

(defun at-form-value (x)
  "The Python object (a wrapper) of the attribute form (@ OBJECT NAME...): OBJECT.NAME...., as
in Parenscript. OBJECT is a Lisp value (pythonized), a wrapper, or itself such a form."
  (let ((*remote-objects* t))
    (let ((o (chain-arg (second x))))
      (dolist (name (cddr x) o)
        (setf o (pyslot-value o (chain-head-name name)))))))

(defun chain-arg (x)
  "A (slice start stop step) list becomes a Python slice object (NIL bounds are None); an
attribute form (@ object name...) the attribute's value; other values stay as they are."
  (cond ((slice-form-p x)
         (let ((*remote-objects* t))
           (apply #'pycall "slice" (mapcar (lambda (v) (if (null v) +py-none+ v)) (cdr x)))))
        ((at-form-p x) (at-form-value x))
        (t x)))

(define-entry pyref (object &rest indices)
  "Wrapper around python's getitem along with support for slicing: returns OBJECT[INDICES]
converted to Lisp. One index is used as it is; several index with their tuple, as Python's
a[i, j] does. An index (slice START STOP STEP) (the symbol's package does not matter: SLICE,
:SLICE) is the slice START:STOP:STEP, with NIL or +PY-NONE+ for an omitted part:
  (pyref \"hello\" 1) => \"e\"
  (pyref #(1 2 3 4 5) '(slice 3 5)) => #(4 5)
  (pyref numpy-2d-array '(slice nil nil 2) 0) ; a[::2, 0]
OBJECT is a PYOBJECT-WRAPPER (or pointer), or a Lisp value pythonized for the call. Signals a
PYERROR when Python raises (IndexError, KeyError...)."
  (apply #'call-helper "getitem" object (mapcar #'chain-arg indices)))

(define-entry (setf pyref) (new-value object &rest indices)
  "Sets OBJECT[INDICES] to NEW-VALUE (indices as for PYREF). Only a PYOBJECT-WRAPPER's object is
changed for good: a Lisp value is pythonized anew for the call. Returns NEW-VALUE."
  (apply #'call-helper "setitem" object new-value (mapcar #'chain-arg indices))
  new-value)

;;; Chains.
(defun chain-head-name (head)
  (if (stringp head) head (lisp-name-to-python head)))

(defun chain-target (x)
  "The object a chain starts from: (slice ...) a slice, (aref object indices...) an item,
(@ object name...) an attribute, (name args...) the result of calling the Python callable NAME
(or the callable an attribute form gives: ((@ obj func) args...) is obj.func(args...)),
anything else itself."
  (cond ((or (slice-form-p x) (at-form-p x)) (chain-arg x))
        ((link-head-p x "AREF") (apply #'pyref (second x) (cddr x)))
        ((consp x) (apply #'pycall (if (at-form-p (car x)) (at-form-value (car x)) (chain-head-name (car x)))
                          (mapcar #'chain-arg (cdr x))))
        (t x)))

(defun chain-step (object link)
  "Applies one LINK of a chain to OBJECT: (aref indices...) indexes, (@ name args...) calls the
method whose name is computed at run time, (name args...) calls the method NAME, a symbol or
string is an attribute."
  (cond ((link-head-p link "AREF") (apply #'pyref object (cdr link)))
        ((link-head-p link "@")
         (apply #'pymethod object (chain-head-name (second link)) (mapcar #'chain-arg (cddr link))))
        ((consp link)
         (apply #'pymethod object (chain-head-name (car link)) (mapcar #'chain-arg (cdr link))))
        (t (pyslot-value object (chain-head-name link)))))

(define-entry chain* (&rest chain)
  "The function behind CHAIN, with its elements evaluated:
  (chain* \"hello {0}\" '(format \"world\") '(capitalize)) => \"Hello world\"
The first element is the target: a list (name args...) calls the Python callable NAME, (aref
object indices...) indexes OBJECT, (slice ...) makes a slice, (@ object name...) reads the
attribute OBJECT.NAME... (as Parenscript's @), anything else is a Lisp value (pythonized) or a
PYOBJECT-WRAPPER. An attribute form also names the callable of a call and may be an argument:
  (chain* `((@ ,obj func) (@ ,obj value))) ; obj.func(obj.value)
Each following link is (aref indices...), (@ name args...),
(name args...) for a method call, or a symbol or string for an attribute. Intermediate results
stay in Python; the last one is converted to Lisp (it stays a PYOBJECT-WRAPPER inside
WITH-REMOTE-OBJECTS). Signals a PYERROR when Python raises."
  (let ((outer *remote-objects*)
        (obj (let ((*remote-objects* t))
               (let ((o (chain-target (first chain))))
                 (dolist (link (rest chain) o)
                   (setf o (chain-step o link)))))))
    (if outer obj (lispify obj))))

(define-entry (setf chain*) (new-value &rest chain)
  "Sets the place the last element of CHAIN denotes, in the object the elements before it give:
an item for (aref indices...), an attribute for a symbol or string. (setf (chain* `(aref ,x 0))
v) sets x[0]. The object is changed in Python, so this is useful on PYOBJECT-WRAPPERs (see
WITH-REMOTE-OBJECTS). Returns NEW-VALUE."
  (let ((links (butlast chain))
        (last (car (last chain))))
    (cond ((null links)
           (if (link-head-p last "AREF")
               (apply #'(setf pyref) new-value (second last) (cddr last))
               (error "(SETF CHAIN*) needs a place: an (aref object indices...) form or an ~
                       object followed by a link, not ~S" chain)))
          (t
           (let ((obj (let ((*remote-objects* t))
                        (let ((o (chain-target (first links))))
                          (dolist (l (rest links) o) (setf o (chain-step o l)))))))
             (if (link-head-p last "AREF")
                 (apply #'(setf pyref) new-value obj (cdr last))
                 (setf (pyslot-value obj (chain-head-name last)) new-value)))))
    new-value))

(defun chain-argument-form (a)
  "The form for an argument inside a CHAIN link: (slice ...) stays a slice spec with evaluated
bounds, a list that cannot be a form (its head is not a symbol, as in (3 4)) is literal data,
anything else is an ordinary Lisp form, evaluated."
  (cond ((slice-form-p a) `(list 'slice ,@(cdr a)))
        ((at-form-p a) (at-form-form a))
        ((and (consp a) (not (symbolp (car a)))
              (not (and (consp (car a)) (eq 'lambda (caar a)))))
         `',a)
        (t a)))

(defun at-form-form (x)
  "The form CHAIN turns an attribute form (@ object name...) into: OBJECT evaluated (or itself
an attribute form), the names literal."
  `(list '@ ,(chain-argument-form (second x))
         ,@(mapcar (lambda (n) (if (symbolp n) `',n n)) (cddr x))))

(defun chain-quote (x &optional top)
  "The form CHAIN turns the element X into (TOP for the target, which is evaluated unless it is
a list)."
  (cond ((slice-form-p x) (chain-argument-form x))
        ((and top (at-form-p x)) (at-form-form x))
        ((consp x) `(list ,(cond ((stringp (car x)) (car x))
                                 ((at-form-p (car x)) (at-form-form (car x)))
                                 (t `',(car x)))
                          ,@(mapcar #'chain-argument-form (cdr x))))
        (top x)
        ((symbolp x) `',x)
        (t x)))

(defmacro chain (&rest chain)
  "Applies a chain of method calls, attribute accesses and indexing to a target, as Python's
a.b(c)[d] does:
  (chain \"hello {0}\" (format \"world\") (capitalize)) => \"Hello world\"
  (chain (slice 3) stop) => 3
  (chain (aref \"hello\" (slice 2 4))) => \"ll\"
  (chain (\"TestClass\") (\"doThing\" :value 31))
The target (first element) is evaluated unless it is a list: (name args...) calls the Python
callable NAME (a string or a symbol, lower-cased; or an attribute form, ((@ obj func) x) is
obj.func(x)), (aref object indices...) indexes, (slice ...) makes a slice, (@ object name...)
reads an attribute. Each link is (aref indices...), (name args...) for a method call (keyword
arguments as in PYCALL), (@ name-form args...) for a method named at run time, or a symbol or
string for an attribute. Arguments are Lisp forms, evaluated, except (slice ...), attribute
forms (@ object-form name...), and lists whose head is not a symbol, such as (3 4), which are
literal data. Returns what CHAIN* returns; SETF
of CHAIN sets an item or attribute (see (SETF CHAIN*))."
  `(chain* ,(chain-quote (first chain) t) ,@(mapcar #'chain-quote (rest chain))))

;;; (SETF CHAIN) needs no expander: SETF expands the macro and calls (SETF CHAIN*).
