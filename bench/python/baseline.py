"""Python's own loops for the py4cl2-cffi benchmarks, run in a plain Python process.

The Lisp benchmark (bench/lisp/bench.lisp) runs the same code inside the embedded interpreter,
in the same run as the Lisp figures, and uses those numbers for its ratios; this script gives the
stand-alone figures for comparison. Usage: python3 bench/python/baseline.py [--json]
"""
import json
import sys
import timeit

STR_N = 1_000_000
SIN_N = 100_000

STR_LOOP = """
def _str_loop(n):
    for i in range(n):
        globals()['__builtins__'].__dict__['str'](i)
"""

SIN_LOOP = """
import math
def _sin_loop(n):
    x = 0.0
    for i in range(n):
        math.sin(x)
        x += 0.001
"""


def best(stmt, setup, n, repeat=5):
    """Best wall time over REPEAT runs of STMT (N calls inside)."""
    g = {}
    exec(setup, g)
    # In a script, __builtins__ is the module; keep the loop identical to the embedded one.
    g.setdefault("__builtins__", __builtins__)
    if isinstance(g["__builtins__"], dict):
        import builtins
        g["__builtins__"] = builtins
    return min(timeit.repeat(stmt, globals=g, number=1, repeat=repeat))


def main():
    t_str = best("_str_loop(%d)" % STR_N, STR_LOOP, STR_N)
    t_sin = best("_sin_loop(%d)" % SIN_N, SIN_LOOP, SIN_N)
    out = {
        "python": sys.version.split()[0],
        "str_calls_per_s": STR_N / t_str,
        "str_seconds": t_str,
        "sin_calls_per_s": SIN_N / t_sin,
        "sin_seconds": t_sin,
    }
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        print("Python %s" % out["python"])
        print("str(i)      x %9d: %.4f s  %12.0f calls/s" % (STR_N, t_str, out["str_calls_per_s"]))
        print("math.sin(x) x %9d: %.4f s  %12.0f calls/s" % (SIN_N, t_sin, out["sin_calls_per_s"]))


if __name__ == "__main__":
    main()
