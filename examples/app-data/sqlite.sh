#!/usr/bin/env bash
# sqlite3 on a walkenfs mount.
#  - Rollback-journal mode (journal_mode=DELETE, sqlite's default) works:
#    two writer processes on this host insert concurrently (sqlite's POSIX
#    locks are kept by the local kernel), then integrity_check is "ok".
#  - WAL mode needs a shared mapping of the -shm file, which walkenfs refuses
#    (shared mmap of a writable file, ENODEV). It works with
#    PRAGMA locking_mode=EXCLUSIVE, where sqlite keeps the WAL index in heap
#    memory instead - one connection owns the database while it is open.
#
# Usage: examples/app-data/sqlite.sh MNT
#   SQLITE_ROWS (default 100) transactions per writer; SQLITE_BUSY_MS (default
#   10000) how long a writer waits for the other's lock.
# Leaves MNT/app-data/sqlite/{app.db,wal.db} behind. Exits non-zero on failure.
set -euo pipefail

MNT=${1:?usage: sqlite.sh MNT (a mounted walkenfs)}
[[ -d $MNT ]] || { echo "sqlite.sh: $MNT is not a directory" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite.sh: needs the sqlite3 command (apt-get install sqlite3)" >&2; exit 1; }

DIR=$MNT/app-data/sqlite
DB=$DIR/app.db
mkdir -p "$DIR"
rm -f "$DIR"/app.db* "$DIR"/wal.db* "$DIR"/wal-plain.db*

fail () { echo "sqlite.sh: $*" >&2; exit 1; }
# busy_timeout: a writer that finds the database locked waits instead of failing.
q () { sqlite3 -cmd ".timeout ${SQLITE_BUSY_MS:-10000}" "$@"; }

echo "== rollback journal: create $DB"
q "$DB" "PRAGMA journal_mode=DELETE; CREATE TABLE events(id INTEGER PRIMARY KEY, writer TEXT, n INTEGER, body TEXT);" >/dev/null
[[ $(q "$DB" "PRAGMA journal_mode;") == delete ]] || fail "journal_mode is not delete"

ROWS=${SQLITE_ROWS:-100}
echo "== two writer processes, $ROWS transactions each, concurrently"
writer () {
  local name=$1
  for i in $(seq 1 "$ROWS"); do
    echo "BEGIN IMMEDIATE; INSERT INTO events(writer, n, body) VALUES('$name', $i, printf('%.200c', 'x')); COMMIT;"
  done | q "$DB" >/dev/null
}
writer a & pa=$!
writer b & pb=$!
wait "$pa" || fail "writer a failed"
wait "$pb" || fail "writer b failed"

echo "== a transaction that rolls back leaves nothing"
q "$DB" "BEGIN; DELETE FROM events; ROLLBACK;" >/dev/null

count=$(q "$DB" "SELECT count(*) FROM events;")
per=$(q "$DB" "SELECT writer || '=' || count(*) || ':' || sum(n) FROM events GROUP BY writer ORDER BY writer;" | tr '\n' ' ')
check=$(q "$DB" "PRAGMA integrity_check;")
echo "   rows: $count ($per)"
echo "   integrity_check: $check"
[[ $count == $((2 * ROWS)) ]] || fail "expected $((2 * ROWS)) rows, found $count"
[[ $check == ok ]] || fail "integrity_check: $check"
[[ ! -e $DB-journal ]] || fail "the rollback journal was left behind"

echo "== WAL without exclusive locking: refused (its -shm file is mapped shared)"
set +e
err=$(sqlite3 "$DIR/wal-plain.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES(1);" 2>&1)
status=$?
set -e
echo "   exit $status: $(echo "$err" | grep -o 'Error.*' | head -1)"
[[ $status -ne 0 ]] || fail "plain WAL unexpectedly worked"
[[ $err == *"disk I/O error"* ]] || fail "plain WAL failed, but not with sqlite's disk I/O error: $err"

echo "== WAL with PRAGMA locking_mode=EXCLUSIVE: works (WAL index in heap memory)"
out=$(sqlite3 "$DIR/wal.db" "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL;
  CREATE TABLE t(x); INSERT INTO t VALUES(7); INSERT INTO t VALUES(8);
  SELECT 'sum=' || sum(x) FROM t; PRAGMA integrity_check;")
echo "$out" | sed 's/^/   /'
[[ $out == *"sum=15"* ]] || fail "WAL (exclusive) did not read back its rows"
[[ $(echo "$out" | tail -1) == ok ]] || fail "WAL (exclusive) integrity_check failed"
# the WAL is checkpointed into the database file when the connection closes
again=$(sqlite3 "$DIR/wal.db" "PRAGMA locking_mode=EXCLUSIVE; SELECT 'sum=' || sum(x) FROM t;" | tail -1)
[[ $again == sum=15 ]] || fail "WAL (exclusive) rows not there on reopen: $again"
echo "ok: rollback journal with concurrent writers, and WAL with exclusive locking"
