;;;; The package py4cl2-cffi/config: which interpreter is used and why, and where the shim is found.

(defpackage :py4cl2-cffi/config
  (:use :cl)
  (:export
   ;; The interpreter py4cl2-cffi starts, as the config crate resolves it.
   #:*python-ldflags*
   #:*python-includes*
   #:*python-executable-path*
   #:*python-site-packages-path*
   #:*python-version*
   #:*python-shared-library-path*
   #:*python-spec*
   #:print-configuration
   #:refresh-configuration
   #:python-facts
   #:shared-library-from-ldflag
   #:*disable-pystop*
   ;; The shim library: found, or built once with cargo (see library.lisp).
   #:shim-library-path
   #:load-shim
   #:shim-not-found
   #:shim-not-found-searched
   #:shim-not-found-advice
   #:shim-build-error
   #:shim-build-error-command
   #:shim-build-error-status
   #:shim-build-error-output))
