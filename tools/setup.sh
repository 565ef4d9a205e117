#!/usr/bin/env bash
# Installs what py4cl2-cffi needs on a fresh Debian machine, then builds it.
# - Debian packages: SBCL, ECL and the Lisp libraries (cffi, alexandria, trivial-garbage,
#   bordeaux-threads, fiveam, iterate); binutils (readelf) for a test; Debian's python3.11 with its
#   shared libpython and -config script (one of the interpreters the tests cover).
# - The Rust workspace in release mode (the shim, the config CLI, the floor benchmark).
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(sbcl ecl cl-cffi cl-alexandria cl-trivial-garbage cl-bordeaux-threads cl-fiveam cl-iterate
          binutils python3.11 python3.11-dev libpython3.11)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --release --workspace --quiet
