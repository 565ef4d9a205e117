;;;; Child of tests/install/run.sh (SBCL or ECL): a first compile of every system into an empty fasl folder ($P4T_FASLS) gives no warnings, and loading them again with :force gives no PACKAGE-AT-VARIANCE; prints one WARNING: line per warning.

(require :asdf)
(asdf:initialize-source-registry
 `(:source-registry (:directory ,(merge-pathnames "../../lisp/" (make-pathname :name nil :type nil :defaults *load-truename*)))
                    :inherit-configuration))
;; Only this checkout's files are compiled anew; the libraries it uses keep their fasls.
(asdf:initialize-output-translations
 `(:output-translations
   ((,(truename (merge-pathnames "../../lisp/" (make-pathname :name nil :type nil :defaults *load-truename*)))
     :**/ :*.*.*)
    (,(uiop:getenv "P4T_FASLS") :implementation :**/ :*.*.*))
   :inherit-configuration))
(defvar *phase* "first compile")
(defvar *out* *standard-output* "Where the WARNING: lines go (the compiler's chatter does not).")
(defun report-warning (w)
  (let ((text (substitute #\Space #\Newline (princ-to-string w))))
    (unless (or #+sbcl (typep w 'sb-kernel:redefinition-warning)
                ;; Debian's cl-trivial-backtrace (a dependency of fiveam) lists a COPYING
                ;; file it does not ship: not this project's warning.
                (search "\"trivial-backtrace\" \"COPYING\"" text))
      (format *out* "WARNING: ~A: [~A] ~A~%" *phase* (type-of w) text))))
(handler-bind ((warning (lambda (w) (report-warning w))))
  (let ((*standard-output* (make-broadcast-stream)))
    (asdf:load-system "py4cl2-cffi/single-threaded")
    (asdf:load-system "py4cl2-cffi/tests")
    (setf *phase* "reload")
    ;; Not the tests system: ASDF reloads fiveam then (because of that missing COPYING),
    ;; which ECL cannot do.
    (asdf:load-system "py4cl2-cffi/single-threaded"
                      :force '("py4cl2-cffi/config" "py4cl2-cffi" "py4cl2-cffi/single-threaded"))))
(format t "DONE~%")
(finish-output)
(uiop:quit 0)
