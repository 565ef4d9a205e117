;;;; py4cl2-cffi/config: the interpreter's facts and why it was chosen, read from the config crate through the shim.

(in-package :py4cl2-cffi/config)

(defvar *python-spec* nil
  "NIL for the default interpreter, or a spec string: \"3.12\", \">=3.10\", a python
executable or a venv folder. PYSTART uses it when no :PYTHON argument is given. Initialised from
the environment variable PY4CL2_CFFI_PYTHON. The default, with no spec, is chosen as reticulate
does: an active venv ($VIRTUAL_ENV) or conda env ($CONDA_PREFIX), then the config file, then the
best usable python3 on PATH (PRINT-CONFIGURATION shows which rule chose it).")

(defvar *python-ldflags* nil
  "The link flags of the selected Python as a list of strings (what `python3-config --ldflags
--embed` prints). Informational: the shim loads libpython at run time and needs no linking.")
(defvar *python-includes* nil
  "The include flags of the selected Python as a list of strings (informational).")
(defvar *python-executable-path* nil
  "The selected Python executable (a string). As in the original py4cl2-cffi, setting it
(after loading py4cl2-cffi/config, before PYSTART) to a python executable, e.g. a venv's
bin/python, selects that interpreter, unless *PYTHON-SPEC* or a :PYTHON argument chooses.")
(defvar *python-site-packages-path* nil
  "The selected Python's site-packages folder (a string; the first one if several).")
(defvar *python-version* nil
  "The selected Python's version, \"X.Y.Z\".")
(defvar *python-shared-library-path* nil
  "The shared libpython the shim will load for the selected Python.")
(defvar *disable-pystop* nil
  "Compatibility with the original: when non-NIL before py4cl2-cffi is loaded, PYSTOP does
nothing (py4cl2-cffi:+disable-pystop+ records the value). Not needed for speed here.")

(defvar *configured-executable* nil
  "The value REFRESH-CONFIGURATION last gave *PYTHON-EXECUTABLE-PATH*: a different value means
the user set it.")
(defvar *user-executable* nil
  "The python executable the user chose by setting *PYTHON-EXECUTABLE-PATH*, or NIL.")
(defvar *required-python-packages* '()
  "The requirements declared with PY4CL2-CFFI:REQUIRE-PYTHON-PACKAGES, for the next start.")

(cffi:defcfun ("p4s_config_json" %config-json) :pointer (spec :pointer) (len :int64))
(cffi:defcfun ("p4s_last_error" %config-last-error) :pointer)

(defun split-flags (string)
  (loop with out = '() and start = nil
        for i from 0 to (length string)
        for c = (if (< i (length string)) (char string i) #\Space)
        do (cond ((member c '(#\Space #\Tab))
                  (when start (push (subseq string start i) out) (setf start nil)))
                 ((null start) (setf start i)))
        finally (return (nreverse out))))

(defun default-python-spec ()
  "The spec PYSTART uses when it is given none: *PYTHON-SPEC*, else the executable the user put
in *PYTHON-EXECUTABLE-PATH* (the original's way of choosing a venv), else NIL (the default
choice)."
  (let ((exe *python-executable-path*))
    (when (pathnamep exe) (setf exe (namestring exe)))
    (cond ((null exe) (when *configured-executable* (setf *user-executable* nil)))
          ((not (equal exe *configured-executable*)) (setf *user-executable* exe))))
  (or *python-spec* *user-executable*))

(defun python-facts (&optional (spec (default-python-spec)))
  "The facts of the interpreter SPEC selects (NIL: the default one) as an alist parsed from
the shim's JSON (keys \"version\", \"executable\", \"libpython\", \"ldflags\", \"includes\",
\"site_packages\", \"config_file\", \"kind\", \"source\" and \"why\" (which rule chose it),
\"warnings\", \"environment\", ...). Starts nothing. Signals an ERROR naming the reason when
SPEC selects no usable interpreter."
  (load-shim)
  (let* ((octets (if spec (cffi:foreign-string-alloc spec :encoding :utf-8) (cffi:null-pointer)))
         (len (if spec (length (babel:string-to-octets spec :encoding :utf-8)) 0)))
    (unwind-protect
         (let ((p (%config-json octets len)))
           (if (cffi:null-pointer-p p)
               (error "py4cl2-cffi: no usable Python for ~:[the configuration~;~:*~S~]: ~A"
                      spec (cffi:foreign-string-to-lisp (%config-last-error) :encoding :utf-8))
               (parse-json (cffi:foreign-string-to-lisp p :encoding :utf-8))))
      (when spec (cffi:foreign-string-free octets)))))

(defun refresh-configuration (&optional (spec (default-python-spec)))
  "Sets *PYTHON-LDFLAGS*, *PYTHON-INCLUDES*, *PYTHON-EXECUTABLE-PATH*,
*PYTHON-SITE-PACKAGES-PATH*, *PYTHON-VERSION* and *PYTHON-SHARED-LIBRARY-PATH* from the facts
of SPEC (see PYTHON-FACTS). Returns the facts."
  (set-configuration (python-facts spec)))

(defun set-configuration (facts)
  "Sets the configuration variables from FACTS (an alist as PYTHON-FACTS returns). Returns
FACTS. PYSTART calls it with the facts of the interpreter it started, so that the variables
describe the running Python."
  (setf *python-ldflags* (split-flags (or (json-get facts "ldflags") ""))
        *python-includes* (split-flags (or (json-get facts "includes") ""))
        *python-executable-path* (json-get facts "executable")
        *configured-executable* *python-executable-path*
        *python-site-packages-path* (let ((sp (json-get facts "site_packages")))
                                      (if (listp sp) (first sp) sp))
        *python-version* (json-get facts "version")
        *python-shared-library-path* (json-get facts "libpython"))
  facts)

(defun choice-reason (spec facts)
  "Why the interpreter of FACTS (for SPEC, from DEFAULT-PYTHON-SPEC) is the one used."
  (cond ((null spec) (json-get facts "why"))
        ((and *python-spec* (equal spec *python-spec*))
         (format nil "py4cl2-cffi/config:*python-spec* is ~S~:[~; (from PY4CL2_CFFI_PYTHON)~]"
                 spec (equal spec (uiop:getenv "PY4CL2_CFFI_PYTHON"))))
        ((equal spec *user-executable*)
         (format nil "py4cl2-cffi/config:*python-executable-path* was set to ~S" spec))
        (t (json-get facts "why"))))

(defun print-configuration (&optional (stream *standard-output*))
  "Prints the interpreter py4cl2-cffi will start and why: version, executable, libpython,
ldflags, includes, site-packages, the config file, the rule that chose it, and the packages
declared for the next start. Returns no values."
  (let* ((spec (default-python-spec))
         (facts (refresh-configuration spec))
         (env (json-get facts "environment")))
    (format stream "~&version:       ~A (~A)~%executable:    ~A~%libpython:     ~A~%ldflags:       ~{~A~^ ~}~%includes:      ~{~A~^ ~}~%site-packages: ~A~%"
            *python-version* (json-get facts "kind") *python-executable-path*
            *python-shared-library-path* *python-ldflags* *python-includes*
            *python-site-packages-path*)
    (when env
      (format stream "environment:   ~{~A~^ ~} (made with ~A over ~A)~%"
              (json-get env "requirements") (json-get env "installer")
              (json-get env "base_executable")))
    (format stream "config file:   ~A~:[ (none yet)~;~]~%chosen by:     ~A~%"
            (json-get facts "config_file") (json-get facts "config_file_exists")
            (choice-reason spec facts))
    (dolist (w (json-get facts "warnings"))
      (format stream "warning:       ~A~%" w))
    (when *required-python-packages*
      (format stream "requires:      ~{~A~^ ~} (PYSTART makes or reuses an environment for them)~%"
              *required-python-packages*))
    (format stream "shim:          ~A~%" (shim-library-path)))
  (values))

(defgeneric shared-library-from-ldflag (ldflag platform)
  (:documentation "Compatibility with the original: the shared library file named by LDFLAG
(\"-lpython3.10\") on PLATFORM (a keyword such as :LINUX). The shim finds libpython itself, so
this is informational.")
  (:method ((ldflag string) platform)
    (let ((name (if (and (> (length ldflag) 2) (string= "-l" ldflag :end2 2)) (subseq ldflag 2) ldflag)))
      (case platform
        (:darwin (format nil "lib~A.dylib" name))
        (:windows (format nil "~A.dll" (remove #\. name)))
        (t (format nil "lib~A.so" name))))))

(let ((env (uiop:getenv "PY4CL2_CFFI_PYTHON")))
  (when (and env (plusp (length env)) (null *python-spec*))
    (setf *python-spec* env)))

;; The shim is required: finding (or building) it is part of loading. Then fill the variables,
;; as the original did on load; a machine without a usable Python still loads the system (the
;; error comes at PYSTART).
(load-shim)
(handler-case (refresh-configuration)
  (error (e) (warn "py4cl2-cffi/config: ~A" e)))
