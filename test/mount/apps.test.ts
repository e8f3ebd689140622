/**
 * Real applications on a real walkenfs mount: the mmap matrix (shared
 * writable mappings refused with ENODEV by design, everything else works),
 * programs executed from the mount, Debian's rrdtool (whose `update` maps
 * its file shared and writable, so it fails with "No such device"), and
 * sqlite3 in rollback-journal mode.
 */
import t from 'tap'
import { chmodSync, copyFileSync, existsSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mounted, sh, shr } from '../helpers/mount.js'

const probe = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'build', 'mmap-probe')
const m = mounted(t)
const p = (...names: string[]) => join(m.mnt, ...names)

t.test('mmap matrix', async (t) => {
  t.ok(existsSync(probe), `the probe is built (${probe})`)
  writeFileSync(p('map.bin'), Buffer.alloc(8192, 0x41))
  const run = (mode: string) => shr(`${probe} ${p('map.bin')} ${mode}`)
  const sharedRw = run('shared-rw')
  t.equal(sharedRw.status, 1, 'MAP_SHARED on a writable fd is refused')
  t.match(sharedRw.stdout + sharedRw.stderr, /ENODEV|19/)
  t.equal(run('shared-ro').status, 0, 'MAP_SHARED on a read-only fd works')
  t.equal(run('private').status, 0, 'MAP_PRIVATE read works')
  t.equal(run('private-rw').status, 0, 'MAP_PRIVATE with copy-on-write works')
})

t.test('programs run from the mount (exec)', async (t) => {
  copyFileSync('/bin/echo', p('echo'))
  chmodSync(p('echo'), 0o755)
  t.equal(sh(`${p('echo')} executed from walkenfs`).trim(), 'executed from walkenfs')
  writeFileSync(p('script.sh'), '#!/bin/sh\necho script ran\n', { mode: 0o755 })
  t.equal(sh(p('script.sh')).trim(), 'script ran')
})

t.test("Debian's rrdtool: create/fetch/info work, update is refused with its mmap message", async (t) => {
  const rrd = p('load.rrd')
  sh(`rrdtool create ${rrd} --start 1700000000 --step 60 DS:load:GAUGE:120:0:U RRA:AVERAGE:0.5:1:100`)
  t.match(sh(`rrdtool info ${rrd}`), /ds\[load\]\.type = "GAUGE"/)
  t.match(sh(`rrdtool fetch ${rrd} AVERAGE --start 1700000000 --end 1700000600`), /load/)
  const up = shr(`rrdtool update ${rrd} 1700000060:1.5`)
  t.not(up.status, 0)
  t.match(up.stderr, /mmaping file '.*load\.rrd': No such device/, 'refused by design: shared writable mapping')
})

t.test('sqlite3 in rollback-journal mode works', async (t) => {
  const db = p('app.db')
  sh(`sqlite3 ${db} "PRAGMA journal_mode=DELETE; CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT);"`)
  for (let i = 0; i < 50; i++) sh(`sqlite3 ${db} "INSERT INTO kv VALUES('k${i}', 'v${i}');"`)
  sh(`sqlite3 ${db} "BEGIN; UPDATE kv SET v = v || '!' WHERE k < 'k3'; COMMIT;"`)
  t.equal(sh(`sqlite3 ${db} "SELECT count(*) FROM kv;"`).trim(), '50')
  t.equal(sh(`sqlite3 ${db} "SELECT v FROM kv WHERE k = 'k2';"`).trim(), 'v2!')
  t.equal(sh(`sqlite3 ${db} "PRAGMA integrity_check;"`).trim(), 'ok')
  t.notOk(existsSync(p('app.db-journal')), 'the journal is gone after commit')
})

t.test('sqlite3 WAL works only with exclusive locking mode (no -shm mapping)', async (t) => {
  const db = p('wal.db')
  const plain = shr(`sqlite3 ${db} "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES(1);"`)
  t.not(plain.status, 0, 'plain WAL needs a shared mapping of -shm')
  const ex = shr(`sqlite3 ${p('wal2.db')} "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES(7); SELECT x FROM t;"`)
  t.equal(ex.status, 0, ex.stderr)
  t.match(ex.stdout, /7/)
})
