;;;; ASDF systems of py4cl2-cffi: the configuration, the library, the single-threaded variant and the tests.
;;;;
;;;; Loading needs no set-up beyond the checkout: py4cl2-cffi/config finds the shim library, or
;;;; builds it once with cargo into a cache folder (see src/library.lisp).

(defsystem "py4cl2-cffi/config"
  :description "Which Python py4cl2-cffi embeds, as the config crate resolves it."
  :license "MIT"
  :depends-on ("cffi" "babel")
  :serial t
  :pathname "src/"
  :components ((:file "config-package")
               (:file "library")
               (:file "json")
               (:file "config")))

(defsystem "py4cl2-cffi"
  :description "Embed CPython 3.8-3.15 in Lisp through the py4cl2-cffi shim (a Rust cdylib)."
  :license "MIT"
  :version "0.2.0"
  :depends-on ("py4cl2-cffi/config" "cffi" "trivial-garbage" "bordeaux-threads" "iterate")
  :serial t
  :pathname "src/"
  :components ((:file "package")
               (:file "ffi")
               (:file "conditions")
               (:file "gil")
               (:file "wrappers")
               (:file "lispify")
               (:file "pythonize")
               (:file "environments")
               (:file "lifecycle")
               (:file "interrupts")
               (:file "call")
               (:file "output")
               (:file "eval")
               (:file "arrays")
               (:file "callbacks")
               (:file "lisp-objects")
               (:file "chain")
               ;; DEFPYFUN and DEFPYMODULE keep the original's lambda lists, which mix &OPTIONAL
               ;; and &KEY; SBCL's style-warning about that mix is muffled for this file only.
               (:file "modules"
                :around-compile
                (lambda (thunk)
                  (handler-bind ((style-warning
                                   (lambda (w)
                                     (when (search "&OPTIONAL and &KEY" (princ-to-string w))
                                       (muffle-warning w)))))
                    (funcall thunk))))
               (:file "pyfor")
               (:file "extras"))
  :in-order-to ((test-op (test-op "py4cl2-cffi/tests"))))

(defsystem "py4cl2-cffi/single-threaded"
  :description "py4cl2-cffi for code that must call Python from one thread only (same API)."
  :depends-on ("py4cl2-cffi")
  :pathname "src/"
  :components ((:file "single-threaded")))

(defsystem "py4cl2-cffi/tests"
  :description "The fiveam suite of py4cl2-cffi, run against a real Python."
  :depends-on ("py4cl2-cffi" "fiveam")
  :serial t
  :pathname "tests/"
  :components ((:file "package")
               (:file "numpy")
               (:file "arrays")
               (:file "plotting")
               (:file "lifecycle")
               (:file "calling")
               (:file "conversions")
               (:file "conversions-compat")
               (:file "conversions-fuzz")
               (:file "errors")
               (:file "output")
               (:file "runtime")
               (:file "interrupts")
               (:file "restart")
               (:file "stop")
               (:file "threads")
               (:file "callbacks")
               (:file "modules")
               (:file "objects")
               (:file "compat-api")
               (:file "repl")
               (:file "install")
               (:file "images"))
  ;; ASDF's convention: TEST-SYSTEM signals an error when a test fails.
  :perform (test-op (o c)
             (unless (uiop:symbol-call :py4cl2-cffi/tests :run-suite)
               (error "py4cl2-cffi: tests failed (the FAILED lines above say which)"))))
