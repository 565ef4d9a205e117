;;;; Child: N cycles of (import numpy, compute, pystop, pystart) in one process; prints the time
;;;; per cycle and the growth of the resident set, and fails above the bound it is given.

(load (merge-pathnames "prelude.lisp" *load-truename*))
(in-package :py4cl2-cffi)

(defun rss-kb ()
  (with-open-file (s "/proc/self/status")
    (loop for line = (read-line s nil) while line
          when (and (> (length line) 6) (string= "VmRSS:" line :end2 6))
            return (parse-integer line :start 6 :junk-allowed t))))

(let* ((spec (uiop:getenv "P4T_A"))
       (n (parse-integer (uiop:getenv "P4T_CYCLES")))
       (bound (parse-integer (uiop:getenv "P4T_MAX_GROWTH_KB")))
       (rss0 nil) (start nil))
  (flet ((cycle ()
           (pystart :python spec)
           (import-module "numpy" :as "np")
           (let ((a (pycall "np.arange" 1000d0)))
             (unless (= 499500d0 (pycall "np.sum" a)) (error "numpy gave a wrong sum")))
           (raw-pyexec "soak_garbage = [bytearray(10000) for _ in range(50)]")
           (pystop)
           (unless (equal "soft" (py4cl2-cffi/config::json-get (stop-report) "kind"))
             (error "the stop after numpy was not soft: ~S" (stop-report)))))
    (dotimes (i 10) (cycle))
    (tg:gc :full t)
    (setf rss0 (rss-kb) start (get-internal-real-time))
    (dotimes (i n) (cycle))
    (tg:gc :full t)
    (let* ((secs (/ (- (get-internal-real-time) start) internal-time-units-per-second))
           (growth (- (rss-kb) rss0)))
      (format t "soak: ~D cycles of import numpy, compute, pystop, pystart: ~,2F ms per cycle, RSS ~D KB -> ~D KB (~@D KB)~%"
              n (/ (* 1000 secs) n) rss0 (+ rss0 growth) growth)
      (when (> growth bound)
        (error "RSS grew by ~D KB over ~D cycles (bound ~D KB)" growth n bound)))))
(format t "SOAK-OK~%")
