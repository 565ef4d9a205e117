#!/usr/bin/env bash
# Makes (once) a venv with numpy and matplotlib for every CPython 3.8–3.13 found under pyenv,
# in a cache folder; a venv made earlier with fewer packages gets the missing ones added.
# Usage: tools/make-venvs.sh [VERSION-PREFIX...]   (e.g. 3.8 3.12; default: all)
# Prints one line per venv: "<X.Y> <venv folder>". The cache folder is
# $PY4CL2_CFFI_VENVS, else ${XDG_CACHE_HOME:-~/.cache}/py4cl2-cffi/venvs.
set -euo pipefail
root="${PY4CL2_CFFI_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/py4cl2-cffi/venvs}"
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
mkdir -p "$root"
want=("$@")
for prefix in $(printf '%s\n' "$pyenv_root"/versions/3.* | sort -V); do
  [ -x "$prefix/bin/python3" ] || continue
  xy=$("$prefix/bin/python3" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  case "$xy" in 3.8|3.9|3.10|3.11|3.12|3.13) ;; *) continue ;; esac
  if [ ${#want[@]} -gt 0 ]; then
    hit=0; for w in "${want[@]}"; do [ "$w" = "$xy" ] && hit=1; done
    [ $hit = 1 ] || continue
  fi
  venv="$root/$xy"
  case "$xy" in
    3.8) packages='numpy<2 matplotlib' ;;
    *)   packages='numpy>=2 matplotlib' ;;
  esac
  stamp="$prefix|$packages"
  if [ ! -f "$venv/.complete" ] || [ "$(head -1 "$venv/.complete" | cut -d'|' -f1)" != "$prefix" ]; then
    rm -rf "$venv"
    "$prefix/bin/python3" -m venv "$venv" >&2
  fi
  if [ "$(cat "$venv/.complete" 2>/dev/null)" != "$stamp" ]; then
    # shellcheck disable=SC2086 # the package list is meant to split into words
    "$venv/bin/python" -m pip install --disable-pip-version-check -q $packages >&2
    echo "$stamp" > "$venv/.complete"
  fi
  echo "$xy $venv"
done
