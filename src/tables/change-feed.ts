/**
 * The change feed of one fragment: the row changes that committed
 * transactions made, in log order, for `walkenfs watch`.
 *
 * Owns: a bounded ring of recent change batches of one fragment (one batch
 * per applied `commit1`, or per committing `resolve` of a two-phase
 * transaction: intents become rows there, never at `prepare`), keyed by the
 * Raft index of the entry that made them, and the waiters of long polls.
 *
 * Promise: `read(after)` returns every batch with index > `after` that this
 * replica applied, in index order, or says `gap` when some of them are no
 * longer (or were never) held here — the ring dropped them, or this replica
 * started (opened, restored a snapshot) after `after`. It never silently
 * skips a batch. Indexes are the Raft log's, the same on every replica of
 * the fragment, so a reader may resume on another replica from the last
 * index it saw: nothing missed, nothing twice.
 *
 * Which changes: rows of the fs tables `inode`, `dirent` (with old and new
 * values: the translation needs the ino a removed name pointed to, and
 * whether a size or mtime changed) and `block` (keys only; a block's bytes
 * are of no use to a watcher). Transaction bookkeeping, xattrs, symlink
 * targets and `meta` rows are left out.
 *
 * Bounds: at most `maxBatches` batches and about `maxBytes` bytes of
 * packed changes; the oldest go first (then `read` from before them is a gap).
 * The feeds of a host (`ChangeFeeds`) share a byte budget: each gets an even
 * share of it, at most `maxBytes` and at least MIN_FEED_BYTES, so the rings
 * of a host with many fragments stay within the budget.
 * Waiters: at most `maxWaiters` long polls are woken by a new batch; more
 * wait out (at most 1 s of) their time and are answered then, so a crowd of
 * watchers never makes anyone spin.
 */
import { pack, unpack } from 'msgpackr'

/** One row change; `table` is a table id of local.ts; `key` the table key (no fragment prefix). */
export interface RowChange {
  table: number
  key: Buffer
  /** new value (inode, dirent); null = deleted; undefined for blocks (see `deleted`) */
  value?: Buffer | null
  /** value before the change (inode, dirent); null = the row did not exist */
  old?: Buffer | null
  /** block rows: whether the row was removed */
  deleted?: boolean
}

export interface ChangeBatch {
  /** Raft index of the entry that made the changes (one-host mode: a commit counter) */
  index: number
  txn: string
  /** wall clock (ms) of the coordinator that committed the transaction */
  at: number
  /** fragments of a two-phase transaction (each sends its own batch); [] for one fragment */
  participants: number[]
  changes: RowChange[]
}

export type FeedRead =
  | { gap: false, batches: ChangeBatch[], position: number }
  | { gap: true, batches: [], position: number, coveredFrom: number }

export interface ChangeFeedOptions {
  maxBatches?: number
  maxBytes?: number
  maxWaiters?: number
}

export interface ChangeFeedsOptions extends ChangeFeedOptions {
  /** bytes all feeds of the host keep together (default 32 MiB); each keeps an even share */
  budgetBytes?: number
}

/** The least a feed keeps whatever the budget: a watcher must be able to keep up with a busy fragment. */
export const MIN_FEED_BYTES = 64 * 1024

// Table ids of local.ts (inode 1, dirent 2, block 3); spelled out because local.ts imports this module.
const WATCHED = new Set([1, 2, 3])
/** how long a poll beyond maxWaiters waits (not woken by new batches) */
const OVERFLOW_WAIT_MS = 1000
const WITH_VALUES = new Set([1, 2])

/** Whether changes of this table id are kept, and whether with values. */
export function watchedTable (table: number): 'values' | 'keys' | null {
  return WATCHED.has(table) ? (WITH_VALUES.has(table) ? 'values' : 'keys') : null
}

/**
 * A batch as the ring keeps it: its changes packed into one buffer of
 * their exact size, unpacked again by `read`. Batches stay in the ring for
 * a long time (16 fragments × 2,048 of them on a host). Kept as objects,
 * each change cost three Buffer objects and more on the heap, and each
 * small buffer was a view into something larger (a decoded entry or
 * frame, or Node's 8 KiB pool of small buffers) that it pinned: together
 * most of what a host's heap and buffers grew by per bench round
 * (docs/performance.md, finding 27).
 */
interface Kept { index: number, txn: string, at: number, participants: number[], packed: Buffer }

interface PackedChange { t: number, k: Buffer, v?: Buffer | null, o?: Buffer | null, d?: boolean }

function keep (b: ChangeBatch): Kept {
  const cs = b.changes.map((c): PackedChange => {
    const o: PackedChange = { t: c.table, k: c.key }
    if (c.value !== undefined) o.v = c.value
    if (c.old !== undefined) o.o = c.old
    if (c.deleted !== undefined) o.d = c.deleted
    return o
  })
  // msgpackr's output is a view into its working buffer: own an exact copy.
  const packed = Uint8Array.prototype.slice.call(pack(cs)) as Buffer
  return { index: b.index, txn: b.txn, at: b.at, participants: b.participants, packed }
}

function unkeep (k: Kept): ChangeBatch {
  const changes = (unpack(k.packed) as PackedChange[]).map((o): RowChange => {
    const c: RowChange = { table: o.t, key: o.k }
    if ('v' in o) c.value = o.v
    if ('o' in o) c.old = o.o
    if ('d' in o) c.deleted = o.d
    return c
  })
  return { index: k.index, txn: k.txn, at: k.at, participants: k.participants, changes }
}

function sizeOf (k: Kept): number {
  return 64 + k.txn.length + k.packed.length
}

export class ChangeFeed {
  private ring: Kept[] = []
  private bytes = 0
  /** every batch with index > coveredFrom and <= position is in the ring; -1: nothing known yet */
  private coveredFrom = -1
  private pos = -1
  private waiters = new Set<() => void>()
  private readonly o: Required<ChangeFeedOptions>

  constructor (opts: ChangeFeedOptions = {}) {
    this.o = { maxBatches: 2048, maxBytes: 2 * 1024 * 1024, maxWaiters: 256, ...opts }
  }

  /** The index the replica's state reflects (-1 before the group opened). */
  get position (): number { return this.pos }

  /**
   * The machine's state now reflects index `index`. A jump that did not come
   * through push/advance one entry at a time (group opened, snapshot
   * restored, or an index going backwards) starts coverage afresh there.
   */
  reset (index: number): void {
    this.ring = []
    this.bytes = 0
    this.coveredFrom = index
    this.pos = index
    this.wake()
  }

  /** Entry `index` was applied (with or without changes); wakes nobody (nothing to read). */
  advance (index: number): void {
    if (this.pos < 0 || index < this.pos) { this.reset(index); return }
    this.pos = index
  }

  push (changed: ChangeBatch): void {
    const batch = keep(changed)
    const last = this.ring[this.ring.length - 1]
    // Out of order (cannot happen with one machine per feed): vouch for nothing below it.
    if (this.pos < 0 || (last !== undefined && batch.index <= last.index)) this.reset(batch.index - 1)
    this.ring.push(batch)
    this.bytes += sizeOf(batch)
    this.trim()
    this.advance(batch.index)
    this.wake()
  }

  /** Bytes of packed changes held. */
  get heldBytes (): number { return this.bytes }

  /** Sets the byte bound (a host's budget shared anew) and drops the oldest batches past it. */
  limit (maxBytes: number): void {
    this.o.maxBytes = maxBytes
    this.trim()
  }

  private trim (): void {
    while (this.ring.length > this.o.maxBatches || (this.bytes > this.o.maxBytes && this.ring.length > 1)) {
      const old = this.ring.shift()!
      this.bytes -= sizeOf(old)
      this.coveredFrom = old.index
    }
  }

  /** Batches with index > after (at most `max`), or a gap. */
  read (after: number, max = 256): FeedRead {
    if (this.pos < 0 || after < this.coveredFrom) return { gap: true, batches: [], position: this.pos, coveredFrom: this.coveredFrom }
    const out: ChangeBatch[] = []
    for (const b of this.ring) {
      if (b.index > after) {
        out.push(unkeep(b))
        if (out.length >= max) return { gap: false, batches: out, position: b.index }
      }
    }
    return { gap: false, batches: out, position: Math.max(after, this.pos) }
  }

  /** Resolves once a batch after `after` is held (or `after` is not covered), or after `ms`, whichever first. */
  async wait (after: number, ms: number): Promise<void> {
    const last = this.ring[this.ring.length - 1]
    if ((last !== undefined && last.index > after) || this.pos < 0 || after < this.coveredFrom) return
    if (ms <= 0) return
    if (this.waiters.size >= this.o.maxWaiters) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(ms, OVERFLOW_WAIT_MS)))
      return
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.waiters.add(done)
    })
  }

  private wake (): void {
    for (const w of [...this.waiters]) w()
  }
}

/**
 * The feeds of every fragment held on this host, created on first use
 * (bounded by the fragment count), sharing one byte budget: with n feeds
 * each keeps at most budget / n (within MIN_FEED_BYTES..maxBytes), so 16
 * fragments keep 2 MiB each as before and 256 keep 128 KiB each.
 */
export class ChangeFeeds {
  private readonly feeds = new Map<number, ChangeFeed>()
  private readonly budget: number
  private readonly perFeedMax: number
  private readonly opts: ChangeFeedOptions
  constructor ({ budgetBytes, ...opts }: ChangeFeedsOptions = {}) {
    this.opts = opts
    this.budget = budgetBytes ?? 32 * 1024 * 1024
    this.perFeedMax = opts.maxBytes ?? 2 * 1024 * 1024
  }

  of (fragment: number): ChangeFeed {
    let f = this.feeds.get(fragment)
    if (!f) {
      this.feeds.set(fragment, f = new ChangeFeed(this.opts))
      const share = Math.max(MIN_FEED_BYTES, Math.min(this.perFeedMax, Math.floor(this.budget / this.feeds.size)))
      for (const feed of this.feeds.values()) feed.limit(share)
    }
    return f
  }

  /** Bytes all feeds hold. */
  heldBytes (): number {
    let n = 0
    for (const f of this.feeds.values()) n += f.heldBytes
    return n
  }

  has (fragment: number): boolean { return this.feeds.has(fragment) }
}

/** Where a watcher reads change batches from: `streams` independent feeds (fragments; one on one host). */
export interface ChangeSource {
  readonly streams: number
  /**
   * Batches of stream `s` with index > `after`, waiting up to `waitMs` for
   * one (long poll); `after` null asks only for the current position.
   * Throws when no replica can answer now (the caller retries).
   */
  poll (s: number, after: number | null, waitMs: number): Promise<FeedRead>
}

/** Answers a poll from one feed (used by both the local and the RPC path). */
export async function pollFeed (feed: ChangeFeed, after: number | null, waitMs: number, max = 256): Promise<FeedRead> {
  if (feed.position < 0) throw new Error('the replica is not open yet')
  if (after === null) return { gap: false, batches: [], position: feed.position }
  await feed.wait(after, waitMs)
  return feed.read(after, max)
}
