/**
 * Safety checkers the simulator feeds after every event. Each records the
 * first violation it sees as a one-line description; the simulator prints it
 * with the seed that reproduces it.
 *
 * - election safety: at most one leader per term;
 * - committed log: an index, once committed anywhere, holds the same entry
 *   on every node that commits it;
 * - leader completeness: a new leader holds every entry committed so far
 *   (a committed entry lost, e.g. to an unflushed write, shows here);
 * - state machine safety: every node applies the same entry at each index,
 *   in order, without gaps;
 * - disruption (pre-vote): a node that cannot exchange messages with a
 *   quorum never starts an election.
 */
import type { Entry } from '../../src/raft/types.js'

export function entryKey (e: Entry): string {
  if (e.kind === 'normal') return `${e.term}:n:${Buffer.from(e.data ?? new Uint8Array()).toString('base64')}`
  if (e.kind === 'conf') return `${e.term}:c:${JSON.stringify(e.conf)}`
  return `${e.term}:noop`
}

export class Checkers {
  violation: string | undefined
  private leaders = new Map<number, number>()
  private committed = new Map<number, string>()
  maxCommitted = 0
  private applied = new Map<number, string>()

  fail (what: string): void {
    if (this.violation === undefined) this.violation = what
  }

  leader (term: number, id: number): void {
    const other = this.leaders.get(term)
    if (other === undefined) this.leaders.set(term, id)
    else if (other !== id) this.fail(`two leaders in term ${term}: ${other} and ${id}`)
  }

  /** A node reports that `e` is committed on it. */
  committedEntry (node: number, e: Entry): void {
    const k = entryKey(e)
    const known = this.committed.get(e.index)
    if (known === undefined) {
      this.committed.set(e.index, k)
      if (e.index > this.maxCommitted) this.maxCommitted = e.index
    } else if (known !== k) {
      this.fail(`divergent committed entry at index ${e.index} on node ${node}: ${k} vs ${known}`)
    }
  }

  /** A node that just became leader; `termAt` reads its log (undefined when compacted). */
  newLeader (node: number, snapIndex: number, lastIndex: number, keyAt: (i: number) => string | undefined): void {
    for (const [i, k] of this.committed) {
      if (i <= snapIndex) continue
      if (i > lastIndex) {
        this.fail(`committed entry ${i} lost: leader ${node} ends at ${lastIndex}`)
        return
      }
      if (keyAt(i) !== k) {
        this.fail(`committed entry ${i} lost: leader ${node} holds ${keyAt(i)}, committed ${k}`)
        return
      }
    }
  }

  /** A node applied `e`, right after `prevApplied`. */
  appliedEntry (node: number, prevApplied: number, e: Entry): void {
    if (e.index !== prevApplied + 1) this.fail(`node ${node} applied index ${e.index} after ${prevApplied}`)
    const k = entryKey(e)
    const known = this.applied.get(e.index)
    if (known === undefined) this.applied.set(e.index, k)
    else if (known !== k) this.fail(`node ${node} applied a different entry at index ${e.index}: ${k} vs ${known}`)
  }
}
