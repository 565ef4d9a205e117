;;;; Writes the API reference (Markdown) of py4cl2-cffi from the docstrings of its exported symbols.
;;;;
;;;;   sbcl --script tools/api-reference.lisp > docs/api.md
;;;;
;;;; Documents every external symbol of the packages py4cl2-cffi and py4cl2-cffi/config, and the
;;;; symbols py4cl2-cffi/single-threaded adds: each definition the symbol has (function, macro,
;;;; generic function, SETF function, variable, constant, symbol macro, class, structure,
;;;; condition) with its lambda list and docstring. An exported symbol with no definition, or a
;;;; definition with no docstring, is an error: the names go to stderr, nothing to stdout, and
;;;; the exit code is 1. Needs SBCL (for lambda lists); does not start Python.

(require :asdf)
(require :sb-introspect)
(setf *compile-verbose* nil *load-verbose* nil)

(defun fail (format &rest args)
  (format *error-output* "~&api-reference: ~?~%" format args)
  (finish-output *error-output*)
  (sb-ext:exit :code 1 :abort t))

(setf *debugger-hook* (lambda (c h) (declare (ignore h)) (fail "~A" c)))

(asdf:initialize-source-registry
 `(:source-registry
   (:directory ,(merge-pathnames "../lisp/" (make-pathname :name nil :type nil :defaults *load-truename*)))
   :inherit-configuration))

(defun load-quietly (system)
  (handler-bind ((warning #'muffle-warning))
    (let ((*standard-output* (make-broadcast-stream))
          (*error-output* (make-broadcast-stream)))
      (asdf:load-system system))))

(load-quietly "py4cl2-cffi")

;;; One entry per definition of a symbol: (kind lambda-list docstring).
(defun lambda-list-string (symbol lambda-list)
  (let ((*package* (symbol-package symbol))
        (*print-case* :downcase)
        (*print-pretty* t)
        (*print-right-margin* 90))
    (format nil "(~A~{ ~S~})" (string-downcase (symbol-name symbol)) lambda-list)))

(defun setf-lambda-list-string (symbol lambda-list)
  (let ((*package* (symbol-package symbol))
        (*print-case* :downcase))
    (format nil "(setf (~A~{ ~S~}) ~S)" (string-downcase (symbol-name symbol))
            (rest lambda-list) (first lambda-list))))

(defun class-kind (class)
  (cond ((subtypep class 'condition) "Condition")
        ((typep class 'structure-class) "Structure")
        (t "Class")))

(defun definitions (symbol)
  "The definitions of SYMBOL as (kind signature docstring) lists."
  (let ((out '()))
    (flet ((add (kind signature doc) (push (list kind signature doc) out)))
      (cond ((special-operator-p symbol))
            ((macro-function symbol)
             (add "Macro" (lambda-list-string symbol (sb-introspect:function-lambda-list
                                                      (macro-function symbol)))
                  (documentation symbol 'function)))
            ((fboundp symbol)
             (let ((f (fdefinition symbol)))
               (add (if (typep f 'generic-function) "Generic function" "Function")
                    (lambda-list-string symbol (if (typep f 'generic-function)
                                                   (sb-mop:generic-function-lambda-list f)
                                                   (sb-introspect:function-lambda-list f)))
                    (documentation symbol 'function)))))
      (when (fboundp `(setf ,symbol))
        (let ((f (fdefinition `(setf ,symbol))))
          (add "SETF function"
               (setf-lambda-list-string symbol (if (typep f 'generic-function)
                                                   (sb-mop:generic-function-lambda-list f)
                                                   (sb-introspect:function-lambda-list f)))
               (or (documentation `(setf ,symbol) 'function) (documentation f t)))))
      (let ((expansion (macroexpand-1 symbol)))
        (cond ((not (eq expansion symbol))
               (add "Symbol macro" nil (documentation symbol 'variable)))
              ((constantp symbol)
               (unless (keywordp symbol)
                 (add "Constant" (let ((*print-case* :downcase)) (prin1-to-string (symbol-value symbol)))
                      (documentation symbol 'variable))))
              ((boundp symbol)
               (add "Variable" nil (documentation symbol 'variable)))))
      (let ((class (find-class symbol nil)))
        (when class
          (add (class-kind class) nil (documentation symbol 'type)))))
    (nreverse out)))

(defun documented-symbols (package &key (only-own nil))
  "The external symbols of PACKAGE, sorted; with ONLY-OWN, those whose home is PACKAGE."
  (let ((symbols '()))
    (do-external-symbols (s package)
      (when (or (not only-own) (eq (symbol-package s) (find-package package)))
        (push s symbols)))
    (sort symbols #'string< :key #'symbol-name)))

(defvar *missing* '())

(defun anchor (package symbol)
  "A unique HTML id for SYMBOL of PACKAGE (* and + spelled out, so chain and chain* differ)."
  (string-downcase
   (with-output-to-string (o)
     (loop for c across (format nil "~A-~A" (package-name package) (symbol-name symbol))
           do (cond ((or (alphanumericp c) (char= c #\-)) (write-char c o))
                    ((char= c #\*) (write-string "-star-" o))
                    ((char= c #\+) (write-string "-plus-" o))
                    (t (write-char #\- o)))))))

(defun write-package-section (stream package title introduction &key only-own)
  (let ((package (find-package package))
        (symbols (documented-symbols package :only-own only-own)))
    (format stream "~%## ~A~%~%~A~%~%" title introduction)
    (format stream "~{~A~^ · ~}~%"
            (mapcar (lambda (s) (format nil "[`~(~A~)`](#~A)" s (anchor package s))) symbols))
    (dolist (s symbols)
      (let ((defs (definitions s)))
        (format stream "~%<a id=\"~A\"></a>~%### `~(~A~)`~%" (anchor package s) s)
        (when (null defs)
          (push (format nil "~A:~A (no definition)" (package-name package) s) *missing*))
        (dolist (d defs)
          (destructuring-bind (kind signature doc) d
            (if signature
                (format stream "~%*~A* `~A`~%" kind signature)
                (format stream "~%*~A*~%" kind))
            (if (and doc (plusp (length (string-trim " " doc))))
                (format stream "~%```text~%~A~%```~%" (string-right-trim '(#\Newline #\Space) doc))
                (push (format nil "~A:~A (~A)" (package-name package) s kind) *missing*))))))))

(defun write-reference (stream)
  (format stream "# py4cl2-cffi API reference~%~%~
Generated from the docstrings by `sbcl --script tools/api-reference.lisp > docs/api.md`; edit ~
the docstrings, not this file. The user guide is [guide.md](guide.md).~%")
  (write-package-section stream :py4cl2-cffi "Package `py4cl2-cffi`"
                         "Starting Python, calling it, converting values, errors, output, threads.")
  (write-package-section stream :py4cl2-cffi/config "Package `py4cl2-cffi/config`"
                         "Which Python is embedded and where the shim library is (loaded before `py4cl2-cffi`).")
  ;; Loaded last: it wraps the entry points, and the wrappers carry no docstrings.
  (load-quietly "py4cl2-cffi/single-threaded")
  (write-package-section stream :py4cl2-cffi/single-threaded "Package `py4cl2-cffi/single-threaded`"
                         "The system `py4cl2-cffi/single-threaded` runs every call into Python on one Lisp thread. Its package exports all of `py4cl2-cffi` (the same symbols) and these:"
                         :only-own t))

(let ((text (with-output-to-string (s) (write-reference s))))
  (when *missing*
    (fail "exported symbols without a docstring:~{~%  ~A~}" (reverse *missing*)))
  (write-string text *standard-output*)
  (finish-output))
