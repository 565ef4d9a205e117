#!/usr/bin/env bash
# CI, test job: runs the prebuilt Rust test executables listed in target/release/ci-tests.txt
# (made by pack-build.sh) against the one interpreter of this job, and fails if a test skipped
# that interpreter or its venv (the tests skip, rather than fail, on versions that are absent).
# Usage: .github/scripts/run-rust-tests.sh X.Y
# Environment: RUST_TEST_SKIP — test names (space-separated) passed to every executable as
# `--skip NAME` (for tests that assume this development machine's own interpreters).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
xy=$1
status=0
skips=()
for name in ${RUST_TEST_SKIP:-}; do skips+=(--skip "$name"); done
mkdir -p target/matrix
while read -r name exe; do
  log="target/matrix/rust-$name.log"
  echo "== $name ($exe)"
  "$exe" --nocapture ${skips[@]+"${skips[@]}"} 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  if grep -E "SKIPPED: no (pyenv CPython|venv for Python) $xy( |\$)" "$log"; then
    echo "run-rust-tests: $name skipped Python $xy" >&2
    status=1
  fi
done < target/release/ci-tests.txt
exit $status
