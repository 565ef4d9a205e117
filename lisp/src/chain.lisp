;;;; Remote objects, chain / chain* and pyref: Python attribute and item paths from Lisp.

(in-package :py4cl2-cffi)

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
