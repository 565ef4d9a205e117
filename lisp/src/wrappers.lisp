;;;; pyobject-wrapper: a Python object held from Lisp, released by a finalizer through the decref queue.

(in-package :py4cl2-cffi)

(defvar *print-pyobject* t
  "When true, a PYOBJECT-WRAPPER prints with Python's str() of its object; when NIL, only its
type is shown (cheaper, and safe for objects whose str() is slow).")

(defvar *print-pyobject-wrapper-identity* t
  "When true, a printed PYOBJECT-WRAPPER is wrapped in #<PYOBJECT-WRAPPER ... {address}>, so two
wrappers can be told apart; when NIL, only the Python text is printed.")

(defstruct (pyobject-wrapper (:constructor %make-pyobject-wrapper (pointer generation))
                             (:copier nil))
  "A Lisp handle on one Python object. It owns one reference, released (through the
shim's decref queue, never taking the GIL) when the wrapper is garbage collected."
  (pointer (cffi:null-pointer) :read-only t)
  ;; Not read-only: a saved Lisp image marks its wrappers dead (see FORGET-PYTHON-OBJECTS).
  (generation 0 :type (unsigned-byte 64)))

(defun wrap-new-reference (pointer &optional (generation (%generation)))
  "Makes a PYOBJECT-WRAPPER owning the new reference POINTER; a finalizer queues its release."
  (let ((w (%make-pyobject-wrapper pointer generation))
        (address (cffi:pointer-address pointer)))
    (tg:finalize w (lambda () (%decref-later (cffi:make-pointer address) generation)))
    w))

(defun wrapper-live-pointer (wrapper)
  "The pointer of WRAPPER, after checking it belongs to the running Python."
  (unless (= (pyobject-wrapper-generation wrapper) (%generation))
    (error 'stale-pyobject-error
           :message (format nil "this Python object is from an earlier start of Python (it died with it)")))
  (pyobject-wrapper-pointer wrapper))

(defun pyobject-wrapper-eq (o1 o2)
  "Returns T if O1 and O2 are both PYOBJECT-WRAPPERs of the same Python object (Python's `is`,
not `==`: two equal lists are different objects), or Lisp objects that are EQ. Returns NIL in
all other cases. Does not call Python."
  (if (and (pyobject-wrapper-p o1) (pyobject-wrapper-p o2))
      (pyobject-wrapper-eq* o1 o2)
      (eq o1 o2)))

(defun pyobject-wrapper-eq* (o1 o2)
  "Like PYOBJECT-WRAPPER-EQ, but O1 and O2 must both be PYOBJECT-WRAPPERs: T if they wrap the
same Python object (of the same start of Python), else NIL."
  (declare (type pyobject-wrapper o1 o2))
  (and (cffi:pointer-eq (pyobject-wrapper-pointer o1) (pyobject-wrapper-pointer o2))
       (= (pyobject-wrapper-generation o1) (pyobject-wrapper-generation o2))))

(defun object-string (pointer fn)
  "str() or repr() (FN: %STR or %REPR) of the object at POINTER as a Lisp string, or NIL."
  (let ((s (funcall fn pointer)))
    (if (cffi:null-pointer-p s)
        (progn (%error-clear) nil)
        (unwind-protect (str-object-to-lisp s)
          (%decref s)))))

(defun str-object-to-lisp (pointer)
  "The text of the Python str at POINTER (borrowed) as a Lisp string."
  (let ((n (%str-utf32 pointer (cffi:null-pointer) 0)))
    (when (< n 0) (signal-status (if (= n -1) +pyerror+ +shim-error+)))
    (let ((out (make-string n)))
      (when (plusp n)
        (with-utf32-storage (p out)
          (%str-utf32 pointer p n)))
      out)))

(defmethod print-object ((o pyobject-wrapper) stream)
  ;; A Python object has no printed form that READ could turn back into it.
  (when *print-readably*
    (error 'print-not-readable :object o))
  (let* ((live (and (= (pyobject-wrapper-generation o) (%generation)) (= 1 (%is-started))))
         (text (cond ((not live) "<dead: from an earlier start of Python>")
                     (*print-pyobject* (object-string (pyobject-wrapper-pointer o) #'%str))
                     (t nil)))
         (type (and live (let ((p (%type-name (pyobject-wrapper-pointer o))))
                           (if (cffi:null-pointer-p p) "?" (foreign-utf8 p))))))
    (cond ((and *print-pyobject-wrapper-identity* (not *print-readably*))
           (print-unreadable-object (o stream :identity t)
             (format stream "PYOBJECT-WRAPPER :type ~A~@[~%  ~A~]" type text)))
          (text (write-string text stream))
          (t (print-unreadable-object (o stream :identity t)
               (format stream "PYOBJECT-WRAPPER ~A" type))))))

;;; DESCRIBE: the type, the repr and the public attributes, computed by one Python function
;;; made in a namespace of its own (nothing is added to __main__).
(defparameter *describe-code*
  "(lambda ns: (exec('''
def describe(o, width=70, most=200):
    t = type(o)
    name = t.__qualname__ if t.__module__ == 'builtins' else t.__module__ + '.' + t.__qualname__
    def short(f):
        try:
            s = f()
        except BaseException as e:
            return '<' + type(e).__name__ + '>'
        s = ' '.join(str(s).split())
        return s if len(s) <= width else s[:width - 3] + '...'
    try:
        text = repr(o)
    except BaseException as e:
        text = '<repr failed: ' + type(e).__name__ + '>'
    try:
        names = [n for n in dir(o) if not n.startswith('_')]
    except BaseException:
        names = []
    data, methods = [], []
    for n in names[:most]:
        try:
            v = getattr(o, n)
        except BaseException as e:
            data.append([n, '<' + type(e).__name__ + '>'])
            continue
        if callable(v):
            methods.append(n)
        else:
            data.append([n, short(lambda: repr(v))])
    return [name, text, data, methods, len(names)]
''', ns), ns['describe'])[1])({})"
  "A Python expression whose value is the function DESCRIBE-OBJECT calls.")

(defmethod describe-object ((o pyobject-wrapper) stream)
  (declare (notinline pycall)) ; compiled before PYCALL's compiler macro exists
  (let ((*print-pyobject-wrapper-identity* t))
    (format stream "~&~S~%  is a Python object held from Lisp (a PYOBJECT-WRAPPER).~%" o))
  (if (not (and (= (pyobject-wrapper-generation o) (%generation)) (= 1 (%is-started))))
      (format stream "  It died with an earlier start of Python.~%")
      (destructuring-bind (type text data methods count)
          (coerce (pycall *describe-code* o) 'list)
        (format stream "  Python type: ~A~%  repr: ~A~%" type text)
        (when (plusp (length data))
          (format stream "  Attributes:~%")
          (loop for entry across data
                do (format stream "    ~A = ~A~%" (elt entry 0) (elt entry 1))))
        (when (plusp (length methods))
          (format stream "  Methods:~%    ~{~<~%    ~1,78:;~A~>~^ ~}~%" (coerce methods 'list)))
        (when (> count (+ (length data) (length methods)))
          (format stream "  (~D more public attributes not shown)~%"
                  (- count (length data) (length methods))))))
  (values))

;;; Saved Lisp images. The shim's start counter (p4s_generation) begins at 0 again in the
;;; process that runs a saved image, so generations recorded before the save would match the
;;; new Python's and its stale pointers would be used (and decref'd). Before saving we therefore
;;; mark every wrapper dead (a generation no start reaches) without a finalizer, reset every
;;; name cell and clear the caches keyed by generation.
(defconstant +dead-generation+ (1- (expt 2 64))
  "The generation of wrappers that died with their process (a saved image); no start reaches it.")

(defvar *session-caches* '()
  "(SYMBOL . FUNCTION) for each cache declared with DEFINE-SESSION-CACHE: FUNCTION makes its
empty value.")

(defun register-session-cache (symbol fresh)
  (setf *session-caches* (acons symbol fresh (remove symbol *session-caches* :key #'car))))

(defmacro define-session-cache (name initial-value &optional documentation)
  "Defines the special variable NAME, a cache of facts or objects of the running Python that is
emptied when a session ends and before a Lisp image is saved (RESET-SESSION-CACHES): a hash
table is cleared, any other value is set to a fresh INITIAL-VALUE."
  `(progn
     (defvar ,name ,initial-value ,@(when documentation (list documentation)))
     (register-session-cache ',name (lambda () ,initial-value))
     ',name))

(defun reset-session-caches ()
  "Empties every cache declared with DEFINE-SESSION-CACHE."
  (loop for (symbol . fresh) in *session-caches*
        do (let ((old (symbol-value symbol)))
             (if (hash-table-p old)
                 (clrhash old)
                 (setf (symbol-value symbol) (funcall fresh))))))

(defun forget-python-objects ()
  "Makes everything Lisp holds from the running Python unusable and harmless, so that a Lisp
image saved now starts a new Python cleanly: wrappers become dead (using one signals
STALE-PYOBJECT-ERROR; their finalizers are cancelled), cached name lookups are reset. Run by
SB-EXT:*SAVE-HOOKS* on SBCL; Python itself is left as it is (it does not outlive the save)."
  #+sbcl
  (let ((objects (sb-vm:list-allocated-objects
                  :all :type sb-vm:instance-widetag
                  :test (lambda (o) (or (pyobject-wrapper-p o) (eq (type-of o) 'name-cell))))))
    (dolist (o objects)
      (if (pyobject-wrapper-p o)
          (progn (tg:cancel-finalization o)
                 (setf (pyobject-wrapper-generation o) +dead-generation+))
          (setf (slot-value o 'state) (vector -1 nil 0)))))
  (reset-session-caches)
  (bump-epoch)
  (values))

#+sbcl (pushnew 'forget-python-objects sb-ext:*save-hooks*)
