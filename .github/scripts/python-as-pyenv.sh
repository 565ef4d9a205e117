#!/usr/bin/env bash
# CI: makes the interpreter that actions/setup-python installed look like a pyenv version
# (ROOT/versions/X.Y.Z -> its prefix), so that tools/make-venvs.sh, matrix/run.sh and the Rust
# tests, which look for interpreters under $PYENV_ROOT/versions, find it unchanged.
# Usage: .github/scripts/python-as-pyenv.sh ROOT PYTHON    (prints ROOT)
set -euo pipefail
root=$1 python=$2
prefix=$("$python" -c 'import sys; print(sys.base_prefix)')
version=$("$python" -c 'import platform; print(platform.python_version())')
case "$version" in
  *[!0-9.]*) echo "python-as-pyenv: $version is not a final release" >&2; exit 1 ;;
esac
mkdir -p "$root/versions"
ln -sfn "$prefix" "$root/versions/$version"
[ -x "$root/versions/$version/bin/python3" ] || { echo "python-as-pyenv: no bin/python3 in $prefix" >&2; exit 1; }
echo "python-as-pyenv: $root/versions/$version -> $prefix" >&2
echo "$root"
