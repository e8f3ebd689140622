#!/usr/bin/env bash
# A git repository on a walkenfs mount: init, commits, branches, a merge, a
# tag, gc (packs objects, rewrites refs by lock-file-and-rename) and fsck, then
# a clone from the mount and back. git never maps files shared and writable,
# so it needs nothing special.
#
# Usage: examples/app-data/git-repo.sh MNT
#   GIT_COMMITS (default 20) commits on main.
# Leaves MNT/app-data/repo.git (bare) and MNT/app-data/work behind.
# Prints "fsck: clean" and "commits: N" at the end; exits non-zero on failure.
set -euo pipefail

MNT=${1:?usage: git-repo.sh MNT (a mounted walkenfs)}
[[ -d $MNT ]] || { echo "git-repo.sh: $MNT is not a directory" >&2; exit 1; }
command -v git >/dev/null || { echo "git-repo.sh: needs git (apt-get install git)" >&2; exit 1; }
N=${GIT_COMMITS:-20}

DIR=$MNT/app-data
WORK=$DIR/work
BARE=$DIR/repo.git
mkdir -p "$DIR"
rm -rf "$WORK" "$BARE"
# a fixed identity and no user config: the run is the same everywhere
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=walkenfs GIT_AUTHOR_EMAIL=walkenfs@example.invalid
export GIT_COMMITTER_NAME=walkenfs GIT_COMMITTER_EMAIL=walkenfs@example.invalid
g () { git -C "$WORK" "$@"; }

echo "== git init $WORK"
git init -q -b main "$WORK"

echo "== $N commits on main"
for i in $(seq 1 "$N"); do
  printf 'line %s\n' $(seq 1 "$i") > "$WORK/file.txt"
  echo "change $i" > "$WORK/notes-$((i % 5)).txt"
  g add -A
  g commit -q -m "commit $i"
done

echo "== branch feature, two commits, merge into main"
g checkout -q -b feature
echo feature > "$WORK/feature.txt"; g add feature.txt; g commit -q -m "feature 1"
echo more >> "$WORK/feature.txt"; g commit -q -am "feature 2"
g checkout -q main
echo "main side" > "$WORK/main-side.txt"; g add main-side.txt; g commit -q -m "main side"
g merge -q --no-edit feature
g tag -a v1 -m "version 1"

echo "== gc (pack objects and refs) and fsck"
g gc -q --aggressive --prune=now
packs=$(find "$WORK/.git/objects/pack" -name '*.pack' | wc -l)
loose=$(g count-objects | awk '{print $1}')
echo "   packs: $packs, loose objects: $loose"
fsck=$(g fsck --full --strict 2>&1) || { echo "git-repo.sh: fsck failed: $fsck" >&2; exit 1; }
[[ -z $fsck ]] || { echo "git-repo.sh: fsck reported: $fsck" >&2; exit 1; }
echo "fsck: clean"

echo "== clone to a bare repository on the mount, push a commit to it"
git clone -q --bare "$WORK" "$BARE"
echo pushed > "$WORK/pushed.txt"; g add pushed.txt; g commit -q -m "pushed"
g push -q "$BARE" main
[[ $(git -C "$BARE" rev-parse main) == $(g rev-parse main) ]] || { echo "git-repo.sh: push did not arrive" >&2; exit 1; }
git -C "$BARE" fsck --full --strict >/dev/null 2>&1 || { echo "git-repo.sh: fsck of the bare clone failed" >&2; exit 1; }

commits=$(g rev-list --count main)
branches=$(g branch --format='%(refname:short)' | tr '\n' ' ')
echo "branches: $branches"
echo "tag v1: $(g describe --tags v1)"
echo "commits: $commits"
[[ $commits == $((N + 5)) ]] || { echo "git-repo.sh: expected $((N + 5)) commits on main, found $commits" >&2; exit 1; }
[[ $(g status --porcelain) == "" ]] || { echo "git-repo.sh: the work tree is not clean" >&2; exit 1; }
echo "ok: git works on the mount"
