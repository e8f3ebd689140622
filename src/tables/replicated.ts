/**
 * The Tables API (types.ts) over replicated fragments: optimistic
 * transactions whose bodies run on this host (the coordinator), with reads
 * and proposals sent through the FragmentRouter to the fragments' Raft
 * groups, whose FragmentMachines validate and apply them.
 *
 * Protocol of one attempt (see docs/replication.md "Transactions"):
 * - Reads go through the router; each returns a hash of what was read,
 *   kept as a *check* of the fragment. Writes are buffered (and visible to
 *   the body's own later reads). A read that meets another transaction's
 *   write intent makes the attempt void: the intent is recovered (below)
 *   and the body re-run.
 * - The first attempt reads *optimistically*: from this host's replica as
 *   it is, without a ReadIndex round (router.readLocal), so a body that
 *   reads k rows costs no round until its end. Such reads prove nothing by
 *   themselves (the replica may lag), so the end of the body always checks
 *   them: a commit's checks are validated by the fragment leaders anyway,
 *   and a read-only body gets the validation round below. When that fails,
 *   later attempts read *fresh* (a ReadIndex round per read), as all
 *   attempts did before. An optimistic read that meets an intent is read
 *   again fresh at once: the intent may be settled on the leader already.
 * - End of the body:
 *   - no writes, one fresh read call: done.
 *   - no writes, several read calls or any optimistic one: one validation
 *     round (per fragment one ReadIndex, then its reads re-read in one
 *     batch and compared with what the body got), else re-run. A fragment
 *     whose reads were all served by this host's replica, which shows no
 *     change after the index it had then (change-marks.ts), is not re-read:
 *     the reads hold as they are.
 *   - checks are hashes of what the body read (fragment-machine.ts),
 *     computed only when a commit sends them.
 *   - one fragment touched: one `commit1 {txn, checks, writes}` proposal.
 *   - several: two-phase commit. Record fragment = the participant the
 *     body wrote most rows to (ties: the one it read first, then the
 *     lowest): it never holds intents, so the rows a next operation most
 *     likely touches again (a directory's entry and its inode, for a mkdir
 *     or rmdir) are settled when the caller has its answer.
 *     `prepare` to every other participant in parallel; if all prepared,
 *     `commitDecide` on the record fragment: it validates and applies its
 *     own part and records the decision commit in one entry (the commit
 *     point; a decision a recoverer recorded first wins, and then nothing
 *     is applied there); `resolve` on every other participant whose prepare
 *     may have applied; then `forget` the record: the txn id rides on this
 *     host's next proposal to the record fragment (any commit1, prepare,
 *     commitDecide, resolve or forget carries a `forget` list), or goes
 *     alone, batched, after `forgetDelayMs`. The record fragment never
 *     holds intents of the transaction: it takes one proposal instead of
 *     three (prepare, decide, resolve).
 *   - a commit's resolves run after the caller has its answer: the decision
 *     is the commit point and is on disk on a majority, so a reader that
 *     meets an intent before its resolve lands learns the decision from
 *     the record fragment, as it would after a coordinator crash. A body of
 *     this host that meets an intent of its own commit still settling
 *     waits for that resolve instead (no recovery, no backoff), so its next
 *     transaction sees its writes. An abort resolves before the caller
 *     learns of it: the re-run touches the same rows. Closing waits a
 *     bounded time for resolves under way; what is left is recovered by
 *     readers and the sweeper, as after a crash.
 * - Conflicts re-run the body after a jittered backoff, at most
 *   `maxAttempts` times (then TxnConflictError, EAGAIN). Each attempt has
 *   its own txn id; retries of one proposal reuse it (the machine dedupes).
 * - A `current` transaction (TxnOptions.current: `walkenfs check`) takes no
 *   stale read: where only a replica without a reachable leader answers, the
 *   body re-runs every STALE_RETRY_MS until one is elected, and fails with
 *   EIO once the quorum wait has passed. A stale read may be behind and
 *   skips intents, so rows of one committed cross-fragment transaction could
 *   show on one fragment and not yet on another.
 * - A body that throws after several reads is checked like a read-only
 *   transaction first: its reads were taken at different times and may not
 *   fit together (a name pointing to an inode freed meanwhile), so the error
 *   reaches the caller only if its reads still hold; else the body re-runs.
 *
 * Recovery: an intent (met by a read, or named as a blocker of a conflict)
 * is settled by asking its record fragment for the decision; a decided txn
 * is resolved at once where it was met; an undecided one older than
 * `txnTimeoutMs` (5 s) is decided aborted (first decision wins, so a live
 * coordinator that decides first is never overruled) and resolved; a
 * younger one is waited for (the body re-runs after a backoff, for at most
 * `intentWaitMs`). `sweep(fragment)`, which the node calls periodically on
 * the fragments this host leads, does the same for old prepared txns,
 * re-resolves the participants of old decision records and forgets them,
 * and drops old dedupe rows. Ages compare `Date.now()` of different hosts,
 * so clock skew only shifts when an abandoned transaction is aborted, never
 * what is decided.
 *
 * Outcomes: a resolved txn() is committed on a majority of every touched
 * fragment's replicas, on disk (the RaftHost syncs before acknowledging), so
 * `flush()` has nothing left to do and resolves at once. `EROFS` (no
 * majority reachable within quorumWait) means the outcome is not known: the
 * transaction may still commit later (its intents are then settled by
 * recovery). A store that reports ENOSPC becomes TablesFullError.
 *
 * Bounds: at most `maxWaiting` transactions in progress; each buffers its
 * own reads' checks and writes only.
 */
import { randomBytes } from 'node:crypto'
import { fragmentId } from '../cluster/placement.js'
import { fragmentOfKey } from './fragments.js'
import { MAX_RANGE, prefixOf } from './local.js'
import { FORGET_MAX, hashGet, hashRange, rowKey, type Blocker, type Check, type Command, type ReadOp, type ReadResult, type Result, type RowPatch, type WriteOp } from './fragment-machine.js'
import { RouterError, type FragmentRouter, type RoutedRead } from './router.js'
import { withDeadline } from '../util/deadline.js'
import { TablesFullError, TxnConflictError, type RangeOptions, type Row, type TableName, type Tables, type Tx, type TxnOptions } from './types.js'

export interface ReplicatedOptions {
  /** attempts of a conflicting body before EAGAIN (default 30) */
  maxAttempts?: number
  /** an undecided intent older than this is aborted by whoever meets it (default 5000) */
  txnTimeoutMs?: number
  /** how long one txn() keeps waiting for young intents to settle (default 2 × txnTimeoutMs + 10 s) */
  intentWaitMs?: number
  /** transactions in progress at once (default 10000); more fail with EAGAIN */
  maxWaiting?: number
  backoffMs?: number
  maxBackoffMs?: number
  /** dedupe rows are kept this long (default 10 min) */
  dedupeKeepMs?: number
  /** decision records older than this are re-resolved and forgotten by sweep (default 60 s) */
  recordKeepMs?: number
  /** how long a finished two-phase commit's decision record waits for a proposal to ride on before it is forgotten alone (default 500) */
  forgetDelayMs?: number
  /** tests only: runs after every prepare round, before the decision */
  afterPrepare?: (txn: string) => Promise<void>
  /** tests only: runs after a commit's caller has its answer, before the resolves */
  beforeSettle?: (txn: string) => Promise<void>
}

export interface SweepReport { recovered: number, forgotten: number, removed: number }

const EMPTY = Buffer.alloc(0)

/** Thrown inside a body when a read met an intent: the attempt is void. */
class IntentMet extends Error {
  constructor () { super('the transaction read a row another transaction is committing; it will be re-run') }
}

/** Thrown inside a `current` body (TxnOptions.current) when a read could only be answered stale. */
class StaleRead extends Error {
  constructor (readonly fragment: number) { super(`fragment ${fragment} has no leader this host can reach`) }
}

interface Pending { fragment: number, key: Buffer, value: Buffer | null }

/** Rows shorter than this go whole: a patch would save little. */
const PATCH_MIN_ROW = 1024
/** Granularity of the search for the changed span (compared natively, a chunk at a time). */
const PATCH_CHUNK = 256

/**
 * The write of `next` over the row a body read as `old`, as a patch of the
 * one span that differs (at chunk granularity; bytes past `old`'s end all
 * count as changed), or null when the span is more than half the row.
 */
export function patchOf (key: Buffer, old: Buffer, next: Buffer): RowPatch | null {
  const common = Math.min(old.length, next.length)
  let lo = 0
  while (lo < common) {
    const e = Math.min(lo + PATCH_CHUNK, common)
    if (!old.subarray(lo, e).equals(next.subarray(lo, e))) break
    lo = e
  }
  let hi = next.length
  if (next.length <= old.length) {
    while (hi > lo) {
      const b = Math.max(hi - PATCH_CHUNK, lo)
      if (!old.subarray(b, hi).equals(next.subarray(b, hi))) break
      hi = b
    }
  }
  if (hi - lo > next.length / 2) return null
  return [key, Buffer.from(next.subarray(lo, hi)), lo, next.length]
}

type CheckedOp = Extract<ReadOp, { k: 'get' | 'range' }>

/**
 * One read a body made, kept until the end to check it: the op and what it
 * returned. Its hash (a Check of fragment-machine.ts) is computed only when
 * a commit sends it; a validation compares the rows themselves.
 */
interface Held { op: CheckedOp, value: Buffer | null, rows: Array<[Buffer, Buffer]> }

function checkOf (h: Held): Check {
  return h.op.k === 'get'
    ? { k: 'get', key: h.op.key, hash: hashGet(h.value) }
    : { k: 'range', start: h.op.start, end: h.op.end, limit: h.op.limit, keysOnly: h.op.keysOnly, hash: hashRange(h.op.start, h.op.end, h.op.limit, h.op.keysOnly, h.rows) }
}

/** Whether a read again returned what `h` got. */
function sameRead (h: Held, r: ReadResult): boolean {
  if (r.k === 'get') return h.op.k === 'get' && (r.value === null ? h.value === null : h.value !== null && r.value.equals(h.value))
  if (r.k !== 'range' || h.op.k !== 'range' || r.rows.length !== h.rows.length) return false
  return r.rows.every(([k, v], i) => k.equals(h.rows[i][0]) && v.equals(h.rows[i][1]))
}

class ReplTx implements Tx {
  readonly writes = new Map<string, Pending>()
  readonly held = new Map<number, Held[]>()
  /**
   * Per fragment, the lowest log index this host's replica showed for the
   * body's reads of it (RoutedRead.at), or null once one came from another
   * host: what the end's recheck may compare change marks with.
   */
  readonly seen = new Map<number, number | null>()
  readCalls = 0
  /** some read came from the local replica without a ReadIndex round: the end of the body must check it */
  unverified = false
  /** intents met by reads: the attempt is void once this is non-empty */
  readonly met: Blocker[] = []

  /**
   * `fresh`: every read linearizable (ReadIndex); `optimistic`: local reads
   * checked at the end; `hint` (TxnOptions.unchecked): local reads, never
   * checked, intents ignored (the committed rows are shown, as on a stale
   * read).
   */
  constructor (private readonly tables: ReplicatedTables, private readonly mode: 'fresh' | 'optimistic' | 'hint', readonly current = false) {}

  private async readRows (f: number, ops: ReadOp[]): Promise<RoutedRead> {
    if (this.mode === 'fresh') return await this.tables.read(f, ops)
    const r = await this.tables.router.readLocal(f, ops)
    if (!r.local || this.mode === 'hint') return r
    this.unverified = true
    // An intent here may be settled on the leader already (this replica lags): ask the leader's state before recovering anything.
    return r.intents.length > 0 ? await this.tables.read(f, ops) : r
  }

  private void (f: number, r: RoutedRead): void {
    // A stale read (no leader reachable) shows the committed rows and skips
    // intents: settling them needs the record fragment, which a partitioned
    // host may not reach, and a stale read promises no recency anyway. A
    // write based on it cannot commit without a majority.
    if (r.stale && this.current) throw new StaleRead(f)
    if (r.intents.length > 0 && !r.stale && this.mode !== 'hint') {
      this.met.push(...r.intents)
      throw new IntentMet()
    }
  }

  private hold (fragment: number, h: Held, at: number | undefined): void {
    let hs = this.held.get(fragment)
    if (!hs) this.held.set(fragment, hs = [])
    hs.push(h)
    const s = this.seen.get(fragment)
    if (at === undefined) this.seen.set(fragment, null)
    else if (s === undefined || (s !== null && at < s)) this.seen.set(fragment, at)
  }

  /** The hashes of the body's reads of `fragment`, for a commit's checks. */
  checksOf (fragment: number): Check[] {
    return (this.held.get(fragment) ?? []).map(checkOf)
  }

  async get (table: TableName, key: Buffer): Promise<Buffer | undefined> {
    if (this.met.length > 0) throw new IntentMet()
    const f = fragmentOfKey(key, this.tables.fragments)
    const sk = rowKey(f, table, key)
    const w = this.writes.get(sk.toString('latin1'))
    if (w) return w.value ?? undefined
    const op: CheckedOp = { k: 'get', key: sk }
    const r = await this.readRows(f, [op])
    this.void(f, r)
    const res = r.results[0] as Extract<ReadResult, { k: 'get' }>
    this.readCalls++
    this.hold(f, { op, value: res.value, rows: [] }, r.at)
    return res.value ?? undefined
  }

  async range (table: TableName, start: Buffer, end: Buffer, opts: RangeOptions = {}): Promise<Row[]> {
    if (this.met.length > 0) throw new IntentMet()
    const limit = Math.min(opts.limit ?? MAX_RANGE, MAX_RANGE)
    const keysOnly = opts.keysOnly ?? false
    const f = fragmentOfKey(start, this.tables.fragments)
    const prefix = prefixOf(f, table)
    const s = Buffer.concat([prefix, start])
    const e = Buffer.concat([prefix, end])
    const pending: Pending[] = []
    for (const w of this.writes.values()) {
      if (Buffer.compare(w.key, s) >= 0 && Buffer.compare(w.key, e) < 0) pending.push(w)
    }
    const askLimit = Math.min(limit + pending.length, MAX_RANGE)
    const op: CheckedOp = { k: 'range', start: s, end: e, limit: askLimit, keysOnly }
    const r = await this.readRows(f, [op])
    this.void(f, r)
    const res = r.results[0] as Extract<ReadResult, { k: 'range' }>
    this.readCalls++
    this.hold(f, { op, value: null, rows: res.rows }, r.at)
    let rows: Array<{ key: Buffer, value: Buffer | null }> = res.rows.map(([key, value]) => ({ key, value }))
    if (pending.length > 0) {
      const merged = new Map<string, { key: Buffer, value: Buffer | null }>()
      for (const row of rows) merged.set(row.key.toString('latin1'), row)
      for (const w of pending) merged.set(w.key.toString('latin1'), w)
      rows = [...merged.values()].filter((x) => x.value !== null).sort((a, b) => Buffer.compare(a.key, b.key))
    }
    return rows.slice(0, limit).map((x) => ({ key: x.key.subarray(3), value: keysOnly ? EMPTY : x.value as Buffer }))
  }

  put (table: TableName, key: Buffer, value: Buffer): void {
    const f = fragmentOfKey(key, this.tables.fragments)
    const sk = rowKey(f, table, key)
    // Kept as given, as the Tx contract says: the copy made here was one of
    // the five copies of its 64 KiB block a 4 KiB write made (finding 26).
    this.writes.set(sk.toString('latin1'), { fragment: f, key: sk, value })
  }

  delete (table: TableName, key: Buffer): void {
    const f = fragmentOfKey(key, this.tables.fragments)
    const sk = rowKey(f, table, key)
    this.writes.set(sk.toString('latin1'), { fragment: f, key: sk, value: null })
  }

  writesOf (fragment: number): WriteOp[] {
    const out: WriteOp[] = []
    let read: Map<string, Buffer> | undefined
    for (const w of this.writes.values()) {
      if (w.fragment !== fragment) continue
      if (w.value !== null && w.value.length >= PATCH_MIN_ROW) {
        // A row the body read (and the commit checks) goes as the bytes that changed.
        read ??= this.readValues(fragment)
        const old = read.get(w.key.toString('latin1'))
        const patch = old !== undefined ? patchOf(w.key, old, w.value) : null
        if (patch !== null) { out.push(patch); continue }
      }
      out.push([w.key, w.value])
    }
    return out
  }

  /** The values the body's gets of `fragment` returned (existing rows only), by store key. */
  private readValues (fragment: number): Map<string, Buffer> {
    const m = new Map<string, Buffer>()
    for (const h of this.held.get(fragment) ?? []) if (h.op.k === 'get' && h.value !== null) m.set(h.op.key.toString('latin1'), h.value)
    return m
  }
}

type Outcome = { done: true } | { done: false, blockers: Blocker[] }

/** How long a `current` transaction waits before reading a leaderless fragment again. */
const STALE_RETRY_MS = 250
/** How long close() waits for the resolves of commits already answered. */
const SETTLE_ON_CLOSE_MS = 2000

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** The record fragment of a two-phase commit: where the body wrote most rows; ties: the one it read first, then the lowest. */
function recordOf (tx: ReplTx, participants: number[]): number {
  const writes = new Map<number, number>()
  for (const w of tx.writes.values()) writes.set(w.fragment, (writes.get(w.fragment) ?? 0) + 1)
  const readOrder = [...tx.held.keys()]
  const rank = (f: number): number => { const i = readOrder.indexOf(f); return i < 0 ? readOrder.length : i }
  return [...participants].sort((a, b) => (writes.get(b) ?? 0) - (writes.get(a) ?? 0) || rank(a) - rank(b) || a - b)[0]
}

function mapError (e: unknown): unknown {
  if (e instanceof RouterError && e.code === 'ENOSPC') return new TablesFullError(e.message)
  return e
}

export class ReplicatedTables implements Tables {
  private readonly o: Required<Omit<ReplicatedOptions, 'afterPrepare' | 'beforeSettle'>> & Pick<ReplicatedOptions, 'afterPrepare' | 'beforeSettle'>
  private readonly idPrefix: string
  private seq = 0
  private active = 0
  private closed = false
  /** per record fragment, decision records to forget (every participant is resolved) */
  private readonly toForget = new Map<number, string[]>()
  private forgetTimer: NodeJS.Timeout | undefined
  /** committed two-phase transactions of this host whose resolves are under way, by txn id */
  private readonly settling = new Map<string, Promise<void>>()

  constructor (readonly router: FragmentRouter, readonly fragments: number, opts: ReplicatedOptions = {}) {
    const txnTimeoutMs = opts.txnTimeoutMs ?? 5000
    this.o = {
      maxAttempts: 30,
      txnTimeoutMs,
      intentWaitMs: 2 * txnTimeoutMs + 10_000,
      maxWaiting: 10_000,
      backoffMs: 5,
      maxBackoffMs: 200,
      dedupeKeepMs: 10 * 60_000,
      recordKeepMs: 60_000,
      forgetDelayMs: 500,
      ...opts
    }
    this.idPrefix = `${router.env.self}.${randomBytes(6).toString('base64url')}.`
  }

  /** @internal reads for ReplTx */
  async read (fragment: number, ops: ReadOp[]): Promise<RoutedRead> {
    return await this.router.read(fragment, ops)
  }

  async txn<T> (body: (tx: Tx) => Promise<T>, opts: TxnOptions = {}): Promise<T> {
    if (this.closed) throw Object.assign(new Error('EIO: the replicated tables are closed'), { code: 'EIO' })
    if (this.active >= this.o.maxWaiting) {
      throw Object.assign(new Error(`EAGAIN: ${this.active} transactions already in progress on this host`), { code: 'EAGAIN' })
    }
    this.active++
    try {
      if (opts.unchecked === true) return await this.runUnchecked(body)
      return await this.run(body, opts.maxAttempts ?? this.o.maxAttempts, opts.current === true)
    } finally {
      this.active--
    }
  }

  /** TxnOptions.unchecked: one run on optimistic reads, no validation, no writes. */
  private async runUnchecked<T> (body: (tx: Tx) => Promise<T>): Promise<T> {
    const tx = new ReplTx(this, 'hint')
    const result = await body(tx)
    if (tx.writes.size > 0) throw new Error('an unchecked (read-only hint) transaction tried to write')
    return result
  }

  private async run<T> (body: (tx: Tx) => Promise<T>, maxAttempts: number, current: boolean): Promise<T> {
    const intentDeadline = Date.now() + this.o.intentWaitMs
    const staleDeadline = Date.now() + this.router.env.quorumWaitMs()
    let conflicts = 0
    let fresh = false
    for (let round = 0; ; round++) {
      const tx = new ReplTx(this, fresh ? 'fresh' : 'optimistic', current)
      let result: T
      let outcome: Outcome
      try {
        result = await body(tx)
        outcome = tx.met.length > 0 ? { done: false, blockers: [] } : await this.commit(tx)
      } catch (e) {
        if (e instanceof StaleRead) {
          // The fragment may be between leaders (an election takes a few heartbeats): wait for one, within the quorum wait.
          if (Date.now() > staleDeadline) {
            throw new RouterError('EIO', `${e.message} within ${this.router.env.quorumWaitMs()} ms, so current data cannot be read (this host's replica may be behind); check that a majority of its hosts are up and reachable (walkenfs status)`)
          }
          fresh = true
          await sleep(STALE_RETRY_MS)
          continue
        }
        if (tx.met.length > 0 || e instanceof IntentMet) {
          outcome = { done: false, blockers: [] }
        } else {
          // The body may have thrown because its reads, taken at different
          // times or from a lagging replica, did not fit together (a name
          // pointing to a freed inode, a name not there yet): only an error
          // from reads that still hold reaches the caller.
          let consistent: Outcome = { done: true }
          if ((tx.readCalls > 1 || tx.unverified) && !(e instanceof RouterError)) {
            try { consistent = await this.validate(tx) } catch (ve) { consistent = ve instanceof StaleRead ? { done: false, blockers: [] } : { done: true } }
          }
          if (consistent.done) throw mapError(e)
          outcome = consistent
        }
      }
      if (outcome.done) return result!
      // Optimistic reads that did not hold: most likely this replica lags. Read fresh from now on.
      fresh = true
      const blockers = tx.met.length > 0 ? tx.met : outcome.blockers
      if (blockers.length > 0) {
        // Intents of this host's own commits are being resolved already: wait for that, then re-run at once.
        const own = [...new Set(blockers.map((b) => this.settling.get(b.txn)).filter((p) => p !== undefined))]
        const foreign = blockers.filter((b) => !this.settling.has(b.txn))
        await Promise.all(own)
        // Waiting for other transactions to settle is bounded by time, not by attempts.
        if (foreign.length > 0) await this.recoverAll(foreign)
        if (Date.now() > intentDeadline) {
          throw Object.assign(new Error(`EAGAIN: rows this transaction needs stayed locked by an unfinished transaction for ${this.o.intentWaitMs} ms`), { code: 'EAGAIN' })
        }
        if (foreign.length === 0) continue
      } else {
        conflicts++
        if (conflicts >= maxAttempts) throw new TxnConflictError(conflicts)
        // The first re-run after optimistic reads that failed needs no backoff: it reads fresh.
        if (round === 0 && tx.unverified) continue
      }
      await this.backoff(round)
    }
  }

  private newTxnId (): string {
    return this.idPrefix + (++this.seq).toString(36)
  }

  private async propose (fragment: number, cmd: Command): Promise<Result> {
    const r = await this.router.propose(fragment, cmd)
    if (!r.ok && r.reason === 'bad-command') throw new Error(`fragment ${fragment} refused a ${cmd.op} command as malformed: ${r.message}`)
    return r
  }

  /** propose() with the decision records waiting to be forgotten in `fragment` on board; they wait again if it fails. */
  private async proposeCarrying (fragment: number, cmd: Exclude<Command, { op: 'decide' | 'sweep' }>): Promise<Result> {
    const forget = this.toForget.get(fragment)
    if (forget === undefined) return await this.propose(fragment, cmd)
    this.toForget.delete(fragment)
    try {
      return await this.propose(fragment, { ...cmd, forget })
    } catch (e) {
      // Forgetting twice is harmless; never forgetting leaves the record to the sweeper (recordKeepMs).
      for (const txn of forget) this.forgetLater(fragment, txn)
      throw e
    }
  }

  private forgetLater (record: number, txn: string): void {
    if (this.closed) return
    let list = this.toForget.get(record)
    if (list === undefined) this.toForget.set(record, list = [])
    list.push(txn)
    if (list.length >= FORGET_MAX) this.sendForgets(record)
    else if (this.forgetTimer === undefined) {
      this.forgetTimer = setTimeout(() => {
        this.forgetTimer = undefined
        for (const f of [...this.toForget.keys()]) this.sendForgets(f)
      }, this.o.forgetDelayMs)
      this.forgetTimer.unref()
    }
  }

  /** The decision records waiting for `record`, in one proposal of their own. */
  private sendForgets (record: number): void {
    const list = this.toForget.get(record)
    if (list === undefined || list.length === 0) return
    this.toForget.delete(record)
    const [txn, ...rest] = list
    void this.propose(record, rest.length > 0 ? { op: 'forget', txn: txn!, forget: rest } : { op: 'forget', txn: txn! })
      .catch(() => { for (const t of list) this.forgetLater(record, t) })
  }

  private async commit (tx: ReplTx): Promise<Outcome> {
    const frags = new Set<number>(tx.held.keys())
    for (const w of tx.writes.values()) frags.add(w.fragment)
    if (tx.writes.size === 0) {
      if (tx.readCalls <= 1 && !tx.unverified) return { done: true }
      return await this.validate(tx)
    }
    const participants = [...frags].sort((a, b) => a - b)
    const at = Date.now()
    if (participants.length === 1) {
      const f = participants[0]
      const r = await this.proposeCarrying(f, { op: 'commit1', txn: this.newTxnId(), at, checks: tx.checksOf(f), writes: tx.writesOf(f) })
      if (r.ok) return { done: true }
      return { done: false, blockers: r.reason === 'conflict' ? r.blockers : [] }
    }
    return await this.twoPhase(tx, participants, at)
  }

  /**
   * Read-only with several reads: every read must still hold. Per fragment
   * one recheck: nothing is read again when this host's replica shows that
   * nothing changed since the reads (router.recheck).
   */
  private async validate (tx: ReplTx): Promise<Outcome> {
    const rounds = [...tx.held].map(async ([f, held]) => {
      const r = await this.router.recheck(f, held.map((h) => h.op), tx.seen.get(f) ?? undefined)
      if (r.unchanged) return { same: true, intents: [] }
      if (r.stale && tx.current) throw new StaleRead(f)
      const same = r.results.length === held.length && r.results.every((res, i) => sameRead(held[i], res))
      return { same, intents: r.stale ? [] : r.intents }
    })
    const got = await Promise.all(rounds)
    const blockers = got.flatMap((g) => g.intents)
    if (got.every((g) => g.same) && blockers.length === 0) return { done: true }
    return { done: false, blockers }
  }

  private async twoPhase (tx: ReplTx, participants: number[], at: number): Promise<Outcome> {
    const txn = this.newTxnId()
    const record = recordOf(tx, participants)
    const others = participants.filter((f) => f !== record)
    const prepares = await Promise.allSettled(others.map(async (f) =>
      await this.proposeCarrying(f, { op: 'prepare', txn, record, participants, at, checks: tx.checksOf(f), writes: tx.writesOf(f) })))
    if (this.o.afterPrepare) await this.o.afterPrepare(txn)
    const allPrepared = prepares.every((p) => p.status === 'fulfilled' && p.value.ok)
    // The commit point: the record fragment validates and applies its own part and records the decision in one
    // entry. Throws (outcome unknown) if it cannot be reached; recovery settles the intents then. Nothing needs
    // recording for an abort: only this step can decide commit, and a recoverer decides abort for itself.
    let commit = false
    let mine: Result | undefined
    if (allPrepared) {
      mine = await this.proposeCarrying(record, { op: 'commitDecide', txn, at: Date.now(), participants, checks: tx.checksOf(record), writes: tx.writesOf(record) })
      commit = mine.ok && mine.commit === true
    }
    if (commit) {
      this.settleLater(txn, record, others)
      return { done: true }
    }
    // A participant whose prepare was refused holds nothing of this txn.
    const holding = others.filter((_, i) => { const p = prepares[i]; return p.status === 'rejected' || p.value.ok })
    await Promise.allSettled(holding.map(async (f) => await this.proposeCarrying(f, { op: 'resolve', txn, commit, at: Date.now() })))
    const failed = prepares.find((p): p is PromiseRejectedResult => p.status === 'rejected')
    if (failed) throw mapError(failed.reason)
    const refused = [...prepares.map((p) => p.status === 'fulfilled' ? p.value : undefined), mine]
    return { done: false, blockers: refused.flatMap((r) => r !== undefined && !r.ok && r.reason === 'conflict' ? r.blockers : []) }
  }

  /** Resolves a committed txn's intents on `others` after its caller has the answer, then forgets its record. */
  private settleLater (txn: string, record: number, others: number[]): void {
    const hold = this.o.beforeSettle?.(txn) ?? Promise.resolve()
    const done = hold.then(async () => await Promise.allSettled(others.map(async (f) => await this.proposeCarrying(f, { op: 'resolve', txn, commit: true, at: Date.now() }))))
      .then((resolves) => {
        // A resolve that failed leaves its intents to whoever meets them, and the record to the sweeper.
        if (resolves.every((r) => r.status === 'fulfilled')) this.forgetLater(record, txn)
      })
      .finally(() => this.settling.delete(txn))
    this.settling.set(txn, done)
  }

  private async recoverAll (blockers: Blocker[]): Promise<void> {
    const seen = new Set<string>()
    await Promise.all(blockers.filter((b) => !seen.has(b.txn + '@' + b.fragment) && seen.add(b.txn + '@' + b.fragment)).map(async (b) => {
      try {
        await this.recover(b)
      } catch {
        // Unreachable record fragment or leaderless participant: the next attempt meets the intent again.
      }
    }))
  }

  /** Settles another transaction's intents in `b.fragment` if it is decided or abandoned; false = still young. */
  async recover (b: Blocker): Promise<boolean> {
    const r = await this.read(b.record, [{ k: 'decision', txn: b.txn }])
    let commit = (r.results[0] as Extract<ReadResult, { k: 'decision' }>).commit
    if (commit === null) {
      if (Date.now() - b.at < this.o.txnTimeoutMs) return false
      const d = await this.propose(b.record, { op: 'decide', txn: b.txn, commit: false, at: Date.now(), participants: b.participants })
      commit = d.ok && d.commit === true
    }
    await this.propose(b.fragment, { op: 'resolve', txn: b.txn, commit, at: Date.now() })
    return true
  }

  /**
   * Garbage and abandoned work of one fragment; the node calls it
   * periodically on the fragments this host leads (any host may, safely).
   */
  async sweep (fragment: number): Promise<SweepReport> {
    const now = Date.now()
    const report: SweepReport = { recovered: 0, forgotten: 0, removed: 0 }
    const prepared = await this.read(fragment, [{ k: 'prepared', before: now - this.o.txnTimeoutMs }])
    for (const b of (prepared.results[0] as Extract<ReadResult, { k: 'prepared' }>).txns) {
      if (await this.recover(b).catch(() => false)) report.recovered++
    }
    const recs = await this.read(fragment, [{ k: 'records', before: now - this.o.recordKeepMs }])
    for (const rec of (recs.results[0] as Extract<ReadResult, { k: 'records' }>).records) {
      const done = await Promise.allSettled(rec.participants.map(async (f) => await this.propose(f, { op: 'resolve', txn: rec.txn, commit: rec.commit, at: now })))
      if (done.every((d) => d.status === 'fulfilled')) {
        await this.propose(fragment, { op: 'forget', txn: rec.txn })
        report.forgotten++
      }
    }
    // An idle fragment costs a read, not a log entry.
    const old = await this.read(fragment, [{ k: 'old-dedupe', before: now - this.o.dedupeKeepMs }])
    if (!(old.results[0] as Extract<ReadResult, { k: 'old-dedupe' }>).any) return report
    const s = await this.propose(fragment, { op: 'sweep', at: now, keepMs: this.o.dedupeKeepMs, limit: 1000 })
    report.removed = s.ok ? s.removed ?? 0 : 0
    return report
  }

  /** sweep() of every fragment this host currently leads; the node calls it periodically (e.g. every 10 s). */
  async sweepLeading (): Promise<SweepReport> {
    const total: SweepReport = { recovered: 0, forgotten: 0, removed: 0 }
    const env = this.router.env
    for (let f = 0; f < this.fragments; f++) {
      const g = fragmentId('fs', f)
      if (!env.hasGroup(g) || env.raft.status(g).role !== 'leader') continue
      try {
        const r = await this.sweep(f)
        total.recovered += r.recovered
        total.forgotten += r.forgotten
        total.removed += r.removed
      } catch {
        // Leadership moved or a participant is unreachable: the next round (or the new leader) does it.
      }
    }
    return total
  }

  /** Nothing to do: a committed transaction is already on disk on a majority of replicas (see module doc). */
  async flush (): Promise<void> {}

  async countRows (table: TableName, fragment: number): Promise<number> {
    const r = await this.read(fragment, [{ k: 'count', table }])
    return (r.results[0] as Extract<ReadResult, { k: 'count' }>).n
  }

  /** Resolves once the resolves of every commit answered so far have landed or failed (module doc). */
  async settled (): Promise<void> {
    await Promise.all([...this.settling.values()])
  }

  /** Stops new transactions; the router and the store belong to the node, which closes them. */
  async close (): Promise<void> {
    this.closed = true
    if (this.settling.size > 0) await withDeadline(this.settled(), SETTLE_ON_CLOSE_MS, undefined)
    // Records not yet forgotten are left to the sweeper of their fragment.
    clearTimeout(this.forgetTimer)
    this.toForget.clear()
    this.router.close()
  }

  private async backoff (round: number): Promise<void> {
    const base = Math.min(this.o.maxBackoffMs, this.o.backoffMs * 2 ** Math.min(round, 8))
    await sleep(base * (0.5 + Math.random()))
  }
}
