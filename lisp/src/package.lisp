;;;; The package py4cl2-cffi: the public API, grouped by concern.

(defpackage :py4cl2-cffi
  (:use :cl)
  (:import-from :py4cl2-cffi/config #:load-shim)
  (:export
   ;; Lifecycle: starting, stopping, and what runs at start.
   #:pystart
   #:pystop
   #:python-alive-p
   #:python-start-if-not-alive
   #:pyversion-info
   #:*additional-init-codes*
   #:+disable-pystop+
   #:python-generation

   ;; Python environments on demand (pystart :requires).
   #:require-python-packages
   #:python-environment-error
   #:python-environment-error-requirements
   #:python-environment-error-message

   ;; Calling Python: names, callables, methods, attributes, modules.
   #:pyvalue
   #:pycall
   #:pymethod
   #:pyslot-value
   #:pyslot-list
   #:pymethod-list
   #:pyhelp
   #:pyref
   #:import-module
   #:import-function
   #:defpyfun
   #:defpymodule
   #:*defpymodule-silent-p*
   #:chain
   #:chain*
   #:pygenerator
   #:pyfor
   #:with-remote-objects
   #:with-remote-objects*

   ;; Running code given as text.
   #:raw-pyeval
   #:raw-pyexec
   #:pyeval
   #:pyexec

   ;; Conversions between Lisp and Python values.
   #:pythonize
   #:lispify
   #:define-lispifier
   #:with-lispifiers
   #:with-pythonizers
   #:*lispifiers*
   #:*pythonizers*
   #:+py-none+
   #:+py-empty-tuple+
   #:+py-none-pointer+
   #:+py-empty-tuple-pointer+
   #:*max-conversion-depth*
   #:conversion-depth-exceeded
   #:conversion-depth-exceeded-depth
   #:conversion-depth-exceeded-limit
   #:conversion-depth-exceeded-reason
   #:conversion-depth-exceeded-direction

   ;; Python objects held from Lisp.
   #:pyobject-wrapper
   #:pyobject-wrapper-p
   #:pyobject-wrapper-pointer
   #:pyobject-wrapper-eq
   #:pyobject-wrapper-eq*
   #:*print-pyobject*
   #:*print-pyobject-wrapper-identity*

   ;; Lisp functions and objects seen from Python.
   #:export-function
   #:callback-non-local-exit
   #:callback-depth-exceeded
   #:callback-depth-exceeded-depth
   #:*max-callback-depth*
   #:python-getattr
   #:python-setattr
   #:python-attribute-missing

   ;; Errors.
   #:pyerror
   #:simple-pyerror
   #:pyerror-type
   #:pyerror-message
   #:pyerror-traceback
   #:python-not-started
   #:python-start-error
   #:python-start-error-message
   #:python-pinned-error
   #:python-stop-error
   #:python-stop-busy-error
   #:python-stop-busy-error-threads
   #:python-running-error
   #:*stop-timeout*
   #:python-stop-report
   #:shim-error
   #:shim-error-message
   #:stale-pyobject-error
   #:borrowed-array-error

   ;; Output of Python's sys.stdout and sys.stderr.
   #:with-python-output
   #:with-python-error-output

   ;; Runtime: the GIL, garbage collection, features.
   #:with-python-gil
   #:with-pygc
   #:enable-pygc
   #:disable-pygc
   #:*pygc-threshold*
   #:*internal-features*))
