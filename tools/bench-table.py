#!/usr/bin/env python3
"""Prints the per-version table of the last `make bench`: one line per benchmark, one column per
Lisp and Python version, each cell the ratio to the benchmark's first baseline (as its target
states it), its value, and met/MISSED when it has a target. Reads target/bench/*.csv (written
by bench/lisp/load.lisp's WRITE-RESULTS); the restart figures, over several versions at once,
are listed after the table. Usage: tools/bench-table.py [--markdown]"""
import csv, glob, os, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
markdown = "--markdown" in sys.argv[1:]
rows, restart, seen = [], [], set()
for path in sorted(glob.glob(os.path.join(root, "target", "bench", "*.csv"))):
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = (r["lisp"], r["python"], r["benchmark"])
            if key in seen:
                continue  # later rows of a benchmark hold its other baselines
            seen.add(key)
            (restart if os.path.basename(path).startswith("restart-") else rows).append(r)

def version_key(c):
    lisp, py = c
    return (0 if lisp == "sbcl" else 1, [int(x) for x in py.split(".")])

columns = sorted({(r["lisp"], r["python"]) for r in rows}, key=version_key)
benchmarks = list(dict.fromkeys(r["benchmark"] for r in rows))
cells = {(r["lisp"], r["python"], r["benchmark"]): r for r in rows}

def num(s):
    x = float(s)
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"

def cell(r):
    if r is None:
        return ""
    text = f"{num(r['value'])} {r['unit']}"
    if r["ratio"]:
        text = f"{num(r['ratio'])}x, " + text
    if r["met"]:
        text += " " + r["met"]
    return text

def target(b):
    for r in rows:
        if r["benchmark"] == b and r["target"]:
            return r["target"]
    return ""

header = ["benchmark", "target"] + [f"{l} {p}" for l, p in columns]
table = [[b, target(b)] + [cell(cells.get((l, p, b))) for l, p in columns] for b in benchmarks]
if markdown:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line in table:
        print("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |")
else:
    widths = [max(len(x) for x in col) for col in zip(header, *table)]
    for line in [header] + table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
for r in restart:
    print(f"{r['benchmark']} ({r['lisp']}, Python {r['python']}): {num(r['value'])} {r['unit']}")
