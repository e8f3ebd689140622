#!/usr/bin/env bash
# A configuration directory on walkenfs, updated the way careful programs do
# it: write the whole new version to a temporary file in the same directory,
# fsync it, rename it over the old name (atomic on walkenfs, like on a local
# filesystem), fsync the directory. A reader, in its own process, reads the
# file in a loop the whole time and checks every read is one whole version -
# never a mix, never a short file, never a missing file.
#
# Usage: examples/app-data/config-dir.sh MNT [READER_MNT]
#        examples/app-data/config-dir.sh --reader FILE STOPFILE
#   READER_MNT: another host's mount of the same cluster; the reader then
#   reads the file there while this host writes through MNT.
#   The --reader form is the reader alone, for a reader started by hand.
#   CONFIG_VERSIONS (default 60), CONFIG_LINES (default 200) size the run;
#   CONFIG_ERRLOG=FILE keeps the reader's open errors (default: dropped).
# Prints "reader: R reads, D distinct versions, P partial, M missing, O reopened"
# and exits non-zero if P or M is not 0 or the final version is not the last
# one. O counts opens that failed with ENOENT while the rename ran and found
# the file when tried again at once (a libfuse limitation on the writer's own
# host, see README.md); M counts a file still missing after two more tries.
set -euo pipefail

LINES=${CONFIG_LINES:-200}
PAD=$(printf '%.80d' 0)

# Checks one read: header "version V lines L", L lines "V:k:PAD", footer "end V".
# awk opens the file once, so it reads exactly one inode: one version, or a mix.
check_once () {
  awk -v pad="$PAD" '
    NR == 1 { v = $2; n = $4; if ($1 != "version" || $3 != "lines") bad = 1; next }
    NR <= n + 1 { if ($0 != v ":" (NR - 1) ":" pad) bad = 1; next }
    { last = $0 }
    END { if (NR == 0) print "EMPTY"; else if (bad || NR != n + 2 || last != "end " v) print "PARTIAL"; else print v }
  ' "$1" 2>>"${CONFIG_ERRLOG:-/dev/null}" || echo MISSING
}

reader () {
  local file=$1 stop=$2 reads=0 partial=0 missing=0 reopened=0 max=${CONFIG_MAX_READS:-100000}
  declare -A seen=()
  # bounded: stops when the writer says so, or after $max reads
  while [[ ! -e $stop ]] && (( reads < max )); do
    r=$(check_once "$file")
    reads=$((reads + 1))
    if [[ $r == MISSING ]]; then
      # On the writer's own host an open racing the rename can fail with
      # ENOENT (see README.md): opening again at once must find the file
      # (two more tries, in case the next rename races the retry).
      for _ in 1 2; do
        r=$(check_once "$file")
        [[ $r != MISSING ]] && { reopened=$((reopened + 1)); break; }
      done
    fi
    case $r in
      PARTIAL|EMPTY) partial=$((partial + 1)) ;;
      MISSING) missing=$((missing + 1)) ;;
      *) seen[$r]=1 ;;
    esac
  done
  echo "reader: $reads reads, ${#seen[@]} distinct versions, $partial partial, $missing missing, $reopened reopened"
  [[ $partial -eq 0 && $missing -eq 0 ]]
}

if [[ ${1:-} == --reader ]]; then
  reader "${2:?--reader FILE STOPFILE}" "${3:?--reader FILE STOPFILE}"
  exit
fi

MNT=${1:?usage: config-dir.sh MNT [READER_MNT] (mounted walkenfs)}
READER_MNT=${2:-$MNT}
for d in "$MNT" "$READER_MNT"; do
  [[ -d $d ]] || { echo "config-dir.sh: $d is not a directory" >&2; exit 1; }
done
VERSIONS=${CONFIG_VERSIONS:-60}
DIR=$MNT/app-data/config
CONF=$DIR/app.conf
mkdir -p "$DIR"
rm -f "$DIR"/.app.conf.* "$CONF"

write_version () {
  local v=$1 tmp=$DIR/.app.conf.$$.tmp
  {
    echo "version $v lines $LINES"
    for k in $(seq 1 "$LINES"); do echo "$v:$k:$PAD"; done
    echo "end $v"
  } > "$tmp"
  sync "$tmp"            # fsync the new content before it gets the name
  mv -T "$tmp" "$CONF"   # rename(2): atomic replacement
  sync "$DIR"            # fsync the directory: the rename is durable
}

echo "== $CONF: version 1 (${LINES} lines, $(( (LINES * 84 + 40) / 1024 )) KiB)"
write_version 1

STOP=$(mktemp -u /tmp/walkenfs-config-stop.XXXXXX)
trap 'touch "$STOP"; wait; rm -f "$STOP"' EXIT
READ_CONF=$READER_MNT/app-data/config/app.conf
echo "== reader process reads $READ_CONF in a loop while the writer replaces $CONF"
"$0" --reader "$READ_CONF" "$STOP" & rpid=$!

echo "== writer: versions 2..$VERSIONS, each write-to-temp + fsync + rename + fsync(dir)"
for v in $(seq 2 "$VERSIONS"); do write_version "$v"; done
touch "$STOP"
rstatus=0
wait "$rpid" || rstatus=$?

final=$(check_once "$READ_CONF")
echo "final version read back (reader's mount): $final"
leftover=$(find "$DIR" -name '.app.conf.*' | wc -l)
[[ $leftover -eq 0 ]] || { echo "config-dir.sh: $leftover temporary files left in $DIR" >&2; exit 1; }
[[ $final == "$VERSIONS" ]] || { echo "config-dir.sh: expected version $VERSIONS, read $final" >&2; exit 1; }
[[ $rstatus -eq 0 ]] || { echo "config-dir.sh: the reader saw a partial or missing file" >&2; exit 1; }
echo "ok: every read was one whole version"
