#!/usr/bin/env bash
# CI: installs the Lisp implementation and the Lisp libraries py4cl2-cffi needs.
# - Linux (Debian/Ubuntu): the distribution's packages, as tools/setup.sh does on Debian.
# - macOS: SBCL from Homebrew (and GNU bash + coreutils, which matrix/run.sh uses); the Lisp
#   libraries are Debian bookworm's architecture-independent .deb packages of the same libraries
#   (the versions the project is developed against), fetched by exact file name, checked against
#   the SHA-256 sums of Debian's signed package index, and unpacked into DEST. Quicklisp is not
#   used. Prints the CL_SOURCE_REGISTRY value that finds them (empty on Linux).
# Usage: .github/scripts/install-lisp.sh sbcl|ecl DEST
set -euo pipefail
lisp=$1 dest=$2
case "$lisp" in sbcl|ecl) ;; *) echo "install-lisp: unknown Lisp $lisp" >&2; exit 2 ;; esac

if [ "$(uname -s)" != Darwin ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "$lisp" cl-cffi cl-alexandria cl-trivial-garbage cl-bordeaux-threads cl-fiveam cl-iterate binutils >&2
  echo ""
  exit 0
fi

[ "$lisp" = sbcl ] || { echo "install-lisp: only SBCL is set up on macOS" >&2; exit 2; }
HOMEBREW_NO_AUTO_UPDATE=1 HOMEBREW_NO_INSTALL_CLEANUP=1 brew install --quiet sbcl bash coreutils >&2

# package file (under Debian's pool/main/) and the SHA-256 from bookworm's Packages index
debs=(
  "c/cffi/cl-cffi_0.24.1-3_all.deb ebf8479dd1c5a35139d93bb2fa27f2e8a884a60737105cc9e0a1b5288131aaa2"
  "c/cl-alexandria/cl-alexandria_20211025.gita67c3a6-1_all.deb 032e9fde718f9b2aac5bb2c64a39502a949694ad1a995b00c1862ed231271214"
  "c/cl-babel/cl-babel_20200719.gitf892d05-2_all.deb a38fe0d4c5abf29f9fe55236b820284262ef04e2f321bef55d70f3c596b52c05"
  "t/trivial-features/cl-trivial-features_20210228.gitf6e8dd7-2_all.deb 4253e0c934b0f733dc16d6692cf1c9ba49f2845775ced0b0f679f33699d401e1"
  "t/trivial-gray-streams/cl-trivial-gray-streams_20210117.git2b3823e-1_all.deb 7da33496baa7c6611a52e7c302fe7ffb083eefa5b047f2a2e876ebab0565be17"
  "c/cl-trivial-garbage/cl-trivial-garbage_20211229.gitb3af9c0-1_all.deb 3723e4a0a404dc596ea106d489c309c2de2d5552ceedc43630941964d6fdfe02"
  "b/bordeaux-threads/cl-bordeaux-threads_0.8.8-5_all.deb 7d6b109c52f4d5e58641107e0ca1a4f6296ee6d47a840e445254fda3d835a2f8"
  "c/cl-fiveam/cl-fiveam_1.4.2-1_all.deb 41d377a0b7e2b7383cacb0c0990199829c4532b4c749d73cb617d2be42877360"
  "c/cl-iterate/cl-iterate_20210519.gitb0f9a9c-1_all.deb 95948538fde04ca8b97d346abfe03af3eceebc5e802ab517adbcc9bb1b8b15c5"
  "c/cl-asdf-flv/cl-asdf-flv_2.1-2_all.deb 8e909fcf866a38d7cf9a9e571969eaf58471f8bd627fb929a9360e69f3a7467f"
  "c/cl-trivial-backtrace/cl-trivial-backtrace_20200511.git6eb65bd-1_all.deb d226a5a28e37993dd088ae4f09f34a50e5581cb6d367c709e5fae46aca288636"
)
mirror=${DEBIAN_MIRROR:-https://deb.debian.org/debian}
mkdir -p "$dest"
work=$(mktemp -d)
for entry in "${debs[@]}"; do
  file=${entry% *} sha=${entry#* }
  deb="$work/$(basename "$file")"
  curl -fsSL --retry 3 -o "$deb" "$mirror/pool/main/$file"
  echo "$sha  $deb" | shasum -a 256 -c - >&2
  (cd "$work" && rm -f data.tar.* && ar -x "$deb" && tar -xf data.tar.* -C "$dest" ./usr/share/common-lisp/source)
done
rm -rf "$work"
echo "$dest/usr/share/common-lisp/source//:"
