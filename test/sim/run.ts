/**
 * Runs a range of simulator seeds and sums what happened; shared by the
 * `npm run sim` command and the tests.
 */
import type { RaftFaults } from '../../src/raft/raft.js'
import { runSchedule, type SimConfig } from './sim.js'

export const FAULTS = {
  'reply-before-flush': { replyBeforeFlush: true },
  'double-vote': { faults: { doubleVote: true } },
  'vote-ignoring-term': { faults: { voteIgnoringTerm: true } },
  'apply-uncommitted': { faults: { applyUncommitted: true } },
  'skip-prevote': { faults: { skipPreVote: true } },
  'local-reads': { localReads: true },
  'unsafe-lease': { lease: true, faults: { unsafeLease: true } },
  'unsafe-follower-lease': { lease: true, faults: { unsafeFollowerLease: true } },
  'cache-no-drop': { cache: true, lease: true, cacheNoDrop: true },
  'cache-in-flight': { cache: true, lease: true, cacheInFlight: true }
} satisfies Record<string, Partial<SimConfig> & { faults?: RaftFaults }>
export type FaultName = keyof typeof FAULTS

export interface RunOptions {
  seeds: number
  from: number
  fault?: FaultName
  /** Lease reads on (the fault's own setting wins). */
  lease?: boolean
  /** live snapshots (raft.ts): compaction keeps no data, a leader reads its state machine when it sends a snapshot */
  live?: boolean
  /** cache leases (sim.ts SimConfig.cache; with lease reads) */
  cache?: boolean
  /** Stop at the first violation (used to show a fault is caught). */
  stopAtFirst?: boolean
  onViolation?: (seed: number, violation: string) => void
}

export interface RunSummary {
  schedules: number
  violations: number
  firstViolation?: { seed: number, violation: string }
  events: number
  elections: number
  snapshotsSent: number
  crashes: number
  confChanges: number
  ops: number
  /** reads answered from a host's cache alone (SimConfig.cache) */
  cacheReads: number
}

export function runSimulation (o: RunOptions): RunSummary {
  const s: RunSummary = { schedules: 0, violations: 0, events: 0, elections: 0, snapshotsSent: 0, crashes: 0, confChanges: 0, ops: 0, cacheReads: 0 }
  for (let seed = o.from; seed < o.from + o.seeds; seed++) {
    const r = runSchedule({ seed, ...(o.lease === true ? { lease: true } : {}), ...(o.live === true ? { live: true } : {}), ...(o.cache === true ? { cache: true, lease: true } : {}), ...(o.fault ? FAULTS[o.fault] : {}) })
    s.schedules++
    s.events += r.stats.events
    s.elections += r.stats.elections
    s.snapshotsSent += r.stats.snapshotsSent
    s.crashes += r.stats.crashes
    s.confChanges += r.stats.confChanges
    s.ops += r.stats.ops
    s.cacheReads += r.stats.cacheReads
    if (r.violation !== undefined) {
      s.violations++
      s.firstViolation ??= { seed, violation: r.violation }
      o.onViolation?.(seed, r.violation)
      if (o.stopAtFirst) break
    }
  }
  return s
}
