import t from 'tap'
import { checkRegisters, type RegisterOp } from '../sim/linearizability.js'

const w = (client: number, value: string, invoke: number, response: number, key = 'x'): RegisterOp =>
  ({ client, kind: 'write', key, value, invoke, response })
const r = (client: number, value: string | null, invoke: number, response: number, key = 'x'): RegisterOp =>
  ({ client, kind: 'read', key, value, invoke, response })

t.test('sequential history that reads its writes is linearizable', async (t) => {
  t.same(checkRegisters([w(0, 'a', 0, 1), r(1, 'a', 2, 3), w(0, 'b', 4, 5), r(1, 'b', 6, 7)]), { ok: true })
})

t.test('a read of a value never written is caught', async (t) => {
  const res = checkRegisters([w(0, 'a', 0, 1), r(1, 'zzz', 2, 3)])
  t.equal(res.ok, false)
})

t.test('a stale read after a completed overwrite is caught', async (t) => {
  // b's write finished before the read started, yet the read saw a.
  const res = checkRegisters([w(0, 'a', 0, 1), w(0, 'b', 2, 3), r(1, 'a', 4, 5)])
  t.equal(res.ok, false)
})

t.test('a lost acknowledged write is caught (read sees the initial value)', async (t) => {
  t.equal(checkRegisters([w(0, 'a', 0, 1), r(1, null, 2, 3)]).ok, false)
})

t.test('overlapping operations may take effect in either order', async (t) => {
  // The read overlaps both writes: seeing either value (or none yet) is fine.
  t.same(checkRegisters([w(0, 'a', 0, 10), w(1, 'b', 1, 9), r(2, 'a', 2, 8)]), { ok: true })
  t.same(checkRegisters([w(0, 'a', 0, 10), w(1, 'b', 1, 9), r(2, null, 2, 8)]), { ok: true })
})

t.test('two readers that disagree on the order of two writes are caught', async (t) => {
  // Reader 2 sees a then b; reader 3 sees b then a, all within the writes' window.
  const res = checkRegisters([
    w(0, 'a', 0, 100), w(1, 'b', 0, 100),
    r(2, 'a', 10, 11), r(2, 'b', 20, 21),
    r(3, 'b', 12, 13), r(3, 'a', 22, 23)
  ])
  t.equal(res.ok, false)
})

t.test('an unacknowledged write may take effect late or never', async (t) => {
  t.same(checkRegisters([w(0, 'a', 0, 1), w(1, 'b', 2, Infinity), r(2, 'a', 3, 4), r(2, 'b', 5, 6)]), { ok: true })
  t.same(checkRegisters([w(0, 'a', 0, 1), w(1, 'b', 2, Infinity), r(2, 'a', 3, 4)]), { ok: true })
  // ...but not before it was invoked.
  t.equal(checkRegisters([w(0, 'a', 0, 1), r(2, 'b', 2, 3), w(1, 'b', 4, Infinity)]).ok, false)
})

t.test('keys are checked independently and the failing key is named', async (t) => {
  const res = checkRegisters([w(0, 'a', 0, 1, 'k1'), r(1, 'a', 2, 3, 'k1'), w(0, 'q', 0, 1, 'k2'), r(1, null, 2, 3, 'k2')])
  t.equal(res.ok, false)
  if (res.ok === false) t.equal(res.key, 'k2')
})

t.test('the search bound reports unknown instead of running forever', async (t) => {
  const ops: RegisterOp[] = []
  for (let i = 0; i < 30; i++) ops.push(w(i, `v${i}`, 0, 1000))
  ops.push(r(99, 'nope', 0, 1000))
  t.equal(checkRegisters(ops, 1000).ok, 'unknown')
})
