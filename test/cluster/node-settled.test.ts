/**
 * The placement actuator of a settled cluster: it asks the other hosts for
 * their group reports only every SETTLED_ROUND_MS, not every round, and a
 * change (here a host that stops) brings the rounds back at once.
 */
import t from 'tap'
import { SETTLED_ROUND_MS } from '../../src/cluster/actuator.js'
import { NodeCluster } from './node-harness.js'

t.test('a settled cluster is looked at every SETTLED_ROUND_MS; a host going down brings the rounds back', async (t) => {
  const c = new NodeCluster({ settings: { fragments: 4, copies: 3, replaceAfterMs: 60_000 } })
  t.teardown(() => c.cleanup())
  const ids = ['s1', 's2', 's3']
  await c.form(ids)
  await c.until(() => NodeCluster.fsSettled(c.get('s1').catalog(), 3), 'every fs group has 3 voters')
  // Count the report requests every host answers (the schema leader asks itself without the wire).
  const asked = new Map<string, number[]>(ids.map((id) => [id, []]))
  for (const id of ids) {
    const node = c.get(id)
    node.handle('cluster.report', async () => { asked.get(id)!.push(Date.now()); return node.report() })
  }
  const leader = (): string | undefined => ids.find((id) => c.nodes.has(id) && c.get(id).isSchemaLeader())
  await c.until(() => leader() !== undefined, 'a schema leader')
  const quietFrom = Date.now() + 2000 // placement settles (leader balancing) first
  await new Promise((r) => setTimeout(r, 2000 + 2 * SETTLED_ROUND_MS))
  const rounds = c.get('s1').o.actuatorMs // 150 ms in the harness
  const others = ids.filter((id) => id !== leader())
  const inQuiet = others.map((id) => asked.get(id)!.filter((at) => at >= quietFrom).length)
  const wouldBe = Math.floor(2 * SETTLED_ROUND_MS / rounds)
  // Two asks per host when nothing happens; an election under load brings a round or two more, never one per round.
  t.ok(inQuiet.every((n) => n <= wouldBe / 4), `settled: ${others.join(', ')} were asked ${inQuiet.join(', ')} times in ${2 * SETTLED_ROUND_MS} ms (about ${wouldBe} each at one per round)`)

  // Stop a host that does not lead the schema group now. Leadership may still move to the other survivor, so count the asks both get.
  const now = leader()
  const victim = ids.find((id) => id !== now)!
  const live = ids.filter((id) => id !== victim)
  await c.stop(victim)
  const stoppedAt = Date.now()
  const askedSince = (): number => live.reduce((n, id) => n + asked.get(id)!.filter((at) => at > stoppedAt).length, 0)
  await c.until(() => askedSince() >= 5, `the survivors are asked every round again once ${victim} is down`, 1000)
  t.pass(`rounds resumed ${Date.now() - stoppedAt} ms after ${victim} stopped`)
})
