;;;; The foreign library: finding the shim (libpy4cl2_cffi_shim), building it once with cargo when none is found, and loading it.

(in-package :py4cl2-cffi/config)

;;; Where the shim comes from, in order:
;;;   1. the file named by $PY4CL2_CFFI_SHIM (or a folder holding it);
;;;   2. the file named by CL-USER::*PY4CL2-CFFI-SHIM*, when that variable is bound before
;;;      py4cl2-cffi is loaded;
;;;   3. <checkout>/target/release/ (a developer's `cargo build --release`);
;;;   4. the build cache: <cache>/py4cl2-cffi/shim/<version>-<arch>-<os>-<source hash>/, where
;;;      <cache> is $XDG_CACHE_HOME, else ~/Library/Caches on macOS, else ~/.cache;
;;;   5. otherwise, when cargo is on PATH, in $CARGO_HOME/bin or in ~/.cargo/bin, it is built
;;;      into the cache folder of 4 (outside the source tree, so a read-only checkout works);
;;;   6. otherwise a shim on the system's library path (installed next to other libraries);
;;;      otherwise SHIM-NOT-FOUND says how to get one.
;;; The first two are explicit choices: when they name nothing loadable, that is an error
;;; rather than a reason to look further.

(defparameter *shim-file-name*
  #+darwin "libpy4cl2_cffi_shim.dylib"
  #+windows "py4cl2_cffi_shim.dll"
  #-(or darwin windows) "libpy4cl2_cffi_shim.so"
  "The file name of the shim library on this operating system.")

(define-condition shim-not-found (error)
  ((searched :initarg :searched :reader shim-not-found-searched
             :documentation "The places looked at, in order, each with what was found there.")
   (advice :initarg :advice :initform nil :reader shim-not-found-advice
           :documentation "What to do about it (a string), or NIL."))
  (:report (lambda (c s)
             (format s "py4cl2-cffi needs its shim library (~A, a small Rust library) and ~
                        found none. Looked at:~{~%  ~A~}~@[~%~A~]"
                     *shim-file-name* (shim-not-found-searched c) (shim-not-found-advice c))))
  (:documentation "Signalled when no shim library can be found, built or loaded; the report
says where it looked and how to get one. Restarts: USE-VALUE (the pathname of a shim library)
and RETRY (look, and build, again)."))

(define-condition shim-build-error (error)
  ((command :initarg :command :reader shim-build-error-command
            :documentation "The cargo command line (a list of strings).")
   (status :initarg :status :reader shim-build-error-status
           :documentation "Cargo's exit code.")
   (output :initarg :output :reader shim-build-error-output
           :documentation "Cargo's last lines of output (a string)."))
  (:report (lambda (c s)
             (format s "Building the py4cl2-cffi shim failed (exit code ~A):~%  ~{~A~^ ~}~%~
                        Cargo's last lines:~%~A~%~
                        Fix the cause and load py4cl2-cffi again (or use the RETRY restart), ~
                        or set PY4CL2_CFFI_SHIM to a prebuilt shim."
                     (shim-build-error-status c) (shim-build-error-command c)
                     (shim-build-error-output c))))
  (:documentation "Signalled when cargo fails to build the shim; carries the command, its exit
code and its last lines of output."))

(defparameter *shim-crate* "py4cl2-cffi-shim"
  "The cargo package that builds the shim.")

(defvar *shim-library-path* nil
  "The path the shim was loaded from, once loaded.")

(defun shim-library-path ()
  "The path the shim library was loaded from, or NIL before it is loaded."
  *shim-library-path*)

(defun nonempty-env (name)
  "The value of the environment variable NAME, or NIL when it is unset or empty."
  (let ((v (uiop:getenv name)))
    (and v (plusp (length v)) v)))

(defun repository-directory ()
  "The checkout's root folder (the parent of lisp/, where py4cl2-cffi.asd lives), or NIL."
  (let ((asd (ignore-errors (asdf:system-source-directory "py4cl2-cffi/config"))))
    (when asd
      (uiop:pathname-parent-directory-pathname asd))))

(defun repository-release-directory ()
  "<checkout>/target/release/, or NIL."
  (let ((root (repository-directory)))
    (when root (merge-pathnames "target/release/" root))))

(defun product-version ()
  "The version of the py4cl2-cffi system, e.g. \"0.2.0\"."
  (or (ignore-errors (asdf:component-version (asdf:find-system "py4cl2-cffi" nil))) "unknown"))

(defun platform-name ()
  "The architecture and operating system, e.g. \"x64-linux\" (the same on every Lisp)."
  (string-downcase (format nil "~A-~A" (uiop:architecture) (uiop:operating-system))))

(defun user-cache-directory ()
  "<cache>/py4cl2-cffi/: $XDG_CACHE_HOME, else ~/Library/Caches on macOS, else ~/.cache."
  (let ((xdg (nonempty-env "XDG_CACHE_HOME")))
    (merge-pathnames "py4cl2-cffi/"
                     (if (and xdg (uiop:absolute-pathname-p xdg))
                         (uiop:ensure-directory-pathname xdg)
                         (merge-pathnames #+darwin "Library/Caches/" #-darwin ".cache/"
                                          (user-homedir-pathname))))))

;;; The source hash: FNV-1a over the relative name and the bytes of every file the shim is
;;; built from, as two 32-bit halves so that the arithmetic stays in fixnums on every Lisp.

(defun shim-source-files (root)
  "The files the shim is built from, sorted: the workspace's Cargo.toml and Cargo.lock, and
Cargo.toml, build.rs and src/** of the shim, loader and config crates."
  (let ((files '()))
    (dolist (name '("Cargo.toml" "Cargo.lock"))
      (let ((f (probe-file (merge-pathnames name root))))
        (when f (push f files))))
    (dolist (crate '("shim/" "loader/" "config/"))
      (let ((dir (merge-pathnames crate root)))
        (dolist (name '("Cargo.toml" "build.rs"))
          (let ((f (probe-file (merge-pathnames name dir))))
            (when f (push f files))))
        (uiop:collect-sub*directories
         (merge-pathnames "src/" dir) t t
         (lambda (d) (dolist (f (uiop:directory-files d)) (push f files))))))
    (sort (mapcar (lambda (f) (cons (enough-namestring f root) f)) files)
          #'string< :key #'car)))

(defun shim-source-hash (&optional (root (repository-directory)))
  "16 hex digits identifying the shim's sources under ROOT (see SHIM-SOURCE-FILES)."
  (let ((a #x811c9dc5) (b #x050c5d1f)
        (buffer (make-array 65536 :element-type '(unsigned-byte 8))))
    (declare (type (unsigned-byte 32) a b))
    (flet ((feed (octet)
             (declare (type (unsigned-byte 8) octet))
             (setf a (logand (* (logxor a octet) #x01000193) #xffffffff)
                   b (logand (* (logxor b octet) #x01000193) #xffffffff)
                   b (logxor b (ash b -15)))))
      (dolist (entry (shim-source-files root))
        (loop for c across (car entry) do (feed (logand (char-code c) #xff)))
        (feed 0)
        (with-open-file (s (cdr entry) :element-type '(unsigned-byte 8))
          (loop for n = (read-sequence buffer s)
                while (plusp n)
                do (loop for i below n do (feed (aref buffer i)))))
        (feed 0)))
    (format nil "~(~8,'0x~8,'0x~)" a b)))

(defun shim-cache-directory ()
  "The build cache's folder for this version, platform and source tree."
  (merge-pathnames (format nil "shim/~A-~A-~A/" (product-version) (platform-name)
                           (shim-source-hash))
                   (user-cache-directory)))

;;; Finding cargo.

(defun executable-file-p (path)
  "T when PATH names an existing file (not a folder) that can be run."
  (let ((p (probe-file path)))
    (and p (not (uiop:directory-pathname-p p))
         (zerop (nth-value 2 (uiop:run-program (list "test" "-x" (namestring p))
                                               :ignore-error-status t))))))

(defun find-cargo ()
  "The cargo executable: on PATH, else in $CARGO_HOME/bin, else in ~/.cargo/bin; or NIL."
  (let ((places (append (mapcar (lambda (d) (merge-pathnames "cargo" (uiop:ensure-directory-pathname d)))
                                (remove "" (uiop:split-string (or (uiop:getenv "PATH") "")
                                                              :separator ":")
                                        :test #'string=))
                        (let ((home (nonempty-env "CARGO_HOME")))
                          (when home
                            (list (merge-pathnames "bin/cargo" (uiop:ensure-directory-pathname home)))))
                        (list (merge-pathnames ".cargo/bin/cargo" (user-homedir-pathname))))))
    (loop for p in places
          when (executable-file-p p)
            return (namestring p))))

;;; The build lock: flock(2) on a file in the cache, released by the kernel even when the Lisp
;;; holding it dies, so that two Lisps building at once take turns.

(defconstant +o-rdwr+ 2)
(defconstant +o-creat+ #+(or darwin freebsd openbsd netbsd) #x200 #-(or darwin freebsd openbsd netbsd) #o100)
(defconstant +lock-ex+ 2)
(defconstant +lock-nb+ 4)

(defun call-with-file-lock (path thunk)
  "Calls THUNK holding an exclusive lock on the file PATH (made if needed), waiting, and saying
so once, while another process holds it."
  (ensure-directories-exist path)
  (let ((fd (cffi:foreign-funcall "open" :string (namestring path)
                                  :int (logior +o-rdwr+ +o-creat+) :int #o644 :int)))
    (when (minusp fd)
      (error "py4cl2-cffi: cannot open the lock file ~A" path))
    (unwind-protect
         (progn
           (unless (zerop (cffi:foreign-funcall "flock" :int fd :int (logior +lock-ex+ +lock-nb+) :int))
             (format t "~&; py4cl2-cffi: waiting for another Lisp that is building the shim (~A)~%" path)
             (finish-output)
             (loop until (zerop (cffi:foreign-funcall "flock" :int fd :int (logior +lock-ex+ +lock-nb+) :int))
                   do (sleep 0.2)))
           (funcall thunk))
      (cffi:foreign-funcall "close" :int fd :int))))

;;; Building.

(defun build-shim (cargo)
  "Builds the shim with CARGO into the build cache (unless another Lisp just did), showing
cargo's lines on *STANDARD-OUTPUT*. Returns the library's path. Signals SHIM-BUILD-ERROR."
  (let* ((dir (shim-cache-directory))
         (library (merge-pathnames *shim-file-name* dir))
         (target (merge-pathnames "target/" dir))
         (root (repository-directory))
         (command (list cargo "build" "--release" "--locked" "-p" *shim-crate*
                        "--manifest-path" (namestring (merge-pathnames "Cargo.toml" root))
                        "--target-dir" (namestring target)))
         (start (get-internal-real-time)))
    (call-with-file-lock
     (merge-pathnames "shim/build.lock" (user-cache-directory))
     (lambda ()
       (unless (probe-file library)
         (format t "~&; py4cl2-cffi: no shim library for version ~A yet: building it once with ~
                    cargo (about a minute) into~%;   ~A~%;   $ ~{~A~^ ~}~%"
                 (product-version) dir command)
         (finish-output)
         (let ((process (uiop:launch-program command :output :stream :error-output :output
                                                     :input nil))
               (tail '()) (done nil))
           (unwind-protect
                (progn
                  (loop for line = (read-line (uiop:process-info-output process) nil)
                        while line
                        do (format t "; cargo: ~A~%" line)
                           (finish-output)
                           (push line tail)
                           (when (> (length tail) 30) (setf tail (subseq tail 0 30))))
                  (let ((status (uiop:wait-process process)))
                    (setf done t)
                    (unless (eql status 0)
                      (error 'shim-build-error :command command :status status
                                               :output (format nil "~{  ~A~^~%~}" (reverse tail))))))
             (unless done
               (ignore-errors (uiop:terminate-process process))
               (ignore-errors (uiop:wait-process process)))))
         (let ((built (merge-pathnames (format nil "release/~A" *shim-file-name*) target))
               (partial (merge-pathnames (format nil "~A.partial" *shim-file-name*) dir)))
           (uiop:copy-file built partial)
           (rename-file partial library))
         ;; The build folder is large; the library is all that is needed.
         (ignore-errors (uiop:delete-directory-tree target :validate t))
         (format t "~&; py4cl2-cffi: built ~A in ~,1F s~%" library
                 (/ (- (get-internal-real-time) start) internal-time-units-per-second))
         (finish-output))))
    (namestring library)))

;;; Finding and loading.

(defun explicit-shim (value origin)
  "The shim file named by VALUE (a file, or a folder holding *SHIM-FILE-NAME*) from ORIGIN (a
description for errors), checked to exist."
  (let* ((path (uiop:ensure-pathname value :want-pathname t))
         (file (if (uiop:directory-exists-p path)
                   (merge-pathnames *shim-file-name* (uiop:ensure-directory-pathname path))
                   path)))
    (unless (probe-file file)
      (error 'shim-not-found
             :searched (list (format nil "~A = ~A: no such file" origin value))
             :advice (format nil "Correct ~A, or unset it to let py4cl2-cffi find or build the shim."
                             origin)))
    (namestring (probe-file file))))

(defun lisp-variable-shim ()
  "The value of CL-USER::*PY4CL2-CFFI-SHIM* when it is bound and non-NIL."
  (let ((s (find-symbol "*PY4CL2-CFFI-SHIM*" :cl-user)))
    (and s (boundp s) (symbol-value s))))

(defun shim-advice (cache-dir)
  "How to get a shim when there is neither one nor cargo."
  (format nil "Any one of these gets it:~%  ~
1. Install Rust (https://rustup.rs), then load py4cl2-cffi again: it builds the shim once, ~
   by itself, into~%     ~A~%  ~
2. Download the prebuilt shim of version ~A for this platform (the CI artifact ~
   py4cl2-cffi-shim-~A-<target triple>, e.g. ...-x86_64-unknown-linux-gnu) and set ~
   PY4CL2_CFFI_SHIM to the path of its ~A, or evaluate~%     ~
   (defvar cl-user::*py4cl2-cffi-shim* \"/path/to/~A\") before loading py4cl2-cffi.~%  ~
3. Build it in the checkout: cd ~A && cargo build --release -p ~A"
          cache-dir (product-version) (product-version) *shim-file-name* *shim-file-name*
          (or (repository-directory) "<checkout>") *shim-crate*))

(defun locate-shim ()
  "The path (a string) of the shim to load, building it when needed and possible; the bare
file name when only the system's library path is left to try. Signals SHIM-NOT-FOUND."
  (let ((env (nonempty-env "PY4CL2_CFFI_SHIM"))
        (var (lisp-variable-shim))
        (searched '()))
    (cond (env (return-from locate-shim (explicit-shim env "PY4CL2_CFFI_SHIM")))
          (var (return-from locate-shim (explicit-shim var "CL-USER::*PY4CL2-CFFI-SHIM*"))))
    (push "PY4CL2_CFFI_SHIM: not set" searched)
    (push "CL-USER::*PY4CL2-CFFI-SHIM*: not bound" searched)
    (let ((repo (repository-release-directory)))
      (when repo
        (let ((f (merge-pathnames *shim-file-name* repo)))
          (when (probe-file f) (return-from locate-shim (namestring f)))
          (push (format nil "~A: no such file (the checkout's own build)" f) searched))))
    (let* ((dir (shim-cache-directory))
           (f (merge-pathnames *shim-file-name* dir)))
      (when (probe-file f) (return-from locate-shim (namestring f)))
      (push (format nil "~A: no such file (the build cache)" f) searched)
      (let ((cargo (find-cargo)))
        (when cargo
          (return-from locate-shim (build-shim cargo)))
        (push (format nil "the system's library path: ~A cannot be loaded by name" *shim-file-name*)
              searched)
        (push "cargo: not on PATH, nor in $CARGO_HOME/bin or ~/.cargo/bin, so the shim cannot be built here"
              searched)
        (values nil (reverse searched) (shim-advice dir))))))

(cffi:define-foreign-library shim
  (t (:default "libpy4cl2_cffi_shim")))

(defun load-shim ()
  "Loads the shim library unless it is loaded: found, or built once with cargo, as described at
the top of library.lisp. Returns its path. Signals SHIM-NOT-FOUND or SHIM-BUILD-ERROR, with
the restarts USE-VALUE (a pathname of the library) and RETRY."
  (when *shim-library-path*
    (return-from load-shim *shim-library-path*))
  (loop
    (restart-case
        (multiple-value-bind (path searched advice) (locate-shim)
          (if path
              (progn (cffi:load-foreign-library path)
                     (return-from load-shim (setf *shim-library-path* path)))
              ;; Last, a shim installed where the dynamic linker looks.
              (handler-case
                  (progn (cffi:load-foreign-library *shim-file-name*)
                         (return-from load-shim (setf *shim-library-path* *shim-file-name*)))
                (error ()
                  (error 'shim-not-found :searched searched :advice advice)))))
      (use-value (path)
        :report "Load the shim from a path you give."
        :interactive (lambda () (format *query-io* "Path of the shim library: ")
                       (finish-output *query-io*)
                       (list (read-line *query-io*)))
        (cffi:load-foreign-library (namestring path))
        (return-from load-shim (setf *shim-library-path* (namestring path))))
      (retry ()
        :report "Look for the shim again (and build it if cargo is now there)."))))

(setf (documentation 'shim-not-found-advice 'function)
      "What to do when no shim was found: the ways to get one (a string), or NIL."
      (documentation 'shim-build-error-command 'function)
      "The cargo command line that failed, a list of strings."
      (documentation 'shim-build-error-status 'function)
      "Cargo's exit code."
      (documentation 'shim-build-error-output 'function)
      "Cargo's last lines of output, one string.")
