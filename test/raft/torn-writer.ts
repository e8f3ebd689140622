/**
 * Child process for the torn-write test: appends to one group's log through
 * RaftStorage as fast as it can (with occasional suffix overwrites and
 * compactions) and prints `flushed <last> <term>` after every flushed
 * transaction. The parent kills it with SIGKILL mid-write.
 * Usage: node torn-writer.js <dir>
 */
import { open } from 'lmdb'
import { RaftStorage } from '../../src/store/raft-storage.js'
import type { Entry, Ready } from '../../src/raft/types.js'
import { payload } from './torn-payload.js'

async function main (): Promise<void> {
  if (!process.argv[2]) throw new Error('usage: node torn-writer.js <lmdb-dir>')
  const root = open({ path: process.argv[2] })
  const st = new RaftStorage(root)
  if (!st.has('g')) {
    await root.transaction(() => st.bootstrap('g', { voters: [1], learners: [] }))
    await root.flushed
  }
  const init = st.load('g')
  let last = init.snapshot.meta.index + init.entries.length
  let term = Math.max(init.hardState.term, 1)
  let snapIndex = init.snapshot.meta.index
  for (let round = 0; round < 100000; round++) {
    const rd: Ready = { entries: [], messages: [], early: 0, committed: [], readStates: [] }
    let from = last + 1
    if (round % 7 === 3 && last - snapIndex > 10) {
      // Overwrite an uncommitted suffix with a newer term, as a follower does.
      from = last - 5
      term++
    }
    const es: Entry[] = []
    for (let i = from; i < from + 40; i++) es.push({ index: i, term, kind: 'normal', data: payload(i, term) })
    rd.entries = es
    last = from + 39
    rd.hardState = { term, vote: 1, commit: last - 10 }
    if (round % 11 === 5) {
      snapIndex = last - 20
      rd.compacted = { meta: { index: snapIndex, term, config: { voters: [1], learners: [] } }, data: new Uint8Array([1, 2, 3]) }
      // Entries written in the same transaction are above the compaction point.
    }
    await root.transaction(() => st.writeReady('g', rd))
    await root.flushed
    process.stdout.write(`flushed ${last} ${term}\n`)
  }
}

main().catch((e) => { console.error(e); process.exit(1) })
