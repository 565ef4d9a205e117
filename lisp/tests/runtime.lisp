;;;; Tests: floating-point traps, the GIL, finalizers and the decref queue, threads.

(in-package :py4cl2-cffi/tests)
(fiveam:in-suite :py4cl2-cffi)

(fiveam:test gil-held-over-a-block
  (fiveam:is (= 0 (py4cl2-cffi::%gil-depth)))
  (with-python-gil
    (fiveam:is (= 1 (py4cl2-cffi::%gil-depth)))
    (with-python-gil
      (fiveam:is (= 2 (py4cl2-cffi::%gil-depth)))
      (fiveam:is (equal "5" (pycall "str" 5))))
    (fiveam:signals pyerror (raw-pyeval "1/0"))
    (fiveam:is (= 1 (py4cl2-cffi::%gil-depth))))
  (fiveam:is (= 0 (py4cl2-cffi::%gil-depth)))
  (ignore-errors (with-python-gil (error "leave early")))
  (fiveam:is (= 0 (py4cl2-cffi::%gil-depth)) "released on a non-local exit"))

;;; Python 3.14+ checks the machine stack pointer against the C stack bounds of each thread
;;; state. SBCL's main thread runs on a control stack SBCL maps itself, outside what pthread
;;; reports: until the shim told Python the real bounds, every deallocation there was deferred
;;; to a list that was never emptied, so nothing dropped on that thread was freed.
(defun dropped-objects-freed-p ()
  "T if an object dropped inside Python on this thread is freed at once."
  (raw-pyexec "import weakref as _w
class _Dropped: pass
_o = _Dropped(); _dropped_ref = _w.ref(_o); del _o")
  (prog1 (eq t (raw-pyeval "_dropped_ref() is None"))
    (raw-pyexec "del _dropped_ref, _Dropped")))

(fiveam:test dropped-objects-are-freed-on-every-thread
  (fiveam:is (dropped-objects-freed-p) "on the calling (main) thread, Python ~A"
             py4cl2-cffi/config:*python-version*)
  (let ((result :none))
    (bt:join-thread (bt:make-thread (lambda () (setf result (dropped-objects-freed-p)))
                                    :name "py4cl2-cffi test thread"))
    (fiveam:is (eq t result) "on a new Lisp thread: ~S" result)))

(fiveam:test finalizers-release-objects
  (raw-pyexec "import weakref, gc
class Tracked: pass
tracked_refs = []
def make_tracked():
    o = Tracked()
    tracked_refs.append(weakref.ref(o))
    return o
def alive_count(): return sum(1 for r in tracked_refs if r() is not None)")
  (dotimes (i 200) (pycall "make_tracked"))
  (tg:gc :full t)
  (sleep 0.2)
  (tg:gc :full t)
  (pycall "len" "drain")
  (fiveam:is (< (pycall "alive_count") 20) "the finalizers released most wrappers: ~D alive"
             (pycall "alive_count"))
  (let ((keep (pycall "make_tracked")))
    (tg:gc :full t)
    (pycall "len" "drain")
    (fiveam:is (pyobject-wrapper-p keep))
    (fiveam:is (equal "Tracked" (pycall "lambda o: type(o).__name__" keep)) "a live wrapper stays valid")))

(fiveam:test calls-from-several-threads
  (let* ((n 4) (k 2000)
         (results (make-array n :initial-element nil))
         (threads (loop for i below n
                        collect (let ((i i))
                                  (bt:make-thread
                                   (lambda ()
                                     (setf (aref results i)
                                           (loop for j below k
                                                 always (and (equal (format nil "~D" (+ j (* i k))) (pycall "str" (+ j (* i k))))
                                                             (= (+ j 1) (pycall "len" (make-string (1+ j) :initial-element #\a)))))))
                                   :name (format nil "py-thread-~D" i))))))
    (mapc #'bt:join-thread threads)
    (fiveam:is (every #'identity results) "every thread got right answers: ~S" results))
  (let ((thread-output
          (bt:join-thread (bt:make-thread (lambda () (with-python-output (pycall "print" "from thread")))))))
    (fiveam:is (equal (format nil "from thread~%") thread-output)))
  (fiveam:is (typep (bt:join-thread (bt:make-thread (lambda () (handler-case (raw-pyeval "1/0")
                                                                   (pyerror (e) e)))))
                    'pyerror)
             "an error in another thread is a pyerror there"))

(fiveam:test pygc-compatibility
  (fiveam:is (= 3 (with-pygc (enable-pygc) (disable-pygc) (pycall "len" "abc"))))
  (fiveam:is (integerp *pygc-threshold*))
  (fiveam:is (member :with-python-output *internal-features*)))

(fiveam:test export-function-and-generator
  (export-function (lambda (a b) (* a b)) "lisp_mul")
  (fiveam:is (= 42 (raw-pyeval "lisp_mul(6, 7)")))
  (let ((k 0))
    (let ((g (pygenerator (lambda () (incf k)) 4)))
      (fiveam:is (equal '(1 2 3) (coerce (pycall "list" g) 'list))))))
