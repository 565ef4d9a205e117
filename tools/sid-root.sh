#!/usr/bin/env bash
# Builds (once) and enters a Debian sid root with CPython 3.14 and 3.15, numpy, SBCL 2.6 and ECL.
#
# Usage:
#   tools/sid-root.sh build              make or extend the root; prints its folder
#   tools/sid-root.sh run [--bind DIR]... [--] CMD [ARG...]   (e.g. env VAR=value CMD to pass variables)
#                                        run CMD inside the root (as root, in a private mount
#                                        namespace), with this worktree and every --bind DIR
#                                        mounted at their own paths; CMD starts in the
#                                        current folder when it is inside one of them
#   tools/sid-root.sh info               print the stamp (what the root contains)
#
# The root is made with `debootstrap --variant=minbase` from Debian's archive into
# $PY4CL2_CFFI_SID_ROOT, else ${XDG_CACHE_HOME:-~/.cache}/py4cl2-cffi/sid-root. A stamp file
# (<root>/.py4cl2-cffi-stamp) records the package list and the venv requirements: a run whose
# lists match costs a second; a longer package list is installed into the existing root with
# apt-get; a root with no stamp (a broken earlier build) is made again. Inside the root, a venv
# per Python (/opt/py4cl2-cffi/venvs/3.X) gets numpy from pip wheels.
#
# Debian's sid binaries need a newer glibc than the host, so they run only inside the root;
# the shim and CLI built on the host run there unchanged.
#
# Every mount (proc, dev, sys, the binds) is made in a private mount namespace (unshare -m)
# and also unmounted by an exit trap, so nothing stays mounted after a run, even a killed one.
# Any failure exits non-zero with the reason on stderr: a missing root is never skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root="${PY4CL2_CFFI_SID_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/py4cl2-cffi/sid-root}"
mirror="${PY4CL2_CFFI_SID_MIRROR:-http://deb.debian.org/debian}"
stamp="$root/.py4cl2-cffi-stamp"

# What the root must hold. Extending this list extends the root on the next run.
packages=(python3.14 libpython3.14 python3.14-venv
          python3.15 libpython3.15 python3.15-venv
          python3-numpy
          sbcl ecl
          cl-cffi cl-alexandria cl-trivial-garbage cl-bordeaux-threads cl-fiveam cl-iterate cl-babel
          binutils ca-certificates)
# The pip venvs inside the root: "<X.Y> <requirements>" per line.
venvs=("3.14 numpy>=2 matplotlib" "3.15 numpy>=2 matplotlib")

die() { echo "sid-root: FAILED: $*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || die "a Debian root needs Linux (this is $(uname -s))"
[ "$(id -u)" = 0 ] || die "building and entering the root needs root (debootstrap, chroot, mounts)"

stamp_text() {
  echo "packages: ${packages[*]}"
  for v in "${venvs[@]}"; do echo "venv: $v"; done
}

# --- entering the root -------------------------------------------------------------------
# Runs "$@" inside the root in a private mount namespace; BINDS holds host folders to mount.
binds=()
enter() {
  command -v unshare >/dev/null || die "unshare (util-linux) is missing"
  # The inner shell script runs in the new namespace: mounts made there are invisible to the
  # host and vanish with the namespace; the trap unmounts them anyway, innermost first.
  unshare --mount --propagation private -- /bin/bash -c "$inner_script" sid-root "$root" "$PWD" \
      "${#binds[@]}" ${binds[@]+"${binds[@]}"} "$@"
}
# The script run by enter() inside the new mount namespace.
inner_script=$(cat <<'INNER'
set -euo pipefail
root=$1; cwd=$2; nbinds=$3; shift 3
mounted=()
cleanup() {
  local i
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
mnt() { # mnt TARGET MOUNT-ARGS...
  local target=$1; shift
  mount "$@" "$target" || { echo "sid-root: FAILED: mount $* $target" >&2; exit 1; }
  mounted+=("$target")
}
mnt "$root/proc" -t proc proc
mnt "$root/sys" -t sysfs sysfs
mnt "$root/dev" --rbind /dev
mount --make-rslave "$root/dev"
mkdir -p "$root/dev/shm"
mnt "$root/tmp" -t tmpfs tmpfs
for ((i=0; i<nbinds; i++)); do
  src=$1; shift
  mkdir -p "$root$src"
  mnt "$root$src" --bind "$src"
done
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# A host CA bundle (the host may reach PyPI through its own certificate) is offered to pip.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$root/etc/py4cl2-cffi"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/py4cl2-cffi/host-ca.crt"
fi
env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM="${TERM:-dumb}" ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} \
    PIP_CERT=/etc/py4cl2-cffi/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    chroot "$root" /bin/sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$cwd" "$@"
INNER
)

# --- building ----------------------------------------------------------------------------
bootstrap() {
  command -v debootstrap >/dev/null || {
    echo "sid-root: installing debootstrap" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >&2 \
      || die "debootstrap is missing and apt-get could not install it"
  }
  local tmp="$root.partial"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$root")"
  local inc; inc=$(IFS=,; echo "${packages[*]}")
  echo "sid-root: debootstrap --variant=minbase sid $tmp ($mirror; takes minutes)" >&2
  if ! debootstrap --variant=minbase --include="$inc" sid "$tmp" "$mirror" >"$root.log" 2>&1; then
    tail -20 "$root.log" >&2
    grep -h -E '^(E|W):|Failure|Couldn' "$tmp/debootstrap/debootstrap.log" 2>/dev/null | tail -5 >&2 || true
    rm -rf "$tmp"
    die "debootstrap of Debian sid from $mirror failed (full log: $root.log)"
  fi
  rm -rf "$root"
  mv "$tmp" "$root"
}

extend() { # install packages missing from an existing root
  local missing=()
  for p in "${packages[@]}"; do
    # shellcheck disable=SC2016 # dpkg-query's own format, not a shell expansion
    chroot "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "sid-root: adding ${missing[*]}" >&2
  # shellcheck disable=SC2016 # expanded by the shell inside the root
  enter /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"' \
        sh "${missing[@]}" >&2 || die "apt-get inside the root could not install ${missing[*]}"
}

make_venvs() {
  local line xy reqs dir
  for line in "${venvs[@]}"; do
    xy=${line%% *}; reqs=${line#* }; dir=/opt/py4cl2-cffi/venvs/$xy
    if [ "$(cat "$root$dir/.complete" 2>/dev/null)" = "$reqs" ]; then continue; fi
    echo "sid-root: venv $dir (pip install $reqs)" >&2
    # shellcheck disable=SC2016 # expanded by the shell inside the root
    enter /bin/sh -c 'set -e; rm -rf "$1"; "python$2" -m venv "$1"; "$1/bin/python" -m pip install -q $3; echo "$3" > "$1/.complete"' \
          sh "$dir" "$xy" "$reqs" >&2 || die "venv $dir: pip install $reqs failed inside the root"
  done
}

build() {
  local start; start=$(date +%s)
  # One build at a time (two worktrees or two runs building at once would share $root.partial).
  mkdir -p "$(dirname "$root")"
  exec 9>"$root.lock"
  flock 9 || die "could not lock $root.lock"
  if [ ! -f "$stamp" ]; then
    bootstrap
  elif [ "$(cat "$stamp")" != "$(stamp_text)" ]; then
    extend
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$(stamp_text)" ]; then
    make_venvs
    # The root must really run what the suites need: check before recording it as complete.
    enter /bin/sh -c 'python3.14 -c "import numpy, venv" && python3.15 -c "import numpy, venv" && sbcl --version && ecl --version >/dev/null' \
          >&2 || die "the root at $root lacks a working python3.14/python3.15 with numpy, sbcl or ecl"
    stamp_text > "$stamp"
    echo "sid-root: ready in $(( $(date +%s) - start ))s" >&2
  fi
  echo "$root"
}

cmd=${1:-build}; [ $# -gt 0 ] && shift
case "$cmd" in
  build) build ;;
  info)  [ -f "$stamp" ] || die "no root at $root (run: tools/sid-root.sh build)"; cat "$stamp" ;;
  run)
    [ -f "$stamp" ] || die "no root at $root (run: tools/sid-root.sh build)"
    binds=("$here")
    while [ $# -gt 0 ]; do
      case "$1" in
        --bind) [ -d "$2" ] || die "--bind $2: no such folder"; binds+=("$(cd "$2" && pwd)"); shift 2 ;;
        --) shift; break ;;
        *) break ;;
      esac
    done
    [ $# -gt 0 ] || die "run: no command given"
    enter "$@" ;;
  *) echo "usage: tools/sid-root.sh build | run [--bind DIR]... [--] CMD... | info" >&2; exit 2 ;;
esac
