#!/usr/bin/env bash
# Installing as a user does, and Python environments on demand (issue 15). Each check prints
# PASS or FAIL with its time; the last line is "N passed, N failed[, N skipped]".
#
#   clean-home    git clone of this checkout's committed HEAD into a temporary HOME's
#                 common-lisp/ (where ASDF looks by default), two plain SBCLs with no
#                 PY4CL2_CFFI_* variable load it at once (one builds the shim with cargo, the
#                 other waits for it), start Python and call it; a third load reuses the
#                 build (its time is printed and must be under a second)
#   no-cargo      the same with neither cargo on PATH nor ~/.cargo: the error says how to get
#                 the shim
#   environments  pystart :requires '("six") over bare pyenv Pythons (oldest and newest):
#                 made, reused by a second start (time printed), merged with
#                 require-python-packages, the CLI's `use --with` finds the same one, and a
#                 failing requirement or an interrupt leaves nothing behind; SBCL, and ECL
#                 for the reuse
#   first-compile a first compile of every system gives no warning, a reload no
#                 PACKAGE-AT-VARIANCE (SBCL and ECL)
#
# Usage: tests/install/run.sh [CHECK...]   (default: all). Needs the workspace built
# (target/release) for the checks other than clean-home and no-cargo.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
root=$(pwd)
here="$root/tests/install"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/py4cl2-cffi-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
case "$(uname -s)" in
  Darwin) shim_name=libpy4cl2_cffi_shim.dylib ;;
  *)      shim_name=libpy4cl2_cffi_shim.so ;;
esac
shim="$root/target/release/$shim_name"
cli="$root/target/release/py4cl2-cffi-config"
version=$(sed -n 's/^ *:version "\([^"]*\)".*/\1/p' lisp/py4cl2-cffi.asd | head -1)
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}

passed=0; failed=0; skipped=0
pass() { echo "PASS $1 ($2 s)"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "SKIPPED $1: $2"; skipped=$((skipped + 1)); }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# The value of the first "KEY: value" line of a log.
field() { sed -n "s/^$1: //p" "$2" | head -1; }
# Check that a log contains a text; say which check and show the log when not.
has() { grep -qF -- "$2" "$3" || { fail "$1" "no \`$2\` in $3:"; sed 's/^/    | /' "$3" | tail -40; return 1; }; }

# A directory of links to the few programs the Lisp children need, so that a PATH made of it
# surely lacks cargo.
bin_without_cargo() {
  local dir=$1 p
  mkdir -p "$dir"
  for p in sbcl ecl sh bash env test git python3 uname cat mkfifo timeout; do
    if command -v "$p" >/dev/null 2>&1; then ln -sf "$(command -v "$p")" "$dir/$p"; fi
  done
}

# A fresh HOME with this checkout's committed HEAD cloned into ~/common-lisp/py4cl2-cffi.
fresh_home() {
  local home=$1
  mkdir -p "$home/common-lisp"
  git clone --quiet "$root" "$home/common-lisp/py4cl2-cffi"
}

check_clean_home() {
  local name=clean-home start home clone cargo_home rustup_home a b c
  start=$(now)
  home="$tmp/clean-home"
  fresh_home "$home" || { fail $name "git clone failed"; return; }
  clone="$home/common-lisp/py4cl2-cffi"
  # This machine's Rust, as a user who installed it with rustup has it: ~/.cargo and
  # ~/.rustup, with ~/.cargo/bin NOT on PATH (the shell was not restarted); or a cargo on PATH.
  cargo_home=${CARGO_HOME:-$HOME/.cargo}
  rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
  [ -d "$cargo_home" ] && ln -s "$cargo_home" "$home/.cargo"
  [ -d "$rustup_home" ] && ln -s "$rustup_home" "$home/.rustup"
  local plain=(env -i "HOME=$home" "PATH=/usr/local/bin:/usr/bin:/bin" "LANG=C.UTF-8")
  # shellcheck disable=SC2016 # $HOME is the child's
  if ! "${plain[@]}" sh -c 'command -v cargo || test -x "$HOME/.cargo/bin/cargo"' >/dev/null; then
    skip $name "no cargo on this machine (neither on PATH nor in ~/.cargo/bin): the build cannot be tested"
    return
  fi
  a="$tmp/clean-a.log"; b="$tmp/clean-b.log"; c="$tmp/clean-c.log"
  # Two Lisps loading at once: one builds, the other waits on the lock. The second compiles
  # its fasls into a folder of its own: ASDF does not support two processes compiling the
  # same system into one fasl cache at once (seen in CI: one SBCL's rename of alexandria's
  # fasls made the other's TRUENAME fail), and the shim's build lock is what is tested here.
  local fasl_b="(:output-translations (t (\"$tmp/fasl-b/\" :implementation)) :inherit-configuration)"
  (cd "$home" && "${plain[@]}" sbcl --script "$here/load.lisp" >"$a" 2>&1) &
  (cd "$home" && "${plain[@]}" "ASDF_OUTPUT_TRANSLATIONS=$fasl_b" sbcl --script "$here/load.lisp" >"$b" 2>&1) &
  wait
  local first log
  first=$(since "$start")
  for log in "$a" "$b"; do
    has $name "SUM: 6" "$log" || return
  done
  local builds
  builds=$(cat "$a" "$b" | grep -c "; py4cl2-cffi: built ")
  [ "$builds" = 1 ] || { fail $name "$builds builds for two concurrent loads (want 1)"; cat "$a" "$b" | sed 's/^/    | /' | tail -60; return; }
  cat "$a" "$b" | grep -q "; cargo: .*Compiling py4cl2-cffi-shim" \
    || { fail $name "cargo's progress lines were not shown"; return; }
  cat "$a" "$b" | grep -q "; py4cl2-cffi: starting Python .*: no config file yet" \
    || { fail $name "the first pystart did not say which Python it picked"; sed 's/^/    | /' "$a"; return; }
  local shim_a shim_b
  shim_a=$(field SHIM "$a"); shim_b=$(field SHIM "$b")
  case "$shim_a" in
    "$home"/.cache/py4cl2-cffi/shim/"$version"-*/"$shim_name") ;;
    *) fail $name "the shim was loaded from $shim_a, not from the build cache"; return ;;
  esac
  [ "$shim_a" = "$shim_b" ] || { fail $name "the two Lisps loaded $shim_a and $shim_b"; return; }
  [ "$(field SYSTEM "$a")" = "$clone/lisp/" ] || { fail $name "ASDF found $(field SYSTEM "$a"), not the clone"; return; }
  # Nothing was written into the checkout (a read-only install works the same).
  if [ -n "$(git -C "$clone" status --porcelain --ignored)" ]; then
    fail $name "the build wrote into the checkout: $(git -C "$clone" status --porcelain --ignored | head -3)"; return
  fi
  [ -d "$(dirname "$shim_a")/target" ] && { fail $name "the cargo build folder was left in the cache"; return; }
  # A second load in a new process reuses the build.
  (cd "$home" && "${plain[@]}" sbcl --script "$here/load.lisp" >"$c" 2>&1)
  has $name "SUM: 6" "$c" || return
  if grep -q "building it once" "$c"; then fail $name "the second load built the shim again"; return; fi
  [ "$(field SHIM "$c")" = "$shim_a" ] || { fail $name "the second load used $(field SHIM "$c")"; return; }
  local deps own second
  deps=$(field DEPS-SECONDS "$c"); own=$(field LOAD-SECONDS "$c")
  second=$(awk -v a="$deps" -v b="$own" 'BEGIN { printf "%.3f", a + b }')
  echo "  clean-home: first loads (Lisp compile + one cargo build, two Lisps at once) ${first} s; second load ${second} s (the libraries it uses ${deps} s, py4cl2-cffi ${own} s); shim $(du -h "$shim_a" | cut -f1) at $shim_a"
  awk -v s="$second" 'BEGIN { exit !(s < 1.0) }' || { fail $name "the second load took $second s (want < 1 s)"; return; }
  pass $name "$(since "$start")"
}

check_no_cargo() {
  local name=no-cargo start home log bin
  start=$(now)
  home="$tmp/no-cargo-home"
  fresh_home "$home" || { fail $name "git clone failed"; return; }
  bin="$tmp/bin-without-cargo"
  bin_without_cargo "$bin"
  log="$tmp/no-cargo.log"
  (cd "$home" && env -i "HOME=$home" "PATH=$bin" "LANG=C.UTF-8" sbcl --script "$here/load.lisp" >"$log" 2>&1)
  local code=$?
  [ $code -ne 0 ] || { fail $name "loading succeeded without a shim or cargo"; return; }
  for text in "py4cl2-cffi needs its shim library" "and found none" \
              "cargo: not on PATH, nor in \$CARGO_HOME/bin or ~/.cargo/bin" \
              "Install Rust (https://rustup.rs), then load py4cl2-cffi again" \
              "py4cl2-cffi-shim-$version-<target triple>" "PY4CL2_CFFI_SHIM" \
              "(defvar cl-user::*py4cl2-cffi-shim*" \
              "cargo build --release -p py4cl2-cffi-shim" \
              "$home/.cache/py4cl2-cffi/shim/$version-"; do
    has $name "$text" "$log" || return
  done
  sed -n '/py4cl2-cffi needs its shim library/,/cargo build --release -p/p' "$log" | sed 's/^/    | /'
  pass $name "$(since "$start")"
}

# One run of environments.lisp: LISP (sbcl|ecl), the python, the mode; the log path is printed.
env_child() {
  local lisp=$1 python=$2 mode=$3 log=$4
  local cmd
  case "$lisp" in
    sbcl) cmd=(sbcl --script "$here/environments.lisp") ;;
    ecl)  cmd=(ecl --norc --shell "$here/environments.lisp") ;;
  esac
  env -u VIRTUAL_ENV -u CONDA_PREFIX -u PY4CL2_CFFI_PYTHON \
      "XDG_CACHE_HOME=$tmp/xdg" "PY4CL2_CFFI_CONFIG=$tmp/no-config.toml" \
      "PY4CL2_CFFI_SHIM=$shim" "P4T_PYTHON=$python" "P4T_MODE=$mode" \
      timeout 600 "${cmd[@]}" >"$log" 2>&1
}

check_environments_of() {
  local series=$1 name="environments-$1" start python prefix log envs
  start=$(now)
  python=$(find "$pyenv_root/versions" -mindepth 3 -maxdepth 3 -path "*/$series.*/bin/python3" 2>/dev/null | sort -V | tail -1)
  [ -n "$python" ] || { skip "$name" "no pyenv Python $series under $pyenv_root"; return; }
  prefix=$(dirname "$(dirname "$python")")
  envs="$tmp/xdg/py4cl2-cffi/envs"
  log="$tmp/env-$series-make.log"
  env_child sbcl "$python" make "$log"
  has "$name" "MADE: yes" "$log" || return
  local dir
  dir=$(field PREFIX "$log")
  case "$dir" in "$envs"/*) ;; *) fail "$name" "started $dir, not an environment under $envs"; return ;; esac
  [ "$(field BASE "$log")" = "$prefix" ] || { fail "$name" "base prefix $(field BASE "$log"), want $prefix"; return; }
  case "$(field SIX "$log")" in "$dir"/*) ;; *) fail "$name" "six came from $(field SIX "$log")"; return ;; esac
  has "$name" "; Successfully installed six" "$log" || has "$name" "+ six==" "$log" || return
  has "$name" "environment:   six (made with" "$log" || return
  local made reused
  made=$(field SECONDS "$log")
  log="$tmp/env-$series-reuse.log"
  env_child sbcl "$python" reuse "$log"
  has "$name" "MADE: no" "$log" || return
  has "$name" "; py4cl2-cffi: using the environment $dir (six)" "$log" || return
  [ "$(field PREFIX "$log")" = "$dir" ] || { fail "$name" "the second start used $(field PREFIX "$log")"; return; }
  reused=$(field SECONDS "$log")
  if [ "$series" = "$newest" ] && command -v ecl >/dev/null; then
    log="$tmp/env-$series-reuse-ecl.log"
    env_child ecl "$python" reuse "$log"
    has "$name" "MADE: no" "$log" || return
    [ "$(field PREFIX "$log")" = "$dir" ] || { fail "$name" "ECL used $(field PREFIX "$log")"; return; }
    echo "  $name: ECL reused it in $(field SECONDS "$log") s"
  fi
  # The CLI's --with finds the same environment.
  local config="$tmp/cli-$series.toml"
  env -u VIRTUAL_ENV -u CONDA_PREFIX "XDG_CACHE_HOME=$tmp/xdg" "PY4CL2_CFFI_CONFIG=$config" \
      "$cli" use "$python" --with six >"$tmp/cli-$series.log" 2>&1 \
    || { fail "$name" "py4cl2-cffi-config use --with six failed: $(cat "$tmp/cli-$series.log")"; return; }
  has "$name" "reusing the environment $dir (six)" "$tmp/cli-$series.log" || return
  grep -qF "prefix = \"$dir\"" "$config" || { fail "$name" "the config file does not name $dir"; return; }
  # require-python-packages merges ("pip" is in every venv already: nothing to download).
  log="$tmp/env-$series-merge.log"
  env_child sbcl "$python" merge "$log"
  has "$name" "MADE: yes" "$log" || return
  has "$name" "environment:   pip six (made with" "$log" || return
  # A requirement that cannot be installed: a clear condition, nothing left behind.
  local before after
  before=$(find "$envs" -mindepth 1 -maxdepth 1 | sort)
  log="$tmp/env-$series-fail.log"
  env_child sbcl "$python" fail "$log"
  has "$name" "ERROR-TYPE: PYTHON-ENVIRONMENT-ERROR" "$log" || return
  has "$name" "py4cl2-cffi-no-such-package-zzz" "$log" || return
  grep -Eq "^ERROR: .*(No matching distribution|not found in the package registry|No solution found)" "$log" \
    || { fail "$name" "the error does not carry the installer's message:"; sed 's/^/    | /' "$log"; return; }
  has "$name" "nothing was kept" "$log" || return
  has "$name" "ALIVE: NIL" "$log" || return
  after=$(find "$envs" -mindepth 1 -maxdepth 1 | sort)
  [ "$before" = "$after" ] || { fail "$name" "left behind: $(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"; return; }
  # An interrupt while it is being made: stopped at once, nothing left behind.
  log="$tmp/env-$series-interrupt.log"
  env_child sbcl "$python" interrupt "$log"
  has "$name" "INTERRUPTED: yes" "$log" || return
  has "$name" "ALIVE: NIL" "$log" || return
  after=$(find "$envs" -mindepth 1 -maxdepth 1 | sort)
  [ "$before" = "$after" ] || { fail "$name" "an interrupt left behind: $(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"; return; }
  echo "  $name: interrupted 1 s into the making, $(sed -n 's/^INTERRUPTED: yes //p' "$log")"
  echo "  $name: made in $made s, reused in $reused s ($("$python" --version 2>&1), installer $(sed -n 's/.*(made with \([a-z]*\) over.*/\1/p' "$tmp/env-$series-make.log" | head -1))"
  pass "$name" "$(since "$start")"
}

check_environments() {
  [ -f "$shim" ] && [ -x "$cli" ] || { fail environments "build first (cargo build --release --workspace)"; return; }
  local oldest=3.8
  newest=3.13
  check_environments_of "$oldest"
  check_environments_of "$newest"
  command -v uv >/dev/null || echo "  (uv is not on PATH: these environments were made with pip; with uv on PATH they are made with uv)"
}

check_first_compile() {
  local lisp name start log cmd
  [ -f "$shim" ] || { fail first-compile "build first (cargo build --release --workspace)"; return; }
  for lisp in sbcl ecl; do
    name="first-compile-$lisp"
    command -v $lisp >/dev/null || { skip "$name" "$lisp is not installed"; continue; }
    start=$(now)
    log="$tmp/compile-$lisp.log"
    case "$lisp" in
      sbcl) cmd=(sbcl --script "$here/compile.lisp") ;;
      ecl)  cmd=(ecl --norc --shell "$here/compile.lisp") ;;
    esac
    env "P4T_FASLS=$tmp/fasls-$lisp/" "PY4CL2_CFFI_SHIM=$shim" timeout 900 "${cmd[@]}" >"$log" 2>&1
    has "$name" "DONE" "$log" || continue
    if grep -q "^WARNING: " "$log"; then fail "$name" "warnings:"; grep "^WARNING: " "$log" | sed 's/^/    | /'; continue; fi
    pass "$name" "$(since "$start")"
  done
}

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(clean-home no-cargo environments first-compile)
for c in "${checks[@]}"; do
  case "$c" in
    clean-home)    check_clean_home ;;
    no-cargo)      check_no_cargo ;;
    environments)  check_environments ;;
    first-compile) check_first_compile ;;
    *) echo "unknown check $c" >&2; exit 2 ;;
  esac
done
echo
echo "$passed passed, $failed failed$([ $skipped -gt 0 ] && echo ", $skipped skipped")"
[ $failed = 0 ]
