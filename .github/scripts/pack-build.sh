#!/usr/bin/env bash
# CI, build job: after `cargo build --release --workspace`, packs what every test job of this
# operating system needs into ONE tar (the artifact), so that all Python versions of the OS test
# the very same shim:
#   target/release/libpy4cl2_cffi_shim.{so,dylib}, target/release/py4cl2-cffi-config,
#   target/release/shim.sha256, target/release/ci-tests.txt ("<label> <test executable>"),
#   and the prebuilt Rust test executables listed there (config crate + the shim's ABI test).
# The shim and the CLI are set aside before the test executables are built and put back after,
# so the packed ones are exactly those of the release build, whatever cargo does for the tests.
# Usage: .github/scripts/pack-build.sh OUT.tar
set -euo pipefail
out=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/../.."
case "$(uname -s)" in
  Darwin) shim=libpy4cl2_cffi_shim.dylib ;;
  *) shim=libpy4cl2_cffi_shim.so ;;
esac
rel=target/release
stage=target/ci-stage
rm -rf "$stage" && mkdir -p "$stage"
cp "$rel/$shim" "$rel/py4cl2-cffi-config" "$stage/"

shim_tests=(--test abi_every_version)
# The readelf check is ELF-only; the workflow checks the Mach-O shim with otool instead.
[ "$shim" = libpy4cl2_cffi_shim.so ] && shim_tests+=(--test no_libpython_link)
{
  cargo test --release --locked --no-run --message-format=json -p py4cl2-cffi-config -p py4cl2-cffi-cli
  cargo test --release --locked --no-run --message-format=json -p py4cl2-cffi-shim "${shim_tests[@]}"
} > "$stage/tests.json"

root=$(pwd -P)/
: > "$rel/ci-tests.txt"
# Each compiler-artifact line built with the test profile ("profile":{... "test":true}) and a
# non-null "executable" is one test executable (the CLI built for the CLI tests is not); the
# "target" and "profile" objects hold no nested object, so [^}]* stays inside them.
grep '"profile":{[^}]*"test":true' "$stage/tests.json" |
  sed -n 's/.*"target":{[^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p' |
  sort -u | while read -r name exe; do
    echo "$name ${exe#"$root"}" >> "$rel/ci-tests.txt"
  done
grep -q '^abi_every_version ' "$rel/ci-tests.txt" || { echo "pack-build: no ABI test found" >&2; exit 1; }

cp "$stage/$shim" "$stage/py4cl2-cffi-config" "$rel/"
if command -v sha256sum >/dev/null; then sum=(sha256sum); else sum=(shasum -a 256); fi
(cd "$rel" && "${sum[@]}" "$shim") > "$rel/shim.sha256"
cat "$rel/shim.sha256" "$rel/ci-tests.txt"
# shellcheck disable=SC2046 # one path per line, no spaces (cargo's target names)
tar -cf "$out" "$rel/$shim" "$rel/py4cl2-cffi-config" "$rel/shim.sha256" "$rel/ci-tests.txt" \
  $(cut -d' ' -f2 "$rel/ci-tests.txt")
