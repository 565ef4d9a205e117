;;;; Tests in fresh Lisp processes: a FIFO as config file is refused, *python-executable-path* set before loading selects, asdf:test-system signals on failure.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(defun run-lisp-child (script seconds &rest env)
  "Runs lisp/tests/scripts/SCRIPT in a fresh process of this Lisp implementation (at most
SECONDS, through timeout(1)) with ENV (\"NAME=value\" strings) added. Returns its exit code
(124 when it had to be stopped) and its output."
  (let ((file (namestring (merge-pathnames (format nil "tests/scripts/~A" script)
                                           (asdf:system-source-directory "py4cl2-cffi")))))
    (run-program-with-env
     (list* "timeout" (princ-to-string seconds)
            #+sbcl (list "sbcl" "--script" file)
            #+ecl (list "ecl" "--norc" "--shell" file)
            #-(or sbcl ecl) (error "no child command for this Lisp"))
     env)))

(defun output-line (prefix output)
  "The rest of the first line of OUTPUT that starts with PREFIX, or NIL."
  (with-input-from-string (s output)
    (loop for line = (read-line s nil)
          while line
          when (and (>= (length line) (length prefix)) (string= prefix line :end2 (length prefix)))
            return (subseq line (length prefix)))))

(fiveam:test a-fifo-config-file-is-refused
  ;; Reading a FIFO blocks until something writes to it: print-configuration and pystart
  ;; hung forever. Both must fail at once, saying what is wrong.
  (let* ((dir (uiop:ensure-directory-pathname
               (format nil "~Apy4cl2-cffi-fifo-~D-~D/" (uiop:temporary-directory) (cffi:foreign-funcall "getpid" :int) (random 100000))))
         (fifo (namestring (merge-pathnames "config.toml" dir))))
    (ensure-directories-exist dir)
    (unwind-protect
         (progn
           (uiop:run-program (list "mkfifo" fifo))
           (let ((start (get-internal-real-time)))
             (multiple-value-bind (code out)
                 (run-lisp-child "fifo-config.lisp" 300 (format nil "PY4CL2_CFFI_CONFIG=~A" fifo))
               (let ((seconds (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
                 (format t "~&  fifo config: child finished in ~,1F s (exit ~A)~%" seconds code)
                 (fiveam:is (/= 124 code) "the child hung: ~A" out)
                 (dolist (what '("PRINT-CONFIGURATION: " "PYSTART: "))
                   (let ((line (output-line what out)))
                     (fiveam:is (and line (search "is a FIFO (named pipe), not a regular file" line)
                                     (search fifo line))
                                "~Aexpected a FIFO error: ~A" what out)))
                 (fiveam:is (output-line "DONE" out) "~A" out)))))
      (uiop:delete-directory-tree dir :validate t :if-does-not-exist :ignore))))

(fiveam:test python-executable-path-set-before-loading-selects
  ;; The original's documented venv recipe: load py4cl2-cffi/config, set
  ;; *python-executable-path*, load py4cl2-cffi, pystart. The child chooses the base
  ;; installation of this row's venv, which the config file does not name.
  (python-start-if-not-alive)
  (let* ((prefix (pyeval "__import__('sys').prefix"))
         (base (pyeval "__import__('sys').base_prefix"))
         (python (pyeval "__import__('os').path.join(__import__('sys').base_prefix, 'bin', 'python3')")))
    (if (equal (truename prefix) (truename base))
        (skip-test "this interpreter is not a venv (~A): nothing else to choose" prefix)
        (multiple-value-bind (code out)
            (run-lisp-child "executable-path.lisp" 300 (format nil "P4T_PYTHON=~A" python))
          (fiveam:is (eql 0 code) "~A" out)
          (let ((got (output-line "PREFIX: " out)))
            (fiveam:is (and got (equal (truename got) (truename base)))
                       "started ~A, wanted ~A: ~A" got base out))
          (fiveam:is (search "*python-executable-path* was set to" (or (output-line "chosen by:" out) ""))
                     "print-configuration says why: ~A" out)))))

(fiveam:test test-system-signals-when-a-test-fails
  (multiple-value-bind (code out) (run-lisp-child "test-op.lisp" 600)
    (fiveam:is (eql 0 code) "~A" out)
    (fiveam:is (equal "returned" (output-line "PASSING: " out)) "~A" out)
    (fiveam:is (search "signalled" (or (output-line "FAILING: " out) "")) "~A" out)))
