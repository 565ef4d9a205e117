;;;; The iterate clause (for x pyfor iterable): Lisp loops over Python iterables.

(in-package :py4cl2-cffi)

;;; Each step is one call of next(iterator, end), END being an instance of a private Python
;;; class whose lispifier gives the symbol +PYFOR-END+; inside WITH-REMOTE-OBJECTS the step
;;; compares wrappers instead.

(defconstant +pyfor-end+ '+pyfor-end+
  "What the end marker of a PYFOR iteration lispifies to.")

(define-lispifier "_py4cl2_cffi._PyforEnd" (pointer)
  (declare (ignore pointer))
  +pyfor-end+)

(define-session-cache *pyfor-end* (cons -1 nil)
  "(generation . wrapper of _py4cl2_cffi.pyfor_end).")

(defun pyfor-end ()
  "The wrapper of the end marker in the running Python (made on first use per start)."
  (python-start-if-not-alive)
  (let ((entry *pyfor-end*)
        (generation (%generation)))
    (if (and (= (car entry) generation) (cdr entry))
        (cdr entry)
        (progn
          (let ((end (let ((*remote-objects* t)) (pyvalue "_py4cl2_cffi.pyfor_end"))))
            (setf *pyfor-end* (cons generation end))
            end)))))

(defun pyfor-iterator (iterable)
  "A wrapper of iter(ITERABLE): a Python iterable, or a Lisp value pythonized first."
  (let ((*remote-objects* t))
    (pycall "iter" iterable)))

(defun pyfor-next (iterator end)
  "The next value of the Python ITERATOR (converted as PYCALL converts results), or
+PYFOR-END+ when it is exhausted. END is the wrapper of the end marker."
  (let ((value (pycall "next" iterator end)))
    (if (and *remote-objects* (pyobject-wrapper-p value) (pyobject-wrapper-eq value end))
        +pyfor-end+
        value)))

(iterate:defmacro-driver (iterate:for var pyfor iterable)
  "Iterates VAR over the values of the Python ITERABLE (see the macro PYFOR)."
  (let ((iterator (gensym "ITERATOR")) (end (gensym "END")) (value (gensym "VALUE"))
        (kwd (if iterate::generate 'iterate:generate 'iterate:for)))
    `(progn
       (iterate:with ,iterator = (pyfor-iterator ,iterable))
       (iterate:with ,end = (pyfor-end))
       (,kwd ,var iterate:next (let ((,value (pyfor-next ,iterator ,end)))
                                 (if (eq ,value +pyfor-end+)
                                     (iterate:terminate)
                                     ,value))))))

(defmacro pyfor (&rest arguments)
  "PYFOR names the iterate clause (for VAR pyfor ITERABLE): VAR takes the values of the Python
ITERABLE (a PYOBJECT-WRAPPER of a list, generator, numpy array, dict..., or a Lisp value
pythonized first), each converted to Lisp as PYCALL converts results, one call into Python per
value; (generate VAR pyfor ITERABLE) makes a generator, stepped with (next VAR):
  (iter (for x pyfor (pyeval \"range(3)\")) (collect x)) => (0 1 2)
Inside WITH-REMOTE-OBJECTS the values stay wrappers. Signals a PYERROR when Python raises while
iterating. As a form of its own, PYFOR only signals an error saying so."
  (declare (ignore arguments))
  `(error "PYFOR is the iterate clause (for var pyfor iterable), not an operator"))
