;;;; Starting and stopping Python: pystart, pystop, the epoch that invalidates cached lookups.

(in-package :py4cl2-cffi)

(defvar *additional-init-codes* nil
  "Python source strings that PYSTART runs, in order, right after every start (imports or
settings a program always wants).")

(defconstant +disable-pystop+ py4cl2-cffi/config:*disable-pystop*
  "The value of PY4CL2-CFFI/CONFIG:*DISABLE-PYSTOP* when py4cl2-cffi was loaded: when non-NIL,
PYSTOP does nothing.")

(defvar *internal-features* (list :typed-arrays :with-python-output)
  "Keywords naming optional capabilities of this build, for code that checks before using them:
:TYPED-ARRAYS (Lisp arrays reach numpy with their element type) and :WITH-PYTHON-OUTPUT.
Whether numpy itself is there is only known once Python runs.")

(#+sbcl sb-ext:defglobal #-sbcl defvar *epoch* 0
  "Bumped whenever cached name lookups may be stale: at start and stop, and when Lisp rebinds
Python names (SETF PYVALUE, IMPORT-MODULE, IMPORT-FUNCTION, RAW-PYEXEC, PYEXEC).")
(declaim (type fixnum *epoch*))

(defun bump-epoch ()
  (setf *epoch* (logand (1+ *epoch*) most-positive-fixnum)))

(defvar *lifecycle-lock* (bt:make-recursive-lock "py4cl2-cffi lifecycle"))

(defun python-alive-p ()
  "T if the embedded Python is running, else NIL."
  (= 1 (%is-started)))

(defun python-generation ()
  "How many times Python was started in this process (0 before the first start)."
  (%generation))

(defparameter *helper-code* "
import sys as _p4s_sys, types as _p4s_types
_p4s_m = _p4s_types.ModuleType('_py4cl2_cffi')
exec('''
import fractions as _fractions
def fraction(n, d):
    return _fractions.Fraction(n, d)
def slot_list(o):
    return [n for n in dir(o) if not callable(getattr(o, n, None))]
def method_list(o):
    return [n for n in dir(o) if callable(getattr(o, n, None))]
def getitem(o, *idx):
    return o[idx[0] if len(idx) == 1 else idx]
def setitem(o, v, *idx):
    o[idx[0] if len(idx) == 1 else idx] = v
def generator(f, stop):
    while True:
        v = f()
        if v == stop:
            return
        yield v
def array_copy(view):
    import numpy
    return numpy.array(view)
def numpy_available():
    import importlib.util
    return importlib.util.find_spec('numpy') is not None
''', _p4s_m.__dict__)
_p4s_sys.modules['_py4cl2_cffi'] = _p4s_m
del _p4s_m, _p4s_sys, _p4s_types
import sys
")

(defvar *numpy-available* :unknown)

(defun numpy-available-p ()
  "T if numpy can be imported by the running Python."
  (when (eq *numpy-available* :unknown)
    (setf *numpy-available* (call-helper "numpy_available")))
  *numpy-available*)

(defun pystart (&key (python py4cl2-cffi/config:*python-spec*) requires)
  "Starts the embedded Python unless it is running. PYTHON selects the interpreter for this
start: NIL for the configured one, or a spec string (\"3.12\", \">=3.10\", a python executable,
a venv folder). REQUIRES, a list of pip requirement strings (\"numpy>=2\" \"scipy\"), starts
instead a cached environment over that interpreter holding them and the packages declared with
REQUIRE-PYTHON-PACKAGES, made (progress shown) or reused (see environments.lisp). Captures
Python's stdout/stderr into Lisp streams, runs *ADDITIONAL-INIT-CODES*. Returns T when it
started Python, NIL when Python was already running. Signals PYTHON-ENVIRONMENT-ERROR when the
environment cannot be made, PYTHON-PINNED-ERROR when an earlier numpy import pins another
libpython in this process, PYTHON-START-ERROR for any other failure."
  (setf python (python-spec-for-start python requires))
  (bt:with-recursive-lock-held (*lifecycle-lock*)
    (when (python-alive-p)
      (return-from pystart nil))
    (let ((status (if (and python (plusp (length python)))
                      (with-utf8 (p n python) (%start p n))
                      (%start (cffi:null-pointer) 0))))
      (case status
        (0)
        (1 (return-from pystart nil))
        (t (let ((msg (last-shim-error)))
             (if (or (search "still has Python" msg) (search "pinned" msg))
                 (error 'python-pinned-error :message msg)
                 (error 'python-start-error :message msg))))))
    (bump-epoch)
    (clrhash *type-cache*)
    (setf *numpy-available* :unknown)
    (%set-output-handler (cffi:callback output-handler))
    (%set-callback-handler (cffi:callback callback-handler) (cffi:callback callback-release))
    (check-status (%capture-output 1 1))
    (check-status (%capture-output 2 1))
    (with-utf8 (p n *helper-code*)
      (check-status (%exec p n (cffi:null-pointer) (cffi:null-pointer))))
    (dolist (code *additional-init-codes*)
      (raw-pyexec code))
    (ensure-interrupt-watcher)
    t))

(defun python-start-if-not-alive ()
  "Starts Python (as PYSTART with no arguments) unless it is running. Returns T if it started it."
  (unless (python-alive-p)
    (pystart)))

(defun stop-report ()
  "The shim's JSON report of the last stop, parsed (an alist), or NIL."
  (let ((p (%stop-report)))
    (unless (cffi:null-pointer-p p)
      (py4cl2-cffi/config::parse-json (foreign-utf8 p)))))

(defun pystop ()
  "Stops Python: finalizes it and unloads libpython and what it loaded, so that PYSTART may start
any version next. Returns T when it stopped Python, NIL when it was not running. When an
extension module (numpy) keeps libpython mapped, WARNs with the shim's report: then only the
same interpreter can start again in this process. Signals PYTHON-STOP-ERROR when refused (e.g.
inside WITH-PYTHON-GIL). Does nothing when +DISABLE-PYSTOP+ is non-NIL."
  (when +disable-pystop+
    (return-from pystop nil))
  (bt:with-recursive-lock-held (*lifecycle-lock*)
    (unless (python-alive-p)
      (return-from pystop nil))
    (let ((status (%stop)))
      (bump-epoch)
      (clrhash *type-cache*)
      (setf *numpy-available* :unknown)
      (case status
        (0 t)
        (1 (let ((report (stop-report)))
             (warn "Python stopped, but ~A stays loaded in this process because ~A. ~
                    Only this same interpreter can be started again here; start a fresh Lisp ~
                    process to use another Python version."
                   (py4cl2-cffi/config::json-get report "libpython")
                   (or (py4cl2-cffi/config::json-get report "reason") "an extension module pins it")))
           t)
        (t (error 'python-stop-error :message (last-shim-error)))))))

(defun pyversion-info ()
  "Return a list, using the result of python's sys.version_info: (MAJOR MINOR MICRO
RELEASELEVEL SERIAL), e.g. (3 12 1 \"final\" 0)."
  (declare (notinline pycall)) ; compiled before PYCALL's compiler macro exists
  (python-start-if-not-alive)
  (coerce (pycall "tuple" (pyvalue "sys.version_info")) 'list))
