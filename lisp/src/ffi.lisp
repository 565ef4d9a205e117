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
  +tag-object+ 12 +tag-str-utf32+ 20 +tag-str-utf8+ 21 +tag-str-latin1+ 22 +tag-int-hex+ 23)

(define-constants +ok+ 0 +pyerror+ -1 +shim-error+ -2)

;;; Field access by offset on a foreign pointer (compiles to a raw memory access).
(defmacro v-tag (p &optional (i 0)) `(cffi:mem-ref ,p :int32 (+ (* ,i +value-size+) 0)))
(defmacro v-aux (p &optional (i 0)) `(cffi:mem-ref ,p :int32 (+ (* ,i +value-size+) 4)))
(defmacro v-a (p &optional (i 0)) `(cffi:mem-ref ,p :int64 (+ (* ,i +value-size+) 8)))
(defmacro v-b (p &optional (i 0)) `(cffi:mem-ref ,p :int64 (+ (* ,i +value-size+) 16)))
(defmacro v-a-double (p &optional (i 0)) `(cffi:mem-ref ,p :double (+ (* ,i +value-size+) 8)))
(defmacro v-b-double (p &optional (i 0)) `(cffi:mem-ref ,p :double (+ (* ,i +value-size+) 16)))
(defmacro v-a-pointer (p &optional (i 0)) `(cffi:mem-ref ,p :pointer (+ (* ,i +value-size+) 8)))

(defmacro define-shim (lisp-name c-name return &rest args)
  `(progn (declaim (inline ,lisp-name))
          (cffi:defcfun (,c-name ,lisp-name) ,return ,@args)))

;;; Lifecycle (lifecycle.rs)
(define-shim %start "p4s_start" :int32 (spec :pointer) (len :int64))
(define-shim %stop "p4s_stop" :int32)
(define-shim %stop-report "p4s_stop_report" :pointer)
(define-shim %is-started "p4s_is_started" :int32)
(define-shim %generation "p4s_generation" :uint64)
(define-shim %version "p4s_version" :pointer)
(define-shim %version-info "p4s_version_info" :int32 (major :pointer) (minor :pointer) (micro :pointer))
(define-shim %pinned-libpython "p4s_pinned_libpython" :pointer)

;;; Errors (errors.rs)
(define-shim %last-error "p4s_last_error" :pointer)
(define-shim %error-pending "p4s_error_pending" :int32)
(define-shim %error-text "p4s_error_text" :pointer (part :int32))
(define-shim %error-object "p4s_error_object" :pointer)
(define-shim %error-clear "p4s_error_clear" :void)
(define-shim %error-set "p4s_error_set" :int32 (type :pointer) (message :pointer) (len :int64))
(define-shim %error-restore "p4s_error_restore" :int32)

;;; GIL and references (gil.rs)
(define-shim %gil-acquire "p4s_gil_acquire" :int32)
(define-shim %gil-release "p4s_gil_release" :int32)
(define-shim %gil-depth "p4s_gil_depth" :int32)
(define-shim %decref-later "p4s_decref_later" :void (obj :pointer) (generation :uint64))
(define-shim %decref "p4s_decref" :void (obj :pointer))
(define-shim %incref "p4s_incref" :void (obj :pointer))
(define-shim %decref-queue-length "p4s_decref_queue_length" :int64)

;;; Values (values.rs)
(define-shim %from-value "p4s_from_value" :pointer (v :pointer))
(define-shim %to-value "p4s_to_value" :int32 (obj :pointer) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %tuple-from "p4s_tuple_from" :pointer (vals :pointer) (n :int64))
(define-shim %list-from "p4s_list_from" :pointer (vals :pointer) (n :int64))
(define-shim %dict-from "p4s_dict_from" :pointer (keys :pointer) (vals :pointer) (n :int64))
(define-shim %set-from "p4s_set_from" :pointer (vals :pointer) (n :int64))
(define-shim %items "p4s_items" :int64 (obj :pointer) (out :pointer) (n :int64))
(define-shim %dict-items "p4s_dict_items" :int64 (obj :pointer) (keys :pointer) (vals :pointer) (n :int64))
(define-shim %str-utf32 "p4s_str_utf32" :int64 (obj :pointer) (buf :pointer) (cap :int64))
(define-shim %str-utf8 "p4s_str_utf8" :pointer (obj :pointer) (len :pointer))
(define-shim %bytes-data "p4s_bytes_data" :pointer (obj :pointer) (len :pointer))
(define-shim %long-to-hex "p4s_long_to_hex" :pointer (obj :pointer))
(define-shim %release-value "p4s_release_value" :void (v :pointer))

;;; Calls, names, attributes, items, code (call.rs)
(define-shim %call-packed "p4s_call_packed" :int32
  (callable :pointer) (args :pointer) (nargs :int64) (kwnames :pointer)
  (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %call-method-packed "p4s_call_method_packed" :int32
  (obj :pointer) (name :pointer) (args :pointer) (nargs :int64) (kwnames :pointer)
  (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %call "p4s_call" :pointer (callable :pointer) (args :pointer) (nargs :int64) (kwnames :pointer))
(define-shim %lookup "p4s_lookup" :pointer (name :pointer) (len :int64))
(define-shim %lookup-value "p4s_lookup_value" :int32 (name :pointer) (len :int64) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %set-global "p4s_set_global" :int32 (name :pointer) (len :int64) (value :pointer))
(define-shim %getattr-value "p4s_getattr_value" :int32 (obj :pointer) (name :pointer) (len :int64) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %getattr "p4s_getattr" :pointer (obj :pointer) (name :pointer) (len :int64))
(define-shim %setattr "p4s_setattr" :int32 (obj :pointer) (name :pointer) (len :int64) (value :pointer))
(define-shim %getitem "p4s_getitem" :int32 (obj :pointer) (key :pointer) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %setitem "p4s_setitem" :int32 (obj :pointer) (key :pointer) (value :pointer))
(define-shim %exec "p4s_exec" :int32 (code :pointer) (len :int64) (globals :pointer) (locals :pointer))
(define-shim %eval "p4s_eval" :int32 (code :pointer) (len :int64) (globals :pointer) (locals :pointer) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %import "p4s_import" :pointer (name :pointer) (len :int64))
(define-shim %main-dict "p4s_main_dict" :pointer)
(define-shim %none "p4s_none" :pointer)
(define-shim %type-name "p4s_type_name" :pointer (obj :pointer))
(define-shim %type-of "p4s_type_of" :pointer (obj :pointer))
(define-shim %repr "p4s_repr" :pointer (obj :pointer))
(define-shim %str "p4s_str" :pointer (obj :pointer))
(define-shim %iter "p4s_iter" :pointer (obj :pointer))
(define-shim %next "p4s_next" :int32 (iterator :pointer) (out :pointer) (scratch :pointer) (cap :int64))
(define-shim %len "p4s_len" :int64 (obj :pointer))
(define-shim %callable-p "p4s_callable_p" :int32 (obj :pointer))
(define-shim %isinstance "p4s_isinstance" :int32 (obj :pointer) (cls :pointer))
(define-shim %equal "p4s_equal" :int32 (a :pointer) (b :pointer))

;;; Output (output.rs)
(define-shim %set-output-handler "p4s_set_output_handler" :void (handler :pointer))
(define-shim %capture-output "p4s_capture_output" :int32 (stream :int32) (on :int32))

;;; Callbacks (callback.rs)
(define-shim %set-callback-handler "p4s_set_callback_handler" :void (call :pointer) (release :pointer))
(define-shim %make-callable "p4s_make_callable" :pointer (handle :int64) (name :pointer) (len :int64))
(define-shim %lisp-error-type "p4s_lisp_error_type" :pointer)
(define-shim %error-set-lisp "p4s_error_set_lisp" :int32 (handle :int64) (message :pointer) (len :int64))
(define-shim %error-lisp-handle "p4s_error_lisp_handle" :int64)

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
(define-shim %memoryview "p4s_memoryview" :pointer (data :pointer) (nbytes :int64) (format :pointer)
  (ndim :int32) (shape :pointer) (readonly :int32))

;;; Strings to and from the shim.
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
