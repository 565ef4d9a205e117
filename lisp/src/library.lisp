;;;; The foreign library: finding and loading the shim (libpy4cl2_cffi_shim).

(in-package :py4cl2-cffi/config)

(define-condition shim-not-found (error)
  ((searched :initarg :searched :reader shim-not-found-searched
             :documentation "The places looked at, in order."))
  (:report (lambda (c s)
             (format s "The py4cl2-cffi shim library was not found. Looked at:~{~%  ~A~}~%~
                        Build it with `cargo build -p py4cl2-cffi-shim --release` in the ~
                        repository, or set PY4CL2_CFFI_SHIM to the library's path."
                     (shim-not-found-searched c))))
  (:documentation "Signalled when no shim library can be found or loaded. Restarts: USE-VALUE
(a pathname of the library) and RETRY."))

(defparameter *shim-file-name*
  #+darwin "libpy4cl2_cffi_shim.dylib"
  #+windows "py4cl2_cffi_shim.dll"
  #-(or darwin windows) "libpy4cl2_cffi_shim.so")

(defun repository-release-directory ()
  "<repository>/target/release/, found relative to py4cl2-cffi.asd (which lives in lisp/)."
  (let ((asd (ignore-errors (asdf:system-source-directory "py4cl2-cffi/config"))))
    (when asd
      (merge-pathnames "../target/release/" asd))))

(defun candidate-shim-paths ()
  "The places the shim is looked for, in order: $PY4CL2_CFFI_SHIM (a file or a folder), the
repository's target/release, then the bare file name (the system's library path)."
  (let ((env (uiop:getenv "PY4CL2_CFFI_SHIM"))
        (out '()))
    (when (and env (plusp (length env)))
      (push (if (uiop:directory-pathname-p env)
                (merge-pathnames *shim-file-name* (uiop:ensure-directory-pathname env))
                (pathname env))
            out)
      (unless (uiop:file-exists-p env)
        (when (uiop:directory-exists-p env)
          (setf out (list (merge-pathnames *shim-file-name*
                                           (uiop:ensure-directory-pathname env)))))))
    (let ((repo (repository-release-directory)))
      (when repo (push (merge-pathnames *shim-file-name* repo) out)))
    (push *shim-file-name* out)
    (nreverse out)))

(defvar *shim-library-path* nil
  "The path the shim was loaded from, once loaded.")

(defun shim-library-path ()
  "The path the shim library was loaded from, or NIL before it is loaded."
  *shim-library-path*)

(cffi:define-foreign-library shim
  (t (:default "libpy4cl2_cffi_shim")))

(defun load-shim ()
  "Loads the shim library unless it is loaded. Returns its path. Signals SHIM-NOT-FOUND (with
USE-VALUE and RETRY restarts) when no candidate loads."
  (when *shim-library-path*
    (return-from load-shim *shim-library-path*))
  (loop
    (let ((tried '()))
      (dolist (p (candidate-shim-paths))
        (let ((name (if (pathnamep p) (namestring p) p)))
          (if (or (stringp p) (probe-file p))
              (handler-case
                  (progn (cffi:load-foreign-library name)
                         (return-from load-shim (setf *shim-library-path* name)))
                (error (e) (push (format nil "~A (~A)" name e) tried)))
              (push (format nil "~A (no such file)" name) tried))))
      (restart-case (error 'shim-not-found :searched (reverse tried))
        (use-value (path)
          :report "Load the shim from a path you give."
          :interactive (lambda () (format *query-io* "Path of the shim library: ")
                         (list (read-line *query-io*)))
          (cffi:load-foreign-library (namestring path))
          (return-from load-shim (setf *shim-library-path* (namestring path))))
        (retry ()
          :report "Look for the shim again.")))))
