/**
 * The torture checkers bite: a clean history passes, and each doctored
 * history — a lost acknowledged append, a duplicated append, a stale
 * register read, a lost acknowledged register write, a half-done rename, an
 * entry that never was — is reported. Unknown outcomes are allowed either
 * way.
 */
import t from 'tap'
import { checkHistory, type FinalState } from './checkers.js'
import type { Op } from './history.js'

function op (client: number, kind: Op['kind'], key: string, value: string, invoke: number, response: number, outcome: Op['outcome'] = 'ok'): Op {
  return { client, kind, key, value, invoke, response, outcome }
}

// a small clean run: two clients, one register, one append file, one directory entry taken through all steps
function clean (): { ops: Op[], final: FinalState } {
  const ops: Op[] = [
    op(0, 'reg-write', 'reg0', 'c0n1', 10, 20),
    op(1, 'reg-read', 'reg0', 'c0n1', 25, 30),
    op(1, 'reg-write', 'reg0', 'c1n2', 31, 40),
    op(0, 'reg-read', 'reg0', 'c1n2', 45, 50),
    op(0, 'append', 'app0', 'c0n3', 10, 20),
    op(1, 'append', 'app0', 'c1n4', 15, 25),
    op(1, 'read-all', 'app0', 'c0n3\nc1n4\n', 30, 35),
    op(0, 'create', 'c0e0', 'c0e0.a', 60, 61),
    op(0, 'rename', 'c0e0', 'c0e0.b', 62, 63),
    op(1, 'create', 'c1e0', 'c1e0.a', 60, 61),
    op(1, 'rename', 'c1e0', 'c1e0.b', 62, 63),
    op(1, 'unlink', 'c1e0', 'c1e0.b', 64, 65)
  ]
  const final: FinalState = {
    registers: new Map([['reg0', 'c1n2']]),
    appends: new Map([['app0', 'c0n3\nc1n4\n']]),
    directory: new Map([['c0e0.b', 'c0e0']]),
    at: 100
  }
  return { ops, final }
}

const messages = (ops: Op[], final: FinalState): string[] => checkHistory(ops, final).map((a) => `[${a.checker}] ${a.message}`)

t.test('a clean history has no anomalies', async (t) => {
  const { ops, final } = clean()
  t.same(messages(ops, final), [])
})

t.test('a lost acknowledged append is reported', async (t) => {
  const { ops, final } = clean()
  final.appends.set('app0', 'c1n4\n')
  const m = messages(ops, final)
  t.ok(m.some((s) => s.includes('acknowledged append c0n3 is lost')), m.join('; '))
})

t.test('a duplicated append is reported, in the final file and in a read', async (t) => {
  const { ops, final } = clean()
  final.appends.set('app0', 'c0n3\nc1n4\nc0n3\n')
  ops[6] = op(1, 'read-all', 'app0', 'c0n3\nc0n3\nc1n4\n', 30, 35)
  const m = messages(ops, final)
  t.ok(m.some((s) => s.includes('"c0n3" appears 2 times')), m.join('; '))
  t.ok(m.some((s) => s.includes('holds c0n3 twice')), m.join('; '))
})

t.test('a read-all missing an append acknowledged before it began is reported', async (t) => {
  const { ops, final } = clean()
  ops[6] = op(1, 'read-all', 'app0', 'c1n4\n', 30, 35)
  const m = messages(ops, final)
  t.ok(m.some((s) => s.includes('misses c0n3')), m.join('; '))
})

t.test('an append nobody made is reported', async (t) => {
  const { ops, final } = clean()
  final.appends.set('app0', 'c0n3\nc1n4\nc9n9\n')
  t.ok(messages(ops, final).some((s) => s.includes('"c9n9" was never appended')))
})

t.test('unknown-outcome appends may be present once or absent', async (t) => {
  const { ops, final } = clean()
  ops.push(op(0, 'append', 'app0', 'c0n7', 40, 45, 'unknown'), op(1, 'append', 'app0', 'c1n8', 40, 45, 'unknown'))
  final.appends.set('app0', 'c0n3\nc1n4\nc0n7\n')
  t.same(messages(ops, final), [])
  final.appends.set('app0', 'c0n3\nc1n4\nc0n7\nc0n7\n')
  t.ok(messages(ops, final).some((s) => s.includes('appears 2 times')), 'but never twice')
})

t.test('a stale register read is reported', async (t) => {
  const { ops, final } = clean()
  ops[3] = op(0, 'reg-read', 'reg0', 'c0n1', 45, 50)
  const m = messages(ops, final)
  t.ok(m.some((s) => s.startsWith('[registers] reg0: reads are not linearizable')), m.join('; '))
})

t.test('a lost acknowledged register write shows in the final read', async (t) => {
  const { ops, final } = clean()
  final.registers.set('reg0', 'c0n1')
  t.ok(messages(ops, final).some((s) => s.startsWith('[registers] reg0')))
})

t.test('an unknown-outcome register write may take effect late or never', async (t) => {
  const { ops, final } = clean()
  ops.push(op(0, 'reg-write', 'reg0', 'c0n9', 60, 61, 'unknown'))
  t.same(messages(ops, final), [], 'never')
  final.registers.set('reg0', 'c0n9')
  t.same(messages(ops, final), [], 'after its call')
  ops.push(op(1, 'reg-read', 'reg0', 'c0n9', 55, 58))
  t.ok(messages(ops, final).some((s) => s.startsWith('[registers]')), 'but not before its call')
})

t.test('a half-done rename is reported', async (t) => {
  const { ops, final } = clean()
  final.directory.set('c0e0.a', 'c0e0')
  const m = messages(ops, final)
  t.ok(m.some((s) => s.includes('c0e0: present under both names')), m.join('; '))
})

t.test('an acknowledged rename or unlink that did not last is reported', async (t) => {
  const { ops, final } = clean()
  final.directory.delete('c0e0.b')
  final.directory.set('c0e0.a', 'c0e0')
  final.directory.set('c1e0.b', 'c1e0')
  const m = messages(ops, final)
  t.ok(m.some((s) => s.startsWith('[directory] c0e0: at .a')), m.join('; '))
  t.ok(m.some((s) => s.startsWith('[directory] c1e0: at .b')), m.join('; '))
})

t.test('an unknown directory step may or may not have happened; unknown entries and wrong content are reported', async (t) => {
  const { ops, final } = clean()
  ops.push(op(0, 'unlink', 'c0e0', 'c0e0.b', 70, 71, 'unknown'))
  t.same(messages(ops, final), [], 'still there')
  final.directory.delete('c0e0.b')
  t.same(messages(ops, final), [], 'or gone')
  final.directory.set('stray', 'x')
  final.directory.set('c0e0.b', 'garbage')
  const m = messages(ops, final)
  t.ok(m.some((s) => s.includes('stray: no client created')), m.join('; '))
  t.ok(m.some((s) => s.includes('c0e0.b: content "garbage"')), m.join('; '))
})

t.test('many unknown-outcome register writes that no read saw do not swamp the search; one that a read saw still counts', async (t) => {
  const { ops, final } = clean()
  // 80 overlapping unknown writes (as after kills and pauses): the search space without pruning is far past its bound.
  for (let i = 0; i < 80; i++) ops.push(op(i % 4, 'reg-write', 'reg0', `lost${i}`, 41 + i, 42 + i, 'unknown'))
  t.same(checkHistory(ops, final), [], 'unseen unknown writes constrain nothing')
  // An unknown write whose value a read returned before it was even invoked is still a violation.
  const bad = clean()
  bad.ops.push(op(2, 'reg-read', 'reg0', 'late', 41, 42))
  bad.ops.push(op(3, 'reg-write', 'reg0', 'late', 43, 44, 'unknown'))
  t.match(checkHistory(bad.ops, bad.final), [{ checker: 'registers', message: /reg0: reads are not linearizable/ }])
})

t.test('reads in a stale window are checked weakly, all others strictly', async (t) => {
  const { ops, final } = clean()
  // after c1n2 was acknowledged (40), a read at 45–50 still returns c0n1: stale
  const staleRead = op(0, 'reg-read', 'reg0', 'c0n1', 45, 50)
  const missingRead = op(1, 'read-all', 'app0', 'c0n3\n', 30, 35)
  const doctored = ops.map((o) => o.kind === 'reg-read' && o.response === 50 ? staleRead : o.kind === 'read-all' ? missingRead : o)
  const window = (o: Op): boolean => o.invoke <= 50 && o.response >= 30
  t.ok(checkHistory(doctored, final).length >= 2, 'outside a stale window: the stale register read and the short read-all are reported')
  t.same(checkHistory(doctored, final, window), [], 'inside a stale window: both allowed (old values, nothing invented)')
  const invented = doctored.map((o) => o === staleRead ? op(0, 'reg-read', 'reg0', 'c9n9', 45, 50) : o === missingRead ? op(1, 'read-all', 'app0', 'c0n3\nc9n8\n', 30, 35) : o)
  const found = checkHistory(invented, final, window)
  t.ok(found.some((a) => a.checker === 'registers' && /c9n9/.test(a.message)), 'a stale read of a value never written is reported')
  t.ok(found.some((a) => a.checker === 'appends' && /c9n8/.test(a.message)), 'a stale read-all holding a record never appended is reported')
  const lost = { ...final, registers: new Map([['reg0', 'c0n1']]) }
  t.ok(checkHistory(ops, lost, () => true).some((a) => a.checker === 'registers'), 'the final state is checked strictly even when every read may be stale')
})
