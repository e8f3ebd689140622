/**
 * `kill -9` of the daemon in the middle of a write load: after remounting,
 * `walkenfs check` is clean and every byte that an fsync acknowledged is
 * there.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { openSync, readSync, closeSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { forceUnmount, makeMount, walkenfs } from '../helpers/mount.js'

// Appends 4 KiB records (its sequence number repeated) to a few files,
// fsyncs each, and prints "ack FILE SEQ" only after the fsync returned.
const WRITER = `
const fs = require('fs'); const path = require('path');
const dir = process.argv[1];
const fds = [0, 1, 2].map((i) => fs.openSync(path.join(dir, 'log' + i), 'a'));
let seq = 0;
for (;;) {
  const i = seq % 3;
  const rec = Buffer.alloc(4096, String(seq % 10));
  rec.writeUInt32LE(seq, 0);
  try {
    fs.writeSync(fds[i], rec);
    fs.fsyncSync(fds[i]);
    if (seq % 7 === 0) { fs.writeFileSync(path.join(dir, 'tmp' + seq), 'x'); fs.renameSync(path.join(dir, 'tmp' + seq), path.join(dir, 'f' + seq)); }
  } catch (e) { process.stdout.write('error ' + e.code + '\\n'); process.exit(0); }
  process.stdout.write('ack ' + i + ' ' + seq + '\\n');
  seq++;
}
`

t.test('kill -9 during writes, remount: check clean, every fsync\'d record present', async (t) => {
  const m = makeMount(t)
  m.mount()
  const daemon = m.pid()
  t.ok(daemon > 0, 'the daemon runs')
  const writer = spawn(process.execPath, ['-e', WRITER, m.mnt], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { try { writer.kill('SIGKILL') } catch { /* gone */ } })
  const acked: Array<Array<number>> = [[], [], []]
  const lines = createInterface({ input: writer.stdout! })
  let killed = false
  await new Promise<void>((resolve) => {
    lines.on('line', (line) => {
      const [what, file, seq] = line.split(' ')
      if (what === 'ack') acked[Number(file)]!.push(Number(seq))
      if (!killed && acked.flat().length >= 600) {
        killed = true
        process.kill(daemon, 'SIGKILL')
      }
    })
    writer.on('exit', () => resolve())
    setTimeout(() => { try { writer.kill('SIGKILL') } catch { /* gone */ } }, 60_000).unref()
  })
  t.ok(killed, `the daemon was killed during the load (${acked.flat().length} records acknowledged)`)
  forceUnmount(m.mnt)

  const check = walkenfs(['check', m.data])
  t.equal(check.status, 0, `walkenfs check is clean: ${check.stdout}${check.stderr}`)

  m.mount()
  for (let f = 0; f < 3; f++) {
    const file = join(m.mnt, `log${f}`)
    const size = statSync(file).size
    t.ok(size >= acked[f]!.length * 4096, `log${f}: ${size} bytes hold all ${acked[f]!.length} acknowledged records`)
    const fd = openSync(file, 'r')
    const rec = Buffer.alloc(4096)
    let bad = 0
    acked[f]!.forEach((seq, k) => {
      readSync(fd, rec, 0, 4096, k * 4096)
      if (rec.readUInt32LE(0) !== seq || rec[4095] !== String(seq % 10).charCodeAt(0)) bad++
    })
    closeSync(fd)
    t.equal(bad, 0, `log${f}: every acknowledged record reads back intact`)
  }
  m.umount()
  const after = walkenfs(['check', m.data])
  t.equal(after.status, 0, 'still clean after the remount')
})
