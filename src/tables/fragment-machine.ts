/**
 * The replicated state machine of one fragment of the `fs` table set (Raft
 * group `fs/<i>`), and the read helper that serves reads from a replica.
 *
 * Owns: the fragment's key range in the store's `rows` db, i.e. the table
 * rows (layout of local.ts: `[u16 fragment][u8 table id][key]`) and the
 * transaction bookkeeping kept under table ids >= 0x10 in the same prefix,
 * so that a snapshot of the fragment is one contiguous range:
 *
 *   [f][0x10][table id][key]        → txn id       write intent on a row
 *   [f][0x12][txn]                  → Decision     decision record (record fragment only)
 *   [f][0x13][txn]                  → Prepared     a prepared txn: its writes, read locks, range locks
 *   [f][0x14][op][txn]              → Dedupe       first result of op for txn
 *   [f][0x15][at u64][op][txn]      → ''           time index of dedupe rows (sweep)
 *   [f][0x16][at u64][txn]          → ''           time index of decision records (sweeper)
 *
 * Commands (msgpackr maps, field `op`); every one names its txn id:
 * - `commit1 {txn, at, checks, writes}`: one-fragment transaction. Applies
 *   the writes only if every check still holds and no other transaction's
 *   intent or lock is in the way; else `{ok:false, reason:'conflict'}`.
 * - `prepare {txn, record, participants, at, checks, writes}`: the same
 *   validation; on success places write intents on written keys and keeps
 *   the read keys and read ranges as locks (in the Prepared row) until
 *   `resolve`. Refused (`reason:'resolved'`) once the txn was resolved here,
 *   and (`reason:'decided'`) on the record fragment once it has a decision,
 *   so a late prepare never resurrects an aborted transaction.
 * - `decide {txn, commit, at, participants}`: the first decision for a txn
 *   wins and is returned (`{ok:true, commit}`) to every later decide.
 * - `commitDecide {txn, at, participants, checks, writes}`: the record
 *   fragment's own part and the decision in one step, once every other
 *   participant is prepared. If the txn already has a decision (a recoverer
 *   aborted it), returns it and writes nothing. Else validates like
 *   commit1: on success applies the writes and records the decision commit
 *   (`{ok:true, commit:true}`); on conflict writes nothing and records
 *   nothing (no one else can decide commit, so the txn stays abortable).
 * - `resolve {txn, commit, at}`: applies (commit) or drops the txn's intents
 *   and locks here.
 * - `forget {txn}`: drops a decision record (once every participant is resolved).
 *   commit1, prepare, commitDecide, resolve and forget may also carry
 *   `forget: [txn…]` (at most FORGET_MAX): decision records dropped in the
 *   same entry, whatever the command's own result, so a coordinator's
 *   forgets ride on its next proposal to the record fragment instead of
 *   costing one each.
 * - `sweep {at, keepMs, limit}`: drops dedupe rows older than `at - keepMs`.
 * A write is `[key, value]` (null deletes) or a patch `[key, bytes, at, len]`
 * (RowPatch), valid only if the same command has a get check of that key;
 * it is turned into the whole row before anything is written or kept.
 * Applying a commit1/prepare/resolve/commitDecide a second time (the router retries
 * proposals whose outcome was unknown) returns the first result and changes
 * nothing. A command that does not decode, or names keys outside this
 * fragment, gets `{ok:false, reason:'bad-command'}`; apply never throws.
 *
 * Checks are hashes of what a body read (see hashGet/hashRange): a get
 * hashes the value or its absence; a range hashes start, end, limit,
 * keysOnly and the keys (and values unless keysOnly) it returned. Apply
 * re-reads and re-hashes, so a check holds iff the read would return the
 * same thing now.
 *
 * Determinism: apply uses no clock and no randomness; times (`at`) come in
 * the commands. Apply, restore and snapshot run inside the RaftHost's lmdb
 * write transaction and are synchronous; reads inside it see its writes.
 */
import { createHash } from 'node:crypto'
import type { Database } from 'lmdb'
import { pack, unpack } from 'msgpackr'
import type { GroupStateMachine } from '../raft/host.js'
import type { Entry } from '../raft/types.js'
import type { Store } from '../store/store.js'
import { MAX_RANGE, TABLE_ID, prefixOf } from './local.js'
import type { TableName } from './types.js'
import { watchedTable, type ChangeFeed, type RowChange } from './change-feed.js'
import type { ChangeMarks } from './change-marks.js'

const INTENT = 0x10
const DECISION = 0x12
const PREPARED = 0x13
const DEDUPE = 0x14
const DEDUPE_AT = 0x15
const DECISION_AT = 0x16

const OP_COMMIT1 = 1
const OP_PREPARE = 2
const OP_RESOLVE = 3
const OP_COMMIT_DECIDE = 4

const EMPTY = Buffer.alloc(0)
/** most decision records one command may drop besides its own work */
export const FORGET_MAX = 256
/** most prepared transactions / records a bookkeeping read returns */
const LIST_LIMIT = 256

/** A hash of one read, re-checked at apply. `key`/`start`/`end` are store keys of this fragment. */
export type Check =
  | { k: 'get', key: Buffer, hash: Buffer }
  | { k: 'range', start: Buffer, end: Buffer, limit: number, keysOnly: boolean, hash: Buffer }

/** A buffered write: store key and new value (`null` deletes). */
export type RowWrite = [key: Buffer, value: Buffer | null]
/**
 * A write of part of a row the same command checks with a `get`: the row
 * becomes its current value cut or zero-extended to `len` bytes, with `bytes`
 * copied at `at`. The check pins the current value, so every replica builds
 * the same row; the command carries only the changed bytes (a 4 KiB write
 * into a 64 KiB block ships 4 KiB, not the block).
 */
export type RowPatch = [key: Buffer, bytes: Buffer, at: number, len: number]
export type WriteOp = RowWrite | RowPatch

/** What an entry may change, for kernel caches: its rows (table id, key without the store prefix), and whether this host proposed it. */
export interface CacheRows {
  local: boolean
  rows: Array<{ table: number, key: Buffer }>
}

/** Largest row a patch may build (a malformed command must not allocate without bound). */
export const PATCH_MAX_LEN = 64 * 1024 * 1024

export function isPatch (w: WriteOp): w is RowPatch {
  return w.length === 4
}

export type Command =
  | { op: 'commit1', txn: string, at: number, checks: Check[], writes: WriteOp[], forget?: string[] }
  | { op: 'prepare', txn: string, record: number, participants: number[], at: number, checks: Check[], writes: WriteOp[], forget?: string[] }
  | { op: 'decide', txn: string, commit: boolean, at: number, participants: number[] }
  | { op: 'commitDecide', txn: string, at: number, participants: number[], checks: Check[], writes: WriteOp[], forget?: string[] }
  | { op: 'resolve', txn: string, commit: boolean, at: number, forget?: string[] }
  | { op: 'forget', txn: string, forget?: string[] }
  | { op: 'sweep', at: number, keepMs: number, limit: number }

/** Another transaction's intent or lock that stood in the way. */
export interface Blocker { txn: string, record: number, at: number, participants: number[], fragment: number }

export type Result =
  | { ok: true, commit?: boolean, applied?: number, removed?: number }
  | { ok: false, reason: 'conflict', blockers: Blocker[] }
  | { ok: false, reason: 'resolved' | 'decided' | 'bad-command', message: string }

/** What the reader asks of a replica. Keys are store keys of the fragment. */
export type ReadOp =
  | { k: 'get', key: Buffer }
  | { k: 'range', start: Buffer, end: Buffer, limit: number, keysOnly: boolean }
  | { k: 'count', table: TableName }
  | { k: 'decision', txn: string }
  /** prepared transactions older than `before` (sweeper) */
  | { k: 'prepared', before: number }
  /** decision records older than `before` (sweeper) */
  | { k: 'records', before: number }
  /** whether any dedupe row is older than `before` (sweeper: skip an empty sweep) */
  | { k: 'old-dedupe', before: number }

/** get and range results carry no hash: a reader that needs one computes it (hashGet, hashRange) from what it got. */
export type ReadResult =
  | { k: 'get', value: Buffer | null }
  | { k: 'range', rows: Array<[Buffer, Buffer]> }
  | { k: 'count', n: number }
  | { k: 'decision', commit: boolean | null, participants: number[] }
  | { k: 'prepared', txns: Blocker[] }
  | { k: 'records', records: Array<{ txn: string, commit: boolean, participants: number[] }> }
  | { k: 'old-dedupe', any: boolean }

export interface LocalRead {
  results: ReadResult[]
  /** other transactions' write intents met by the get/range reads */
  intents: Blocker[]
}

interface Prepared { record: number, at: number, participants: number[], writes: RowWrite[], reads: Buffer[], ranges: Array<[Buffer, Buffer]> }
interface Decision { commit: boolean, at: number, participants: number[] }

export function fragmentBounds (fragment: number): [Buffer, Buffer] {
  const s = Buffer.alloc(2)
  s.writeUInt16BE(fragment)
  const e = Buffer.alloc(2)
  if (fragment + 1 > 0xffff) return [s, Buffer.from([0xff, 0xff, 0xff])]
  e.writeUInt16BE(fragment + 1)
  return [s, e]
}

function fragPrefix (fragment: number, id: number): Buffer {
  const p = Buffer.allocUnsafe(3)
  p.writeUInt16BE(fragment, 0)
  p[2] = id
  return p
}

function u64 (n: number): Buffer {
  const b = Buffer.alloc(8)
  const v = Math.max(0, Math.floor(n))
  b.writeUInt32BE(Math.floor(v / 0x100000000), 0)
  b.writeUInt32BE(v >>> 0, 4)
  return b
}

/**
 * The row at `key` without a copy: a view of lmdb's reused read buffer,
 * valid only until the next read of this environment. A 4 KiB write into a
 * 64 KiB block checks and patches that block on every replica; copying it
 * twice there made most of the memory a replica allocated per write, and
 * that churn drove full collections every few hundred milliseconds
 * (docs/performance.md, finding 26). lmdb sets the buffer's `length`
 * property to the value's size but not its byte length, which hashing and
 * copying use, hence the subarray.
 */
function peek (db: Database<Buffer, Buffer>, key: Buffer): Buffer | undefined {
  const b = db.getBinaryFast(key)
  return b === undefined ? undefined : b.subarray(0, b.length)
}

export function hashGet (value: Buffer | null | undefined): Buffer {
  const h = createHash('sha256')
  if (value == null) h.update(Buffer.from([0]))
  else { h.update(Buffer.from([1])); h.update(value) }
  return h.digest()
}

function lenPrefixed (h: ReturnType<typeof createHash>, b: Buffer): void {
  const l = Buffer.allocUnsafe(4)
  l.writeUInt32BE(b.length)
  h.update(l)
  h.update(b)
}

export function hashRange (start: Buffer, end: Buffer, limit: number, keysOnly: boolean, rows: Array<[Buffer, Buffer]>): Buffer {
  const h = createHash('sha256')
  lenPrefixed(h, start)
  lenPrefixed(h, end)
  h.update(u64(limit))
  h.update(Buffer.from([keysOnly ? 1 : 0]))
  for (const [k, v] of rows) {
    lenPrefixed(h, k)
    if (!keysOnly) lenPrefixed(h, v)
  }
  return h.digest()
}

function scanRows (db: Database<Buffer, Buffer>, start: Buffer, end: Buffer, limit: number, keysOnly: boolean): Array<[Buffer, Buffer]> {
  const out: Array<[Buffer, Buffer]> = []
  if (Buffer.compare(start, end) >= 0) return out
  const lim = Math.max(0, Math.min(limit, MAX_RANGE))
  // lmdb-js hands out fresh copies of binary keys and values from a cursor
  // (not views of its shared buffer), so they are kept as they are: a second
  // copy of every block read was a good part of a sequential read's cost.
  if (keysOnly) {
    for (const key of db.getKeys({ start, end, limit: lim })) out.push([key as Buffer, EMPTY])
  } else {
    for (const { key, value } of db.getRange({ start, end, limit: lim })) out.push([key as Buffer, value as Buffer])
  }
  return out
}

function isBuf (x: unknown): x is Buffer { return Buffer.isBuffer(x) }
function isNum (x: unknown): x is number { return typeof x === 'number' && Number.isFinite(x) }
function isTxn (x: unknown): x is string { return typeof x === 'string' && x.length > 0 && Buffer.byteLength(x) <= 200 }
function isFragList (x: unknown): x is number[] { return Array.isArray(x) && x.length > 0 && x.every((f) => Number.isInteger(f) && f >= 0 && f <= 0xffff) }

/** Reads of one fragment's rows and bookkeeping (no writes; no Raft). */
export class FragmentReader {
  readonly lo: Buffer
  readonly hi: Buffer
  constructor (readonly db: Database<Buffer, Buffer>, readonly fragment: number) {
    ;[this.lo, this.hi] = fragmentBounds(fragment)
  }

  /** Whether `key` is a table row key of this fragment (not bookkeeping). */
  ownsRowKey (key: Buffer): boolean {
    return key.length >= 3 && key.readUInt16BE(0) === this.fragment && key[2] >= 1 && key[2] < INTENT
  }

  intentKey (storeKey: Buffer): Buffer {
    return Buffer.concat([fragPrefix(this.fragment, INTENT), storeKey.subarray(2)])
  }

  prepared (txn: string): Prepared | undefined {
    const v = this.db.getBinary(Buffer.concat([fragPrefix(this.fragment, PREPARED), Buffer.from(txn)]))
    return v ? unpack(v) as Prepared : undefined
  }

  decision (txn: string): Decision | undefined {
    const v = this.db.getBinary(Buffer.concat([fragPrefix(this.fragment, DECISION), Buffer.from(txn)]))
    return v ? unpack(v) as Decision : undefined
  }

  blocker (txn: string): Blocker {
    const p = this.prepared(txn)
    // An intent always has its Prepared row (both are written and removed together).
    return { txn, record: p?.record ?? this.fragment, at: p?.at ?? 0, participants: p?.participants ?? [this.fragment], fragment: this.fragment }
  }

  /** Other transactions' intents on `key`, or inside [start, end). */
  intentsAt (start: Buffer, end: Buffer | null, notTxn: string | null, out: Map<string, Blocker>): void {
    if (end === null) {
      const v = this.db.getBinary(this.intentKey(start))
      if (v) {
        const txn = v.toString()
        if (txn !== notTxn && !out.has(txn)) out.set(txn, this.blocker(txn))
      }
      return
    }
    if (Buffer.compare(start, end) >= 0) return
    for (const { value } of this.db.getRange({ start: this.intentKey(start), end: this.intentKey(end) })) {
      const txn = (value as Buffer).toString()
      if (txn !== notTxn && !out.has(txn)) out.set(txn, this.blocker(txn))
    }
  }

  /** Every prepared transaction of the fragment (bounded by how many can be in flight). */
  * allPrepared (): Generator<[string, Prepared]> {
    const p = fragPrefix(this.fragment, PREPARED)
    const e = fragPrefix(this.fragment, PREPARED + 1)
    for (const { key, value } of this.db.getRange({ start: p, end: e })) {
      yield [(key as Buffer).subarray(3).toString(), unpack(value as Buffer) as Prepared]
    }
  }

  read (ops: ReadOp[]): LocalRead {
    const intents = new Map<string, Blocker>()
    const results: ReadResult[] = ops.map((op): ReadResult => {
      switch (op.k) {
        case 'get': {
          if (!this.ownsRowKey(op.key)) throw new RangeError(`key is not a row of fragment ${this.fragment}`)
          // One copy, made before intentsAt's reads overwrite lmdb's buffer.
          const found = peek(this.db, op.key)
          const value = found ? Buffer.from(found) : null
          this.intentsAt(op.key, null, null, intents)
          return { k: 'get', value }
        }
        case 'range': {
          if (!this.ownsRowKey(op.start) || op.end.length < 3 || op.end.readUInt16BE(0) !== this.fragment) throw new RangeError(`range is not inside fragment ${this.fragment}`)
          const rows = scanRows(this.db, op.start, op.end, op.limit, op.keysOnly)
          this.intentsAt(op.start, op.end, null, intents)
          return { k: 'range', rows }
        }
        case 'count': {
          const p = prefixOf(this.fragment, op.table)
          const e = Buffer.from(p)
          e[2]++
          return { k: 'count', n: this.db.getKeysCount({ start: p, end: e }) }
        }
        case 'decision': {
          const d = this.decision(op.txn)
          return { k: 'decision', commit: d ? d.commit : null, participants: d?.participants ?? [] }
        }
        case 'prepared': {
          const txns: Blocker[] = []
          for (const [txn, p] of this.allPrepared()) {
            if (p.at < op.before) txns.push({ txn, record: p.record, at: p.at, participants: p.participants, fragment: this.fragment })
            if (txns.length >= LIST_LIMIT) break
          }
          return { k: 'prepared', txns }
        }
        case 'records': {
          const records: Array<{ txn: string, commit: boolean, participants: number[] }> = []
          const s = fragPrefix(this.fragment, DECISION_AT)
          const e = Buffer.concat([s, u64(op.before)])
          for (const key of this.db.getKeys({ start: s, end: e, limit: LIST_LIMIT })) {
            const txn = (key as Buffer).subarray(11).toString()
            const d = this.decision(txn)
            if (d) records.push({ txn, commit: d.commit, participants: d.participants })
          }
          return { k: 'records', records }
        }
        case 'old-dedupe': {
          const s = fragPrefix(this.fragment, DEDUPE_AT)
          const e = Buffer.concat([s, u64(op.before)])
          let any = false
          for (const _ of this.db.getKeys({ start: s, end: e, limit: 1 })) any = true
          return { k: 'old-dedupe', any }
        }
        default:
          throw new RangeError(`unknown read op ${String((op as { k?: unknown }).k)}`)
      }
    })
    return { results, intents: [...intents.values()] }
  }
}

export class FragmentMachine implements GroupStateMachine {
  readonly db: Database<Buffer, Buffer>
  readonly reader: FragmentReader
  /** Every row is in the host's store, written with the applied index: snapshots are read from it (host.ts). */
  readonly liveSnapshots = true

  /** index of the entry being applied (for the change feed) */
  private applying = 0

  /**
   * `feed`, when given, receives the row changes of every committed
   * transaction (change-feed.ts); `marks`, when given, learns which entries
   * may change rows or intents (change-marks.ts); `self`, when given, names
   * this host as transaction ids do (cacheKeys tells its own entries).
   */
  constructor (private readonly store: Store, readonly fragment: number, readonly fragments: number, private readonly feed?: ChangeFeed, private readonly marks?: ChangeMarks,
    private readonly self?: () => string) {
    if (!Number.isInteger(fragment) || fragment < 0 || fragment >= fragments) throw new RangeError(`fragment ${fragment} is not in 0..${fragments - 1}`)
    this.db = store.rowsDb
    this.reader = new FragmentReader(this.db, fragment)
  }

  position (index: number): void {
    this.feed?.advance(index)
    this.marks?.start(this.fragment, index)
  }

  /** Writes a transaction's rows, telling the feed what changed (old values read first). */
  private writeRows (writes: RowWrite[], txn: string, at: number, participants: number[]): void {
    const changes: RowChange[] = []
    for (const [k, v] of writes) {
      const kind = this.feed ? watchedTable(k[2]!) : null
      if (kind === 'values') {
        // The feed packs what it keeps (change-feed.ts `keep`); getBinary's copy outlives the next read.
        const old = this.db.getBinary(k)
        changes.push({ table: k[2]!, key: k.subarray(3), value: v, old: old ?? null })
      } else if (kind === 'keys') {
        changes.push({ table: k[2]!, key: k.subarray(3), deleted: v === null })
      }
      if (v === null) this.db.remove(k)
      else this.db.put(k, v)
    }
    // A two-phase participant sends a batch even without changes: the watcher waits for every participant's.
    if (this.feed && (changes.length > 0 || participants.length > 1)) this.feed.push({ index: this.applying, txn, at, participants, changes })
  }

  /** Reads the local replica as it is now (the router decides whether that is linearizable). */
  readLocal (ops: ReadOp[]): LocalRead {
    return this.reader.read(ops)
  }

  static encode (cmd: Command): Uint8Array {
    return pack(cmd)
  }

  /**
   * The rows an entry may change and whether this host proposed it, for
   * the host's kernel caches (RaftHost's CacheGate): the written keys of a
   * commit1, prepare or commitDecide. A resolve applies what its prepare
   * wrote, and a reader meets that prepare's intents until then, so the
   * prepare names them. Undefined: the entry changes no table row.
   */
  cacheKeys (data: Uint8Array): CacheRows | undefined {
    let cmd: Command
    try {
      cmd = unpack(data) as Command
    } catch {
      return undefined
    }
    if (cmd === null || typeof cmd !== 'object' || (cmd.op !== 'commit1' && cmd.op !== 'prepare' && cmd.op !== 'commitDecide')) return undefined
    if (!Array.isArray(cmd.writes) || cmd.writes.length === 0 || typeof cmd.txn !== 'string') return undefined
    const rows: CacheRows['rows'] = []
    for (const w of cmd.writes) {
      const k = w[0]
      if (k instanceof Uint8Array && k.length > 3) rows.push({ table: k[2]!, key: Buffer.from(k.buffer, k.byteOffset + 3, k.length - 3) })
    }
    // txn ids start with the proposing host's id (replicated.ts)
    const self = this.self?.()
    return { local: self !== undefined && cmd.txn.startsWith(`${self}.`), rows }
  }

  apply (entry: Entry): unknown {
    this.applying = entry.index
    let cmd: Command
    try {
      cmd = unpack(entry.data ?? EMPTY) as Command
    } catch (e) {
      return bad(`fragment ${this.fragment}: command does not decode: ${(e as Error).message}`)
    }
    const why = this.invalid(cmd)
    if (why) return bad(`fragment ${this.fragment}: ${why}`)
    this.store.noteCommit()
    // Before the change is visible to any reader (this runs inside the cycle's transaction).
    if (cmd.op === 'commit1' || cmd.op === 'prepare' || cmd.op === 'resolve' || cmd.op === 'commitDecide') this.marks?.changed(this.fragment, entry.index)
    // Idempotent, so also on a command that dedupe answers with its first result.
    if ('forget' in cmd && cmd.forget !== undefined) for (const txn of cmd.forget) this.forget(txn)
    switch (cmd.op) {
      case 'commit1': return this.deduped(OP_COMMIT1, cmd.txn, cmd.at, () => this.commit1(cmd))
      case 'prepare': return this.deduped(OP_PREPARE, cmd.txn, cmd.at, () => this.prepare(cmd))
      case 'resolve': return this.deduped(OP_RESOLVE, cmd.txn, cmd.at, () => this.resolve(cmd))
      case 'decide': return this.decide(cmd)
      case 'commitDecide': return this.deduped(OP_COMMIT_DECIDE, cmd.txn, cmd.at, () => this.commitDecide(cmd))
      case 'forget': return this.forget(cmd.txn)
      case 'sweep': return this.sweep(cmd)
    }
  }

  /** Deletes every row of the fragment on this host (the replica was moved away). */
  drop (): void {
    this.restore(new Uint8Array())
  }

  restore (data: Uint8Array): void {
    // The host tells the feed the snapshot's index right after (position), which starts its coverage afresh.
    this.feed?.reset(-1)
    this.marks?.forget(this.fragment)
    // Keys first, removals after: no cursor runs over a range being changed.
    const old = [...this.db.getKeys({ start: this.reader.lo, end: this.reader.hi })] as Buffer[]
    for (const key of old) this.db.remove(key)
    if (data.length === 0) return
    const rows = unpack(data) as Array<[Buffer, Buffer]>
    for (const [k, v] of rows) {
      if (Buffer.compare(k, this.reader.lo) < 0 || Buffer.compare(k, this.reader.hi) >= 0) throw new Error(`snapshot of fragment ${this.fragment} holds a key outside it`)
      this.db.put(k, v)
    }
  }

  snapshot (): Uint8Array {
    const rows: Array<[Buffer, Buffer]> = []
    for (const { key, value } of this.db.getRange({ start: this.reader.lo, end: this.reader.hi })) rows.push([key as Buffer, value as Buffer])
    return pack(rows)
  }

  // ---- commands -------------------------------------------------------------------

  private invalid (c: Command): string | null {
    if (typeof c !== 'object' || c === null) return 'command is not a map'
    const checked = (cs: unknown, k: Buffer): boolean => Array.isArray(cs) && cs.some((x: Check) => x?.k === 'get' && isBuf(x.key) && x.key.equals(k))
    const writeOk = (w: unknown, cs: unknown): boolean => Array.isArray(w) && isBuf(w[0]) && this.reader.ownsRowKey(w[0]) && (
      (w.length === 2 && (w[1] === null || isBuf(w[1]))) ||
      (w.length === 4 && isBuf(w[1]) && Number.isSafeInteger(w[2]) && Number.isSafeInteger(w[3]) && w[2] >= 0 &&
        w[2] + w[1].length <= w[3] && w[3] <= PATCH_MAX_LEN && checked(cs, w[0])))
    const keysOk = (ks: unknown, cs: unknown): boolean => Array.isArray(ks) && ks.every((w) => writeOk(w, cs))
    const checksOk = (cs: unknown): boolean => Array.isArray(cs) && cs.every((x: Check) =>
      x !== null && typeof x === 'object' && isBuf(x.hash) && (
        (x.k === 'get' && isBuf(x.key) && this.reader.ownsRowKey(x.key)) ||
        (x.k === 'range' && isBuf(x.start) && isBuf(x.end) && this.reader.ownsRowKey(x.start) && x.end.length >= 3 && x.end.readUInt16BE(0) === this.fragment && isNum(x.limit) && typeof x.keysOnly === 'boolean')))
    if ('forget' in c && c.forget !== undefined && !(Array.isArray(c.forget) && c.forget.length <= FORGET_MAX && c.forget.every(isTxn))) return `malformed forget list of ${c.op}`
    switch (c.op) {
      case 'commit1':
        return isTxn(c.txn) && isNum(c.at) && checksOk(c.checks) && keysOk(c.writes, c.checks) ? null : 'malformed commit1'
      case 'prepare':
        return isTxn(c.txn) && isNum(c.at) && Number.isInteger(c.record) && isFragList(c.participants) && checksOk(c.checks) && keysOk(c.writes, c.checks) ? null : 'malformed prepare'
      case 'decide':
        return isTxn(c.txn) && typeof c.commit === 'boolean' && isNum(c.at) && isFragList(c.participants) ? null : 'malformed decide'
      case 'commitDecide':
        return isTxn(c.txn) && isNum(c.at) && isFragList(c.participants) && checksOk(c.checks) && keysOk(c.writes, c.checks) ? null : 'malformed commitDecide'
      case 'resolve':
        return isTxn(c.txn) && typeof c.commit === 'boolean' && isNum(c.at) ? null : 'malformed resolve'
      case 'forget':
        return isTxn(c.txn) ? null : 'malformed forget'
      case 'sweep':
        return isNum(c.at) && isNum(c.keepMs) && Number.isInteger(c.limit) && c.limit > 0 ? null : 'malformed sweep'
      default:
        return `unknown command ${String((c as { op?: unknown }).op)}`
    }
  }

  private dedupeKey (op: number, txn: string): Buffer {
    return Buffer.concat([fragPrefix(this.fragment, DEDUPE), Buffer.from([op]), Buffer.from(txn)])
  }

  /** Runs `fn` once per (op, txn); later applications return the first result. */
  private deduped (op: number, txn: string, at: number, fn: () => Result): Result {
    const dk = this.dedupeKey(op, txn)
    const prev = this.db.getBinary(dk)
    if (prev) return (unpack(prev) as { r: Result }).r
    const r = fn()
    this.db.put(dk, pack({ at, r }))
    this.db.put(Buffer.concat([fragPrefix(this.fragment, DEDUPE_AT), u64(at), Buffer.from([op]), Buffer.from(txn)]), EMPTY)
    return r
  }

  /** Blockers of a transaction `txn` that wants these checks and writes, or [] if it may go ahead. */
  private validate (txn: string, checks: Check[], writes: WriteOp[]): Result | null {
    const blockers = new Map<string, Blocker>()
    let stale = false
    for (const c of checks) {
      if (c.k === 'get') {
        const v = peek(this.db, c.key)
        if (!hashGet(v ?? null).equals(c.hash)) stale = true
        this.reader.intentsAt(c.key, null, txn, blockers)
      } else {
        const rows = scanRows(this.db, c.start, c.end, c.limit, c.keysOnly)
        if (!hashRange(c.start, c.end, c.limit, c.keysOnly, rows).equals(c.hash)) stale = true
        this.reader.intentsAt(c.start, c.end, txn, blockers)
      }
    }
    for (const [k] of writes) this.reader.intentsAt(k, null, txn, blockers)
    if (writes.length > 0) {
      for (const [other, p] of this.reader.allPrepared()) {
        if (other === txn || blockers.has(other)) continue
        const locked = writes.some(([k]) => p.reads.some((r) => r.equals(k)) ||
          p.ranges.some(([s, e]) => Buffer.compare(k, s) >= 0 && Buffer.compare(k, e) < 0))
        if (locked) blockers.set(other, { txn: other, record: p.record, at: p.at, participants: p.participants, fragment: this.fragment })
      }
    }
    if (!stale && blockers.size === 0) return null
    return { ok: false, reason: 'conflict', blockers: [...blockers.values()] }
  }

  /** Whole rows for the writes, patches built on the current values (which the command's checks pinned). */
  private materialize (writes: WriteOp[]): RowWrite[] {
    return writes.map((w): RowWrite => {
      if (!isPatch(w)) return w
      const [key, bytes, at, len] = w
      const row = Buffer.alloc(len)
      const cur = peek(this.db, key)
      if (cur) cur.copy(row, 0, 0, Math.min(cur.length, len))
      bytes.copy(row, at)
      return [key, row]
    })
  }

  private commit1 (c: Extract<Command, { op: 'commit1' }>): Result {
    const no = this.validate(c.txn, c.checks, c.writes)
    if (no) return no
    this.writeRows(this.materialize(c.writes), c.txn, c.at, [])
    return { ok: true }
  }

  private prepare (c: Extract<Command, { op: 'prepare' }>): Result {
    if (this.db.getBinary(this.dedupeKey(OP_RESOLVE, c.txn))) return { ok: false, reason: 'resolved', message: `transaction ${c.txn} was already resolved in fragment ${this.fragment}` }
    if (this.reader.decision(c.txn)) return { ok: false, reason: 'decided', message: `transaction ${c.txn} was already decided in fragment ${this.fragment}` }
    const no = this.validate(c.txn, c.checks, c.writes)
    if (no) return no
    const prepared: Prepared = {
      record: c.record,
      at: c.at,
      participants: c.participants,
      // Built now: the intents keep other writers off these rows until resolve, and the record stays in the old form.
      writes: this.materialize(c.writes),
      reads: c.checks.flatMap((x) => x.k === 'get' ? [x.key] : []),
      ranges: c.checks.flatMap((x): Array<[Buffer, Buffer]> => x.k === 'range' ? [[x.start, x.end]] : [])
    }
    this.db.put(Buffer.concat([fragPrefix(this.fragment, PREPARED), Buffer.from(c.txn)]), pack(prepared))
    for (const [k] of c.writes) this.db.put(this.reader.intentKey(k), Buffer.from(c.txn))
    return { ok: true }
  }

  private decide (c: Extract<Command, { op: 'decide' }>): Result {
    const prev = this.reader.decision(c.txn)
    if (prev) return { ok: true, commit: prev.commit }
    this.recordDecision(c.txn, { commit: c.commit, at: c.at, participants: c.participants })
    return { ok: true, commit: c.commit }
  }

  private commitDecide (c: Extract<Command, { op: 'commitDecide' }>): Result {
    const prev = this.reader.decision(c.txn)
    if (prev) return { ok: true, commit: prev.commit }
    const no = this.validate(c.txn, c.checks, c.writes)
    if (no) return no
    this.writeRows(this.materialize(c.writes), c.txn, c.at, c.participants)
    this.recordDecision(c.txn, { commit: true, at: c.at, participants: c.participants })
    return { ok: true, commit: true }
  }

  private recordDecision (txn: string, d: Decision): void {
    this.db.put(Buffer.concat([fragPrefix(this.fragment, DECISION), Buffer.from(txn)]), pack(d))
    this.db.put(Buffer.concat([fragPrefix(this.fragment, DECISION_AT), u64(d.at), Buffer.from(txn)]), EMPTY)
  }

  private resolve (c: Extract<Command, { op: 'resolve' }>): Result {
    const p = this.reader.prepared(c.txn)
    if (!p) return { ok: true, applied: 0 }
    for (const [k] of p.writes) this.db.remove(this.reader.intentKey(k))
    if (c.commit) this.writeRows(p.writes, c.txn, p.at, p.participants)
    this.db.remove(Buffer.concat([fragPrefix(this.fragment, PREPARED), Buffer.from(c.txn)]))
    return { ok: true, applied: c.commit ? p.writes.length : 0 }
  }

  private forget (txn: string): Result {
    const d = this.reader.decision(txn)
    if (!d) return { ok: true, removed: 0 }
    this.db.remove(Buffer.concat([fragPrefix(this.fragment, DECISION), Buffer.from(txn)]))
    this.db.remove(Buffer.concat([fragPrefix(this.fragment, DECISION_AT), u64(d.at), Buffer.from(txn)]))
    return { ok: true, removed: 1 }
  }

  private sweep (c: Extract<Command, { op: 'sweep' }>): Result {
    const s = fragPrefix(this.fragment, DEDUPE_AT)
    const e = Buffer.concat([s, u64(c.at - c.keepMs)])
    let removed = 0
    const keys = [...this.db.getKeys({ start: s, end: e, limit: c.limit })] as Buffer[]
    for (const k of keys) {
      this.db.remove(k)
      this.db.remove(Buffer.concat([fragPrefix(this.fragment, DEDUPE), k.subarray(11)]))
      removed++
    }
    return { ok: true, removed }
  }
}

function bad (message: string): Result {
  return { ok: false, reason: 'bad-command', message }
}

/** The store key of `key` in `table` of `fragment`. */
export function rowKey (fragment: number, table: TableName, key: Buffer): Buffer {
  if (!TABLE_ID[table]) throw new Error(`unknown table ${String(table)}`)
  return Buffer.concat([prefixOf(fragment, table), key])
}
