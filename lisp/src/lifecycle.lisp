;;;; Starting and stopping Python: pystart, pystop (soft or hard), the epoch that invalidates cached lookups.

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

(define-session-cache *numpy-available* :unknown)

(defun numpy-available-p ()
  "T if numpy can be imported by the running Python."
  (when (eq *numpy-available* :unknown)
    (setf *numpy-available* (call-helper "numpy_available")))
  *numpy-available*)

;;; Defined, with their documentation, in output.lisp and callbacks.lisp, which load later.
(declaim (special *default-python-output* *default-python-error-output*
                  *callback-functions* *lisp-object-handles*))

(defvar *stop-timeout* 5
  "Seconds PYSTOP waits, by default, for other threads to leave Python before it gives up.")

(defun shim-start-error (code message)
  "The condition for a failed start with shim error CODE."
  (make-condition (case code
                    (#.+code-pinned+ 'python-pinned-error)
                    (#.+code-other-running+ 'python-running-error)
                    (t 'python-start-error))
                  :message message))

(defun begin-lisp-session ()
  "What every start does after the shim started or resumed Python: fresh caches, output
capture and callbacks attached, *ADDITIONAL-INIT-CODES* run."
  (bump-epoch)
  (reset-session-caches)
  (setf *default-python-output* *standard-output*
        *default-python-error-output* *error-output*)
  ;; The configuration variables now describe the interpreter that runs.
  (let ((p (%running-json)))
    (unless (cffi:null-pointer-p p)
      (py4cl2-cffi/config::set-configuration
       (py4cl2-cffi/config::parse-json (foreign-utf8 p)))))
  (%set-output-handler (cffi:callback output-handler))
  (%set-route-handler (cffi:callback route-handler))
  (%set-callback-handler (cffi:callback callback-handler) (cffi:callback callback-release))
  (install-thread-hooks)
  (check-status (%capture-output 1 1))
  (check-status (%capture-output 2 1))
  (raw-pyexec "import sys")
  (dolist (code *additional-init-codes*)
    (raw-pyexec code))
  (ensure-interrupt-watcher))

(defun end-lisp-session ()
  "What every stop does on the Lisp side: cached lookups and Lisp handles of the session go."
  (bump-epoch)
  (reset-session-caches)
  (clrhash *callback-functions*)
  (clrhash *lisp-object-handles*)
  (clrhash *lisp-conditions*))

(defun pystart (&key (python py4cl2-cffi/config:*python-spec*) requires)
  "Starts the embedded Python unless it is running. PYTHON selects the interpreter for this
start: NIL for the configured one, or a spec string (\"3.12\", \">=3.10\", a python executable,
a venv folder). After a soft stop (see PYSTOP) the same interpreter is resumed, with the
extension modules it had loaded (numpy) still working. Captures Python's stdout/stderr into
Lisp streams and runs *ADDITIONAL-INIT-CODES*. REQUIRES, a list of pip requirement strings
(\"numpy>=2\" \"scipy\"), starts instead a cached environment over that interpreter holding them
and the packages declared with REQUIRE-PYTHON-PACKAGES, made (progress shown) or reused (see
environments.lisp). Returns T when it started Python, NIL when that
interpreter was already running. A start either succeeds or leaves Python stopped.
Signals PYTHON-RUNNING-ERROR when another interpreter is running, PYTHON-PINNED-ERROR when this
process keeps another one (a soft stop, or an extension such as numpy pinning its libpython),
PYTHON-ENVIRONMENT-ERROR when the environment cannot be made, PYTHON-START-ERROR for any other
failure, and the error of a failing *ADDITIONAL-INIT-CODES* entry."
  (setf python (python-spec-for-start python requires))
  (bt:with-recursive-lock-held (*lifecycle-lock*)
    (let ((spec (and python (plusp (length python)) python)))
      (when (and (null spec) (python-alive-p))
        (return-from pystart nil))
      (let ((status (if spec
                        (with-utf8 (p n spec) (%start p n))
                        (%start (cffi:null-pointer) 0))))
        (cond ((= status +already-started+) (return-from pystart nil))
              ((< status 0)
               (error (shim-start-error (%last-error-code) (last-shim-error)))))
        (let ((done nil))
          (unwind-protect
               (progn (begin-lisp-session) (setf done t))
            (unless done
              ;; Undo the start so that the next PYSTART tries again.
              (%stop 0 0)
              (end-lisp-session))))
        t))))

(defun python-start-if-not-alive ()
  "Starts Python (as PYSTART with no arguments) unless it is running. Returns T if it started it."
  (unless (python-alive-p)
    (pystart)))

(defun stop-report ()
  "The shim's JSON report of the last stop, parsed (an alist), or NIL."
  (let ((p (%stop-report)))
    (unless (cffi:null-pointer-p p)
      (py4cl2-cffi/config::parse-json (foreign-utf8 p)))))

(defun python-stop-report ()
  "What the last PYSTOP did, as an alist parsed from the shim's report: \"kind\" (\"unloaded\",
\"soft\" or \"finalized\"), \"reason\" (why a soft stop was soft, or why libpython stays),
\"libpython\", \"unloaded\" and \"remaining\" (files), \"dropped_modules\" (what a soft stop
removed from sys.modules). NIL before any stop."
  (stop-report))

(defun lisp-threads-with-idents (idents)
  "The Lisp threads whose Python thread identifiers are among IDENTS, and the identifiers that
name no Lisp thread (threads Python made)."
  (let ((found '()) (rest idents))
    #+sbcl
    (dolist (th (sb-thread:list-all-threads))
      (let ((id (ignore-errors (sb-thread::thread-os-thread th))))
        (when (and id (member id rest))
          (push th found)
          (setf rest (remove id rest)))))
    (append (nreverse found) rest)))

(defun stop-busy-idents ()
  "The Python identifiers of the threads a refused stop found inside Python."
  (let ((n (%stop-busy-threads (cffi:null-pointer) 0)))
    (when (plusp n)
      (cffi:with-foreign-object (ids :uint64 n)
        (%stop-busy-threads ids n)
        (loop for i below n collect (cffi:mem-aref ids :uint64 i))))))

(defun stop-failure (code message)
  "The condition for a refused stop."
  (if (= code +code-busy+)
      (make-condition 'python-stop-busy-error
                      :message message :threads (lisp-threads-with-idents (stop-busy-idents)))
      (make-condition 'python-stop-error :message message)))

(defun pystop (&key finalize (timeout *stop-timeout*))
  "Stops Python. Returns T when it stopped it, NIL when it was not running. Does nothing when
+DISABLE-PYSTOP+ is non-NIL.

When nothing pins libpython, Python is finalized and unloaded, so that PYSTART may start any
version next. Otherwise (an extension module such as numpy pins libpython, Python threads are
still running, or unloading cannot be checked) the stop is soft: Python is not finalized; the
session ends (wrappers of it become stale, output capture and Lisp callbacks are detached,
__main__ and the modules of your own code imported meanwhile are reset), and the next PYSTART
of the same interpreter resumes it, numpy included. Another interpreter is then refused with
PYTHON-PINNED-ERROR until a fresh Lisp process.

FINALIZE true finalizes even then (atexit handlers run): refused while Python threads run;
afterwards only the same interpreter may start again and only on Python 3.8-3.13 (without the
extension modules that stayed), 3.14 and newer not at all in this process; a WARNING says so.

Other threads inside Python are waited for, up to TIMEOUT seconds; after a short grace those
still inside are asked to leave (py4cl2_cffi.PythonStopping, a KeyboardInterrupt, is raised in
them). Signals PYTHON-STOP-BUSY-ERROR if some are still inside at the deadline, and
PYTHON-STOP-ERROR when called inside WITH-PYTHON-GIL or from a Lisp function Python called;
nothing is stopped then."
  (when +disable-pystop+
    (return-from pystop nil))
  (bt:with-recursive-lock-held (*lifecycle-lock*)
    (unless (python-alive-p)
      (return-from pystop nil))
    (let ((status (%stop (if finalize +stop-finalize+ 0)
                         (max 1 (round (* 1000 (or timeout *stop-timeout*)))))))
      (when (< status 0)
        (let ((code (%last-error-code)))
          (when (= code +code-not-started+)
            (return-from pystop nil))
          (error (stop-failure code (last-shim-error)))))
      (end-lisp-session)
      (when (= status +stopped-pinned+)
        (let ((report (stop-report)))
          (warn "Python was finalized, but ~A stays loaded in this process because ~A. ~
                 Only this same interpreter, on Python 3.8-3.13, can be started again here; ~
                 start a fresh Lisp process to use another Python version."
                (py4cl2-cffi/config::json-get report "libpython")
                (or (py4cl2-cffi/config::json-get report "reason") "an extension module pins it"))))
      t)))

(defun pyversion-info ()
  "Return a list, using the result of python's sys.version_info: (MAJOR MINOR MICRO
RELEASELEVEL SERIAL), e.g. (3 12 1 \"final\" 0)."
  (declare (notinline pycall)) ; compiled before PYCALL's compiler macro exists
  (python-start-if-not-alive)
  (coerce (pycall "tuple" (pyvalue "sys.version_info")) 'list))
