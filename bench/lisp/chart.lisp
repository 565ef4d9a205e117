;;;; Draws docs/img/bench.png from the CSVs of the benchmarks in target/bench/, with matplotlib
;;;; (Agg) called through py4cl2-cffi itself:  sbcl --script bench/lisp/chart.lisp
;;;; (run it with an interpreter that has matplotlib, e.g. the 3.12 venv of tools/make-venvs.sh).
;;;; For every benchmark (its first row per Lisp and Python, the one with the main baseline):
;;;;   top: speed relative to that baseline (baseline time / Lisp time, or Lisp rate / baseline
;;;;        rate: higher is better), one bar per Lisp and Python version, with the target when
;;;;        the target is a ratio;
;;;;   bottom: how far each target is met (got / limit for ">=", limit / got for "<="; 1 is just
;;;;        met), for every benchmark with a target.

(load (merge-pathnames "load.lisp" *load-truename*))

(defpackage :py4cl2-cffi/bench-chart (:use :cl :py4cl2-cffi :py4cl2-cffi/bench-common))
(in-package :py4cl2-cffi/bench-chart)

(defun split-csv-line (line)
  "The fields of one CSV LINE (double-quoted fields with \"\" for a quote)."
  (let ((fields '()) (field (make-string-output-stream)) (quoted nil) (i 0) (n (length line)))
    (loop while (< i n)
          do (let ((c (char line i)))
               (cond ((and quoted (char= c #\") (< (1+ i) n) (char= (char line (1+ i)) #\"))
                      (write-char #\" field) (incf i))
                     ((char= c #\") (setf quoted (not quoted)))
                     ((and (not quoted) (char= c #\,))
                      (push (get-output-stream-string field) fields))
                     (t (write-char c field))))
             (incf i))
    (push (get-output-stream-string field) fields)
    (nreverse fields)))

(defun number-or-nil (s)
  (and (plusp (length s))
       (let ((*read-default-float-format* 'double-float))
         (let ((x (ignore-errors (read-from-string s))))
           (and (realp x) (float x 1d0))))))

(defun read-rows ()
  "Every row of target/bench/*.csv as a plist, in file order."
  (loop for file in (sort (directory (repository-file "target/bench/*.csv")) #'string< :key #'namestring)
        nconc (with-open-file (s file)
                (read-line s nil)
                (loop for line = (read-line s nil) while line
                      for f = (split-csv-line line)
                      when (= (length f) 10)
                        collect (destructuring-bind (lisp python benchmark unit value bname bvalue ratio target met) f
                                  (declare (ignore ratio met))
                                  (list :lisp lisp :python python :benchmark benchmark :unit unit
                                        :value (number-or-nil value) :baseline bname
                                        :baseline-value (number-or-nil bvalue) :target target))))))

(defun primary-rows (rows)
  "The first row of each (lisp, python, benchmark)."
  (let ((seen (make-hash-table :test 'equal)))
    (remove-if-not (lambda (r)
                     (let ((key (list (getf r :lisp) (getf r :python) (getf r :benchmark))))
                       (unless (gethash key seen) (setf (gethash key seen) t))))
                   rows)))

(defun rate-unit-p (unit) (search "/s" unit))

(defun speed-ratio (r)
  "Baseline time / Lisp time, or Lisp rate / baseline rate; NIL without a baseline."
  (let ((v (getf r :value)) (b (getf r :baseline-value)))
    (and v b (plusp v) (plusp b)
         (if (rate-unit-p (getf r :unit)) (/ v b) (/ b v)))))

(defun parse-target (r)
  "(on op limit) from \"ratio >= 0.33\", or NIL."
  (let ((f (with-input-from-string (s (getf r :target))
             (loop for w = (read-preserving-whitespace s nil) while w collect w))))
    (when (= (length f) 3)
      (list (string-downcase (symbol-name (first f))) (symbol-name (second f)) (float (third f) 1d0)))))

(defun speed-target (r)
  "The target in SPEED-RATIO's terms, when it is on the ratio."
  (let ((tg (parse-target r)))
    (when (and tg (string= (first tg) "ratio"))
      (let ((limit (third tg)))
        ;; A time ratio stated as Lisp / baseline (<=) is the inverse of a speed.
        (if (and (string= (second tg) "<=") (not (rate-unit-p (getf r :unit))))
            (/ 1 limit)
            limit)))))

(defun margin (r)
  "got / limit for >=, limit / got for <=; NIL without a target."
  (let ((tg (parse-target r)))
    (when tg
      (destructuring-bind (on op limit) tg
        (let ((got (if (string= on "ratio")
                       (let ((v (getf r :value)) (b (getf r :baseline-value)))
                         ;; the ratio as recorded: recompute from the speed and the direction
                         (if (rate-unit-p (getf r :unit))
                             (/ v b)
                             (if (string= op ">=") (/ b v) (/ v b))))
                       (getf r :value))))
          (and got (plusp got)
               (if (string= op ">=") (/ got limit) (/ limit got))))))))

(defun doubles (list)
  "LIST as a simple-vector of double-floats: a Python list of float (matplotlib keeps what it
is given, and a Lisp numeric array is only lent for the call)."
  (coerce (mapcar (lambda (x) (float x 1d0)) list) 'simple-vector))

(defun draw (rows file)
  "Draw ROWS (those with a baseline or a target; the others have nothing to show) into FILE."
  (let* ((rows (remove-if-not (lambda (r) (or (speed-ratio r) (margin r))) rows))
         (series (remove-duplicates (mapcar (lambda (r) (list (getf r :lisp) (getf r :python))) rows)
                                    :test #'equal :from-end t))
         (series (sort (copy-list series)
                       (lambda (a b)
                         (flet ((key (s) (list (if (string= (first s) "sbcl") 0 1)
                                               (parse-integer (second s) :start 2 :junk-allowed t))))
                           (let ((ka (key a)) (kb (key b)))
                             (or (< (first ka) (first kb))
                                 (and (= (first ka) (first kb)) (< (or (second ka) 0) (or (second kb) 0))))))))))
    (pycall "matplotlib.use" "Agg")
    (import-module "matplotlib.pyplot" :as "plt")
    (let ((fig (with-remote-objects (pycall "plt.figure" :figsize '(13 10) :dpi 100)))
          (width (/ 0.8 (max 1 (length series)))))
      (flet ((panel (index title ylabel value-fn target-fn line-at)
               (let ((names (remove-duplicates
                             (mapcar (lambda (r) (getf r :benchmark))
                                     (remove-if-not value-fn rows))
                             :test #'string= :from-end t)))
                 (pycall "plt.subplot" 2 1 index)
                 (loop for s in series
                       for k from 0
                       for xs = '() for ys = '()
                       do (loop for name in names
                                for i from 0
                                for r = (find-if (lambda (r) (and (string= (getf r :benchmark) name)
                                                                  (string= (getf r :lisp) (first s))
                                                                  (string= (getf r :python) (second s))))
                                                 rows)
                                for y = (and r (funcall value-fn r))
                                when y do (push (+ i (* (- k (/ (1- (length series)) 2)) width)) xs)
                                          (push y ys))
                          (when xs
                            (pycall "plt.bar" (doubles (reverse xs)) (doubles (reverse ys)) width
                                    :label (format nil "~A, Python ~A" (first s) (second s)))))
                 (let ((tx '()) (ty '()))
                   (loop for name in names for i from 0
                         for r = (find-if (lambda (r) (string= (getf r :benchmark) name)) rows)
                         for y = (and target-fn r (funcall target-fn r))
                         when y do (push i tx) (push y ty))
                   (when tx
                     (pycall "plt.hlines" (doubles ty) (doubles (mapcar (lambda (x) (- x 0.45)) tx))
                             (doubles (mapcar (lambda (x) (+ x 0.45)) tx))
                             :colors "black" :linestyles "dashed" :label "target")))
                 (when line-at (pycall "plt.axhline" line-at :color "grey" :linewidth 0.8))
                 (pycall "plt.yscale" "log")
                 (pycall "plt.xticks" (doubles (loop for i below (length names) collect i))
                         (coerce names 'simple-vector) :rotation 20 :ha "right" :fontsize 8)
                 (pycall "plt.ylabel" ylabel)
                 (pycall "plt.title" title :fontsize 10)
                 (pycall "plt.grid" t :axis "y" :alpha 0.3)
                 (pycall "plt.legend" :fontsize 7))))
        (panel 1 "py4cl2-cffi: speed relative to the baseline measured in the same run (higher is better)"
               "baseline time / Lisp time" #'speed-ratio #'speed-target 1d0)
        (panel 2 "How far each target is met (>= 1: met)" "margin over the target" #'margin nil 1d0))
      (pycall "plt.tight_layout")
      (ensure-directories-exist file)
      (pycall "plt.savefig" (namestring file))
      (pycall "plt.close" fig))))

(defun main ()
  (pystart)
  (let ((rows (primary-rows (read-rows)))
        (file (repository-file "docs/img/bench.png")))
    (if (null rows)
        (format t "chart: SKIPPED: no CSV under target/bench/ (run the benchmarks first)~%")
        (handler-case (progn (draw rows file)
                             (format t "chart: wrote docs/img/bench.png from ~D figures~%" (length rows)))
          (pyerror (e)
            (format t "chart: SKIPPED: matplotlib failed in this Python: ~A~%" (pyerror-message e)))))))

(main)
(uiop:quit 0)
