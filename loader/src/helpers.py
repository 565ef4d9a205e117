"""_py4cl2_cffi: the Python side of py4cl2-cffi, installed in sys.modules at every start.

The loader runs this file once per interpreter (a fresh initialisation), in a new module
object registered as ``_py4cl2_cffi``; it never lives in, or depends on, ``__main__``. The
loader then calls ``post_init`` (once per fresh initialisation), ``begin_session`` at every
start (fresh or resumed) and ``end_session`` at a soft stop; the shim and the Lisp side call
the other functions. Only the stdlib is imported before ``post_init`` has set the paths. Valid Python 3.8 to 3.15.
"""

import sys
import os
import gc
import threading

__all__ = []

# --- Start --------------------------------------------------------------------------------

def post_init(prefix, executable, site_dirs, pinned):
    """Called by the loader once after each fresh initialisation, before begin_session.

    prefix, executable: the interpreter's recorded sys.prefix and executable; site_dirs: its
    site-packages folders; pinned: the extension modules an earlier start left mapped."""
    if os.path.realpath(sys.prefix) != os.path.realpath(prefix):
        # Python did not arrive at the requested prefix from the program name. This happens
        # when a pinned libpython is initialised again (it keeps the paths it computed the
        # first time) or for unusual layouts: put the venv/conda prefix and its site-packages
        # in place by hand.
        import site
        old = [p for p in sys.path if p.rstrip('/').endswith(('site-packages', 'dist-packages'))]
        sys.path[:] = [p for p in sys.path if p not in old]
        sys.prefix = sys.exec_prefix = prefix
        sys.executable = executable
        for p in site_dirs:
            if os.path.isdir(p):
                site.addsitedir(p)
    if pinned:
        sys.meta_path.insert(0, _pinned_extension_finder(pinned))


def _pinned_extension_finder(pinned_files):
    class Py4cl2PinnedExtensionFinder:
        """Refuses to import extension modules that an earlier start left mapped."""
        pinned = {os.path.realpath(p) for p in pinned_files}
        names = {os.path.basename(p).split('.')[0] for p in pinned_files}

        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.rpartition('.')[2] not in cls.names:
                return None
            import importlib.machinery
            spec = importlib.machinery.PathFinder.find_spec(name, path, target)
            if spec is not None and spec.origin and os.path.realpath(spec.origin) in cls.pinned:
                raise ImportError(
                    "py4cl2-cffi: cannot import %s again: its extension module %s stayed loaded "
                    "when Python was finalised earlier in this process and cannot be initialised "
                    "a second time; start a fresh process to import it" % (name, spec.origin),
                    name=name, path=spec.origin)
            return None
    return Py4cl2PinnedExtensionFinder


# --- Sessions -----------------------------------------------------------------------------
#
# A session is what Lisp sees between a pystart and a pystop. A soft stop (used when the
# interpreter cannot be unloaded, e.g. numpy pins libpython) ends the session without
# finalising Python; ``end_session`` then puts the interpreter back into the state a fresh
# start gives, as far as that is safe.

_pristine_main = None      # __main__'s dict right after the first start
_session = None            # what begin_session recorded


def _installed_roots():
    """Folders whose modules count as installed (stdlib, site-packages), never dropped."""
    import sysconfig
    import site
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            roots.add(sysconfig.get_paths()[key])
        except Exception:
            pass
    try:
        roots.update(site.getsitepackages())
    except Exception:
        pass
    try:
        roots.add(site.getusersitepackages())
    except Exception:
        pass
    for p in sys.path:
        if p.rstrip("/").endswith(("site-packages", "dist-packages")):
            roots.add(p)
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.join(prefix, "lib"))
        roots.add(os.path.join(prefix, "lib64"))
    return tuple(sorted({os.path.realpath(r) for r in roots if r}))


def _extension_suffixes():
    import importlib.machinery
    return tuple(importlib.machinery.EXTENSION_SUFFIXES)


def begin_session():
    """Records the state a session starts from (called by the loader at every start)."""
    global _pristine_main, _session
    main = sys.modules["__main__"].__dict__
    if _pristine_main is None:
        _pristine_main = dict(main)
    _session = {
        "modules": set(sys.modules),
        "path": list(sys.path),
        "meta_path": list(sys.meta_path),
        "path_hooks": list(sys.path_hooks),
        "switch_interval": sys.getswitchinterval(),
        "recursion_limit": sys.getrecursionlimit(),
    }


def _droppable(name, module, roots, ext):
    """Whether a module imported during the session can be dropped from sys.modules: it is
    user code (not installed, not ours) and not an extension module, which could refuse or
    crash on being initialised a second time in this process."""
    if name == "__main__" or name.startswith("_py4cl2_cffi") or name in sys.builtin_module_names:
        return False
    files = []
    f = getattr(module, "__file__", None)
    if isinstance(f, str):
        files.append(f)
    else:
        files.extend(p for p in (getattr(module, "__path__", None) or []) if isinstance(p, str))
    if not files:
        return False          # made in memory, or frozen: nothing to read again
    for f in files:
        if f.endswith(ext):
            return False
        real = os.path.realpath(f)
        if any(real == r or real.startswith(r + os.sep) for r in roots):
            return False
    return True


def end_session():
    """Ends a session without finalising Python (a soft stop). Returns the names of the
    modules it dropped. Resets: __main__'s globals, sys.path, sys.meta_path, sys.path_hooks,
    the switch interval and recursion limit, and the modules of user code imported during the
    session; then collects garbage. Keeps: every installed module (stdlib, site-packages, all
    extension modules), Python threads that are still running, and process-wide state."""
    dropped = []
    if _session is None:
        return dropped
    main = sys.modules["__main__"].__dict__
    main.clear()
    main.update(_pristine_main or {})
    roots, ext = _installed_roots(), _extension_suffixes()
    for name in [n for n in list(sys.modules) if n not in _session["modules"]]:
        module = sys.modules.get(name)
        if module is not None and _droppable(name, module, roots, ext):
            del sys.modules[name]
            dropped.append(name)
    sys.path[:] = _session["path"]
    sys.meta_path[:] = _session["meta_path"]
    sys.path_hooks[:] = _session["path_hooks"]
    sys.path_importer_cache.clear()
    sys.setswitchinterval(_session["switch_interval"])
    sys.setrecursionlimit(_session["recursion_limit"])
    gc.collect()
    return sorted(dropped)


# --- Facts the loader reads before stopping -----------------------------------------------

def live_threads():
    """Python threads other than the calling one that are still running (not the dummy
    entries threading makes for foreign threads), as 'name (daemon)' strings."""
    me = threading.current_thread()
    out = []
    for t in threading.enumerate():
        if t is me or isinstance(t, threading._DummyThread) or t is threading.main_thread():
            continue
        if t.is_alive():
            out.append("%s%s" % (t.name, " (daemon)" if t.daemon else ""))
    return out


def extension_files():
    """The real paths of the shared objects of every loaded extension module."""
    ext = _extension_suffixes()
    files = set()
    for m in list(sys.modules.values()):
        f = getattr(m, "__file__", None)
        if isinstance(f, str) and (f.endswith(ext) or f.endswith((".so", ".dylib")) or ".so." in f):
            files.add(os.path.realpath(f))
    return sorted(files)


# --- Errors --------------------------------------------------------------------------------

class PythonStopping(KeyboardInterrupt):
    """Raised in a thread that is inside Python when pystop asks it to leave."""

    def __str__(self):
        return super().__str__() or "pystop asked this thread to leave Python"


class LispError(Exception):
    """A Lisp condition signalled inside a Lisp function that Python called."""


class LispObject:
    """A Lisp object (structure or CLOS instance) seen from Python: reading or setting an
    attribute calls python-getattr / python-setattr in Lisp."""

    __slots__ = ("_lisp_call", "_lisp_handle")

    def __init__(self, call, handle):
        object.__setattr__(self, "_lisp_call", call)
        object.__setattr__(self, "_lisp_handle", handle)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        ok, value = object.__getattribute__(self, "_lisp_call")(0, name)
        if ok:
            return value
        raise AttributeError(value)

    def __setattr__(self, name, value):
        ok, message = object.__getattribute__(self, "_lisp_call")(1, name, value)
        if not ok:
            raise AttributeError(message)

    def __delattr__(self, name):
        raise AttributeError("Lisp object attributes cannot be deleted: " + name)

    def __repr__(self):
        return object.__getattribute__(self, "_lisp_call")(2)

    def __dir__(self):
        return list(object.__getattribute__(self, "_lisp_call")(3))


class LispCharacter(str):
    """A Lisp character seen from Python: a str of length 1 that py4cl2-cffi converts back to a Lisp character. str(c) is the plain str."""

    # Made by the shim from a Lisp character (values.rs keeps the class and the instances of
    # code points 0..256); it behaves as the plain str in Python (==, hashing, json.dumps,
    # concatenation) and the shim converts it back to a character.
    __slots__ = ()


# The public face, importable as `py4cl2_cffi` from Python code (pickle finds LispCharacter
# there).
import types as _types

py4cl2_cffi = _types.ModuleType("py4cl2_cffi", "What Python sees of Lisp (py4cl2-cffi).")
for _cls in (LispError, PythonStopping, LispObject, LispCharacter):
    _cls.__module__ = "py4cl2_cffi"
    setattr(py4cl2_cffi, _cls.__name__, _cls)
sys.modules["py4cl2_cffi"] = py4cl2_cffi
del _cls, _types


def type_name(obj):
    """The qualified name of obj's type: 'int', 'numpy.ndarray', 'collections.OrderedDict'
    (builtins without their module)."""
    t = type(obj)
    return t.__qualname__ if t.__module__ == "builtins" else t.__module__ + "." + t.__qualname__


def format_exception(e):
    """The traceback of e as Python prints it, ending with the 'Type: message' line."""
    import traceback
    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


# --- Builtins that need a caller's frame ----------------------------------------------------
#
# Called from Lisp there is no Python frame, so exec('x = 1') or globals() would fail with
# "frame does not exist". Lisp's name lookup hands out these versions instead, which use
# __main__ as the caller's globals.

def _main_globals():
    return sys.modules["__main__"].__dict__


def exec_in_main(source, globals=None, locals=None, **kwargs):
    """exec() with __main__'s globals when none are given."""
    return exec(source, _main_globals() if globals is None else globals, locals, **kwargs)


def eval_in_main(source, globals=None, locals=None):
    """eval() with __main__'s globals when none are given."""
    return eval(source, _main_globals() if globals is None else globals, locals)


def globals_of_main():
    """globals() of __main__."""
    return _main_globals()


def locals_of_main():
    """locals() of __main__ (its globals)."""
    return _main_globals()


_no_arg = object()


def vars_of_main(obj=_no_arg):
    """vars(); with no argument, __main__'s globals."""
    return _main_globals() if obj is _no_arg else vars(obj)


def dir_of_main(obj=_no_arg):
    """dir(); with no argument, the sorted names of __main__'s globals."""
    return sorted(_main_globals()) if obj is _no_arg else dir(obj)


import builtins as _builtins

FRAME_FREE_BUILTINS = {
    id(_builtins.exec): exec_in_main,
    id(_builtins.eval): eval_in_main,
    id(_builtins.globals): globals_of_main,
    id(_builtins.locals): locals_of_main,
    id(_builtins.vars): vars_of_main,
    id(_builtins.dir): dir_of_main,
}


def frame_free(obj):
    """obj, or its frame-free stand-in when obj is one of the builtins above."""
    return FRAME_FREE_BUILTINS.get(id(obj), obj)


# --- Output --------------------------------------------------------------------------------

import io


class LispStream(io.TextIOBase):
    """sys.stdout / sys.stderr replacement that hands each write to Lisp at once."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, write, name, fileno):
        self._write, self._name, self._fileno = write, name, fileno

    @property
    def name(self):
        return self._name

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if s:
            self._write(s)
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        return self._fileno


# Output routes: where the output of a Python thread goes. A thread started while Lisp code
# runs takes the route of that Lisp code (its current output stream); the shim reads the route
# back when the thread writes. `route_of_caller` is set by the shim at start.

route_of_caller = None


def _route_recording_start(start):
    def start_with_route(self, *args, **kwargs):
        if route_of_caller is not None and not hasattr(self, "_py4cl2_cffi_route"):
            try:
                self._py4cl2_cffi_route = route_of_caller()
            except Exception:
                self._py4cl2_cffi_route = 0
        return start(self, *args, **kwargs)
    start_with_route.__wrapped__ = start
    start_with_route.__doc__ = start.__doc__
    start_with_route.__name__ = "start"
    return start_with_route


if not hasattr(threading.Thread.start, "__wrapped__"):
    threading.Thread.start = _route_recording_start(threading.Thread.start)


def route_of_current_thread():
    """The output route recorded for the calling Python thread (0: none)."""
    return getattr(threading.current_thread(), "_py4cl2_cffi_route", 0)


# --- Arrays: numpy over Lisp memory (lisp/src/arrays.lisp) --------------------------------
_lent = {}
def _as_numpy(mv, cplx, zero_d):
    import numpy
    a = numpy.asarray(mv)
    if cplx:
        a = a.view(numpy.complex128 if a.itemsize == 8 else numpy.complex64)
    if zero_d:
        a = a.reshape(())
    return a
def array_share(mv, cplx, zero_d):
    import numpy, weakref
    a = _as_numpy(mv, cplx, zero_d)
    root = a
    while isinstance(root, numpy.ndarray) and root.base is not None:
        root = root.base
    _lent[id(mv)] = (weakref.ref(a), weakref.ref(root))
    return a
def array_copy_of(mv, cplx, zero_d):
    return _as_numpy(mv, cplx, zero_d).copy()
def array_empty(shape, fmt, cplx):
    import numpy
    dt = numpy.dtype(fmt)
    if cplx:
        dt = numpy.dtype(numpy.complex128 if dt.itemsize == 8 else numpy.complex64)
    return numpy.zeros(shape, dtype=dt)
def object_array(items, shape):
    import numpy
    try:
        a = numpy.fromiter(items, dtype=object, count=len(items))
    except (TypeError, ValueError):     # numpy before 1.23 cannot fill object arrays this way
        a = numpy.empty(len(items), dtype=object)
        for i, v in enumerate(items):
            a[i] = v
    return a.reshape(shape)
def array_bool(mv, shape):
    import numpy
    return numpy.asarray(mv).astype(bool).reshape(shape)
def array_native(a):
    import numpy
    try:
        dt = a.dtype
    except AttributeError:
        return None
    if dt.kind == 'f' and dt.itemsize < 4:
        return a.astype(numpy.float32)
    if dt.kind == 'f' and dt.itemsize > 8:
        return a.astype(numpy.float64)
    if dt.kind == 'c' and dt.itemsize > 16:
        return a.astype(numpy.complex128)
    if dt.kind in 'biufc' and not dt.isnative:
        return a.astype(dt.newbyteorder('='))
    return None
def _still_used(mv, refs):
    if refs is not None and any(r() is not None for r in refs):
        return True
    try:
        mv.release()
        return False
    except BufferError:
        return True
def array_release(mv):
    refs = _lent.pop(id(mv), None)
    if _still_used(mv, refs):
        import gc
        gc.collect()
        return not _still_used(mv, refs)
    return True


# --- Small helpers the Lisp side calls --------------------------------------------------------

def fraction(n, d):
    import fractions
    return fractions.Fraction(n, d)


def slot_list(o):
    return [n for n in dir(o) if not callable(getattr(o, n, None))]


def method_list(o):
    return [n for n in dir(o) if callable(getattr(o, n, None))]


def getitem(o, *idx):
    return o[idx[0] if len(idx) == 1 else idx]


def setitem(o, v, *idx):
    o[idx[0] if len(idx) == 1 else idx] = v


def generator(f, stop):
    while True:
        v = f()
        if v == stop:
            return
        yield v


def numpy_available():
    import importlib.util
    return importlib.util.find_spec("numpy") is not None


# --- What defpyfun and defpymodule read about callables (lisp/src/modules.lisp) ---------------
#
# One call per module tree: names, signatures (parameter name, kind, and whether its default is
# absent, a plain value or only a repr), docstrings and whether each is a class.

def _signature(o):
    import inspect
    try:
        s = inspect.signature(o)
    except Exception:
        return None, None
    params = []
    for p in s.parameters.values():
        d = p.default
        if d is p.empty:
            flag, value = 0, None
        elif d is None or isinstance(d, (bool, int, float, str)):
            flag, value = 1, d
        else:
            try:
                flag, value = 2, repr(d)
            except Exception:
                flag, value = 2, '?'
        params.append((p.name, int(p.kind), flag, value))
    return str(s), params

def _doc(o):
    import inspect
    try:
        d = inspect.getdoc(o)
    except Exception:
        d = None
    return d if isinstance(d, str) else None

def _entry(name, o):
    import inspect
    s, params = _signature(o)
    return (name, s, params, _doc(o), inspect.isclass(o))

def module_info(name, submodules, ignore_errors):
    import importlib, pkgutil, types, warnings
    out = []
    def walk(modname, subs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                m = importlib.import_module(modname)
        except BaseException as e:
            if not ignore_errors or modname == name:
                raise
            return
        funcs = []
        for n in dir(m):
            if n.startswith('_'):
                continue
            try:
                o = getattr(m, n)
            except Exception:
                continue
            if callable(o) and not isinstance(o, types.ModuleType):
                funcs.append(_entry(n, o))
        out.append((modname, funcs))
        if subs is True or subs == 'hidden':
            if hasattr(m, '__path__'):
                for info in pkgutil.iter_modules(m.__path__):
                    if info.name in ('tests', 'conftest', 'setup'):
                        continue
                    if subs == 'hidden' or not info.name.startswith('_'):
                        walk(modname + '.' + info.name, subs)
        elif subs:
            for s in subs:
                if isinstance(s, (list, tuple)):
                    walk(modname + '.' + s[0], list(s[1:]))
                else:
                    walk(modname + '.' + s, None)
    walk(name, submodules)
    return out

def function_info(module, name):
    import importlib
    if module:
        o = getattr(importlib.import_module(module), name)
    else:
        import __main__, builtins
        parts = name.split('.')
        if hasattr(__main__, parts[0]):
            o = getattr(__main__, parts[0])
        elif hasattr(builtins, parts[0]):
            o = getattr(builtins, parts[0])
        else:
            o = importlib.import_module(parts[0])
        for p in parts[1:]:
            o = getattr(o, p)
    return _entry(name, o)


# --- The end marker of the iterate clause `pyfor` (lisp/src/pyfor.lisp) ----------------------

class _PyforEnd:
    """What next() returns to Lisp's pyfor when the iterator is exhausted."""
    __slots__ = ()

    def __repr__(self):
        return "<end of a pyfor iteration>"


pyfor_end = _PyforEnd()
