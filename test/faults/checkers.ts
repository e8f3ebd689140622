/**
 * Checkers over a torture history (history.ts) and the final state read
 * back after the last remount. Pure: they take data and return anomalies.
 *
 * - registers: reads linearizable, with acknowledged writes taking effect
 *   inside their call and unknown-outcome writes at any time after their
 *   call or never (the Raft work's checker, test/sim/linearizability.ts);
 *   the final read of every register joins the history, so a lost
 *   acknowledged write shows up as a stale final read.
 * - appends: every acknowledged record in the final file exactly once, no
 *   record twice, nothing that no client appended; every read-all holds
 *   each record acknowledged before the read began.
 * - directory: each client entry goes create (.a) → rename (.b) → unlink;
 *   in the final listing it is in a state its acknowledged steps (plus at
 *   most the one unknown step after them) allow — never under both names,
 *   never in a state it never reached — and nothing else is there.
 *
 * Stale reads (the cluster): a host that gets no ReadIndex answer serves
 * its local replica as it is, by design (docs/replication.md), and counts
 * it. The cluster harness passes `stale`, which says which reads overlap a
 * time when some host served a stale read; those reads are left out of the
 * strict checks and checked weakly instead: a register read returns a value
 * some write began before the read ended (or none), a read-all holds each
 * record once and only records appended before it ended. Every other read,
 * and the final state, is checked strictly.
 */
import { checkRegisters, type RegisterOp } from '../sim/linearizability.js'
import type { Op } from './history.js'

export interface Anomaly {
  checker: 'registers' | 'appends' | 'directory' | 'harness'
  message: string
}

export interface FinalState {
  /** register name → value read after the run ('' = never written) */
  registers: Map<string, string>
  /** append file name → its whole content */
  appends: Map<string, string>
  /** entry name in the shared directory → its content */
  directory: Map<string, string>
  /** when the final state was read */
  at: number
}

/** key + value → when the first write of that value to that key began (writes that certainly failed left out). */
function firstInvokes (ops: Op[], kind: Op['kind']): Map<string, number> {
  const m = new Map<string, number>()
  for (const o of ops) {
    if (o.kind !== kind || o.outcome === 'fail') continue
    const k = `${o.key}\0${o.value}`
    m.set(k, Math.min(m.get(k) ?? Infinity, o.invoke))
  }
  return m
}

/** Whether a read may have been served stale (see above); by default none. */
export type StaleReads = (op: Op) => boolean
const never: StaleReads = () => false

export function checkHistory (ops: Op[], final: FinalState, stale: StaleReads = never): Anomaly[] {
  return [...checkRegisterHistory(ops, final, stale), ...checkAppendHistory(ops, final, stale), ...checkDirectoryHistory(ops, final)]
}

export function checkRegisterHistory (ops: Op[], final: FinalState, stale: StaleReads = never): Anomaly[] {
  const h: RegisterOp[] = []
  const anomalies: Anomaly[] = []
  const began = firstInvokes(ops, 'reg-write')
  for (const op of ops) {
    if (op.kind === 'reg-read' && op.outcome === 'ok' && stale(op)) {
      if (op.value !== '' && !((began.get(`${op.key}\0${op.value}`) ?? Infinity) <= op.response)) {
        anomalies.push({ checker: 'registers', message: `${op.key}: a (possibly stale) read by client ${op.client} returned ${op.value}, which no write had begun to write` })
      }
    } else if (op.kind === 'reg-write' && op.outcome !== 'fail') {
      h.push({ client: op.client, kind: 'write', key: op.key, value: op.value, invoke: op.invoke, response: op.outcome === 'ok' ? op.response : Infinity })
    } else if (op.kind === 'reg-read' && op.outcome === 'ok') {
      h.push({ client: op.client, kind: 'read', key: op.key, value: op.value === '' ? null : op.value, invoke: op.invoke, response: op.response })
    }
  }
  for (const [key, value] of final.registers) {
    h.push({ client: -1, kind: 'read', key, value: value === '' ? null : value, invoke: final.at, response: final.at })
  }
  // A write with an unknown outcome whose value no read ever returned constrains nothing: if some
  // linearization has it take effect, dropping it from that order leaves every read valid (no read
  // saw its value). Leaving such writes out keeps the search small after many kills and pauses,
  // where they would otherwise blow it past its bound without changing the verdict.
  const seen = new Set(h.filter((o) => o.kind === 'read').map((o) => `${o.key}\0${String(o.value)}`))
  const pruned = h.filter((o) => !(o.kind === 'write' && o.response === Infinity && !seen.has(`${o.key}\0${String(o.value)}`)))
  // one verdict per key: checkRegisters stops at the first bad key
  const keys = [...new Set(pruned.map((o) => o.key))].sort()
  for (const key of keys) {
    const r = checkRegisters(pruned.filter((o) => o.key === key))
    if (r.ok === false) anomalies.push({ checker: 'registers', message: `${key}: reads are not linearizable (${r.ops.length} operations)` })
    if (r.ok === 'unknown') anomalies.push({ checker: 'registers', message: `${key}: linearizability search exceeded its bound` })
  }
  return anomalies
}

export function checkAppendHistory (ops: Op[], final: FinalState, stale: StaleReads = never): Anomaly[] {
  const anomalies: Anomaly[] = []
  const attempted = new Map<string, Set<string>>()
  const acked: Op[] = []
  for (const op of ops) {
    if (op.kind !== 'append') continue
    let s = attempted.get(op.key)
    if (!s) attempted.set(op.key, s = new Set())
    s.add(op.value)
    if (op.outcome === 'ok') acked.push(op)
  }
  const began = firstInvokes(ops, 'append')
  const records = (content: string): string[] => content.split('\n').filter((l) => l !== '')
  for (const [file, content] of final.appends) {
    const seen = new Map<string, number>()
    for (const r of records(content)) seen.set(r, (seen.get(r) ?? 0) + 1)
    for (const [r, count] of seen) {
      if (count > 1) anomalies.push({ checker: 'appends', message: `${file}: record ${JSON.stringify(r)} appears ${count} times` })
      if (!(attempted.get(file)?.has(r) ?? false)) anomalies.push({ checker: 'appends', message: `${file}: record ${JSON.stringify(r)} was never appended` })
    }
    for (const op of acked) {
      if (op.key === file && !seen.has(op.value)) anomalies.push({ checker: 'appends', message: `${file}: acknowledged append ${op.value} is lost` })
    }
  }
  for (const read of ops) {
    if (read.kind !== 'read-all' || read.outcome !== 'ok') continue
    const seen = new Set<string>()
    for (const r of records(read.value)) {
      if (seen.has(r)) anomalies.push({ checker: 'appends', message: `${read.key}: a read by client ${read.client} holds ${r} twice` })
      seen.add(r)
    }
    if (stale(read)) {
      for (const r of seen) {
        if (!((began.get(`${read.key}\0${r}`) ?? Infinity) <= read.response)) {
          anomalies.push({ checker: 'appends', message: `${read.key}: a (possibly stale) read by client ${read.client} holds ${r}, which no append had begun to write` })
        }
      }
      continue
    }
    for (const op of acked) {
      if (op.key === read.key && op.response < read.invoke && !seen.has(op.value)) {
        anomalies.push({ checker: 'appends', message: `${read.key}: a read by client ${read.client} misses ${op.value}, acknowledged before the read began` })
      }
    }
  }
  return anomalies
}

// entry states: 0 = not created, 1 = at .a, 2 = at .b, 3 = unlinked
const AFTER: Record<string, number> = { create: 1, rename: 2, unlink: 3 }

export function checkDirectoryHistory (ops: Op[], final: FinalState): Anomaly[] {
  const anomalies: Anomaly[] = []
  const byEntry = new Map<string, Op[]>()
  for (const op of ops) {
    if (AFTER[op.kind] === undefined) continue
    let l = byEntry.get(op.key)
    if (!l) byEntry.set(op.key, l = [])
    l.push(op)
  }
  const known = new Set<string>()
  for (const [id, steps] of byEntry) {
    known.add(`${id}.a`)
    known.add(`${id}.b`)
    let state = 0
    const allowed = new Set<number>([0])
    for (const op of steps.sort((x, y) => x.invoke - y.invoke)) {
      if (op.outcome === 'ok') {
        state = AFTER[op.kind]!
        allowed.clear()
        allowed.add(state)
      } else {
        allowed.add(AFTER[op.kind]!)
        break
      }
    }
    const atA = final.directory.has(`${id}.a`)
    const atB = final.directory.has(`${id}.b`)
    if (atA && atB) {
      anomalies.push({ checker: 'directory', message: `${id}: present under both names (half-done rename)` })
      continue
    }
    const observed = atA ? [1] : atB ? [2] : [0, 3]
    if (!observed.some((s) => allowed.has(s))) {
      const where = atA ? 'at .a' : atB ? 'at .b' : 'absent'
      anomalies.push({ checker: 'directory', message: `${id}: ${where}, but its acknowledged steps allow only states ${[...allowed].join('/')} (0 none, 1 .a, 2 .b, 3 unlinked)` })
    }
    // an unknown-outcome create may leave the entry with part of its content
    const created = steps.find((o) => o.kind === 'create')?.outcome === 'ok'
    for (const name of [`${id}.a`, `${id}.b`]) {
      const content = final.directory.get(name)
      if (created && content !== undefined && content !== id) anomalies.push({ checker: 'directory', message: `${name}: content ${JSON.stringify(content)} is not what was written` })
    }
  }
  for (const name of final.directory.keys()) {
    if (!known.has(name)) anomalies.push({ checker: 'directory', message: `${name}: no client created this entry` })
  }
  return anomalies
}
