;;;; Tests: single-threaded system and saved Lisp images.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

;;; The single-threaded system is loaded by the test itself (the test system does not depend
;;; on it), and its entry hook is taken out again afterwards so the rest of the suite runs as
;;; usual.
(defun single-threaded-symbol (name)
  (or (find-symbol name :py4cl2-cffi/single-threaded)
      (error "py4cl2-cffi/single-threaded has no ~A" name)))

(defun load-single-threaded ()
  (handler-bind ((warning #'muffle-warning))
    (let ((*standard-output* (make-broadcast-stream))
          (*error-output* (make-broadcast-stream)))
      (asdf:load-system "py4cl2-cffi/single-threaded")))
  (uiop:symbol-call :py4cl2-cffi/single-threaded :install-entry-hook))

(defun single-threaded-work (i)
  "What each Lisp thread does in single-threaded mode; returns a plist of what it saw."
  (list :idents (loop repeat 25 collect (pycall "threading.get_ident"))
        :eval-ident (raw-pyeval "threading.get_ident()")
        :chain-ident (chain* '("threading.get_ident"))
        :values (list (pycall "str" i) (pyvalue "sys.version_info.major") (pyref #(1 2 3 4 5) i))
        :output (with-python-output (pycall "print" i))
        :error (handler-case (raw-pyeval "1/0") (pyerror (e) (pyerror-type e)))
        :lisp-error (handler-case (pycall (lambda () (error "lisp ~D" i)))
                      (simple-error (e) (princ-to-string e)))
        :remote (pyobject-wrapper-p (with-remote-objects (pycall "int" "5")))
        :printed (let ((*print-pyobject-wrapper-identity* nil))
                   (princ-to-string (with-remote-objects (pycall "int" "5"))))
        :callback-ident (pycall (lambda () (pycall "threading.get_ident")))
        :gil-ident (with-python-gil (pycall "threading.get_ident"))
        :module-ident (funcall (find-symbol "GET-IDENT" "ST-THREADING"))))

(fiveam:test every-entry-point-goes-through-the-entry-hook
  ;; Exported functions that never use Python run directly; every other exported function
  ;; is defined with DEFINE-ENTRY, so the entry hook (py4cl2-cffi/single-threaded) sees it.
  (let ((direct '(python-alive-p python-generation pyobject-wrapper-p pyobject-wrapper-pointer
                  pyobject-wrapper-eq pyobject-wrapper-eq* python-start-error-message)))
    (do-external-symbols (s :py4cl2-cffi)
      (dolist (name (list s (list 'setf s)))
        (when (and (fboundp name)
                   (not (and (symbolp name) (macro-function name)))
                   (not (typep (fdefinition name) 'generic-function))
                   (not (member name direct :test #'equal)))
          (fiveam:is (member name py4cl2-cffi::*entry-points* :test #'equal)
                     "~S is exported, uses Python and is not an entry point" name)))))
  (pystart)
  (let* ((seen '())
         (results
           (let ((py4cl2-cffi::*entry-hook*
                   (lambda (name thunk)
                     (push name seen)
                     (funcall thunk))))
             (list (pycall "str" 12) (raw-pyeval "6 * 7") (pyvalue "sys.version_info.major")
                   (setf (pyvalue "entry_hook_test") 5)
                   (with-python-gil (pycall "len" "abc"))
                   (pyeval "entry_hook_test + 1")
                   ;; The thunk runs with the hook unbound: entries nested in the call (here
                   ;; in a Lisp function Python calls) run directly.
                   (pycall (lambda () (if py4cl2-cffi::*entry-hook* "hooked" "direct")))))))
    (fiveam:is (equal '("12" 42 3 5 3 6 "direct") results) "~S" results)
    ;; (pycall "str" 12) is PYCALL, or %PYCALL where its compiler macro was applied (SBCL).
    (fiveam:is (intersection '(pycall py4cl2-cffi::%pycall) seen) "pycall: ~S" seen)
    (dolist (name '(raw-pyeval pyvalue (setf pyvalue) py4cl2-cffi::call-with-python-gil pyeval))
      (fiveam:is (member name seen :test #'equal) "~S went through the hook: ~S" name seen))))

(fiveam:test single-threaded-calls-run-on-one-python-thread
  (load-single-threaded)
  (let ((switch (single-threaded-symbol "*SINGLE-THREADED*")))
    ;; Python is started and threading imported from this thread, with the mode off: CPython
    ;; takes the thread that imports threading first for its main thread, and the rest of the
    ;; suite stops Python from this thread (the wait at finalisation would never end otherwise).
    (setf (symbol-value switch) nil)
    (import-module "threading")
    (setf (symbol-value switch) t)
    (unwind-protect
         (progn
           (let ((*defpymodule-silent-p* t))
             (eval '(defpymodule "threading" nil :lisp-package "ST-THREADING")))
           (let* ((n 4)
                  (results (make-array n :initial-element nil))
                  (threads (loop for i below n
                                 collect (let ((i i))
                                           (bt:make-thread
                                            (lambda ()
                                              (setf (aref results i)
                                                    (handler-case (single-threaded-work i)
                                                      (serious-condition (c)
                                                        (list :failed (princ-to-string c))))))
                                            :name (format nil "st-test-~D" i)))))
                  (main (single-threaded-work 0))
                  (direct (progv (list switch) '(nil) (pycall "threading.get_ident"))))
             (mapc #'bt:join-thread threads)
             (let* ((all (cons main (coerce results 'list)))
                    (python-ident (first (getf main :idents)))
                    (idents (loop for r in all
                                  append (append (getf r :idents)
                                                 (list (getf r :eval-ident) (getf r :chain-ident)
                                                       (getf r :callback-ident) (getf r :gil-ident)
                                                       (getf r :module-ident))))))
               (fiveam:is (notany (lambda (r) (getf r :failed)) results)
                          "every thread finished: ~S" (remove nil (map 'list (lambda (r) (getf r :failed)) results)))
               (fiveam:is (= (* 5 30) (length idents)))
               (fiveam:is (every (lambda (x) (eql x python-ident)) idents)
                          "every call ran on one Python thread: ~S" (remove-duplicates idents))
               (fiveam:is (not (eql direct python-ident))
                          "with *single-threaded* NIL the test thread calls Python itself")
               (fiveam:is (typep (uiop:symbol-call :py4cl2-cffi/single-threaded :python-thread)
                                 'bt:thread))
               (loop for r in (coerce results 'list) for i from 0
                     do (fiveam:is (equalp (list (princ-to-string i) 3 (1+ i)) (getf r :values)))
                        (fiveam:is (equal (format nil "~D~%" i) (getf r :output))
                                   "Python's output reaches the calling thread's stream")
                        (fiveam:is (equal "ZeroDivisionError" (getf r :error)))
                        (fiveam:is (equal (format nil "lisp ~D" i) (getf r :lisp-error))
                                   "a Lisp error in a callback comes back as itself: ~S" (getf r :lisp-error))
                        (fiveam:is-true (getf r :remote) "with-remote-objects is forwarded")
                        (fiveam:is (equal "5" (getf r :printed)))))))
      (setf (symbol-value switch) nil)
      (uiop:symbol-call :py4cl2-cffi/single-threaded :uninstall-entry-hook)
      (uiop:symbol-call :py4cl2-cffi/single-threaded :stop-python-thread)))
  (fiveam:is (equal "after" (pycall "str" "after")) "direct calls again after the test"))

(fiveam:test single-threaded-forwards-warnings
  (load-single-threaded)
  (let ((switch (single-threaded-symbol "*SINGLE-THREADED*"))
        (seen '()))
    (setf (symbol-value switch) t)
    (unwind-protect
         (handler-bind ((warning (lambda (w) (push (princ-to-string w) seen) (muffle-warning w))))
           (fiveam:is (= 7 (uiop:symbol-call :py4cl2-cffi/single-threaded :call-in-python-thread
                                             (lambda () (warn "from the python thread") 7))))
           (fiveam:is (equal '("from the python thread") seen)))
      (setf (symbol-value switch) nil)
      (uiop:symbol-call :py4cl2-cffi/single-threaded :uninstall-entry-hook)
      (uiop:symbol-call :py4cl2-cffi/single-threaded :stop-python-thread))))

;;; Saved images: a child SBCL loads py4cl2-cffi, uses Python, saves an executable image; the
;;; image, run as a new process, must start Python again and reject wrappers from before.
(fiveam:test saved-image-starts-python-again
  #-sbcl
  (skip-test "saving a Lisp image is tested on SBCL only (~A: no save-lisp-and-die here)"
             (lisp-implementation-type))
  #+sbcl
  (let ((dir (uiop:ensure-directory-pathname
              (merge-pathnames (format nil "py4cl2-cffi-image-~D-~D" (get-universal-time) (random 1000000 (make-random-state t)))
                               (uiop:temporary-directory)))))
    (ensure-directories-exist dir)
    (unwind-protect
         (dolist (mode '("running" "stopped" "single-threaded"))
           (let ((image (namestring (merge-pathnames (format nil "image-~A" mode) dir))))
             (multiple-value-bind (code output)
                 (run-child "save-image.lisp" (format nil "P4T_IMAGE=~A" image) (format nil "P4T_MODE=~A" mode))
               (fiveam:is (and (eql 0 code) (probe-file image))
                          "saving (~A): exit code ~A:~%~A" mode code output))
             (when (probe-file image)
               (multiple-value-bind (code output) (run-program-with-env (list image) '())
                 (fiveam:is (eql 0 code) "the image (~A) exited with ~A:~%~A" mode code output)
                 (fiveam:is (search "IMAGE-OK" output) "image output (~A):~%~A" mode output)
                 (fiveam:is (search "old wrapper: stale" output))
                 (when (string= mode "single-threaded")
                   (fiveam:is (search "one Python thread" output))))
               (delete-file image))))
      (uiop:delete-directory-tree dir :validate t :if-does-not-exist :ignore))))
