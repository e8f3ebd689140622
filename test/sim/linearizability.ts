/**
 * A linearizability checker for a history of single-key registers (the
 * simulator's key-value workload), in the style of Wing & Gong with
 * Porcupine's memoization: the history is split per key (linearizability is
 * compositional), then a depth-first search tries to order the operations so
 * that each takes effect between its invocation and its response and every
 * read returns the latest write. Configurations already explored — the set
 * of operations linearized plus the register's value — are cached, which
 * keeps the search small on real histories.
 *
 * An operation whose outcome is unknown (the client gave up) has
 * `response: Infinity`: it may take effect at any time after its call, or
 * never. Reads without an answer must be left out of the history: they
 * constrain nothing.
 */

export interface RegisterOp {
  client: number
  kind: 'write' | 'read'
  key: string
  /** write: value written; read: value observed (null = never written). */
  value: string | null
  invoke: number
  response: number
}

export type LinResult = { ok: true } | { ok: false, key: string, ops: RegisterOp[] } | { ok: 'unknown', key: string }

interface Ev {
  call: boolean
  op: number
  time: number
  prev: Ev | null
  next: Ev | null
  match: Ev | null
}

/** Checks every key; stops at the first key that is not linearizable. `maxSteps` bounds the search per key. */
export function checkRegisters (ops: RegisterOp[], maxSteps = 2_000_000): LinResult {
  const byKey = new Map<string, RegisterOp[]>()
  for (const op of ops) {
    let l = byKey.get(op.key)
    if (!l) byKey.set(op.key, l = [])
    l.push(op)
  }
  for (const key of [...byKey.keys()].sort()) {
    const r = checkOneKey(byKey.get(key)!, maxSteps)
    if (r === false) return { ok: false, key, ops: byKey.get(key)! }
    if (r === 'unknown') return { ok: 'unknown', key }
  }
  return { ok: true }
}

function checkOneKey (ops: RegisterOp[], maxSteps: number): boolean | 'unknown' {
  const events: Ev[] = []
  ops.forEach((op, i) => {
    if (op.response < op.invoke) throw new Error(`operation ${i} responds before it is invoked`)
    const c: Ev = { call: true, op: i, time: op.invoke, prev: null, next: null, match: null }
    const r: Ev = { call: false, op: i, time: op.response, prev: null, next: null, match: null }
    c.match = r
    r.match = c
    events.push(c, r)
  })
  // Calls before returns at equal times: touching operations count as concurrent.
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1))
  const head: Ev = { call: false, op: -1, time: -Infinity, prev: null, next: null, match: null }
  let p = head
  for (const e of events) {
    p.next = e
    e.prev = p
    p = e
  }

  const lift = (c: Ev): void => {
    c.prev!.next = c.next
    if (c.next) c.next.prev = c.prev
    const r = c.match!
    r.prev!.next = r.next
    if (r.next) r.next.prev = r.prev
  }
  const unlift = (c: Ev): void => {
    const r = c.match!
    r.prev!.next = r
    if (r.next) r.next.prev = r
    c.prev!.next = c
    if (c.next) c.next.prev = c
  }

  const cache = new Set<string>()
  const stack: Array<{ ev: Ev, state: string | null }> = []
  let linearized = 0n
  let state: string | null = null
  let entry = head.next
  let steps = 0
  while (head.next !== null) {
    if (++steps > maxSteps) return 'unknown'
    if (entry === null) return false
    if (entry.call) {
      const op = ops[entry.op]
      let ok: boolean
      let next: string | null
      if (op.kind === 'write') {
        ok = true
        next = op.value
      } else {
        ok = op.value === state
        next = state
      }
      if (ok) {
        const bits = linearized | (1n << BigInt(entry.op))
        const k = bits.toString(36) + '|' + String(next)
        if (!cache.has(k)) {
          cache.add(k)
          stack.push({ ev: entry, state })
          state = next
          linearized = bits
          lift(entry)
          entry = head.next
          continue
        }
      }
      entry = entry.next
    } else {
      // A return whose call is not linearized yet: undo the last choice.
      const top = stack.pop()
      if (!top) return false
      state = top.state
      linearized &= ~(1n << BigInt(top.ev.op))
      unlift(top.ev)
      entry = top.ev.next
    }
  }
  return true
}
