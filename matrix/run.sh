#!/usr/bin/env bash
# Runs the Lisp suite against every CPython 3.8–3.13 found, each from a cached venv with numpy
# selected through `py4cl2-cffi-config use`, with ONE build of the shim; prints a version ×
# result table and a final "N passed, N failed" line. Exit status 1 if anything failed.
#
# Usage: matrix/run.sh [X.Y ...]     (default: every version tools/make-venvs.sh finds)
# Environment: LISP — the Lisp implementations to run the suite with, space-separated
# (default: "sbcl ecl", ECL only when installed).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# Each row's config file chooses the interpreter; an active venv or conda env would come first.
unset VIRTUAL_ENV CONDA_PREFIX
if [ -n "${LISP:-}" ]; then
  lisps=$LISP
elif command -v ecl >/dev/null; then
  lisps="sbcl ecl"
else
  lisps="sbcl"
  echo "matrix: SKIPPED ECL: not installed (apt-get install ecl)" >&2
fi
cli="$root/target/release/py4cl2-cffi-config"
case "$(uname -s)" in
  Darwin) shim="$root/target/release/libpy4cl2_cffi_shim.dylib" ;;
  *)      shim="$root/target/release/libpy4cl2_cffi_shim.so" ;;
esac
[ -x "$cli" ] && [ -f "$shim" ] || { echo "matrix: build first (cargo build --release --workspace)" >&2; exit 2; }
out="$root/target/matrix"
mkdir -p "$out"
if command -v sha256sum >/dev/null; then
  shim_sum=$(sha256sum "$shim" | cut -c1-16)
else
  shim_sum=$(shasum -a 256 "$shim" | cut -c1-16)
fi

mapfile -t venvs < <(tools/make-venvs.sh "$@")
if [ ${#venvs[@]} -eq 0 ]; then
  echo "matrix: no interpreter found" >&2
  exit 2
fi

total_pass=0; total_fail=0; total_skip=0
rows=()
for lisp in $lisps; do
for line in "${venvs[@]}"; do
  xy=${line%% *}; venv=${line#* }
  config="$out/config-$xy.toml"
  log="$out/$lisp-$xy.log"
  if ! PY4CL2_CFFI_CONFIG="$config" "$cli" use "$venv" >/dev/null 2>"$log"; then
    rows+=("$(printf '%-6s %-5s %-22s %s' "$xy" "$lisp" "config failed" "see $log")")
    total_fail=$((total_fail + 1)); continue
  fi
  version=$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')
  start=$(date +%s)
  case "$lisp" in
    sbcl) cmd=(sbcl --script lisp/run-tests.lisp) ;;
    ecl)  cmd=(ecl --norc --shell lisp/run-tests.lisp) ;;
    *)    echo "matrix: unknown LISP=$lisp" >&2; exit 2 ;;
  esac
  PY4CL2_CFFI_CONFIG="$config" PY4CL2_CFFI_SHIM="$shim" timeout 1200 "${cmd[@]}" >"$log" 2>&1
  status=$?
  secs=$(( $(date +%s) - start ))
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$summary"); f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$summary")
  s=$(grep -oE '[0-9]+ skipped' <<<"$summary" | cut -d' ' -f1)
  if [ -z "$summary" ]; then p=0; f=1; summary="no summary (exit $status)"; fi
  [ "$status" -ne 0 ] && [ "${f:-0}" = 0 ] && f=1
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + ${s:-0}))
  result=$([ "$f" = 0 ] && echo ok || echo FAILED)
  rows+=("$(printf '%-6s %-8s %-5s %-7s %-40s %4ss' "$xy" "$version" "$lisp" "$result" "$summary" "$secs")")
  echo "matrix: $lisp on $version: $summary" >&2
done
done

echo
echo "py4cl2-cffi matrix — one shim build (sha256 $shim_sum…), $(uname -sm)"
printf '%-6s %-8s %-5s %-7s %-40s %5s\n' "python" "version" "lisp" "result" "suite" "time"
for r in "${rows[@]}"; do echo "$r"; done
{
  echo "| Python | version | Lisp | result | suite |"
  echo "|---|---|---|---|---|"
  for r in "${rows[@]}"; do
    read -r xy version lsp result rest <<<"$r"
    echo "| $xy | $version | $lsp | $result | ${rest% *} |"
  done
} > "$out/table.md"
echo
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" = 0 ]
