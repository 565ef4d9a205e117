#!/usr/bin/env python3
"""Cross-check the commit SHAs that .github/workflows/ci.yml pins its actions to.

The development machines reach PyPI but not GitHub, so a SHA cannot be looked up at its
source. Many source distributions on PyPI carry their project's .github/workflows/ (those
built from a git checkout, e.g. with setuptools-scm), and those workflows pin the same
actions. This script downloads the newest sdist of each named project, collects every
`uses: actions/<name>@<40 hex> # <release>` line, and reports, for each pin of ci.yml, how
many independent projects pin the same SHA under the same release.

    tools/action-pins.py                  # check ci.yml against the default projects
    tools/action-pins.py --survey         # list every pin seen, most widely used first
    tools/action-pins.py pytest black     # use these projects instead

Exit status: 0 when every pin of ci.yml is confirmed by at least --min projects (default 2)
and contradicted by none (a project giving the same release another SHA), 1 otherwise,
2 on bad usage or when PyPI cannot be reached.
"""

import argparse
import collections
import concurrent.futures
import io
import json
import pathlib
import re
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile

# Projects whose sdists shipped their workflows with SHA-pinned actions when ci.yml's pins
# were chosen (2026-11).
DEFAULT_PROJECTS = [
    "pytest", "black", "xarray", "aiohttp", "astropy", "pluggy", "structlog", "twine",
    "pyzmq", "rpds-py", "contourpy", "shap", "starlette", "pygithub", "croniter",
    "ujson", "argon2-cffi-bindings", "cachebox", "python-calamine", "pip-tools",
    "uv-dynamic-versioning", "django-debug-toolbar", "service-identity", "stamina",
]

PIN = re.compile(
    rb"uses:\s*(actions/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)?)@([0-9a-f]{40})[ \t]*"
    rb"(?:#\s*(?:tag=)?(v?[0-9][0-9.]*))?"
)
WORKFLOW = pathlib.Path(__file__).resolve().parent.parent / ".github/workflows/ci.yml"


def fetch(url):
    """Return the body of URL."""
    request = urllib.request.Request(url, headers={"User-Agent": "py4cl2-cffi action-pins"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def workflow_files(name, data):
    """Yield the contents of the .github/workflows/*.yml files inside an sdist."""
    if name.endswith(".zip"):
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [(m, lambda m=m: archive.read(m)) for m in archive.namelist()]
    else:
        archive = tarfile.open(fileobj=io.BytesIO(data))
        members = [(m.name, lambda m=m: archive.extractfile(m).read())
                   for m in archive.getmembers() if m.isfile()]
    for path, read in members:
        if "/.github/workflows/" in path and path.endswith((".yml", ".yaml")):
            yield read()


def pins_of(text):
    """Return {(action, sha, release)} for the pinned actions in one workflow's text."""
    return {(m.group(1).decode(), m.group(2).decode(),
             (m.group(3) or b"").decode().lstrip("v"))
            for m in PIN.finditer(text)}


def project_pins(project):
    """Return (project-version, pins) for the newest sdist of PROJECT on PyPI."""
    index = "https://pypi.org/pypi/%s/json" % project
    meta = json.loads(fetch(index))
    sdists = [u for u in meta["urls"] if u["packagetype"] == "sdist"]
    label = "%s-%s" % (project, meta["info"]["version"])
    if not sdists:
        return label, set()
    url = urllib.parse.urljoin(index, sdists[0]["url"])
    pins = set()
    for text in workflow_files(sdists[0]["filename"], fetch(url)):
        pins |= pins_of(text)
    return label, pins


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("projects", nargs="*", help="PyPI projects to read (default: a fixed list)")
    parser.add_argument("--survey", action="store_true", help="list every pin seen")
    parser.add_argument("--min", type=int, default=2, help="projects needed to confirm a pin")
    args = parser.parse_args()

    projects = args.projects or DEFAULT_PROJECTS
    seen = collections.defaultdict(set)       # (action, sha, release) -> projects
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = {pool.submit(project_pins, p): p for p in projects}
        for future in concurrent.futures.as_completed(futures):
            try:
                label, pins = future.result()
            except Exception as error:  # one unreachable project is reported, not fatal
                print("warning: %s: %s" % (futures[future], error), file=sys.stderr)
                continue
            for pin in pins:
                seen[pin].add(label)
    if not seen:
        print("error: no pinned action found; is PyPI reachable?", file=sys.stderr)
        return 2

    if args.survey:
        for (action, sha, release), who in sorted(seen.items(), key=lambda kv: -len(kv[1])):
            print("%3d  %-28s %s  v%-8s %s" % (len(who), action, sha, release,
                                               " ".join(sorted(who)[:4])))
        return 0

    ok = True
    for action, sha, release in sorted(pins_of(WORKFLOW.read_bytes())):
        confirming = seen.get((action, sha, release), set())
        contradicting = sorted({p for (a, s, r), who in seen.items()
                                if a == action and r == release and s != sha for p in who})
        good = len(confirming) >= args.min and not contradicting
        ok &= good
        print("%-4s %s@%s v%s: %d projects agree%s" % (
            "ok" if good else "FAIL", action, sha[:12], release, len(confirming),
            "; other SHA for this release in " + ", ".join(contradicting) if contradicting else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
