#!/usr/bin/env bash
# Installs what walkenfs needs on a fresh Debian machine and builds it.
# Idempotent: does only what is missing. Used by `npm start` and `.ci/run`.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libfuse2 fuse rrdtool bindfs sqlite3 attr iproute2 nftables git build-essential)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "walkenfs setup: missing Debian packages: ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "walkenfs setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A checkout that changed our fuse-native patch (git pull) needs the package
# patched and rebuilt again: reinstall it from the registry.
FUSE_PATCH=native/patches/fuse-native+2.2.6.patch
if [ -d node_modules/fuse-native ] && [ "$FUSE_PATCH" -nt node_modules/fuse-native/build/Release/fuse.node ]; then
  echo "walkenfs setup: $FUSE_PATCH changed; reinstalling fuse-native"
  rm -rf node_modules/fuse-native
fi

if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -d node_modules/fuse-native ]; then
  echo "walkenfs setup: installing npm dependencies"
  # Not `npm ci`: msgpackr-extract 3.0.7 names platform packages that the
  # registry does not have for every platform, and npm 11 then refuses the
  # lock file as "out of sync". `npm install` follows the same lock file.
  npm install --no-audit --no-fund
fi

# Our own addons (native/<name>): a checkout that added or changed one (git
# pull) builds them again; npm install above already did for a fresh one.
for src in native/*/*.c; do
  name=$(basename "$src" .c)
  if [ ! -e "$(dirname "$src")/build/Release/$name.node" ] || [ "$src" -nt "$(dirname "$src")/build/Release/$name.node" ]; then
    echo "walkenfs setup: building the native addons"
    node scripts/build-addons.mjs
    break
  fi
done

echo "walkenfs setup: building"
npx tsc -p .

# mount(8) runs `walkenfs` through mount.fuse with PATH reset to the system
# directories: put this checkout's command there (root only).
if [ "$(id -u)" = 0 ]; then
  ln -sfn "$(pwd)/bin/walkenfs" /usr/local/bin/walkenfs
fi
