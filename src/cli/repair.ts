/**
 * `walkenfs repair [MOUNTPOINT] [--json]`: scrub every fragment's replicas
 * and rebuild the ones that differ, with one progress line per fragment
 * repaired and a summary. The daemon of the mount does the work (control
 * commands `check-replicas` and `repair`, src/tables/replica-repair.ts);
 * this is the printing side.
 *
 * Exit codes: 0 every replica agrees at the end; 1 some still differ (or
 * could not be repaired); 2 the daemon could not be asked.
 */
import type { ReplicaReport } from '../tables/replica-check.js'
import type { FragmentRepair } from '../tables/replica-repair.js'

export type Ask = (cmd: string, args: Record<string, unknown>, timeoutMs: number) => Promise<unknown>

function mib (bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} bytes`
}

export async function runRepair (ask: Ask, json: boolean, write: (s: string) => void): Promise<number> {
  const line = (s: string): void => { if (!json) write(s + '\n') }
  let first: ReplicaReport
  try {
    first = await ask('check-replicas', {}, 300_000) as ReplicaReport
  } catch (e) {
    write(`walkenfs repair: cannot check the replicas: ${(e as Error).message}\n`)
    return 2
  }
  line(`walkenfs repair: ${first.groups.length} fragments checked: ${first.counts.same} identical, ${first.groups.length - first.counts.same} to look at`)
  const repairs: FragmentRepair[] = []
  for (const g of first.groups.filter((x) => x.verdict !== 'same')) {
    let r: FragmentRepair
    try {
      const plan = await ask('repair', { group: g.group, dryRun: true }, 120_000) as FragmentRepair
      const d = plan.decision
      if (d.blocked !== null || d.rebuild.length === 0) {
        repairs.push(plan)
        line(`${g.group}: ${d.blocked !== null ? `not repaired: ${d.blocked}` : 'identical now, nothing to do'}`)
        continue
      }
      if (!json) write(`${g.group}: ${d.rebuild.map((x) => `replica on ${x.host} ${x.reason}`).join('; ')}${d.transferTo !== null ? ` (its leader hands over to ${d.transferTo} first)` : ''}, rebuilding… `)
      r = await ask('repair', { group: g.group }, 900_000) as FragmentRepair
    } catch (e) {
      line(`FAILED: ${(e as Error).message}`)
      continue
    }
    repairs.push(r)
    const bad = r.results.find((x) => !x.ok)
    if (r.decision.blocked !== null) line(`not repaired: ${r.decision.blocked}`)
    else if (bad) line(`FAILED: ${bad.error ?? 'unknown error'}`)
    else line(`done (${r.results.map((x) => `${x.host}: ${mib(x.bytes)} in ${(x.ms / 1000).toFixed(1)} s`).join(', ') || 'nothing rebuilt'})`)
  }
  let after: ReplicaReport
  try {
    after = first.clean ? first : await ask('check-replicas', {}, 300_000) as ReplicaReport
  } catch (e) {
    write(`walkenfs repair: cannot check the replicas again: ${(e as Error).message}\n`)
    return 2
  }
  if (json) write(JSON.stringify({ clean: after.clean, before: first, repairs, after }, null, 2) + '\n')
  else {
    const c = after.counts
    const rebuilt = repairs.flatMap((r) => r.results).filter((x) => x.ok).length
    line(`walkenfs repair: ${rebuilt} replica(s) rebuilt; now ${c.same} of ${after.groups.length} fragments identical${after.clean ? '' : `, ${c.mismatch} DIFFERENT, ${c.busy} busy, ${c.unreachable} with a replica unreachable`}`)
  }
  return after.clean ? 0 : 1
}
