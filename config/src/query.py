# Embedded in py4cl2-cffi-config and run once per interpreter as `python -I -c SCRIPT`.
# Prints one JSON object on stdout. Must stay valid Python 2.6+ and 3.x: old interpreters
# are listed as unusable, so the script has to run far enough to report their version.
import sys

# Never import from the current directory (only matters where -I is missing: Python 2).
sys.path[:] = [p for p in sys.path if p not in ("", ".")]

import json
import os

out = {
    "version_info": [
        sys.version_info[0],
        sys.version_info[1],
        sys.version_info[2],
        str(sys.version_info[3]),
        sys.version_info[4],
    ],
    "version_string": sys.version,
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", getattr(sys, "real_prefix", sys.prefix)),
    "abiflags": getattr(sys, "abiflags", ""),
    "platform": sys.platform,
    "problems": [],
}

try:
    out["implementation"] = sys.implementation.name
except AttributeError:
    import platform

    out["implementation"] = platform.python_implementation().lower()


def mapped_libpythons():
    """Files named libpython* mapped into this process, or None when that cannot be known."""
    try:
        f = open("/proc/self/maps")
    except (IOError, OSError):
        return None
    try:
        found = []
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6:
                path = parts[5].strip()
                if os.path.basename(path).startswith("libpython") and path not in found:
                    found.append(path)
        return found
    finally:
        f.close()


try:
    import sysconfig

    def var(name):
        value = sysconfig.get_config_var(name)
        if value is None:
            return ""
        return value

    def sub_prefix(value, prefix, prefix_real):
        # python-config.sh: `echo VALUE | sed "s#$prefix#$prefix_real#"` (first occurrence).
        if prefix and prefix in value:
            return value.replace(prefix, prefix_real, 1)
        return value

    version = var("VERSION")
    abiflags = out["abiflags"] or var("ABIFLAGS")
    shared = bool(var("Py_ENABLE_SHARED"))
    mapped = mapped_libpythons()
    out["py_enable_shared"] = shared
    out["mapped_libpython"] = mapped
    # Free-threaded builds (3.13t+) set Py_GIL_DISABLED; their abiflags contain "t".
    out["gil_disabled"] = bool(var("Py_GIL_DISABLED")) or "t" in abiflags
    out["multiarch"] = var("MULTIARCH")
    out["platlibdir"] = getattr(sys, "platlibdir", "lib")
    # PEP 668: the marker sits in the standard library folder; it does not apply in a venv.
    stdlib = sysconfig.get_paths().get("stdlib", "")
    in_venv = out["prefix"] != out["base_prefix"]
    out["externally_managed"] = bool(stdlib) and not in_venv and os.path.isfile(
        os.path.join(stdlib, "EXTERNALLY-MANAGED")
    )

    # Emulation of python-config.sh, the `pythonX.Y-config` script installed on every POSIX
    # system but macOS. Its prefix_real is the real path of the folder holding bin/.
    prefix = var("prefix")
    prefix_real = os.path.realpath(out["base_prefix"])
    libdir = sub_prefix(var("LIBDIR"), prefix, prefix_real)
    includedir = sub_prefix(var("INCLUDEDIR"), prefix, prefix_real)
    libpl = sub_prefix(var("LIBPL"), prefix, prefix_real)
    syslibs = var("LIBM") + " " + var("LIBC")
    libs_embed = "-lpython" + version + abiflags + " " + var("LIBS") + " " + syslibs
    # The script's PY_ENABLE_SHARED describes the build the script came from, which is the
    # build of this executable. Debian ships the script of its static interpreter beside the
    # sysconfig data of its shared library, so ask the process whether libpython is mapped.
    script_shared = shared
    if mapped is not None:
        script_shared = shared and len(mapped) > 0
    libplused = ""
    if not script_shared:
        libplused = "-L" + libpl
    inc = "-I" + includedir + "/python" + version + abiflags
    out["sh"] = {
        "ldflags": libplused + " -L" + libdir + " " + libs_embed,
        "includes": inc + " " + inc,
    }

    # Emulation of python-config.py, which macOS installs as `pythonX.Y-config`.
    libs = ["-lpython" + version + abiflags]
    libs.extend(var("LIBS").split() + var("SYSLIBS").split())
    if not var("Py_ENABLE_SHARED"):
        libs.insert(0, "-L" + var("LIBPL"))
    try:
        includes_py = (
            "-I" + sysconfig.get_path("include") + " -I" + sysconfig.get_path("platinclude")
        )
    except Exception:
        includes_py = ""
    out["py"] = {"ldflags": " ".join(libs), "includes": includes_py}

    # The shared libpython: candidates in order of preference; the caller keeps the first
    # that exists.
    candidates = []
    framework = var("PYTHONFRAMEWORK")
    if framework:
        candidates.append(os.path.join(var("PYTHONFRAMEWORKPREFIX"), var("LDLIBRARY")))
    elif shared:
        for name in (var("INSTSONAME"), var("LDLIBRARY")):
            if name:
                for d in (libdir, var("LIBDIR")):
                    if d:
                        candidates.append(os.path.join(d, name))
    if mapped:
        candidates.extend(mapped)
    out["libpython_candidates"] = candidates
except Exception:
    out["problems"].append("sysconfig failed: %s: %s" % (type(sys.exc_info()[1]).__name__, sys.exc_info()[1]))

try:
    import site

    out["site_packages"] = list(site.getsitepackages())
except Exception:
    try:
        from distutils.sysconfig import get_python_lib

        out["site_packages"] = [get_python_lib()]
    except Exception:
        out["site_packages"] = []

sys.stdout.write(json.dumps(out))
sys.stdout.write("\n")
