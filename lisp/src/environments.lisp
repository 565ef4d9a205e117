;;;; Python environments on demand (pystart :requires, require-python-packages) and saying which interpreter a start picked.

(in-package :py4cl2-cffi)

;;; The work is the config crate's (environments.rs, through p4s_env_ensure): a venv per
;;; (base installation, requirement set) under <cache>/py4cl2-cffi/envs/, made with uv or pip,
;;; built in a temporary folder and renamed when complete. Here: the requirement set, the
;;; installer's lines shown on *STANDARD-OUTPUT*, and the condition when it fails.

(define-condition python-environment-error (error)
  ((requirements :initarg :requirements :reader python-environment-error-requirements
                 :documentation "The requirement strings asked for.")
   (message :initarg :message :reader python-environment-error-message
            :documentation "What went wrong, with the installer's last lines."))
  (:report (lambda (c s)
             (format s "No Python environment for ~{~A~^ ~}: ~A"
                     (python-environment-error-requirements c)
                     (python-environment-error-message c))))
  (:documentation "Signalled by PYSTART when the environment its requirements ask for cannot
be made (a requirement that no index has, no network, no installer). Nothing of the
environment is kept."))

(setf (documentation 'python-environment-error-requirements 'function)
      "The requirement strings whose environment could not be made."
      (documentation 'python-environment-error-message 'function)
      "Why the environment could not be made, with the installer's last lines (a string).")

(define-entry require-python-packages (&rest requirements)
  "Declares that the next PYSTART needs the Python packages REQUIREMENTS (pip requirement
strings such as \"networkx\" or \"numpy>=2\"), as reticulate's py_require does: a library calls
it when it is loaded, and PYSTART starts Python in a cached environment holding every package
declared so far plus those of its own :REQUIRES. Returns the whole list declared. When Python
is already running, WARNs that the packages take effect only at the next start."
  (dolist (r requirements)
    (check-type r string))
  (let ((new (remove-if (lambda (r) (member r py4cl2-cffi/config::*required-python-packages*
                                            :test #'string=))
                        (mapcar (lambda (r) (string-trim " " r)) requirements))))
    (setf py4cl2-cffi/config::*required-python-packages*
          (append py4cl2-cffi/config::*required-python-packages* (remove "" new :test #'string=)))
    (when (and new (python-alive-p))
      (warn "Python is already running: the packages ~{~A~^ ~} take effect at the next PYSTART ~
             (after PYSTOP)." new)))
  py4cl2-cffi/config::*required-python-packages*)

(cffi:defcfun ("p4s_env_ensure" %env-ensure) :pointer
  (spec :pointer) (spec-len :int64) (requirements :pointer) (requirements-len :int64)
  (progress :pointer))

(cffi:defcallback environment-progress :int ((line :pointer) (len :int64))
  ;; Called on the Lisp thread that asked, with a line to show, or with NULL every 200 ms.
  ;; Returning 0 stops the installer: done when an interrupt (C-c) is waiting, so that it can
  ;; run once the shim has cleaned up (it is deferred meanwhile, see ENSURE-ENVIRONMENT).
  (handler-case
      (progn
        (unless (cffi:null-pointer-p line)
          (format t "~&; ~A~%" (cffi:foreign-string-to-lisp line :count len :encoding :utf-8))
          (finish-output))
        ;; An interrupt (C-c, SB-THREAD:INTERRUPT-THREAD) queued for this thread; deferred
        ;; signals of other kinds (SIGCHLD) do not count.
        (if #+sbcl (sb-thread::thread-interruptions sb-thread:*current-thread*) #-sbcl nil 0 1))
    (error () 1)))

(defun ensure-environment (spec requirements)
  "The folder (a string) of the environment holding REQUIREMENTS over the interpreter SPEC
selects (NIL: the default one), made or reused. Shows the installer's progress. Signals
PYTHON-ENVIRONMENT-ERROR."
  (load-shim)
  (let ((text (format nil "~{~A~%~}" requirements))
        (spec (or spec "")))
    (let ((json (with-utf8 (sp sn spec)
                  (with-utf8 (rp rn text)
                    ;; Interrupts wait while the shim runs the installer (an unwind must not
                    ;; cross its frames); the progress callback makes it stop and clean up.
                    (let ((p (#+sbcl sb-sys:without-interrupts #+ecl mp:without-interrupts
                              #-(or sbcl ecl) progn
                              (%env-ensure sp sn rp rn (cffi:callback environment-progress)))))
                      (unless (cffi:null-pointer-p p)
                        (foreign-utf8 p)))))))
      (unless json
        (error 'python-environment-error :requirements requirements
                                         :message (last-shim-error)))
      (let ((env (py4cl2-cffi/config::parse-json json)))
        (unless (py4cl2-cffi/config::json-get env "created")
          (format t "~&; py4cl2-cffi: using the environment ~A (~{~A~^ ~})~%"
                  (py4cl2-cffi/config::json-get env "dir")
                  (py4cl2-cffi/config::json-get env "manifest" "requirements"))
          (finish-output))
        (py4cl2-cffi/config::json-get env "dir")))))

(defvar *announced* '()
  "The executables whose choice by default was already announced in this process.")

(defun announce-default-choice ()
  "When the default interpreter was chosen by something else than the config file (an active
venv or conda env, or PATH), says which it is and why, once per interpreter and process.
Returns its executable, to start that very one; NIL when the config file chose."
  (let ((facts (handler-case (py4cl2-cffi/config:python-facts nil)
                 ;; PYSTART reports the same failure with its own condition.
                 (error () (return-from announce-default-choice nil)))))
    (unless (equal (py4cl2-cffi/config::json-get facts "source") "config file")
      (let ((exe (py4cl2-cffi/config::json-get facts "executable")))
        (unless (member exe *announced* :test #'equal)
          (push exe *announced*)
          (format t "~&; py4cl2-cffi: starting Python ~A (~A): ~A~%"
                  (py4cl2-cffi/config::json-get facts "version") exe
                  (py4cl2-cffi/config::json-get facts "why"))
          (finish-output))
        exe))))

(defun python-spec-for-start (python requires)
  "The interpreter spec PYSTART starts, given its :PYTHON and :REQUIRES arguments: with
requirements (REQUIRES plus those of REQUIRE-PYTHON-PACKAGES), the folder of their environment
over the interpreter PYTHON selects; else PYTHON, or the default choice (see
PY4CL2-CFFI/CONFIG:*PYTHON-SPEC*), announced when no config file made it. Does nothing while
Python runs."
  (when (python-alive-p)
    (return-from python-spec-for-start python))
  (dolist (r requires) (check-type r string))
  (let ((spec (or python (py4cl2-cffi/config::default-python-spec)))
        (requirements (remove-duplicates
                       (remove "" (mapcar (lambda (r) (string-trim " " r))
                                          (append py4cl2-cffi/config::*required-python-packages*
                                                  requires))
                               :test #'string=)
                       :test #'string= :from-end t)))
    (cond (requirements (ensure-environment spec requirements))
          (spec spec)
          (t (announce-default-choice)))))
