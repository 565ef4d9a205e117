#!/usr/bin/env bash
# CI: checks that the built shim links no libpython (ELF: no NEEDED libpython*; Mach-O: no
# libpython / Python.framework load command) and, on macOS, that its install name is @rpath.
# Usage: .github/scripts/check-shim.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(uname -s)" = Darwin ]; then
  shim=target/release/libpy4cl2_cffi_shim.dylib
  otool -L "$shim"
  if otool -L "$shim" | tail -n +2 | grep -Ei 'libpython|Python\.framework'; then
    echo "check-shim: the shim links Python" >&2; exit 1
  fi
  id=$(otool -D "$shim" | tail -n +2)
  [ "$id" = "@rpath/libpy4cl2_cffi_shim.dylib" ] || { echo "check-shim: install name is '$id'" >&2; exit 1; }
else
  shim=target/release/libpy4cl2_cffi_shim.so
  readelf -d "$shim" | grep NEEDED
  if readelf -d "$shim" | grep NEEDED | grep -i libpython; then
    echo "check-shim: the shim links libpython" >&2; exit 1
  fi
fi
echo "check-shim: $shim links no Python"
