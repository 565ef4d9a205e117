;;;; Raw bindings to the shim's C ABI (p4s_*), the packed value layout and its tags.

(in-package :py4cl2-cffi)

(load-shim)

;;; P4sValue: {int32 tag; int32 aux; int64 a; int64 b} — 24 bytes.
(cffi:defcstruct (p4s-value :size 24)
  (tag :int32 :offset 0)
  (aux :int32 :offset 4)
  (a :int64 :offset 8)
  (b :int64 :offset 16))

(defconstant +value-size+ 24)

(defmacro define-constants (&body pairs)
  `(progn ,@(loop for (name value) on pairs by #'cddr
                  collect `(defconstant ,name ,value))))

(define-constants
  +tag-none+ 0 +tag-bool+ 1 +tag-int+ 2 +tag-float+ 3 +tag-complex+ 4 +tag-str+ 5
  +tag-bytes+ 6 +tag-tuple+ 7 +tag-list+ 8 +tag-dict+ 9 +tag-set+ 10 +tag-bigint+ 11
  +tag-object+ 12 +tag-char+ 13 +tag-str-utf32+ 20 +tag-str-utf8+ 21 +tag-str-latin1+ 22 +tag-int-hex+ 23)

(define-constants +ok+ 0 +pyerror+ -1 +shim-error+ -2)

;;; The codes p4s_last_error_code gives for a -2 status (shim/src/lib.rs), and what p4s_start
;;; and p4s_stop return on success (shim/src/lifecycle.rs).
(define-constants
  +code-not-started+ -3 +code-pinned+ -4 +code-other-running+ -5 +code-busy+ -6 +code-refused+ -7)
(define-constants +started+ 0 +already-started+ 1 +resumed+ 2)
(define-constants +stopped-unloaded+ 0 +stopped-soft+ 1 +stopped-pinned+ 2 +stop-finalize+ 1)

;;; On SBCL a DEFCFUN compiles to a direct call. On ECL, CFFI's default for compiled code
;;; (when ECL has its dynamic FFI, as Debian's has) looks the symbol up and marshals the
;;; arguments through lists at every call: about 18 microseconds per call here. There,
;;; DEFINE-SHIM instead emits C that calls through the function pointer, looked up once.
#+ecl
(eval-when (:compile-toplevel :load-toplevel :execute)
  (defparameter *ecl-shim-types*
    '((:pointer :pointer-void "void*") (:int32 :int32-t "int32_t") (:int64 :int64-t "int64_t")
      (:uint64 :uint64-t "uint64_t") (:double :double "double") (:void :void "void"))
    "The shim's argument and return types: CFFI's name, ECL's FFI name, the C type.")

  (defun ecl-shim-type (type)
    "(ECL-FFI-TYPE C-TYPE) for the CFFI type TYPE."
    (or (rest (assoc type *ecl-shim-types*))
        (error "define-shim: no ECL mapping for the type ~S" type)))

  (defun ecl-shim-call (cell c-name return args)
    "A form calling the shim function C-NAME (pointer cached in CELL) with ARGS ((NAME TYPE)...)."
    (let* ((names (mapcar #'first args))
           (types (mapcar (lambda (a) (ecl-shim-type (second a))) args))
           (code (format nil "((~A (*)(~{~A~^, ~}))(#0))(~{~A~^, ~})"
                         (second (ecl-shim-type return)) (mapcar #'second types)
                         (loop for i from 1 to (length args)
                               collect (format nil "#~(~36R~)" i))))
           (fn (gensym "FN"))
           (cache (gensym "CACHE")))
      (when (> (length args) 35) (error "define-shim: too many arguments for ~A" c-name))
      `(let* ((,cache ,cell)
              (,fn (or (svref ,cache 0)
                       (setf (svref ,cache 0)
                             (or (cffi:foreign-symbol-pointer ,c-name)
                                 (error "The loaded shim has no function ~A." ,c-name))))))
         (ext:with-backend
           :bytecodes (cffi:foreign-funcall-pointer
                       ,fn () ,@(loop for (name type) in args append (list type name)) ,return)
           :c/c++ (ffi:c-inline (,fn ,@names) (:pointer-void ,@(mapcar #'first types))
                                ,(first (ecl-shim-type return)) ,code
                                :one-liner t :side-effects t))))))

;;; Field access by offset on a foreign pointer (compiles to a raw memory access). On ECL,
;;; CFFI inlines MEM-REF only for a constant offset; VALUE-FIELD emits the C access itself, so
;;; that reading slot I of a value array allocates nothing.
(deftype value-index ()
  "The index of a packed value in an array of them (small enough for fixnum offsets)."
  '(integer 0 #.(ash 1 40)))

(defmacro value-field (p i type offset)
  "The field of TYPE at OFFSET in packed value I of the array at P (SETF-able)."
  #-ecl `(cffi:mem-ref ,p ,type (+ (* (the value-index ,i) +value-size+) ,offset))
  #+ecl (destructuring-bind (ecl-type c-type) (ecl-shim-type type)
          `(ext:with-backend
             :bytecodes (cffi:mem-ref ,p ,type (+ (* ,i +value-size+) ,offset))
             ;; The offset is computed in C: ECL's generic * and + (through GMP) cost more than
             ;; the access.
             :c/c++ (ffi:c-inline (,p ,i) (:pointer-void :int64-t)
                                  ,ecl-type ,(format nil "*(~A*)((char*)#0+#1*~D+~D)"
                                                     c-type +value-size+ offset)
                                  :one-liner t))))

#+ecl
(defsetf value-field (p i type offset) (new)
  (destructuring-bind (ecl-type c-type) (ecl-shim-type type)
    (let ((v (gensym "NEW")))
      `(let ((,v ,new))
         (ext:with-backend
           :bytecodes (setf (cffi:mem-ref ,p ,type (+ (* ,i +value-size+) ,offset)) ,v)
           :c/c++ (ffi:c-inline (,p ,i ,v)
                                (:pointer-void :int64-t ,ecl-type) :void
                                ,(format nil "*(~A*)((char*)#0+#1*~D+~D) = #2"
                                         c-type +value-size+ offset)
                                :one-liner t :side-effects t))
         ,v))))

(defmacro v-tag (p &optional (i 0)) `(value-field ,p ,i :int32 0))
(defmacro v-aux (p &optional (i 0)) `(value-field ,p ,i :int32 4))
(defmacro v-a (p &optional (i 0)) `(value-field ,p ,i :int64 8))
(defmacro v-b (p &optional (i 0)) `(value-field ,p ,i :int64 16))
(defmacro v-a-double (p &optional (i 0)) `(value-field ,p ,i :double 8))
(defmacro v-b-double (p &optional (i 0)) `(value-field ,p ,i :double 16))
(defmacro v-a-pointer (p &optional (i 0)) `(value-field ,p ,i :pointer 8))


;;; Lisp interrupts while Python runs. An interrupt (C-c, SLIME's interrupt, a timer) runs
;;; Lisp code on top of the interrupted frames. If it unwound through Python's C frames, the
;;; thread state would keep pointers into the abandoned stack and the next call would crash.
;;; So every shim call runs with interrupts deferred, and *IN-PYTHON* is true meanwhile; the
;;; interrupt watcher (interrupts.lisp) asks Python to raise KeyboardInterrupt in a thread that
;;; has one pending, and the interrupt runs in Lisp once the call has returned. Lisp code that
;;; Python calls (callbacks) runs with interrupts allowed again: its non-local exits are
;;; stopped before they reach Python's frames.
(defvar *in-python* nil
  "True in a thread while it is inside a call into Python (NIL again in Lisp code Python calls).")

(defmacro calling-python (&body body)
  "Runs BODY, a call into Python, with Lisp interrupts deferred until it returns. BODY must not
exit non-locally (a foreign call: Lisp code that Python calls stops its own exits)."
  ;; On SBCL this is WITHOUT-INTERRUPTS around ALLOW-WITH-INTERRUPTS (*ALLOW-WITH-INTERRUPTS*
  ;; keeps the caller's value, so callbacks can enable interrupts again), written out: BODY
  ;; cannot unwind, so the UNWIND-PROTECT that runs a deferred interrupt on the way out becomes
  ;; a plain check after BODY (two special bindings instead of four, no cleanup block: about
  ;; 5 ns of a 14 ns empty call).
  #+#.(cl:if (cl:and (cl:member :sbcl cl:*features*)
                     (cl:find-symbol "RECEIVE-PENDING-INTERRUPT" "SB-UNIX")
                     (cl:find-symbol "*INTERRUPT-PENDING*" "SB-SYS"))
             '(:and) '(:or))
  `(if sb-sys:*interrupts-enabled*
       (multiple-value-prog1
           (let ((sb-sys:*interrupts-enabled* nil) (*in-python* t)) ,@body)
         (when sb-sys:*interrupt-pending* (sb-unix::receive-pending-interrupt)))
       (let ((*in-python* t)) ,@body))
  #+#.(cl:if (cl:and (cl:member :sbcl cl:*features*)
                     (cl:not (cl:and (cl:find-symbol "RECEIVE-PENDING-INTERRUPT" "SB-UNIX")
                                     (cl:find-symbol "*INTERRUPT-PENDING*" "SB-SYS"))))
             '(:and) '(:or))
  `(sb-sys:without-interrupts
     (let ((*in-python* t)) (sb-sys:allow-with-interrupts ,@body)))
  #+ecl `(mp:without-interrupts
           (let ((*in-python* t)) (mp:allow-with-interrupts ,@body)))
  #-(or sbcl ecl) `(let ((*in-python* t)) ,@body))

(defmacro running-lisp-for-python (&body body)
  "Runs BODY, Lisp code that Python called, with Lisp interrupts allowed again. The caller must
stop any non-local exit before it reaches Python's frames."
  #+sbcl `(let ((*in-python* nil)) (sb-sys:with-interrupts ,@body))
  #+ecl `(let ((*in-python* nil)) (mp:with-interrupts ,@body))
  #-(or sbcl ecl) `(let ((*in-python* nil)) ,@body))

(defmacro define-shim (lisp-name c-name return &rest args)
  "Defines LISP-NAME as an inline function calling the shim's C function C-NAME, which returns
RETURN and takes ARGS, a list of (NAME CFFI-TYPE), with Lisp interrupts deferred."
  #-ecl `(progn (declaim (inline ,lisp-name))
                (defun ,lisp-name ,(mapcar #'first args)
                  (calling-python
                    (cffi:foreign-funcall ,c-name
                                          ,@(loop for (name type) in args append (list type name))
                                          ,return))))
  #+ecl `(progn (declaim (inline ,lisp-name))
                (defun ,lisp-name ,(mapcar #'first args)
                  (calling-python
                    ,(ecl-shim-call '(load-time-value (vector nil)) c-name return args)))))

;;; Lifecycle (lifecycle.rs)
(define-shim %start "p4s_start" :int32 (spec :pointer) (len :int64))
(define-shim %stop "p4s_stop" :int32 (flags :int32) (timeout-ms :int64))
(define-shim %stop-report "p4s_stop_report" :pointer)
(define-shim %stop-busy-threads "p4s_stop_busy_threads" :int64 (out :pointer) (cap :int64))
(define-shim %is-started "p4s_is_started" :int32)
(define-shim %generation "p4s_generation" :uint64)
(define-shim %running-json "p4s_running_json" :pointer)

;;; Errors (pyerr.rs, last_error.rs)
(define-shim %last-error "p4s_last_error" :pointer)
(define-shim %last-error-code "p4s_last_error_code" :int32)
;;; P4sErrorInfo: {type, type_len, message, message_len, traceback, traceback_len, lisp_handle}.
(cffi:defcstruct (p4s-error-info :size 56)
  (type :pointer :offset 0) (type-len :int64 :offset 8)
  (message :pointer :offset 16) (message-len :int64 :offset 24)
  (traceback :pointer :offset 32) (traceback-len :int64 :offset 40)
  (lisp-handle :int64 :offset 48))
(define-shim %error-describe "p4s_error_describe" :int32 (out :pointer))
(define-shim %error-pending "p4s_error_pending" :int32)
(define-shim %error-clear "p4s_error_clear" :void)
(define-shim %error-set "p4s_error_set" :int32 (type :pointer) (message :pointer) (len :int64))

;;; GIL and references (gil.rs)
(define-shim %gil-acquire "p4s_gil_acquire" :int32)
(define-shim %gil-release "p4s_gil_release" :int32)
(define-shim %gil-depth "p4s_gil_depth" :int32)
(define-shim %decref-later "p4s_decref_later" :void (obj :pointer) (generation :uint64))
(define-shim %decref "p4s_decref" :void (obj :pointer))
(define-shim %incref "p4s_incref" :void (obj :pointer))
(define-shim %threads-in-python "p4s_threads_in_python" :int64)
(define-shim %set-thread-hooks "p4s_set_thread_hooks" :void (attach :pointer) (detach :pointer))

;;; Floating point (fp.rs). SBCL on x86-64 does all its float arithmetic in SSE registers and
;;; reads only MXCSR, so the x87 control word may stay masked once Python has been entered:
;;; loading a different x87 control word twice per call cost more than half of a
;;; (pycall "str" i) on the machine where this was measured. ECL's long-floats use the x87
;;; unit, so ECL keeps the exact restore.
(define-shim %set-fp-policy "p4s_set_fp_policy" :int32 (flags :int32))
(defconstant +fp-x87-stays-masked+ 1)

(defun declare-fp-policy ()
  "Tells the shim how this Lisp uses the floating-point unit (see fp.rs)."
  (%set-fp-policy #+(and sbcl x86-64) +fp-x87-stays-masked+ #-(and sbcl x86-64) 0))

(declare-fp-policy)
#+sbcl (pushnew 'declare-fp-policy sb-ext:*init-hooks*)

;;; Interrupts (interrupt.rs)
(define-shim %interrupt-thread "p4s_interrupt_thread" :int32 (ident :uint64))
(define-shim %observe-signal "p4s_observe_signal" :int32 (sig :int32))
(define-shim %signal-count "p4s_signal_count" :uint64 (sig :int32))

;;; Values (values.rs)
(define-shim %from-value "p4s_from_value" :pointer (v :pointer))
(define-shim %to-value "p4s_to_value" :int32 (obj :pointer) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %tuple-from "p4s_tuple_from" :pointer (vals :pointer) (n :int64))
(define-shim %list-from "p4s_list_from" :pointer (vals :pointer) (n :int64))
(define-shim %dict-from "p4s_dict_from" :pointer (keys :pointer) (vals :pointer) (n :int64))
(define-shim %items "p4s_items" :int64 (obj :pointer) (out :pointer) (n :int64) (scratch :pointer) (cap :int64))
(define-shim %dict-items "p4s_dict_items" :int64 (obj :pointer) (keys :pointer) (vals :pointer) (n :int64) (scratch :pointer) (cap :int64))
(define-shim %str-utf32 "p4s_str_utf32" :int64 (obj :pointer) (buf :pointer) (cap :int64))
(define-shim %bytes-data "p4s_bytes_data" :pointer (obj :pointer) (len :pointer))
(define-shim %long-to-hex "p4s_long_to_hex" :pointer (obj :pointer))
(define-shim %release-value "p4s_release_value" :void (v :pointer))

;;; Calls, names, attributes, items, code (call.rs, names.rs, objects.rs, source.rs)
(define-shim %call-packed "p4s_call_packed" :int32
  (callable :pointer) (args :pointer) (nargs :int64) (kwnames :pointer)
  (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %call-method-packed "p4s_call_method_packed" :int32
  (obj :pointer) (name :pointer) (args :pointer) (nargs :int64) (kwnames :pointer)
  (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %lookup "p4s_lookup" :pointer (name :pointer) (len :int64))
(define-shim %lookup-value "p4s_lookup_value" :int32 (name :pointer) (len :int64) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %set-global "p4s_set_global" :int32 (name :pointer) (len :int64) (value :pointer))
(define-shim %getattr-value "p4s_getattr_value" :int32 (obj :pointer) (name :pointer) (len :int64) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %setattr "p4s_setattr" :int32 (obj :pointer) (name :pointer) (len :int64) (value :pointer))
(define-shim %exec "p4s_exec" :int32 (code :pointer) (len :int64) (globals :pointer) (locals :pointer))
(define-shim %eval "p4s_eval" :int32 (code :pointer) (len :int64) (globals :pointer) (locals :pointer) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %none "p4s_none" :pointer)
(define-shim %type-name "p4s_type_name" :pointer (obj :pointer))
(define-shim %type-of "p4s_type_of" :pointer (obj :pointer))
(define-shim %str "p4s_str" :pointer (obj :pointer))

;;; Output (output.rs)
(define-shim %set-output-handler "p4s_set_output_handler" :void (handler :pointer))
(define-shim %set-route-handler "p4s_set_route_handler" :void (handler :pointer))
(define-shim %capture-output "p4s_capture_output" :int32 (stream :int32) (on :int32))

;;; Callbacks (callback.rs)
(define-shim %set-callback-handler "p4s_set_callback_handler" :void (call :pointer) (release :pointer))
(define-shim %make-callable "p4s_make_callable" :pointer (handle :int64) (name :pointer) (len :int64))
(define-shim %error-set-lisp "p4s_error_set_lisp" :int32 (handle :int64) (message :pointer) (len :int64))

;;; Buffers (buffer.rs): {void *data; int64 len, itemsize; int32 ndim, readonly;
;;; const char *format; const int64 *shape, *strides; void *view;}
(cffi:defcstruct (p4s-buffer :size 64)
  (data :pointer :offset 0)
  (len :int64 :offset 8)
  (itemsize :int64 :offset 16)
  (ndim :int32 :offset 24)
  (readonly :int32 :offset 28)
  (format :pointer :offset 32)
  (shape :pointer :offset 40)
  (strides :pointer :offset 48)
  (view :pointer :offset 56))
(define-shim %buffer-get "p4s_buffer_get" :int32 (obj :pointer) (writable :int32) (out :pointer))
(define-shim %buffer-release "p4s_buffer_release" :void (buf :pointer))
(define-shim %buffer-copy "p4s_buffer_copy" :int32 (buf :pointer) (dest :pointer) (dest-len :int64))
(define-shim %buffer-objects "p4s_buffer_objects" :int64 (buf :pointer) (out :pointer) (n :int64))
(define-shim %memoryview "p4s_memoryview" :pointer (data :pointer) (nbytes :int64) (format :pointer)
  (ndim :int32) (shape :pointer) (readonly :int32))

;;; Strings to and from the shim.

;;; SBCL and ECL (built with Unicode, as Debian's ECL is) store a (SIMPLE-ARRAY CHARACTER (*))
;;; as one 32-bit code point per character: the UTF-32 the shim reads and writes. Strings are
;;; therefore copied in one block, not character by character.
(defmacro with-utf32-storage ((pointer string) &body body)
  "Binds POINTER to the code points of STRING, a (SIMPLE-ARRAY CHARACTER (*)), during BODY.
The string is kept from moving meanwhile (SBCL pins it; ECL's collector never moves objects)."
  #+sbcl `(sb-sys:with-pinned-objects (,string)
            (let ((,pointer (sb-sys:vector-sap ,string))) ,@body))
  #+ecl `(cffi:with-pointer-to-vector-data (,pointer ,string) ,@body)
  #-(or sbcl ecl) (declare (ignore pointer string body))
  #-(or sbcl ecl) (error "with-utf32-storage: only SBCL and ECL are supported"))

#+ecl (ffi:clines "#include <string.h>")

(declaim (inline copy-foreign-bytes))
(defun copy-foreign-bytes (from to count)
  "Copies COUNT bytes from the foreign pointer FROM to the foreign pointer TO."
  #+sbcl (sb-kernel:system-area-ub8-copy from 0 to 0 count)
  ;; The compiler's builtin: inlined into other files' C code, which need not include
  ;; <string.h> (gcc 14 rejects an implicit memcpy declaration, as with ECL 24 on Debian sid).
  #+ecl (ffi:c-inline (to from count) (:pointer-void :pointer-void :int64-t) :void
                     "__builtin_memcpy(#0, #1, (size_t)#2)" :one-liner t :side-effects t)
  #-(or sbcl ecl) (cffi:foreign-funcall "memcpy" :pointer to :pointer from :size count :pointer)
  nil)

(defmacro offset-pointer (pointer offset)
  "The foreign pointer OFFSET bytes after POINTER (CFFI:INC-POINTER; on ECL computed in C, not
through generic arithmetic and a function call)."
  #-ecl `(cffi:inc-pointer ,pointer ,offset)
  #+ecl `(ext:with-backend
           :bytecodes (cffi:inc-pointer ,pointer ,offset)
           :c/c++ (ffi:c-inline (,pointer ,offset) (:pointer-void :int64-t) :pointer-void
                                "(void*)((char*)#0 + #1)" :one-liner t)))

(declaim (inline copy-string-to-utf32 utf32-to-string))
(defun copy-string-to-utf32 (string pointer n)
  "Writes the first N characters of STRING, a (SIMPLE-ARRAY CHARACTER (*)), as UTF-32 at
POINTER."
  (declare (type (simple-array character (*)) string) (type fixnum n)
           (optimize speed (safety 0)))
  ;; SBCL: a loop of stores beats a copy call for the short strings of the common case. ECL:
  ;; its strings are arrays of 32-bit code points already, so one memcpy.
  #-ecl (dotimes (k n) (setf (cffi:mem-aref pointer :uint32 k) (char-code (schar string k))))
  #+ecl (ffi:c-inline (string pointer n) (:object :pointer-void :int64-t) :void
                      "__builtin_memcpy(#1, (#0)->string.self, 4 * (size_t)#2)"
                      :one-liner t :side-effects t)
  nil)

(defun utf32-to-string (pointer n)
  "A fresh (SIMPLE-ARRAY CHARACTER (N)) of the N UTF-32 code points at POINTER (ECL: allocated
and filled in C)."
  (declare (type fixnum n) (optimize speed (safety 0)))
  #+ecl (ffi:c-inline (pointer n) (:pointer-void :int64-t) :object
                      "({ cl_object s = ecl_alloc_simple_extended_string((cl_index)#1);
                          __builtin_memcpy(s->string.self, #0, 4 * (size_t)#1); s; })"
                      :one-liner t)
  #-ecl (let ((s (make-string n)))
          (when (plusp n)
            (with-utf32-storage (p s)
              (copy-foreign-bytes pointer p (* 4 n))))
          s))

(defun foreign-utf8 (pointer &optional count)
  "The Lisp string of the UTF-8 text at POINTER (NUL-terminated, or COUNT bytes); NIL for NULL."
  (unless (cffi:null-pointer-p pointer)
    (if count
        (cffi:foreign-string-to-lisp pointer :count count :encoding :utf-8)
        (cffi:foreign-string-to-lisp pointer :encoding :utf-8))))

(defmacro with-utf8 ((pointer length string) &body body)
  "Binds POINTER to a foreign UTF-8 copy of STRING and LENGTH to its byte count during BODY."
  (let ((s (gensym "S")))
    `(let ((,s ,string))
       (cffi:with-foreign-string ((,pointer ,length) ,s :encoding :utf-8 :null-terminated-p nil)
         ,@body))))

(defun make-sync-table (&rest args)
  "A hash table safe to use from several threads."
  #+(or sbcl ecl) (apply #'make-hash-table :synchronized t args)
  #-(or sbcl ecl) (apply #'make-hash-table args))
