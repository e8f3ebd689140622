/**
 * Seeded random schedules against the failure detector, checked against a
 * simple model: a peer goes down exactly at the first tick after
 * `downAfterMs` of silence, never twice without coming up in between, and
 * comes up only when heard. A failing seed is printed as a one-line repro.
 */
import t from 'tap'
import { FailureDetector, type MembershipEvent } from '../../src/cluster/failure-detector.js'

function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function run (seed: number): string | null {
  const r = rng(seed)
  const s = { suspectAfterMs: 100 + Math.floor(r() * 200), downAfterMs: 400 + Math.floor(r() * 400) }
  const fd = new FailureDetector(s)
  const peers = ['a', 'b', 'c']
  const last = new Map<string, number>()
  const down = new Map<string, boolean>()
  const downAt = new Map<string, number>()
  let now = 0
  for (let step = 0; step < 300; step++) {
    now += Math.floor(r() * 150)
    if (r() < 0.4) {
      const p = peers[Math.floor(r() * peers.length)]!
      const at = now - Math.floor(r() * 50) // heard a little earlier (a frame read before this check)
      const events = fd.heard(p, at)
      const wasKnown = last.has(p)
      const stale = down.get(p) === true && at <= downAt.get(p)!
      const expectUp = !wasKnown || (down.get(p) === true && !stale)
      if (events.length !== (expectUp ? 1 : 0) || (expectUp && events[0]!.type !== 'up')) {
        return `seed ${seed} step ${step}: heard ${p} at ${at} gave ${JSON.stringify(events)}, expected ${expectUp ? 'up' : 'nothing'}`
      }
      if (!stale) {
        last.set(p, Math.max(last.get(p) ?? -Infinity, at))
        down.set(p, false)
      }
    } else {
      const events: MembershipEvent[] = fd.tick(now)
      for (const [p, at] of last) {
        const shouldGoDown = down.get(p) !== true && now - at > s.downAfterMs
        const wentDown = events.some((e) => e.type === 'down' && e.peerId === p)
        if (shouldGoDown !== wentDown) {
          return `seed ${seed} step ${step}: ${p} silent ${now - at} ms (down after ${s.downAfterMs}), down event: ${wentDown}`
        }
        if (wentDown) { down.set(p, true); downAt.set(p, now) }
        const state = fd.view()[p]
        const expected = down.get(p) ? 'down' : now - at > s.suspectAfterMs ? 'suspect' : 'up'
        if (state !== expected) return `seed ${seed} step ${step}: ${p} is ${state}, model says ${expected}`
      }
      if (events.some((e) => e.type !== 'down')) return `seed ${seed} step ${step}: tick emitted ${JSON.stringify(events)}`
    }
  }
  return null
}

t.test('failure detector matches the model on 2000 seeded schedules', async (t) => {
  const failures: string[] = []
  for (let seed = 1; seed <= 2000 && failures.length < 5; seed++) {
    const f = run(seed)
    if (f) failures.push(f)
  }
  t.same(failures, [], 'no seed fails')
})
