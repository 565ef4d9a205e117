;;;; Calling Python: name cells, pycall (one shim crossing), pyvalue, pymethod, attributes.

(in-package :py4cl2-cffi)

(defconstant +frame-slots+ 16
  "Packed argument slots in a call frame (on the stack); more arguments use the heap.")
(defconstant +scratch-chars+ 256
  "UTF-32 characters of the frame's scratch: input strings are copied there before the call,
and a str result is copied there after it.")
(defconstant +frame-bytes+ (+ (* (1+ +frame-slots+) +value-size+) (* 4 +scratch-chars+)))

;;; The call frame of %PYCALL. SBCL puts it on the stack. ECL's CFFI would malloc and free it
;;; around every call (with a GC'd pointer object each time: about 180 ns of a call), so there
;;; each thread keeps one frame in a pthread key: a call takes it out for its duration (a call
;;; nested inside it, from a Lisp callback or an interrupt, finds none and mallocs its own),
;;; and puts it back; the key's destructor frees it when the thread ends.
#+ecl
(ffi:clines "
#include <pthread.h>
#include <stdlib.h>
static pthread_key_t p4l_frame_key;
static pthread_once_t p4l_frame_once = PTHREAD_ONCE_INIT;
static void p4l_frame_key_make(void) { pthread_key_create(&p4l_frame_key, free); }")

#+ecl
(defun take-call-frame ()
  "This thread's call frame (+FRAME-BYTES+), taken out of its key, or a new one."
  (ffi:c-inline (+frame-bytes+) (:int64-t) :pointer-void
                "({ void *f; pthread_once(&p4l_frame_once, p4l_frame_key_make);
                    f = pthread_getspecific(p4l_frame_key);
                    if (f) pthread_setspecific(p4l_frame_key, NULL); else f = malloc((size_t)#0);
                    if (!f) FEerror(\"py4cl2-cffi: out of memory for a call frame\", 0);
                    f; })"
                :one-liner t :side-effects t))

#+ecl
(defun give-back-call-frame (frame)
  "Puts FRAME back as this thread's call frame, or frees it when the thread has one again."
  (ffi:c-inline (frame) (:pointer-void) :void
                "{ void *f = #0; if (pthread_getspecific(p4l_frame_key)) free(f);
                   else pthread_setspecific(p4l_frame_key, f); }"
                :side-effects t)
  nil)

(defmacro with-call-frame ((var) &body body)
  "Binds VAR to a call frame of +FRAME-BYTES+ for BODY (the stack on SBCL; the thread's frame
on ECL)."
  #-ecl `(cffi:with-foreign-pointer (,var +frame-bytes+) ,@body)
  #+ecl `(let ((,var (take-call-frame)))
           (unwind-protect (progn ,@body) (give-back-call-frame ,var))))

;;; Name cells: a Python name resolved once per epoch. The state vector is replaced as a whole
;;; (one atomic write), so threads racing to refresh a cell are harmless.
(defstruct (name-cell (:constructor make-name-cell (name)) (:copier nil))
  (name "" :type simple-string :read-only t)
  (state #(-1 nil 0) :type simple-vector))

(define-session-cache *name-cells* (make-sync-table :test 'equal)
  "Name -> NAME-CELL for callables named by non-constant strings.")

(defun name-cell (name)
  (or (gethash name *name-cells*)
      (setf (gethash name *name-cells*) (make-name-cell (coerce name 'simple-string)))))

(defun identifier-path-p (name)
  "T if NAME looks like a dotted Python name (a.b.c), not an expression."
  (and (plusp (length name))
       (not (digit-char-p (char name 0)))
       (every (lambda (c) (or (alphanumericp c) (char= c #\_) (char= c #\.))) name)
       (not (search ".." name))
       (char/= #\. (char name 0) ) (char/= #\. (char name (1- (length name))))))

(defun lookup-object (name)
  "A new reference to the object NAME denotes: a dotted name looked up in __main__, then the
builtins (importing its first part as a module when it is not bound: \"math.sin\" works before
import-module), all in one crossing (p4s_lookup), or any expression, evaluated."
  (python-start-if-not-alive)
  (if (identifier-path-p name)
      (check-pointer (with-utf8 (s n name) (%lookup s n)))
      (eval-to-object name)))

(defun eval-to-object (code)
  "A new reference to the value of the Python expression CODE."
  (cffi:with-foreign-pointer (out (+ +value-size+ (* 4 +scratch-chars+)))
    (let ((scratch (offset-pointer out +value-size+)))
      (check-status (with-utf8 (s n code)
                      (%eval s n (cffi:null-pointer) (cffi:null-pointer) out scratch +scratch-chars+)))
      (result-object out scratch))))

(defun result-object (out scratch)
  "A new reference to the object of the packed result OUT (made anew for inline scalars)."
  (let ((tag (v-tag out)))
    (cond ((and (= tag +tag-str+) (= 1 (v-aux out)))
           (setf (v-tag out) +tag-str-utf32+ (v-a-pointer out) scratch)
           (check-pointer (%from-value out)))
          ((member tag '(#.+tag-none+ #.+tag-bool+ #.+tag-int+ #.+tag-float+ #.+tag-complex+
                         #.+tag-char+))
           (check-pointer (%from-value out)))
          (t (v-a-pointer out)))))

(define-entry refresh-cell (cell)
  "Looks NAME-CELL's name up again for the current epoch; returns the pointer."
  (let* ((epoch *epoch*)
         (old (name-cell-state cell))
         (new (lookup-object (name-cell-name cell)))
         (generation (%generation)))
    (let ((old-pointer (svref old 1)))
      (when (and old-pointer (= (svref old 2) generation))
        (if (cffi:pointer-eq old-pointer new)
            (%decref new)           ; same object: keep the reference we had
            (%decref-later old-pointer generation))))
    (let ((pointer (if (and (svref old 1) (= (svref old 2) generation)
                            (cffi:pointer-eq (svref old 1) new))
                       (svref old 1)
                       new)))
      (setf (name-cell-state cell) (vector epoch pointer generation))
      pointer)))

(declaim (inline cell-pointer))
(defun cell-pointer (cell)
  (let ((state (name-cell-state cell)))
    (if (eql (svref state 0) *epoch*)
        (svref state 1)
        (refresh-cell cell))))

(defun callable-pointer (callable)
  "The borrowed pointer of CALLABLE (a name, symbol, wrapper or pointer), or NIL when it must be
pythonized first."
  (typecase callable
    (string (cell-pointer (name-cell callable)))
    (pyobject-wrapper (wrapper-live-pointer callable))
    (symbol (cell-pointer (name-cell (string-downcase (symbol-name callable)))))
    (t (if (cffi:pointerp callable) callable nil))))

;;; Keyword names: a tuple of str per distinct list of keywords, per start of Python.
(define-session-cache *kwnames* (make-sync-table :test 'equal))

(defun kwnames-object (keys)
  (let ((entry (gethash keys *kwnames*))
        (generation (%generation)))
    (if (and entry (= (car entry) generation))
        (cdr entry)
        (let ((tuple (with-packed-values (p n) (mapcar #'lisp-name-to-python keys)
                       (check-pointer (%tuple-from p n)))))
          (setf (gethash (copy-list keys) *kwnames*) (cons generation tuple))
          tuple))))

;;; Results.
(defun decode-result (out scratch)
  "The Lisp value of the packed result OUT (a wrapper inside WITH-REMOTE-OBJECTS)."
  (if *remote-objects*
      (wrap-new-reference (result-object out scratch))
      (decode-value out 0 scratch)))

;;; The call itself.
(defun call-in-frame (callable method args vals cap-slots scratch)
  "Packs ARGS (positional, then a keyword plist) into VALS, calls CALLABLE (or METHOD, an
interned str, of the object CALLABLE), and decodes the result. SCRATCH has +SCRATCH-CHARS+
characters for input strings, then for a str result."
  (declare (type fixnum cap-slots) (optimize speed))
  (let ((i 0) (used 0) (keys '()) (out (offset-pointer vals (* cap-slots +value-size+))))
    (declare (type fixnum i used))
    (unwind-protect
         (progn
           (loop for rest on args
                 for x = (car rest)
                 do (if (and (keywordp x) (cdr rest) (not (eq x +py-none+)))
                        (loop for (k v) on rest by #'cddr
                              do (push k keys)
                                 (setf used (pack-value v vals i scratch used +scratch-chars+))
                                 (incf i)
                              finally (return))
                        (progn (setf used (pack-value x vals i scratch used +scratch-chars+))
                               (incf i)))
                 until keys)
           (let* ((kwnames (if keys (kwnames-object (nreverse keys)) (cffi:null-pointer)))
                  (status (if method
                              (%call-method-packed callable method vals i kwnames out scratch +scratch-chars+)
                              (%call-packed callable vals i kwnames out scratch +scratch-chars+))))
             (declare (type fixnum status))
             (release-owned vals i)
             (setf i 0)
             (if (= status 0)
                 (decode-result out scratch)
                 (signal-status status))))
      (release-owned vals i))))

(defun count-slots (args)
  (let ((n 0))
    (declare (type fixnum n))
    (dolist (x args n) (declare (ignore x)) (incf n))))

(defmacro sap-or-pointer (form)
  #+sbcl `(the sb-sys:system-area-pointer ,form)
  #-sbcl form)

(declaim (inline address pointer-at))
(defun address (pointer)
  (the fixnum (cffi:pointer-address pointer)))
(defun pointer-at (address &optional (offset 0))
  (declare (type fixnum address offset))
  (cffi:make-pointer (+ address offset)))

(define-entry %pycall (pointer args &optional method)
  "Calls the Python callable POINTER (borrowed) with the Lisp ARGS; returns the Lisp result.
The common case (at most +FRAME-SLOTS+ arguments, no keywords, no method, no user pythonizers)
packs fixnums and floats in place and decodes scalar and str results here, with one shim
crossing and nothing but the result allocated. Out-of-line helpers get the frame as an address
(a fixnum), so that no pointer is boxed on the way."
  (declare (optimize speed (safety 0)))
  (if (or method *pythonizers*)
      (%pycall-general pointer args method)
      (with-call-frame (frame)
        (let* ((out (offset-pointer frame (* +frame-slots+ +value-size+)))
               (scratch (offset-pointer frame (* (1+ +frame-slots+) +value-size+)))
               (i 0) (used 0) (owned nil))
          (declare (type fixnum i used) (type boolean owned))
          ;; No UNWIND-PROTECT here (its cleanup closure would heap-allocate the counters):
          ;; only PACK-VALUE can fail before the call, and it releases what was packed.
          (dolist (x args)
            (when (>= i +frame-slots+)
              (when owned (release-owned-at (address frame) i))
              (return-from %pycall (%pycall-general pointer args method)))
            (typecase x
              (fixnum (setf (v-tag frame i) +tag-int+ (v-a frame i) x))
              (double-float (setf (v-tag frame i) +tag-float+ (v-a-double frame i) x))
              ((simple-array character (*))
               (let ((n (length x)))
                 (declare (type fixnum n))
                 (if (<= (+ used n) +scratch-chars+)
                     (let ((dst (offset-pointer scratch (* 4 used))))
                       (copy-string-to-utf32 x dst n)
                       (setf (v-tag frame i) +tag-str-utf32+ (v-aux frame i) 0
                             (v-a-pointer frame i) dst (v-b frame i) n)
                       (incf used n))
                     (progn (setf used (pack-value-at x (address frame) i used))
                            (setf owned t)))))
              (keyword (when owned (release-owned-at (address frame) i))
                       (return-from %pycall (%pycall-general pointer args method)))
              (t (when (and (arrayp x) (borrowable-array-p x))
                   ;; Lent Lisp memory: pinned over the whole call by the general path.
                   (when owned (release-owned-at (address frame) i))
                   (return-from %pycall (%pycall-general pointer args method)))
                 (setf used (pack-value-at x (address frame) i used))
                 (when (= (v-tag frame i) +tag-object+) (setf owned t))))
            (incf i))
          (let ((status (%call-packed pointer frame i (cffi:null-pointer) out scratch +scratch-chars+)))
            (declare (type fixnum status))
            (when owned (release-owned-at (address frame) i))
            (if (= status 0)
                (if (or *remote-objects* *lispifiers*)
                    (decode-result-at (address frame))
                    (let ((tag (v-tag out)))
                      (cond ((= tag +tag-str+)
                             (if (= 1 (v-aux out))
                                 (scratch-string out 0 scratch)
                                 (decode-result-at (address frame))))
                            ((= tag +tag-int+) (v-a out))
                            ((= tag +tag-float+) (v-a-double out))
                            ((= tag +tag-none+) +py-none+)
                            ((= tag +tag-bool+) (/= 0 (v-a out)))
                            (t (decode-result-at (address frame))))))
                (signal-status status)))))))

(defconstant +out-offset+ (* +frame-slots+ +value-size+))
(defconstant +scratch-offset+ (* (1+ +frame-slots+) +value-size+))

(defun pack-value-at (x frame-address i used)
  "PACK-VALUE into slot I of the frame at FRAME-ADDRESS; if that exits non-locally, releases the
owned objects of the slots below I. (On the unwind, not when a condition is signalled: a
handler may still resume the packing through a restart, and the call would then use them.)"
  (declare (type fixnum frame-address i used))
  (let ((frame (pointer-at frame-address))
        (done nil))
    (unwind-protect
         (multiple-value-prog1
             (pack-value x frame i (pointer-at frame-address +scratch-offset+) used +scratch-chars+)
           (setf done t))
      (unless done (release-owned frame i)))))

(defun release-owned-at (frame-address n)
  (release-owned (pointer-at frame-address) n))

(defun decode-result-at (frame-address)
  (decode-result (pointer-at frame-address +out-offset+) (pointer-at frame-address +scratch-offset+)))

(defun %pycall-general (pointer args method)
  "Calls as %PYCALL does, for any arguments. Specialized Lisp arrays among ARGS are lent to
Python over their own memory for the call and until its result is converted (see
CALL-WITH-BORROWED-ARRAYS in arrays.lisp)."
  (if (some #'borrowable-array-p args)
      (call-with-borrowed-arrays args (lambda () (%pycall-in-frame pointer args method)))
      (%pycall-in-frame pointer args method)))

(defun %pycall-in-frame (pointer args method)
  (let ((n (count-slots args)))
    (if (<= n +frame-slots+)
        (cffi:with-foreign-pointer (frame +frame-bytes+)
          (call-in-frame pointer method args frame +frame-slots+
                         (offset-pointer frame (* (1+ +frame-slots+) +value-size+))))
        (let ((frame (cffi:foreign-alloc :uint8 :count (+ (* (1+ n) +value-size+) (* 4 +scratch-chars+)))))
          (unwind-protect
               (call-in-frame pointer method args frame n
                              (offset-pointer frame (* (1+ n) +value-size+)))
            (cffi:foreign-free frame))))))

(define-entry pycall (python-callable &rest args)
  "Calls PYTHON-CALLABLE with ARGS and returns the result converted to Lisp (see the type
table; a PYOBJECT-WRAPPER when there is no conversion). PYTHON-CALLABLE is a string naming a
callable (\"str\", \"math.sin\"; resolved once and cached until Python is restarted or Lisp
rebinds names) or any Python expression giving one, a symbol (its lower-cased name), a
PYOBJECT-WRAPPER, a foreign pointer, or any Lisp object that pythonizes to a callable (a Lisp
function). ARGS are positional until the first keyword followed by a value; from there on they
are keyword arguments (:foo-bar 1 → foo_bar=1). Signals a PYERROR when Python raises."
  (declare (dynamic-extent args))
  (let ((pointer (callable-pointer python-callable)))
    (if pointer
        (%pycall pointer args)
        (let ((p (progn (python-start-if-not-alive) (pythonize python-callable))))
          (unwind-protect (%pycall p args)
            (%decref p))))))

(defun %pycall-cell (cell &rest args)
  (declare (dynamic-extent args) (optimize speed))
  (%pycall (cell-pointer cell) args))

(define-compiler-macro pycall (&whole form python-callable &rest args)
  (if (stringp python-callable)
      `(%pycall-cell (load-time-value (make-name-cell ,python-callable)) ,@args)
      form))

;;; Helpers of the _py4cl2_cffi module (installed at start).
(define-session-cache *helper-cells* (make-sync-table :test 'equal))

(defun helper-pointer (name)
  (cell-pointer (or (gethash name *helper-cells*)
                    (setf (gethash name *helper-cells*)
                          (make-name-cell (concatenate 'string "_py4cl2_cffi." name))))))

(defun call-helper (name &rest args)
  "Calls helper NAME of the _py4cl2_cffi module with ARGS; returns the Lisp result."
  (python-start-if-not-alive)
  (%pycall (helper-pointer name) args))

(defun call-helper-object (name p n)
  "Calls helper NAME with N packed values at P; returns a new reference to the result."
  (cffi:with-foreign-pointer (out (+ +value-size+ (* 4 +scratch-chars+)))
    (let ((scratch (offset-pointer out +value-size+)))
      (check-status (%call-packed (helper-pointer name) p n (cffi:null-pointer) out scratch +scratch-chars+))
      (result-object out scratch))))

;;; Objects given as Lisp values.
(defmacro with-object-pointer ((var object) &body body)
  "Binds VAR to a pointer for OBJECT (a wrapper or pointer as it is; other Lisp values
pythonized for BODY and released after)."
  (let ((o (gensym)) (owned (gensym)))
    `(let* ((,o ,object)
            (,owned nil)
            (,var (cond ((pyobject-wrapper-p ,o) (wrapper-live-pointer ,o))
                        ((cffi:pointerp ,o) ,o)
                        (t (python-start-if-not-alive)
                           (setf ,owned (pythonize ,o))))))
       (unwind-protect (progn ,@body)
         (when ,owned (%decref ,owned))))))

(defmacro with-result-frame ((out scratch) &body body)
  `(cffi:with-foreign-pointer (,out (+ +value-size+ (* 4 +scratch-chars+)))
     (let ((,scratch (offset-pointer ,out +value-size+)))
       ,@body)))

(defun python-name-string (name)
  (etypecase name
    (string name)
    (symbol (lisp-name-to-python name))))

;;; pyvalue
(define-entry pyvalue (python-name-or-variable)
  "Get the value of a python-name-or-variable: a dotted name (\"sys.path\", \"math.pi\"; the
first part in __main__ then the builtins, imported as a module if unbound), or a
PYOBJECT-WRAPPER / pointer to lispify. Signals a PYERROR (NameError...) when it does not exist."
  (if (stringp python-name-or-variable)
      (progn
        (python-start-if-not-alive)
        (with-result-frame (out scratch)
          (let ((status (with-utf8 (s n python-name-or-variable)
                          (%lookup-value s n out scratch +scratch-chars+))))
            (if (= status 0)
                (decode-result out scratch)
                (signal-status status)))))
      (if *remote-objects*
          python-name-or-variable
          (lispify python-name-or-variable))))

(define-entry (setf pyvalue) (new-value python-name)
  "Binds the Python name PYTHON-NAME (in __main__, or an attribute for a dotted name) to the
Python value of NEW-VALUE. Returns NEW-VALUE."
  (python-start-if-not-alive)
  (let ((dot (position #\. python-name :from-end t)))
    (with-packed-values (p n) (list new-value)
      (if dot
          (let ((parent (lookup-object (subseq python-name 0 dot))))
            (unwind-protect
                 (with-utf8 (s n (subseq python-name (1+ dot)))
                   (check-status (%setattr parent s n p)))
              (%decref parent)))
          (with-utf8 (s n python-name)
            (check-status (%set-global s n p))))))
  (bump-epoch)
  new-value)

;;; Methods and attributes.
(define-session-cache *method-names* (make-sync-table :test 'equal)
  "Method name -> (generation . interned str object).")

(defun method-name-object (name)
  (let ((entry (gethash name *method-names*))
        (generation (%generation)))
    (if (and entry (= (car entry) generation))
        (cdr entry)
        (let ((o (string-object name)))
          (setf (gethash name *method-names*) (cons generation o))
          o))))

(define-entry pymethod (object method-name &rest args)
  "Calls the method METHOD-NAME (a string, or a symbol: lower-cased, - to _) of OBJECT (a
wrapper, pointer, or Lisp value pythonized for the call) with ARGS as PYCALL takes them.
Returns the Lisp result."
  (declare (dynamic-extent args))
  (with-object-pointer (p object)
    (%pycall p args (method-name-object (python-name-string method-name)))))

(define-entry pyslot-value (object slot-name)
  "The value of the attribute SLOT-NAME (string or symbol) of OBJECT, converted to Lisp."
  (with-object-pointer (p object)
    (with-result-frame (out scratch)
      (with-utf8 (s n (python-name-string slot-name))
        (check-status (%getattr-value p s n out scratch +scratch-chars+)))
      (decode-result out scratch))))

(define-entry (setf pyslot-value) (new-value object slot-name)
  "Sets the attribute SLOT-NAME of OBJECT (a wrapper or pointer) to NEW-VALUE. Returns NEW-VALUE."
  (with-object-pointer (p object)
    (with-packed-values (v n) (list new-value)
      (with-utf8 (s n (python-name-string slot-name))
        (check-status (%setattr p s n v)))))
  new-value)

(define-entry pyslot-list (pyobject &key as-vector)
  "The names of the non-callable attributes of PYOBJECT (from dir()), a list of strings (a
vector when AS-VECTOR)."
  (let ((v (call-helper "slot_list" pyobject)))
    (if as-vector v (coerce v 'list))))

(define-entry pymethod-list (pyobject &key as-vector)
  "The names of the callable attributes of PYOBJECT (from dir()), a list of strings (a vector
when AS-VECTOR)."
  (let ((v (call-helper "method_list" pyobject)))
    (if as-vector v (coerce v 'list))))

(define-entry pyhelp (string-or-python-callable)
  "Prints Python's help() for STRING-OR-PYTHON-CALLABLE (a name is looked up first). Returns no
values."
  (let ((o (if (stringp string-or-python-callable)
               (let ((*remote-objects* t)) (pyvalue string-or-python-callable))
               string-or-python-callable)))
    (pycall "help" o))
  (values))
