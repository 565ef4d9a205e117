;;;; Running Python code given as text: raw-pyeval, raw-pyexec, pyeval, pyexec, imports.

(in-package :py4cl2-cffi)

(defun raw-pyeval (&rest code-strings)
  "Evaluates the Python expression made of CODE-STRINGS (concatenated) in __main__ and returns
its value converted to Lisp. Prefer PYCALL and PYVALUE. Signals a PYERROR when Python raises."
  (python-start-if-not-alive)
  (let ((code (apply #'concatenate 'string code-strings)))
    (with-result-frame (out scratch)
      (check-status (with-utf8 (s n code)
                      (%eval s n (cffi:null-pointer) (cffi:null-pointer) out scratch +scratch-chars+)))
      (decode-result out scratch))))

(defun raw-pyexec (&rest code-strings)
  "Runs the Python statements made of CODE-STRINGS (concatenated) in __main__. Returns no values.
Signals a PYERROR when Python raises."
  (python-start-if-not-alive)
  (let ((code (apply #'concatenate 'string code-strings)))
    (unwind-protect
         (check-status (with-utf8 (s n code)
                         (%exec s n (cffi:null-pointer) (cffi:null-pointer))))
      (bump-epoch)))
  (values))

(defun code-with-values (args)
  "Turns ARGS into Python source: strings verbatim, other Lisp values bound to temporary
globals whose names are inserted. Returns the code and the temporary names."
  (let ((names '()) (k 0))
    (values
     (with-output-to-string (o)
       (dolist (a args)
         (if (stringp a)
             (write-string a o)
             (let ((name (format nil "_p4s_arg~D" (incf k))))
               (setf (pyvalue name) a)
               (push name names)
               (write-string name o)))))
     names)))

(defun forget-names (names)
  (when names
    (with-utf8 (s n (format nil "~{globals().pop('~A', None)~%~}" names))
      (%exec s n (cffi:null-pointer) (cffi:null-pointer)))))

(defun pyeval (&rest args)
  "Like RAW-PYEVAL, but ARGS that are not strings are Lisp values passed to Python as values:
(pyeval 3 \" * \" #(1 2)) evaluates 3 * [1, 2]."
  (python-start-if-not-alive)
  (multiple-value-bind (code names) (code-with-values args)
    (unwind-protect (raw-pyeval code)
      (forget-names names))))

(defun pyexec (&rest args)
  "Like RAW-PYEXEC, but ARGS that are not strings are Lisp values passed to Python as values."
  (python-start-if-not-alive)
  (multiple-value-bind (code names) (code-with-values args)
    (unwind-protect (raw-pyexec code)
      (forget-names names)))
  (values))

(defun import-module (name &key as)
  "Imports the Python module NAME into __main__ (as AS when given: import NAME as AS). Returns T.
Signals a PYERROR (ModuleNotFoundError...) when it cannot be imported."
  (raw-pyexec (format nil "import ~A~@[ as ~A~]" name as))
  t)

(defun import-function (name from &key as)
  "Binds NAME from module FROM in __main__ (from FROM import NAME as AS). Returns T."
  (raw-pyexec (format nil "from ~A import ~A~@[ as ~A~]" from name as))
  t)
