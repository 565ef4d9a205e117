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

;;; pyeval / pyexec: Lisp values written into the code. As in the original py4cl2-cffi, a
;;; string argument is code, unless it reads as a Lisp number ("42", "-1.5e3", "1/2"): then it
;;; is a string literal, so (pyeval "42") => "42". Other arguments become Python source where
;;; they have one (integers; floats as numpy.float32(...) / numpy.float64(...), so that a
;;; single-float comes back a single-float; T, NIL, +PY-NONE+; lists, simple vectors and hash
;;; tables of such values and strings), else a temporary global of __main__ bound to the value
;;; for the evaluation (arrays, wrappers, functions, objects), with floats inside converted to
;;; numpy floats as well. When numpy does not import (not installed, or not again after a
;;; restart that could not unload it), floats are written as Python floats: a single-float then
;;; comes back as a double-float.

(defun digits-end (string start)
  "The index after the decimal digits of STRING from START."
  (or (position-if-not #'digit-char-p string :start start) (length string)))

(defun number-text-p (string)
  "T if STRING (surrounding whitespace aside) reads as a Lisp real number in base 10: an
integer (1, -2, +3, 4.), a ratio (1/2) or a float (1.5, .5, -1e3, 2.5d0)."
  (let* ((s (string-trim '(#\Space #\Tab #\Newline #\Return) string))
         (n (length s))
         (i (if (and (plusp n) (find (char s 0) "+-")) 1 0)))
    (flet ((at (k) (and (< k n) (char s k))))
      (let* ((int-end (digits-end s i))
             (int-digits (> int-end i)))
        (cond
          ;; integer, possibly with a trailing decimal point
          ((and int-digits (or (= int-end n) (and (eql (at int-end) #\.) (= (1+ int-end) n)))) t)
          ;; ratio
          ((and int-digits (eql (at int-end) #\/))
           (let ((d-end (digits-end s (1+ int-end))))
             (and (> d-end (1+ int-end)) (= d-end n))))
          ;; float: digits [. digits] [exponent], with at least one digit before the exponent
          (t (let* ((frac-start (if (eql (at int-end) #\.) (1+ int-end) int-end))
                    (frac-end (digits-end s frac-start))
                    (mantissa (or int-digits (> frac-end frac-start)))
                    (k frac-end))
               (and mantissa
                    (or (> frac-end frac-start) (find (at k) "eEsSfFdDlL"))
                    (or (= k n)
                        (and (find (at k) "eEsSfFdDlL")
                             (let* ((e (if (find (at (1+ k)) "+-") (+ k 2) (1+ k)))
                                    (e-end (digits-end s e)))
                               (and (> e-end e) (= e-end n)))))))))))))

(defun float-inf-or-nan (x)
  "\"inf\", \"-inf\" or \"nan\" for such an X, else NIL."
  (cond (#+sbcl (sb-ext:float-nan-p x) #+ecl (ext:float-nan-p x) #-(or sbcl ecl) (/= x x) "nan")
        ((#+sbcl sb-ext:float-infinity-p #+ecl ext:float-infinity-p
          #-(or sbcl ecl) (lambda (x) (> (abs x) most-positive-long-float)) x)
         (if (plusp x) "inf" "-inf"))
        (t nil)))

(defun float-literal (x)
  "Python source of the exact value of the float X as a Python float (its double value)."
  (let ((special (float-inf-or-nan x)))
    (if special
        (format nil "float('~A')" special)
        (let ((text (let ((*read-default-float-format* 'double-float))
                      (prin1-to-string (coerce x 'double-float)))))
          (substitute-if #\e (lambda (c) (find c "dDfFsSlL")) text)))))

(defun python-string-literal (string)
  "A Python string literal with the characters of STRING."
  (with-output-to-string (o)
    (write-char #\' o)
    (loop for c across string
          for code = (char-code c)
          do (cond ((char= c #\\) (write-string "\\\\" o))
                   ((char= c #\') (write-string "\\'" o))
                   ((or (< code 32) (= code 127)) (format o "\\x~2,'0X" code))
                   ((<= #xD800 code #xDFFF) (format o "\\u~4,'0X" code))
                   (t (write-char c o))))
    (write-char #\' o)))

(defun value-source (x numpy)
  "Python source giving the Python value of the Lisp value X (a string is a str), or NIL when X
has none. NUMPY: numpy is importable, floats become numpy floats."
  (typecase x
    (integer (if (minusp x) (format nil "(~D)" x) (format nil "~D" x)))
    (float (let ((literal (float-literal x)))
             (cond ((not numpy) (format nil "(~A)" literal))
                   ((typep x 'single-float) (format nil "__import__('numpy').float32(~A)" literal))
                   (t (format nil "__import__('numpy').float64(~A)" literal)))))
    (string (python-string-literal x))
    ((eql t) "True")
    (null "False")
    ((eql +py-none+) "None")
    (cons (let ((parts (loop for rest on x
                             for part = (and (listp (cdr rest)) (value-source (car rest) numpy))
                             unless part do (return nil)
                             collect part)))
            (and parts (format nil "(~{~A, ~})" parts))))
    (simple-vector (let ((parts (map 'list (lambda (e) (or (value-source e numpy) (return-from value-source nil))) x)))
                     (format nil "[~{~A~^, ~}]" parts)))
    (hash-table (let ((parts '()))
                  (maphash (lambda (k v)
                             (let ((ks (value-source k numpy)) (vs (value-source v numpy)))
                               (unless (and ks vs) (return-from value-source nil))
                               (push (format nil "~A: ~A" ks vs) parts)))
                           x)
                  (format nil "{~{~A~^, ~}}" (nreverse parts))))
    (t nil)))

(define-session-cache *numpy-floats* (cons -1 nil)
  "(generation . whether numpy imports) for the floats of PYEVAL and PYEXEC.")

(defun numpy-floats-p ()
  "T if PYEVAL writes floats as numpy floats: numpy imports in the running Python (tried once
per start; numpy is not importable again after a restart that could not unload it)."
  (let ((entry *numpy-floats*)
        (generation (%generation)))
    (if (= (car entry) generation)
        (cdr entry)
        (let ((ok (and (numpy-available-p)
                       (handler-case (progn (let ((*remote-objects* t)) (pycall "__import__" "numpy")) t)
                         (pyerror () nil)))))
          (setf *numpy-floats* (cons generation ok))
          ok))))

(defun numpy-float-pythonizers ()
  "Pythonizers that make Lisp floats numpy floats, for values bound to temporary names."
  (if (numpy-floats-p)
      (list (cons 'single-float "numpy.float32") (cons 'double-float "numpy.float64"))
      '()))

(defun code-with-values (args)
  "Turns ARGS into Python source as PYEVAL does. Returns the code and the temporary names it
bound."
  (let ((names '()) (k 0) (numpy (numpy-floats-p)))
    (values
     (with-output-to-string (o)
       (dolist (a args)
         (cond ((and (stringp a) (not (number-text-p a))) (write-string a o))
               ((value-source a numpy) (write-string (value-source a numpy) o))
               (t (let ((name (format nil "_p4s_arg~D" (incf k))))
                    (let ((*pythonizers* (append *pythonizers* (numpy-float-pythonizers))))
                      (setf (pyvalue name) a))
                    (push name names)
                    (write-string name o))))))
     names)))

(defun forget-names (names)
  (when names
    (with-utf8 (s n (format nil "~{globals().pop('~A', None)~%~}" names))
      (%exec s n (cffi:null-pointer) (cffi:null-pointer)))))

(defun pyeval (&rest args)
  "Evaluates the Python expression made of ARGS and returns its value converted to Lisp. A
string argument is code, unless it reads as a Lisp number (\"42\"), which is a string literal;
other arguments are Lisp values written into the code: (pyeval 3 \" * \" #(1 2)) evaluates
3 * [1, 2]. Floats are written as numpy.float32 / numpy.float64, so (pyeval 1.0) => 1.0, a
single-float (a Python float when numpy is missing). Values without a Python source form
(arrays, wrappers, functions...) are bound to temporary names during the evaluation. Signals a
PYERROR when Python raises."
  (python-start-if-not-alive)
  (multiple-value-bind (code names) (code-with-values args)
    (unwind-protect (raw-pyeval code)
      (forget-names names))))

(defun (setf pyeval) (new-value &rest args)
  "Assigns NEW-VALUE (a Lisp value, converted as PYEVAL converts values; a string is a str) to
the Python target made of ARGS (as for PYEVAL): (setf (pyeval \"x\") 42) runs x = 42. Returns
NEW-VALUE."
  (python-start-if-not-alive)
  (let ((numpy (numpy-floats-p)))
    (multiple-value-bind (code names) (code-with-values args)
      (unwind-protect
           (let ((source (value-source new-value numpy)))
             (if source
                 (raw-pyexec code " = " source)
                 (progn
                   (let ((*pythonizers* (append *pythonizers* (numpy-float-pythonizers))))
                     (setf (pyvalue "_p4s_value") new-value))
                   (push "_p4s_value" names)
                   (raw-pyexec code " = _p4s_value"))))
        (forget-names names))))
  new-value)

(defun pyexec (&rest args)
  "Runs the Python statements made of ARGS, converted as PYEVAL converts them: (pyexec \"x = \"
1.5d0) binds x to numpy.float64(1.5). Returns no values. Signals a PYERROR when Python raises."
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
