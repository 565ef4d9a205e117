;;;; defpyfun and defpymodule: Python functions and modules as Lisp functions and packages.

(in-package :py4cl2-cffi)

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
