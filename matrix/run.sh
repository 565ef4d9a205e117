#!/usr/bin/env bash
# Runs the Lisp suite against every CPython 3.8–3.13 found, each from a cached venv with numpy
# selected through `py4cl2-cffi-config use`, with ONE build of the shim; prints a version ×
# result table (with each row's shim checksum) and a final "N passed, N failed" line. Exit
# status 1 if anything failed.
#
# Usage: matrix/run.sh [X.Y ...]     (default: every version tools/make-venvs.sh finds)
# Environment:
#   LISP         the Lisp implementations to run the suite with, space-separated
#                (default: "sbcl ecl", ECL only when installed)
#   MATRIX_ROWS  instead of tools/make-venvs.sh: rows "X.Y NUMPY-SOURCE SPEC", one per line
#                (SPEC: an executable or venv for `py4cl2-cffi-config use`; NUMPY-SOURCE: a
#                word for the table, e.g. Debian or pip); matrix/sid.sh uses it inside the
#                Debian sid root
#   MATRIX_OUT   the folder for logs, configs and table.md (default target/matrix)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
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
out="${MATRIX_OUT:-$root/target/matrix}"
mkdir -p "$out"
checksum() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -c1-16; else shasum -a 256 "$1" | cut -c1-16; fi
}
shim_sum=$(checksum "$shim")

if [ -n "${MATRIX_ROWS:-}" ]; then
  mapfile -t rows_in < <(grep -v '^[[:space:]]*$' <<<"$MATRIX_ROWS")
else
  mapfile -t venvs < <(tools/make-venvs.sh "$@")
  rows_in=()
  for line in ${venvs[@]+"${venvs[@]}"}; do rows_in+=("${line%% *} pip ${line#* }"); done
fi
if [ ${#rows_in[@]} -eq 0 ]; then
  echo "matrix: no interpreter found" >&2
  exit 2
fi

lisp_version() { # "SBCL 2.6.4" / "ECL 24.5.10"
  case "$1" in
    sbcl) sbcl --version 2>/dev/null | sed -E 's/^SBCL ([0-9.]*[0-9]).*/\1/' ;;
    ecl)  ecl --version 2>/dev/null | sed -E 's/^ECL ([0-9.]*[0-9]).*/\1/' ;;
  esac
}

total_pass=0; total_fail=0; total_skip=0
rows=()
for lisp in $lisps; do
lver=$(lisp_version "$lisp")
for line in "${rows_in[@]}"; do
  read -r xy source spec <<<"$line"
  tag="$xy-$source"
  config="$out/config-$tag.toml"
  log="$out/$lisp-$tag.log"
  if ! PY4CL2_CFFI_CONFIG="$config" "$cli" use "$spec" >/dev/null 2>"$log"; then
    rows+=("$(printf '%-6s %-8s %-12s %-12s %-7s %-40s %5s %s' "$xy" "?" "$source" "$lisp-$lver" "FAILED" "config failed: see $log" "0s" "$shim_sum")")
    total_fail=$((total_fail + 1)); continue
  fi
  if [ -d "$spec" ]; then python="$spec/bin/python"; else python="$spec"; fi
  version=$("$python" -c 'import sys; print(sys.version.split()[0])')
  numpy=$("$python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || echo none)
  start=$(date +%s)
  case "$lisp" in
    sbcl) cmd=(sbcl --script lisp/run-tests.lisp) ;;
    ecl)  cmd=(ecl --norc --shell lisp/run-tests.lisp) ;;
    *)    echo "matrix: unknown LISP=$lisp" >&2; exit 2 ;;
  esac
  row_sum=$(checksum "$shim")
  echo "matrix: $lisp $lver on Python $version ($source numpy $numpy), shim sha256 $row_sum…" >&2
  # stdin is /dev/null: a Lisp that lands in its debugger or top-level prompt (ECL does so
  # after a memory fault it caught) reads end of file and exits, instead of waiting for the
  # timeout.
  PY4CL2_CFFI_CONFIG="$config" PY4CL2_CFFI_SHIM="$shim" timeout 600 "${cmd[@]}" </dev/null >"$log" 2>&1
  status=$?
  secs=$(( $(date +%s) - start ))
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$summary"); f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$summary")
  s=$(grep -oE '[0-9]+ skipped' <<<"$summary" | cut -d' ' -f1)
  if [ -z "$summary" ]; then p=0; f=1; summary="no summary (exit $status)"; fi
  [ "$status" -ne 0 ] && [ "${f:-0}" = 0 ] && f=1
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + ${s:-0}))
  result=$([ "$f" = 0 ] && echo ok || echo FAILED)
  rows+=("$(printf '%-6s %-8s %-12s %-12s %-7s %-40s %4ss %s' "$xy" "$version" "$source-$numpy" "$lisp-$lver" "$result" "$summary" "$secs" "$row_sum")")
  echo "matrix: $lisp on $version: $summary (${secs}s)" >&2
done
done

echo
echo "py4cl2-cffi matrix — one shim build (sha256 $shim_sum…), $(uname -sm)"
printf '%-6s %-8s %-12s %-12s %-7s %-40s %5s %s\n' "python" "version" "numpy" "lisp" "result" "suite" "time" "shim"
for r in "${rows[@]}"; do echo "$r"; done
{
  for r in "${rows[@]}"; do
    read -r xy version numpy lsp result rest <<<"$r"
    suite=${rest% * *}
    echo "| $xy | $version | ${numpy/-/ } | ${lsp/-/ } | $result | $suite |"
  done
} > "$out/table.md"
echo "$total_pass $total_fail $total_skip" > "$out/total.txt"
echo "$shim_sum" > "$out/shim.sha256"
echo
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" = 0 ]
