/**
 * The vocabulary of the Raft core: entries, messages, hard state, snapshots,
 * configurations and the `Ready` batch the core hands to its driver.
 *
 * Everything here is plain data (no classes) so that it crosses the store
 * (msgpack in lmdb) and the wire unchanged. Node ids are positive integers;
 * 0 means "nobody".
 */

export type NodeId = number
export const NONE: NodeId = 0

/** Voters decide elections and commits; learners only receive the log. */
export interface Config {
  voters: NodeId[]
  learners: NodeId[]
}

/**
 * One membership step. Only one voter changes per step; a node becomes a
 * voter only by promotion from learner, after it has caught up.
 */
export type ConfChange =
  | { type: 'addLearner', node: NodeId }
  | { type: 'promote', node: NodeId }
  | { type: 'remove', node: NodeId }

export type EntryKind = 'normal' | 'conf' | 'noop'

export interface Entry {
  index: number
  term: number
  kind: EntryKind
  /** Application payload (normal entries). */
  data?: Uint8Array
  /** Membership step (conf entries). */
  conf?: ConfChange
}

/** What must be on disk before anything that depends on it is sent. */
export interface HardState {
  term: number
  vote: NodeId
  commit: number
}

export interface SnapshotMeta {
  index: number
  term: number
  /** The configuration in force at `index`: a snapshot carries membership. */
  config: Config
}

export interface Snapshot {
  meta: SnapshotMeta
  data: Uint8Array
}

export type MessageType =
  | 'preVote' | 'preVoteResp'
  | 'vote' | 'voteResp'
  | 'app' | 'appResp'
  | 'heartbeat' | 'heartbeatResp'
  | 'snap'
  | 'timeoutNow'
  | 'readIndex' | 'readIndexResp'

/**
 * A message between two members of one group. One flat shape with optional
 * fields keeps encoding trivial; each type documents the fields it uses in
 * raft.ts.
 */
export interface Message {
  type: MessageType
  from: NodeId
  to: NodeId
  term: number
  /** app: index of the entry before `entries`; appResp: highest index matched, or rejected probe index. */
  index?: number
  /** app: term of `index`; vote/preVote: candidate's last log term; reject hint term. */
  logTerm?: number
  entries?: Entry[]
  commit?: number
  reject?: boolean
  rejectHint?: number
  snapshot?: Snapshot
  /** readIndex / readIndexResp: the request's identity. */
  context?: string
  /** heartbeat/heartbeatResp: highest read round this heartbeat confirms. */
  readSeq?: number
  /** vote: set when campaigning because of a leadership transfer. */
  transfer?: boolean
  /**
   * heartbeat: a read lease granted to the receiver for its answer to round
   * `leaseSeq`: valid for `leaseFor` (the unit of `now`) from when it
   * answered that round, once it has committed `leaseCommit` (raft.ts).
   */
  leaseSeq?: number
  /** heartbeatResp: the follower serves reads and asks for a read lease. */
  wantLease?: boolean
  leaseFor?: number
  leaseCommit?: number
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader'

/** A confirmed linearizable read point: serve `context` once applied >= index. */
export interface ReadState {
  context: string
  index: number
}

/**
 * One batch of work for the driver, in this order:
 *   1. persist `hardState`, `entries` (truncating from entries[0].index),
 *      `snapshot` (install) or `compacted` (local compaction) in one flush;
 *   2. only then send `messages` — except the first `early` of them,
 *      which may leave at once, while step 1 runs;
 *   3. apply `snapshot` (if any) then `committed` to the state machine,
 *      writing the applied index in the same transaction;
 *   4. call `advance()`.
 */
export interface Ready {
  hardState?: HardState
  entries: Entry[]
  /** A snapshot received from the leader: persist it and load it into the state machine. */
  snapshot?: Snapshot
  /** A local compaction: persist the snapshot, delete entries <= meta.index. */
  compacted?: Snapshot
  messages: Message[]
  /**
   * How many of `messages` (they come first) may be sent before this
   * Ready's writes are durable: a leader's appends, so that followers write
   * their copies while the leader writes its own (Raft thesis §10.2.1). Safe
   * because nothing this Ready hands out depends on those writes: its term
   * and vote are already durable, and its commit index covers none of its
   * own entries (a leader's own copy counts toward a quorum as soon as it
   * is appended, so without that condition a one-voter group could tell a
   * learner an entry is committed before any disk holds it). A driver that
   * ignores it sends everything after the flush, which is also correct.
   */
  early: number
  committed: Entry[]
  readStates: ReadState[]
}

/**
 * Why a request failed. Every code except UNKNOWN means the request had no
 * effect; UNKNOWN (timeout, shutdown, a snapshot that replaced the log)
 * means it may or may not have been applied.
 */
export type RaftErrorCode = 'NOT_LEADER' | 'BUSY' | 'TRANSFERRING' | 'CONF_PENDING' | 'BAD_CONF' | 'READ_NOT_READY' | 'TOO_MANY' | 'UNKNOWN'

export class RaftError extends Error {
  constructor (readonly code: RaftErrorCode, message: string, readonly leader: NodeId = NONE) {
    super(`${code}: ${message}`)
    this.name = 'RaftError'
  }
}

export function entrySize (e: Entry): number {
  return 24 + (e.data?.length ?? 0)
}
