#!/usr/bin/env bash
# Runs each make target given, in order, and prints how long each took, then a summary
# (used by `make test`). Stops at the first target that fails, naming it.
set -uo pipefail
cd "$(dirname "$0")/.."
make=${MAKE:-make}
start_all=$(date +%s)
summary=()
for target in "$@"; do
  start=$(date +%s)
  if ! "$make" --no-print-directory "$target"; then
    echo "make test: $target FAILED after $(( $(date +%s) - start ))s" >&2
    printf '%s\n' "${summary[@]}" >&2
    exit 1
  fi
  took=$(( $(date +%s) - start ))
  summary+=("  $(printf '%-15s' "$target") ${took}s")
  echo "make test: $target took ${took}s"
done
echo "make test: every part passed in $(( $(date +%s) - start_all ))s:"
printf '%s\n' "${summary[@]}"
