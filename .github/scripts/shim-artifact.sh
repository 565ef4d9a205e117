#!/usr/bin/env bash
# CI, build job: puts the released shim of this platform into target/shim-artifact/ with a
# SHA256SUMS file, for users who have no Rust (docs/guide.md, "A prebuilt shim"), and prints
# the artifact's name, py4cl2-cffi-shim-<version>-<target triple>: the version is the Lisp
# system's (lisp/py4cl2-cffi.asd), the triple rustc's host.
# Usage: .github/scripts/shim-artifact.sh   (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/../.."
case "$(uname -s)" in
  Darwin) shim=libpy4cl2_cffi_shim.dylib ;;
  *) shim=libpy4cl2_cffi_shim.so ;;
esac
version=$(sed -n 's/^ *:version "\([^"]*\)".*/\1/p' lisp/py4cl2-cffi.asd | head -1)
triple=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$version" ] && [ -n "$triple" ] || { echo "shim-artifact: no version or target triple" >&2; exit 1; }
out=target/shim-artifact
rm -rf "$out" && mkdir -p "$out"
cp "target/release/$shim" "$out/"
if command -v sha256sum >/dev/null; then sum=(sha256sum); else sum=(shasum -a 256); fi
(cd "$out" && "${sum[@]}" "$shim" > SHA256SUMS)
cat "$out/SHA256SUMS" >&2
echo "py4cl2-cffi-shim-$version-$triple"
