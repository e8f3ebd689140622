#!/usr/bin/env bash
# rrdtool on a walkenfs mount, both sides:
#  - the no-mmap build (build-rrdtool.sh) creates and updates an RRD and fetches it;
#  - Debian's own rrdtool reads it (read-only mappings are fine), but its
#    `update` is refused with "No such device": it maps the file shared and
#    writable, which walkenfs refuses by design (ENODEV).
#
#  - with OTHER_MNT (another host's mount of the same cluster), that host
#    fetches the same rows and adds the next sample, which this host reads.
#
# Usage: examples/rrdtool/run.sh MNT [OTHER_MNT]
#   RRDTOOL  the no-mmap rrdtool (default: the one build-rrdtool.sh installs)
# Leaves MNT/rrdtool-example/load.rrd behind for inspection.
# Exits non-zero if any step does not behave as described.
set -euo pipefail

MNT=${1:?usage: run.sh MNT [OTHER_MNT] (a mounted walkenfs)}
OTHER=${2:-}
CACHE=${WALKENFS_EXAMPLES_CACHE:-/var/cache/walkenfs-examples}
RRDTOOL=${RRDTOOL:-$CACHE/rrdtool/bin/rrdtool}
DEBIAN_RRDTOOL=${DEBIAN_RRDTOOL:-/usr/bin/rrdtool}

[[ -x $RRDTOOL ]] || { echo "run.sh: no no-mmap rrdtool at $RRDTOOL; run examples/rrdtool/build-rrdtool.sh first" >&2; exit 1; }
for d in "$MNT" ${OTHER:+"$OTHER"}; do
  [[ -d $d ]] || { echo "run.sh: $d is not a directory" >&2; exit 1; }
done

DIR=$MNT/rrdtool-example
RRD=$DIR/load.rrd
mkdir -p "$DIR"
rm -f "$RRD" "$DIR/debian.rrd"

START=1699999980  # a multiple of STEP, so each sample fills one row exactly
STEP=60
N=30

echo "== create $RRD (no-mmap rrdtool: $RRDTOOL)"
"$RRDTOOL" create "$RRD" --start "$START" --step "$STEP" \
  DS:load:GAUGE:120:0:U RRA:AVERAGE:0.5:1:100 RRA:MAX:0.5:5:100

echo "== update $N samples, one rrdtool process each (value = sample number)"
for i in $(seq 1 "$N"); do
  "$RRDTOOL" update "$RRD" "$((START + i * STEP)):$i"
done

echo "== last update"
"$RRDTOOL" lastupdate "$RRD"

echo "== fetch AVERAGE (no-mmap rrdtool)"
"$RRDTOOL" fetch "$RRD" AVERAGE --start "$START" --end "$((START + N * STEP))" | tail -5

echo "== Debian's rrdtool reads the same file (read-only, no shared writable mapping)"
"$DEBIAN_RRDTOOL" fetch "$RRD" AVERAGE --start "$((START + (N - 3) * STEP))" --end "$((START + N * STEP))"

echo "== Debian's rrdtool update: refused by design"
"$DEBIAN_RRDTOOL" create "$DIR/debian.rrd" --start "$START" --step "$STEP" DS:load:GAUGE:120:0:U RRA:AVERAGE:0.5:1:100
set +e
err=$("$DEBIAN_RRDTOOL" update "$DIR/debian.rrd" "$((START + STEP)):1" 2>&1)
status=$?
set -e
echo "   exit $status: $err"
if [[ $status -eq 0 || $err != *"No such device"* ]]; then
  echo "run.sh: expected Debian's rrdtool update to fail with 'No such device'" >&2
  exit 1
fi
echo "ok: the no-mmap build updated $RRD $N times; Debian's build is refused as designed"

if [[ -n $OTHER ]]; then
  ORRD=$OTHER/rrdtool-example/load.rrd
  echo "== another host ($OTHER) fetches the same rows"
  here=$("$RRDTOOL" fetch "$RRD" AVERAGE --start "$START" --end "$((START + N * STEP))")
  there=$("$DEBIAN_RRDTOOL" fetch "$ORRD" AVERAGE --start "$START" --end "$((START + N * STEP))")
  [[ $here == "$there" ]] || { echo "run.sh: the other host fetched different rows" >&2; diff <(echo "$here") <(echo "$there") >&2; exit 1; }
  echo "== the other host adds sample $((N + 1)); this host reads it"
  "$RRDTOOL" update "$ORRD" "$((START + (N + 1) * STEP)):$((N + 1))"
  last=$("$RRDTOOL" lastupdate "$RRD" | tail -1)
  echo "   lastupdate here: $last"
  [[ $last == "$((START + (N + 1) * STEP)): $((N + 1))" ]] || { echo "run.sh: this host does not see the other host's update" >&2; exit 1; }
  echo "ok: both hosts read the same RRD, and an update on either is seen on the other"
fi
