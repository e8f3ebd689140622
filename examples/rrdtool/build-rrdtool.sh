#!/usr/bin/env bash
# Builds rrdtool from Debian's source package with --disable-mmap, so that it
# reads and writes its RRD files with pread/pwrite instead of a shared writable
# mapping (which walkenfs refuses with ENODEV by design).
#
# Usage: examples/rrdtool/build-rrdtool.sh
#   WALKENFS_EXAMPLES_CACHE  cache dir (default /var/cache/walkenfs-examples)
# Result: $WALKENFS_EXAMPLES_CACHE/rrdtool/bin/rrdtool (static librrd, no mmap).
# Idempotent: skips everything if the built binary is already there.
# Needs root (apt-get) the first time, and network access to deb.debian.org.
set -euo pipefail

CACHE=${WALKENFS_EXAMPLES_CACHE:-/var/cache/walkenfs-examples}
PREFIX=$CACHE/rrdtool
SRC=$CACHE/rrdtool-src
STAMP=$PREFIX/.built-without-mmap

if [[ -x $PREFIX/bin/rrdtool && -f $STAMP ]]; then
  echo "rrdtool without mmap already built: $PREFIX/bin/rrdtool"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "build-rrdtool.sh: needs root for apt-get (source package and build dependencies)" >&2
  exit 1
fi

# Debian's source packages: one deb-src line of our own, next to the system's
# deb lines, written only if missing so that running twice changes nothing.
LIST=/etc/apt/sources.list.d/walkenfs-examples-src.sources
if [[ ! -f $LIST ]]; then
  echo "== adding deb-src for bookworm in $LIST"
  cat > "$LIST" <<'SRCS'
# Added by walkenfs examples/rrdtool/build-rrdtool.sh: source packages only.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRCS
  apt-get update -qq
fi

# The explicit build dependencies of what we build (the library and the
# rrdtool command, no graphing, no language bindings, no docs) - far fewer than
# `apt-get build-dep rrdtool`, which pulls perl, ruby, tcl, lua, python, cairo.
# Runs an apt-get command; if it fails (stale package lists), updates the
# lists once and tries again.
apt_retry () {
  "$@" || { apt-get update -qq && "$@"; }
}

echo "== installing build dependencies"
apt_retry env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  build-essential pkg-config dpkg-dev libglib2.0-dev libxml2-dev >/dev/null

echo "== fetching Debian's rrdtool source package into $SRC"
rm -rf "$SRC"
mkdir -p "$SRC"
(cd "$SRC" && apt_retry apt-get source -qq rrdtool) >"$CACHE/apt-source.log" 2>&1 || {
  tail -5 "$CACHE/apt-source.log" >&2
  echo "build-rrdtool.sh: 'apt-get source rrdtool' failed (is deb.debian.org reachable?); log: $CACHE/apt-source.log" >&2
  exit 1
}
dir=$(find "$SRC" -mindepth 1 -maxdepth 1 -type d -name 'rrdtool-*' | head -1)
[[ -n $dir ]] || { echo "build-rrdtool.sh: no unpacked source under $SRC" >&2; exit 1; }
echo "   source: $dir"

echo "== configure --disable-mmap (static librrd, so the system's mmap-ing librrd8 is never loaded)"
cd "$dir"
./configure --prefix="$PREFIX" --disable-mmap \
  --disable-shared --enable-static \
  --disable-rrd_graph --disable-rrdcgi --disable-rrdcached \
  --disable-perl --disable-ruby --disable-lua --disable-tcl --disable-python \
  --disable-libdbi --disable-libwrap --disable-docs --disable-examples \
  >"$SRC/configure.log" 2>&1 || { tail -30 "$SRC/configure.log" >&2; exit 1; }

# The whole point: configure must not have enabled mmap.
if [[ ! -f src/rrd_config.h ]] || grep -q '^#define HAVE_MMAP 1' src/rrd_config.h; then
  echo "build-rrdtool.sh: configure did not leave HAVE_MMAP off in src/rrd_config.h; refusing to install" >&2
  exit 1
fi

echo "== make"
make -j"$(nproc)" >"$SRC/make.log" 2>&1 || { tail -30 "$SRC/make.log" >&2; exit 1; }
make install >"$SRC/install.log" 2>&1 || { tail -30 "$SRC/install.log" >&2; exit 1; }

# The binary must not link the system's librrd (which maps its files), and
# must not call mmap at all: Debian's librrd.so.8 imports mmap, ours must not.
if ldd "$PREFIX/bin/rrdtool" | grep -q librrd; then
  echo "build-rrdtool.sh: $PREFIX/bin/rrdtool links a shared librrd; expected it static" >&2
  exit 1
fi
if nm -D --undefined-only "$PREFIX/bin/rrdtool" | grep -qwE 'mmap|mmap64'; then
  echo "build-rrdtool.sh: $PREFIX/bin/rrdtool still imports mmap" >&2
  exit 1
fi
touch "$STAMP"
echo "built: $PREFIX/bin/rrdtool ($("$PREFIX/bin/rrdtool" | head -1))"
