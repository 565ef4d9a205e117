;;;; py4cl2-cffi/config: the interpreter's facts, read from the config crate through the shim.

(in-package :py4cl2-cffi/config)

(defvar *python-spec* nil
  "NIL for the configured interpreter (the config file, else the first python3 on PATH), or a
spec string: \"3.12\", \">=3.10\", a python executable or a venv folder. PYSTART uses it when no
:PYTHON argument is given. Initialised from the environment variable PY4CL2_CFFI_PYTHON.")

(defvar *python-ldflags* nil
  "The link flags of the selected Python as a list of strings (what `python3-config --ldflags
--embed` prints). Informational: the shim loads libpython at run time and needs no linking.")
(defvar *python-includes* nil
  "The include flags of the selected Python as a list of strings (informational).")
(defvar *python-executable-path* nil
  "The selected Python executable (a string).")
(defvar *python-site-packages-path* nil
  "The selected Python's site-packages folder (a string; the first one if several).")
(defvar *python-version* nil
  "The selected Python's version, \"X.Y.Z\".")
(defvar *python-shared-library-path* nil
  "The shared libpython the shim will load for the selected Python.")
(defvar *disable-pystop* nil
  "Compatibility with the original: when non-NIL before py4cl2-cffi is loaded, PYSTOP does
nothing (py4cl2-cffi:+disable-pystop+ records the value). Not needed for speed here.")

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

(defun python-facts (&optional (spec *python-spec*))
  "The facts of the interpreter SPEC selects (NIL: the configured one) as an alist parsed from
the shim's JSON (keys \"version\", \"executable\", \"libpython\", \"ldflags\", \"includes\",
\"site_packages\", \"config_file\", ...). Starts nothing. Signals an ERROR naming the reason
when SPEC selects no usable interpreter."
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

(defun refresh-configuration (&optional (spec *python-spec*))
  "Sets *PYTHON-LDFLAGS*, *PYTHON-INCLUDES*, *PYTHON-EXECUTABLE-PATH*,
*PYTHON-SITE-PACKAGES-PATH*, *PYTHON-VERSION* and *PYTHON-SHARED-LIBRARY-PATH* from the facts
of SPEC (see PYTHON-FACTS). Returns the facts."
  (let ((facts (python-facts spec)))
    (setf *python-ldflags* (split-flags (or (json-get facts "ldflags") ""))
          *python-includes* (split-flags (or (json-get facts "includes") ""))
          *python-executable-path* (json-get facts "executable")
          *python-site-packages-path* (let ((sp (json-get facts "site_packages")))
                                        (if (listp sp) (first sp) sp))
          *python-version* (json-get facts "version")
          *python-shared-library-path* (json-get facts "libpython"))
    facts))

(defun print-configuration (&optional (stream *standard-output*))
  "Prints the interpreter py4cl2-cffi will start (from the configuration, or *PYTHON-SPEC*):
version, executable, libpython, ldflags, includes, site-packages and the config file. Returns
no values."
  (let ((facts (refresh-configuration)))
    (format stream "~&version:       ~A~%executable:    ~A~%libpython:     ~A~%ldflags:       ~{~A~^ ~}~%includes:      ~{~A~^ ~}~%site-packages: ~A~%config file:   ~A~%shim:          ~A~%"
            *python-version* *python-executable-path* *python-shared-library-path*
            *python-ldflags* *python-includes* *python-site-packages-path*
            (json-get facts "config_file") (shim-library-path)))
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

;; Fill the variables now, as the original did on load; a machine without a usable Python
;; still loads the system (the error comes at PYSTART).
(handler-case (refresh-configuration)
  (error (e) (warn "py4cl2-cffi/config: ~A" e)))
