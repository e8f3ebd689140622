import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { open } from 'lmdb'
import { RaftStorage } from '../../src/store/raft-storage.js'
import { payload } from './torn-payload.js'

const writer = fileURLToPath(new URL('./torn-writer.js', import.meta.url))

/** Runs the writer until it has flushed `rounds` transactions, then SIGKILLs it mid-stream. */
function runAndKill (t: Test, dir: string, rounds: number): Promise<{ last: number, term: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    let seen = 0
    let acked = { last: 0, term: 0 }
    let buf = ''
    let err = ''
    child.stderr.on('data', (d) => { err += String(d) })
    child.stdout.on('data', (d) => {
      buf += String(d)
      const lines = buf.split('\n')
      buf = lines.pop()!
      for (const l of lines) {
        const m = /^flushed (\d+) (\d+)$/.exec(l)
        if (m) { acked = { last: Number(m[1]), term: Number(m[2]) }; seen++ }
      }
      if (seen >= rounds && child.exitCode === null) child.kill('SIGKILL')
    })
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked)
      else reject(new Error(`writer exited with ${code}: ${err}`))
    })
  })
}

t.test('restart after SIGKILL mid-write recovers a consistent log holding every flushed write', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-torn-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const rounds of [5, 23, 41]) {
    const acked = await runAndKill(t, dir, rounds)
    const root = open({ path: dir })
    try {
      const st = new RaftStorage(root)
      const init = st.load('g') // throws on a gap in the log
      const last = init.snapshot.meta.index + init.entries.length
      t.ok(last >= acked.last, `log reaches ${last}, at least the acknowledged ${acked.last}`)
      t.ok(init.hardState.term >= acked.term, 'term not older than acknowledged')
      t.ok(init.hardState.commit <= last, 'commit within the log')
      let intact = true
      for (const e of init.entries) {
        const want = payload(e.index, e.term)
        if (!e.data || Buffer.compare(Buffer.from(e.data), Buffer.from(want)) !== 0) intact = false
      }
      t.ok(intact, `all ${init.entries.length} entries read back byte for byte`)
      const terms = init.entries.map((e) => e.term)
      t.ok(terms.every((x, i) => i === 0 || x >= terms[i - 1]), 'terms never decrease along the log')
    } finally {
      await root.close()
    }
  }
})
