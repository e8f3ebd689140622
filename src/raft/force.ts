/**
 * Forcing one replica to be its group's only voter: the Raft side of
 * `walkenfs recover --force-new-cluster` (docs/operations.md, "Losing a
 * majority for good").
 *
 * Owns: describing what one replica holds (last / commit / applied index,
 * its configuration, how many entries it would keep beyond its commit
 * index) and the log suffix plus hard state that make it the sole voter.
 *
 * Pure: it reads a RaftInit (what RaftStorage.load gives) and returns data;
 * the caller writes it through RaftStorage in one transaction.
 *
 * Promises:
 * - nothing in the replica's log is dropped: every entry it holds becomes
 *   committed (also those beyond its old commit index), then the new
 *   configuration follows;
 * - the new configuration is reached with ordinary single-step membership
 *   entries (addLearner/promote of this node, then `remove` of every other
 *   member), so the log stays a valid Raft log that later snapshots and
 *   followers understand; they carry a term above every term this replica
 *   has seen, and the hard state votes for this node in that term;
 * - the result is committed up to its last entry: a one-voter group needs
 *   no one else to agree.
 */
import { RaftLog } from './log.js'
import type { WholeRaftInit } from './raft.js'
import type { ConfChange, Config, Entry, HardState, NodeId } from './types.js'

export interface ReplicaSummary {
  /** Highest log index this replica holds (its snapshot's index if no entry follows). */
  lastIndex: number
  lastTerm: number
  commit: number
  applied: number
  term: number
  config: Config
  configIndex: number
  /** Voter, learner, or none (opened but not in its own configuration). */
  role: 'voter' | 'learner' | 'none'
  /** An empty replica opened for a leader to fill that never got its snapshot: it holds no data. */
  empty: boolean
}

export function summarize (init: WholeRaftInit, me: NodeId): ReplicaSummary {
  const log = new RaftLog(init.snapshot.meta, init.entries, init.hardState.commit, init.applied)
  const config = log.config()
  const empty = log.snapIndex === 0 && log.lastIndex() === 0 && config.voters.length === 0 && config.learners.length === 0
  return {
    lastIndex: log.lastIndex(),
    lastTerm: log.lastTerm(),
    commit: log.committed,
    applied: log.applied,
    term: init.hardState.term,
    config: { voters: [...config.voters], learners: [...config.learners] },
    configIndex: log.configIndex(),
    role: config.voters.includes(me) ? 'voter' : config.learners.includes(me) ? 'learner' : 'none',
    empty
  }
}

/** The membership steps from `c` to {voters: [me], learners: []}. */
export function soleVoterSteps (c: Config, me: NodeId): ConfChange[] {
  const steps: ConfChange[] = []
  if (!c.voters.includes(me)) {
    if (!c.learners.includes(me)) steps.push({ type: 'addLearner', node: me })
    steps.push({ type: 'promote', node: me })
  }
  for (const n of [...c.voters, ...c.learners]) if (n !== me) steps.push({ type: 'remove', node: n })
  return steps
}

export interface ForcedSuffix {
  /** Entries to append after the replica's last index. */
  entries: Entry[]
  hardState: HardState
  /** The new term (above every term the replica knew). */
  term: number
  /** Index of the configuration now in force (the last `conf` entry, or the old one when nothing changed). */
  configIndex: number
  /** Index of each `extra` payload's entry, in order. */
  extraIndexes: number[]
}

/**
 * The suffix that makes `me` the only voter, followed by one normal entry
 * per `extra` payload (the schema group's catalog rewrite). An empty
 * replica cannot be forced: it has no data and no configuration to start from.
 */
export function forceSoleVoter (init: WholeRaftInit, me: NodeId, extra: Uint8Array[] = []): ForcedSuffix {
  const s = summarize(init, me)
  if (s.empty) throw new Error('an empty replica (it never received its first snapshot) holds nothing to recover')
  const term = Math.max(s.term, s.lastTerm) + 1
  const entries: Entry[] = []
  let index = s.lastIndex
  let configIndex = s.configIndex
  for (const conf of soleVoterSteps(s.config, me)) {
    entries.push({ index: ++index, term, kind: 'conf', conf })
    configIndex = index
  }
  const extraIndexes: number[] = []
  for (const data of extra) {
    entries.push({ index: ++index, term, kind: 'normal', data })
    extraIndexes.push(index)
  }
  return { entries, hardState: { term, vote: me, commit: index }, term, configIndex, extraIndexes }
}
