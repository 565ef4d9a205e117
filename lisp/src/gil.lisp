;;;; The GIL held over a block from Lisp (the shim takes it per call otherwise).

(in-package :py4cl2-cffi)

;;; The entry hook. Every entry point — each exported function that uses Python, and the
;;; internal functions that code expanded from this library's macros calls (%PYCALL,
;;; REFRESH-CELL, CALL-WITH-PYTHON-GIL) — is defined with DEFINE-ENTRY. When *ENTRY-HOOK* is
;;; set, a call of one runs through it instead of directly: py4cl2-cffi/single-threaded
;;; installs a hook that runs every call on one Lisp thread.
(defvar *entry-hook* nil
  "NIL, or a function of two arguments, NAME (the entry point's function name) and THUNK (a
function of no arguments that makes the same call again with *ENTRY-HOOK* bound to NIL, on
whichever thread calls it). The hook must call THUNK once and return its values.")

(defvar *entry-points* '()
  "The names of the functions defined with DEFINE-ENTRY.")

(eval-when (:compile-toplevel :load-toplevel :execute)
  (defun entry-lambda-list-and-call (name lambda-list hook)
    "A form that passes the hook (the variable HOOK) the call of NAME again with the values
LAMBDA-LIST received: required and optional arguments, the &rest list, and every keyword
argument with its value (defaults computed here, in the caller's dynamic environment)."
    (let ((required '()) (optional '()) (keys '()) (rest nil) (state :required))
      (dolist (item lambda-list)
        (case item
          (&optional (setf state :optional))
          (&rest (setf state :rest))
          (&key (setf state :key))
          (t (when (member item lambda-list-keywords)
               (error "define-entry ~S: ~S is not supported" name item))
             (when (and (consp item) (third item))
               (error "define-entry ~S: a supplied-p variable is not supported" name))
             (ecase state
               (:required (push item required))
               (:optional (push (if (consp item) (first item) item) optional))
               (:rest (setf rest item))
               (:key (let ((spec (if (consp item) (first item) item)))
                       (push (if (consp spec)
                                 (list (first spec) (second spec))
                                 (list (intern (symbol-name spec) :keyword) spec))
                             keys)))))))
      (let ((args (append (reverse required) (reverse optional))))
        (cond ((and rest keys)
               (error "define-entry ~S: &rest with &key is not supported" name))
              (rest `(apply #'call-entry-hook ,hook ',name (function ,name) ,@args ,rest))
              (t `(call-entry-hook ,hook ',name (function ,name) ,@args
                                   ,@(loop for (keyword var) in (reverse keys)
                                           append (list keyword var))))))))

  (defun split-body (body)
    "The docstring (or NIL), the declarations and the forms of the function body BODY."
    (let ((doc nil) (decls '()))
      (loop (cond ((and (stringp (first body)) (rest body) (null doc)) (setf doc (pop body)))
                  ((and (consp (first body)) (eq 'declare (car (first body)))) (push (pop body) decls))
                  (t (return))))
      ;; The arguments are used again by the hook's call: an IGNORE becomes IGNORABLE.
      (values doc
              (mapcar (lambda (d)
                        (cons 'declare (mapcar (lambda (spec)
                                                 (if (and (consp spec) (eq (car spec) 'ignore))
                                                     (cons 'ignorable (cdr spec))
                                                     spec))
                                               (cdr d))))
                      (nreverse decls))
              body))))

(defun call-entry-hook (hook name function &rest arguments)
  "Calls HOOK on NAME and a thunk that applies FUNCTION to ARGUMENTS with *ENTRY-HOOK* bound to
NIL. (The thunk is made here, not in the entry point, so that the entry point closes over
nothing: ECL would otherwise keep its arguments in a heap environment on every call.)"
  (funcall hook name (lambda () (let ((*entry-hook* nil)) (apply function arguments)))))

(defmacro define-entry (name lambda-list &body body)
  "DEFUN for an entry point of py4cl2-cffi: when *ENTRY-HOOK* is set, the call goes through it."
  (let* ((hook (gensym "HOOK"))
         (call (entry-lambda-list-and-call name lambda-list hook)))
    (multiple-value-bind (doc decls forms) (split-body body)
      `(progn
         (pushnew ',name *entry-points* :test #'equal)
         (defun ,name ,lambda-list
           ,@(when doc (list doc))
           ,@decls
           (let ((,hook *entry-hook*))
             (if ,hook
                 ,call
                 (progn ,@forms))))))))

(defmacro with-python-gil (&body body)
  "Holds Python's GIL for this thread during BODY (nestable). Calls inside BODY skip taking and
releasing it each time. Starts Python first if needed. Decrefs queued by finalizers still run
at the next call. Returns the values of BODY."
  `(call-with-python-gil (lambda () ,@body)))

(define-entry call-with-python-gil (function)
  (python-start-if-not-alive)
  (check-status (%gil-acquire))
  (unwind-protect (funcall function)
    (%gil-release)))
