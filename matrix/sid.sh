#!/usr/bin/env bash
# The matrix's Debian sid part: CPython 3.14 and 3.15, SBCL 2.6 and ECL 24 from Debian's
# packages, in the root that tools/sid-root.sh builds once and caches. With the SAME shim and
# test executables built on this host (each row prints the shim's checksum):
#   1. the Rust test executables (config, loader, the shim's ABI / threads / version-switching /
#      leak suites) against 3.14 and 3.15, required (PY4CL2_CFFI_REQUIRE_ALL: a missing one fails);
#   2. the Lisp suite on SBCL and ECL × 3.14, 3.15 × Debian's numpy (the system interpreter)
#      and numpy from pip wheels (a venv) — its SWITCH-VERSIONS-IN-ONE-PROCESS test switches
#      3.14 ↔ 3.15 in one Lisp process.
# Prints how long each part took, and as its last line "sid: N passed, N failed, N skipped"
# (Lisp rows and Rust test executables). A root that cannot be built FAILS the run with the
# reason; it is never skipped.
#
# Usage: matrix/sid.sh                 Environment: LISP (default "sbcl ecl")
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
here=$(pwd)
out="$here/target/matrix/sid"
rm -rf "$out"
mkdir -p "$out"
t_all=$(date +%s)
part() { echo "sid: $1 took $(( $(date +%s) - $2 ))s" | tee -a "$out/times.txt" >&2; }
fail() {
  echo "sid: FAILED: $*" >&2
  echo "0 0" > "$out/total.txt"
  echo "sid: 0 passed, 1 failed"
  exit 1
}

t=$(date +%s)
tools/sid-root.sh build >/dev/null || fail "the Debian sid root could not be built (reason above)"
part "the sid root (tools/sid-root.sh build)" "$t"

shim="$here/target/release/libpy4cl2_cffi_shim.so"
[ -f "$shim" ] || fail "no shim at $shim (cargo build --release --workspace first)"
shim_sum=$(sha256sum "$shim" | cut -c1-16)
echo "sid: shim $shim sha256 $shim_sum…" >&2

# --- 1. Rust test executables, built here, run inside the root -------------------------------
t=$(date +%s)
cargo test --release --workspace --no-run --message-format=json --quiet 2>"$out/cargo.err" >"$out/tests.json" \
  || { cat "$out/cargo.err" >&2; fail "cargo test --no-run"; }
# Test executables ("profile":{..."test":true}, "executable" not null), by target name. The
# shim tests that assume this host's own interpreters (specific versions, the readelf check of
# the same file, numpy pins between host versions) are left to the host run, and so are the
# binaries' harnesses that hold no test.
grep '"profile":{[^}]*"test":true' "$out/tests.json" |
  sed -n 's/.*"target":{[^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p' | sort -u |
  grep -v -E '^(bad_configuration|numpy_pinning|no_libpython_link|floor-bench|py4cl2-cffi-config) ' > "$out/rust-tests.txt"
[ -s "$out/rust-tests.txt" ] || fail "no Rust test executables found"
part "building the Rust test executables (host, cached)" "$t"

rust_pass=0; rust_fail=0; rust_rows=()
t_rust=$(date +%s)
while read -r name exe; do
  t=$(date +%s)
  log="$out/rust-$name.log"
  tools/sid-root.sh run env PY4CL2_CFFI_PYTHONS=system PY4CL2_CFFI_VENVS=/opt/py4cl2-cffi/venvs \
      PY4CL2_CFFI_VERSIONS="3.14 3.15" PY4CL2_CFFI_REQUIRE_ALL=1 PY4CL2_CFFI_SHIM="$shim" \
      "$exe" --nocapture </dev/null >"$log" 2>&1
  status=$?
  read -r passed failed < <(awk '/^test result:/ { for (i = 1; i < NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
      END { print p + 0, f + 0 }' "$log")
  if [ "$status" -ne 0 ] || [ "$failed" != 0 ]; then
    rust_fail=$((rust_fail + 1)); result=FAILED
    grep -E '^(---- |thread .* panicked|test .* FAILED)' "$log" | head -10 >&2
  else
    rust_pass=$((rust_pass + 1)); result=ok
  fi
  secs=$(( $(date +%s) - t ))
  # Checks a test skipped loudly (e.g. those needing a pyenv version the root does not have).
  skips=$(grep -c '^SKIPPED' "$log")
  rust_rows+=("$(printf '%-22s %-7s %4s tests passed, %s failed, %s skip notes %4ss' "$name" "$result" "$passed" "$failed" "$skips" "$secs")")
  echo "sid: rust $name on 3.14 + 3.15: $result ($passed passed, $failed failed, $skips skip notes, ${secs}s)" >&2
done < "$out/rust-tests.txt"
part "the Rust suites inside the root" "$t_rust"

# --- 2. the Lisp suite: SBCL and ECL × 3.14, 3.15 × Debian numpy, pip numpy ------------------
t=$(date +%s)
rows="3.14 Debian /usr/bin/python3.14
3.14 pip /opt/py4cl2-cffi/venvs/3.14
3.15 Debian /usr/bin/python3.15
3.15 pip /opt/py4cl2-cffi/venvs/3.15"
tools/sid-root.sh run env MATRIX_ROWS="$rows" MATRIX_OUT="$out" LISP="${LISP:-sbcl ecl}" \
    PY4CL2_CFFI_VENVS=/opt/py4cl2-cffi/venvs matrix/run.sh </dev/null > "$out/lisp.txt" 2> >(tee "$out/lisp.err" >&2)
lisp_status=$?
part "the Lisp suites inside the root" "$t"

cat "$out/lisp.txt"
read -r lp lf ls < <(tail -1 "$out/lisp.txt" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')
if ! [[ "${lp:-x}" =~ ^[0-9]+$ ]]; then lp=0; lf=1; ls=0; fi
[ "$lisp_status" -ne 0 ] && [ "$lf" = 0 ] && lf=1

echo
echo "Rust test executables inside the sid root (3.14 + 3.15, shim sha256 $shim_sum…):"
for r in "${rust_rows[@]}"; do echo "  $r"; done
# shellcheck disable=SC2016 # expanded by the shell inside the root
versions=$(tools/sid-root.sh run /bin/sh -c 'echo "$(python3.14 -c "import platform; print(platform.python_version())"), $(python3.15 -c "import platform; print(platform.python_version())")"' 2>/dev/null)
{
  for r in "${rust_rows[@]}"; do
    read -r name result n _ _ f _ k _ <<<"$r"
    echo "| 3.14, 3.15 | ${versions:-?} | Debian, pip | Rust tests \`$name\` | $result | $n passed, $f failed ($k skip notes) |"
  done
} > "$out/rust-table.md"
echo
cat "$out/times.txt"
part "the whole sid part" "$t_all"
pass=$((lp + rust_pass)); failn=$((lf + rust_fail))
echo "$pass $failn $ls" > "$out/total.txt"
echo "sid: $pass passed, $failn failed, $ls skipped"
[ "$failn" = 0 ]
