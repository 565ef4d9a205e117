;;;; py4cl2-cffi restart benchmark (SBCL):  sbcl --script bench/lisp/restart.lisp
;;;; 1. 100 version switches without numpy (pystart of one venv, a little work, pystop), round
;;;;    robin over the venvs of tools/make-venvs.sh; after each stop the libpython of that
;;;;    version must be gone from /proc/self/maps. Prints ms per switch and the RSS growth.
;;;; 2. 200 soft cycles of one interpreter with numpy (import numpy, compute, pystop, pystart):
;;;;    ms per cycle and the RSS growth.
;;;; The venvs come from $PY4CL2_CFFI_VENVS, else ~/.cache/py4cl2-cffi/venvs/<X.Y>.
;;;; Results: target/bench/restart-sbcl-all.csv (the python column says which interpreters).

(load (merge-pathnames "load.lisp" *load-truename*))

(defpackage :py4cl2-cffi/bench-restart (:use :cl :py4cl2-cffi :py4cl2-cffi/bench-common))
(in-package :py4cl2-cffi/bench-restart)

(defun venv-root ()
  (let ((env (uiop:getenv "PY4CL2_CFFI_VENVS")))
    (if (and env (plusp (length env)))
        (uiop:ensure-directory-pathname env)
        (merge-pathnames ".cache/py4cl2-cffi/venvs/" (user-homedir-pathname)))))

(defun venvs ()
  (loop for xy in '("3.8" "3.9" "3.10" "3.11" "3.12" "3.13")
        for dir = (merge-pathnames (format nil "~A/" xy) (venv-root))
        when (probe-file (merge-pathnames ".complete" dir)) collect (cons xy (namestring dir))))

(defun mapped-p (needle)
  "Whether a file whose path contains NEEDLE is mapped in this process."
  (with-open-file (s "/proc/self/maps")
    (loop for line = (read-line s nil) while line thereis (search needle line))))

(defun rss-kb ()
  (with-open-file (s "/proc/self/status")
    (loop for line = (read-line s nil) while line
          when (and (> (length line) 6) (string= "VmRSS:" line :end2 6))
            return (parse-integer line :start 6 :junk-allowed t))))

(let ((venvs (venvs)))
  (if (< (length venvs) 2)
      (format t "restart: SKIPPED the version switches: fewer than two venvs under ~A~%" (venv-root))
      (let ((n 100) (rss0 nil) (t0 nil))
        (flet ((switch (i)
                 (destructuring-bind (xy . dir) (nth (mod i (length venvs)) venvs)
                   (pystart :python dir)
                   (unless (equal "6" (pycall "str" (pycall "sum" #(1 2 3))))
                     (error "wrong result on ~A" xy))
                   (pycall "json.dumps" '(1 2))
                   (pystop)
                   (unless (equal "unloaded" (cdr (assoc "kind" (python-stop-report) :test #'equal)))
                     (error "the stop of ~A did not unload: ~S" xy (python-stop-report)))
                   (when (mapped-p (format nil "libpython~A." xy))
                     (error "libpython~A is still mapped after its stop" xy)))))
          (dotimes (i (length venvs)) (switch i))
          (setf rss0 (rss-kb) t0 (now))
          (dotimes (i n) (switch i))
          (let ((ms (/ (* 1000 (- (now) t0)) n)) (rss (- (rss-kb) rss0))
                (python (format nil "~A-~A" (car (first venvs)) (car (first (last venvs))))))
            (format t "restart: ~D version switches over ~{~A~^, ~}, each unloaded (checked in /proc/self/maps)~%"
                    n (mapcar #'car venvs))
            (record "restart: one version switch" "ms" ms :python python)
            (record "restart: RSS growth over the switches" "KB" rss :python python))))))

(let ((venv (or (cdr (assoc "3.12" (venvs) :test #'equal)) (cdr (first (last (venvs)))))))
  (when venv
    (let ((n 200) (rss0 nil) (t0 nil))
      (flet ((cycle ()
               (pystart :python venv)
               (import-module "numpy" :as "np")
               (pycall "np.sum" (pycall "np.arange" 1000d0))
               (pystop)))
        ;; The process is pinned from here on: the soft cycles come last.
        (dotimes (i 5) (cycle))
        (setf rss0 (rss-kb) t0 (now))
        (dotimes (i n) (cycle))
        (let ((ms (/ (* 1000 (- (now) t0)) n)) (rss (- (rss-kb) rss0))
              (python (car (rassoc venv (venvs) :test #'equal))))
          (format t "restart: ~D soft cycles (import numpy, compute, pystop, pystart) on ~A~%" n venv)
          (record "restart: one soft cycle with numpy" "ms" ms :python python)
          (record "restart: RSS growth over the cycles" "KB" rss :python python))))))

(write-results "restart" :python "all")
