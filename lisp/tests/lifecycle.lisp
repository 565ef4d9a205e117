;;;; Tests: starting, stopping, autostart, init codes, version info, configuration.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(fiveam:test start-and-alive
  (pystart)
  (fiveam:is (python-alive-p))
  (fiveam:is (null (pystart)) "a second pystart does nothing and returns NIL")
  (fiveam:is (equal 42 (pycall "int" "42"))))

(fiveam:test version-info
  (let ((v (pyversion-info)))
    (fiveam:is (= 3 (first v)))
    ;; No upper bound: 3.14, 3.15 and newer minors are run too.
    (fiveam:is (<= 8 (second v)) "minor version ~D is below the oldest supported (8)" (second v))
    (fiveam:is (every #'integerp (subseq v 0 3)))
    (fiveam:is (equal (format nil "~D.~D" (first v) (second v))
                      (raw-pyeval "'%d.%d' % __import__('sys').version_info[:2]")))))

(fiveam:test stop-then-autostart
  (pystart)
  (fiveam:is (eq t (pystop)))
  (fiveam:is (not (python-alive-p)))
  (fiveam:is (null (pystop)) "pystop when stopped returns NIL")
  ;; First use starts Python again.
  (fiveam:is (equal "7" (pycall "str" 7)))
  (fiveam:is (python-alive-p))
  (fiveam:is (null (python-start-if-not-alive))))

(fiveam:test additional-init-codes
  (let ((*additional-init-codes* (list "init_marker = 'ran'" "init_marker2 = init_marker * 2")))
    (pystop)
    (pystart)
    (fiveam:is (equal "ran" (pyvalue "init_marker")))
    (fiveam:is (equal "ranran" (pyvalue "init_marker2"))))
  (pystop)
  (pystart)
  (fiveam:signals pyerror (pyvalue "init_marker") "a fresh start has no old names"))

(fiveam:test bad-interpreter-spec
  (pystop)
  (let ((c (handler-case (progn (pystart :python "2.1") nil)
             (python-start-error (e) e))))
    (fiveam:is (typep c 'python-start-error))
    (fiveam:is (plusp (length (princ-to-string c)))))
  (fiveam:is (not (python-alive-p)))
  (pystart)
  (fiveam:is (python-alive-p)))

(defun write-fake-free-threaded-python (dir)
  "Writes DIR/bin/python3, a shell script answering py4cl2-cffi's interpreter query like a
free-threaded CPython 3.14 (Py_GIL_DISABLED, abiflags t), and an empty libpython beside it.
Returns the script's path as a string."
  (let* ((exe (merge-pathnames "bin/python3" dir))
         (lib (merge-pathnames "lib/libpython3.14t.so.1.0" dir))
         (prefix (string-right-trim "/" (namestring dir))))
    (ensure-directories-exist exe)
    (ensure-directories-exist lib)
    (with-open-file (s lib :direction :output :if-exists :supersede) (write-string "" s))
    (with-open-file (s exe :direction :output :if-exists :supersede)
      (format s "#!/bin/sh~%cat <<'JSON'~%{\"version_info\": [3, 14, 0, \"final\", 0], ~
\"version_string\": \"3.14.0 free-threading build (fake)\", \"implementation\": \"cpython\", ~
\"executable\": \"~A\", \"prefix\": \"~A\", \"base_prefix\": \"~A\", \"abiflags\": \"t\", ~
\"platform\": \"linux\", \"problems\": [], \"gil_disabled\": true, \"py_enable_shared\": true, ~
\"libpython_candidates\": [\"~A\"], \"site_packages\": []}~%JSON~%"
              (namestring exe) prefix prefix (namestring lib)))
    (uiop:run-program (list "chmod" "755" (namestring exe)))
    (namestring exe)))

(fiveam:test free-threaded-builds-are-refused
  (let* ((dir (uiop:ensure-directory-pathname
               (format nil "~A/p4t-free-threaded-~D" (string-right-trim "/" (namestring (uiop:temporary-directory)))
                       (random 1000000000 (make-random-state t)))))
         (exe (write-fake-free-threaded-python dir)))
    (unwind-protect
         (progn
           (pystop)
           (let ((c (handler-case (progn (pystart :python exe) nil)
                      (python-start-error (e) e))))
             (fiveam:is (typep c 'python-start-error) "pystart of a free-threaded build was not refused")
             (fiveam:is (search "free-threaded" (princ-to-string c)) "the reason is given: ~A" c))
           (fiveam:is (not (python-alive-p))))
      (uiop:delete-directory-tree dir :validate t :if-does-not-exist :ignore)
      (pystart))
    (fiveam:is (python-alive-p) "the configured Python starts again afterwards")))

(fiveam:test stop-refused-inside-gil
  (pystart)
  (fiveam:signals python-stop-error (with-python-gil (pystop)))
  (fiveam:is (python-alive-p))
  (fiveam:is (= 2 (pycall "len" "ab"))))

(fiveam:test configuration
  (fiveam:is (stringp py4cl2-cffi/config:*python-executable-path*))
  (fiveam:is (probe-file py4cl2-cffi/config:*python-executable-path*))
  (fiveam:is (consp py4cl2-cffi/config:*python-ldflags*))
  (fiveam:is (some (lambda (f) (search "-lpython3" f)) py4cl2-cffi/config:*python-ldflags*))
  (fiveam:is (consp py4cl2-cffi/config:*python-includes*))
  (fiveam:is (stringp py4cl2-cffi/config:*python-site-packages-path*))
  (let ((text (with-output-to-string (s) (py4cl2-cffi/config:print-configuration s))))
    (fiveam:is (search "version:" text))
    (fiveam:is (search "libpython" text)))
  (fiveam:signals error (py4cl2-cffi/config:python-facts "9.99")))

(fiveam:test configuration-matches-running-python
  (pystart)
  (let ((v (pyversion-info)))
    (fiveam:is (eql 0 (search (format nil "~D.~D." (first v) (second v))
                              py4cl2-cffi/config:*python-version*)))))

(fiveam:test configuration-describes-the-interpreter-that-started
  ;; Before: py4cl2-cffi/config resolved the interpreter on its own at load time, so its
  ;; variables could name another Python than the one PYSTART started.
  (pystart)
  (let ((v (pyversion-info)))
    (fiveam:is (equal (format nil "~{~D~^.~}" (subseq v 0 3)) py4cl2-cffi/config:*python-version*)))
  (fiveam:is (equal (namestring (truename (pyvalue "sys.executable")))
                    (namestring (truename py4cl2-cffi/config:*python-executable-path*)))))
