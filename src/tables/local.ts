/**
 * The tables of one host, served from its local store (no replication).
 *
 * Store key layout (inside the store's `rows` database):
 *   [u16 fragment][u8 table id][table key]      one row of a table
 *   [ff ff ff] "tables"                          JSON {fragments} of this store
 * Fragment first, so a fragment is one contiguous key range (what a snapshot
 * of a fragment will copy); table id second, so a scan of one table in one
 * fragment is contiguous too.
 *
 * Transactions run one at a time (a FIFO lock around the body and its
 * commit): trivially serializable, and no conflicts can arise, so no body is
 * re-run here except under `debugRerun` (tests use it to prove that bodies
 * are free of side effects, as the replicated implementation will re-run
 * them). Reads inside a body see the body's own writes. The commit is one
 * synchronous store commit; durability waits for `flush()`.
 *
 * Bound: at most `maxWaiting` transactions queue for the lock; past that
 * `txn` fails with EAGAIN instead of growing memory without limit.
 */
import { Store, StoreError } from '../store/store.js'
import { fragmentOfKey } from './fragments.js'
import { ChangeFeed, pollFeed, watchedTable, type ChangeFeedOptions, type ChangeSource, type FeedRead, type RowChange } from './change-feed.js'
import { TABLES, TablesFullError, type Row, type RangeOptions, type TableName, type Tables, type Tx, type TxnOptions } from './types.js'

/** Table ids in the store key layout; ids >= 0x10 are the replicated layer's bookkeeping (fragment-machine.ts). */
export const TABLE_ID: Record<TableName, number> = { inode: 1, dirent: 2, block: 3, xattr: 4, symlink: 5, meta: 6 }
const CONFIG_KEY = Buffer.from([0xff, 0xff, 0xff, ...Buffer.from('tables')])
export const MAX_FRAGMENTS = 4096
/** the most rows one range read returns */
export const MAX_RANGE = 100_000
const EMPTY = Buffer.alloc(0)

export interface LocalTablesOptions {
  /** fragments of a new store (ignored when the store already has tables, but must then match if given) */
  fragments?: number
  /** run every body twice, discarding the first attempt (tests only) */
  debugRerun?: boolean
  maxWaiting?: number
  /** bounds of the change feed (walkenfs watch) */
  feed?: ChangeFeedOptions
}

/** `[u16 fragment][u8 table id]`: the prefix of every row of `table` in `fragment`. */
export function prefixOf (fragment: number, table: TableName): Buffer {
  const p = Buffer.allocUnsafe(3)
  p.writeUInt16BE(fragment, 0)
  p[2] = TABLE_ID[table]
  return p
}

class LocalTx implements Tx {
  readonly writes = new Map<string, { storeKey: Buffer, value: Buffer | null }>()
  constructor (private readonly tables: LocalTables) {}

  private storeKey (table: TableName, key: Buffer): Buffer {
    if (!TABLE_ID[table]) throw new Error(`unknown table ${String(table)}`)
    return Buffer.concat([prefixOf(fragmentOfKey(key, this.tables.fragments), table), key])
  }

  async get (table: TableName, key: Buffer): Promise<Buffer | undefined> {
    const sk = this.storeKey(table, key)
    const w = this.writes.get(sk.toString('latin1'))
    if (w) return w.value ?? undefined
    return this.tables.store.get(sk)
  }

  async range (table: TableName, start: Buffer, end: Buffer, opts: RangeOptions = {}): Promise<Row[]> {
    const limit = Math.min(opts.limit ?? MAX_RANGE, MAX_RANGE)
    const prefix = prefixOf(fragmentOfKey(start, this.tables.fragments), table)
    const s = Buffer.concat([prefix, start])
    const e = Buffer.concat([prefix, end])
    const pending: Array<{ storeKey: Buffer, value: Buffer | null }> = []
    for (const w of this.writes.values()) {
      if (Buffer.compare(w.storeKey, s) >= 0 && Buffer.compare(w.storeKey, e) < 0) pending.push(w)
    }
    const base = this.tables.store.range(s, e, limit + pending.length, opts.keysOnly ?? false)
    let rows: Array<{ storeKey: Buffer, value: Buffer | null }> = base.map((r) => ({ storeKey: r.key, value: r.value }))
    if (pending.length > 0) {
      const merged = new Map<string, { storeKey: Buffer, value: Buffer | null }>()
      for (const r of rows) merged.set(r.storeKey.toString('latin1'), r)
      for (const w of pending) merged.set(w.storeKey.toString('latin1'), w)
      rows = [...merged.values()].filter((r) => r.value !== null).sort((a, b) => Buffer.compare(a.storeKey, b.storeKey))
    }
    return rows.slice(0, limit).map((r) => ({ key: r.storeKey.subarray(3), value: opts.keysOnly ? EMPTY : r.value as Buffer }))
  }

  put (table: TableName, key: Buffer, value: Buffer): void {
    const sk = this.storeKey(table, key)
    this.writes.set(sk.toString('latin1'), { storeKey: sk, value })
  }

  delete (table: TableName, key: Buffer): void {
    const sk = this.storeKey(table, key)
    this.writes.set(sk.toString('latin1'), { storeKey: sk, value: null })
  }
}

export class LocalTables implements Tables {
  readonly fragments: number
  readonly store: Store
  private readonly debugRerun: boolean
  private readonly maxWaiting: number
  private tail: Promise<unknown> = Promise.resolve()
  private waiting = 0
  /** The change feed of `walkenfs watch`: one stream, indexed by a commit counter of this process. */
  readonly feed: ChangeFeed
  private commits = 0
  /** Changes are recorded (old values read) only once somebody watched. */
  private watched = false

  private constructor (store: Store, fragments: number, opts: LocalTablesOptions) {
    this.store = store
    this.fragments = fragments
    this.debugRerun = opts.debugRerun ?? false
    this.maxWaiting = opts.maxWaiting ?? 10_000
    this.feed = new ChangeFeed(opts.feed)
    this.feed.reset(0)
  }

  /** The watcher's view of this host's changes (one stream). */
  changes (): ChangeSource {
    return {
      streams: 1,
      poll: async (_s: number, after: number | null, waitMs: number): Promise<FeedRead> => {
        this.watched = true
        return await pollFeed(this.feed, after, waitMs)
      }
    }
  }

  /** The changes `writes` will make (old values read before the commit), or null when nobody watches. */
  private changesOf (writes: Array<[Buffer, Buffer | null]>): RowChange[] | null {
    if (!this.watched) return null
    const changes: RowChange[] = []
    for (const [k, v] of writes) {
      const kind = watchedTable(k[2]!)
      if (kind === 'values') changes.push({ table: k[2]!, key: k.subarray(3), value: v, old: this.store.get(k) ?? null })
      else if (kind === 'keys') changes.push({ table: k[2]!, key: k.subarray(3), deleted: v === null })
    }
    return changes
  }

  /** Publishes a commit that succeeded. */
  private published (changes: RowChange[] | null): void {
    const index = ++this.commits
    if (changes !== null && changes.length > 0) this.feed.push({ index, txn: `local.${index}`, at: Date.now(), participants: [], changes })
    else this.feed.advance(index)
  }

  /** Tables over `store`; a new store is given `opts.fragments` (default 16). */
  static open (store: Store, opts: LocalTablesOptions = {}): LocalTables {
    const cfg = store.get(CONFIG_KEY)
    let fragments: number
    if (cfg) {
      fragments = (JSON.parse(cfg.toString()) as { fragments: number }).fragments
      if (opts.fragments !== undefined && opts.fragments !== fragments) {
        throw new StoreError('EINVAL', `the store in ${store.dataDir} has ${fragments} fragments, not ${opts.fragments}; the count is fixed at init`)
      }
    } else {
      fragments = opts.fragments ?? 16
      if (!Number.isInteger(fragments) || fragments < 1 || fragments > MAX_FRAGMENTS) {
        throw new StoreError('EINVAL', `fragments must be an integer in 1..${MAX_FRAGMENTS}, got ${fragments}`)
      }
      store.commit([[CONFIG_KEY, Buffer.from(JSON.stringify({ fragments }))]])
    }
    return new LocalTables(store, fragments, opts)
  }

  async txn<T> (body: (tx: Tx) => Promise<T>, _opts: TxnOptions = {}): Promise<T> {
    if (this.waiting >= this.maxWaiting) {
      throw Object.assign(new Error(`EAGAIN: ${this.waiting} transactions already waiting`), { code: 'EAGAIN' })
    }
    this.waiting++
    const run = this.tail.then(async () => {
      this.waiting--
      if (this.debugRerun) await body(new LocalTx(this)).catch(() => {})
      const tx = new LocalTx(this)
      const result = await body(tx)
      const writes: Array<[Buffer, Buffer | null]> = []
      for (const w of tx.writes.values()) writes.push([w.storeKey, w.value])
      try {
        const changes = writes.length > 0 ? this.changesOf(writes) : null
        this.store.commit(writes)
        if (writes.length > 0) this.published(changes)
      } catch (e) {
        if (e instanceof StoreError && e.code === 'ENOSPC') throw new TablesFullError(e.message)
        throw e
      }
      return result
    })
    this.tail = run.catch(() => {})
    return run
  }

  flush (): Promise<void> {
    return this.store.flush()
  }

  async countRows (table: TableName, fragment: number): Promise<number> {
    const p = prefixOf(fragment, table)
    const e = Buffer.from(p)
    e[2]++
    return this.store.count(p, e)
  }

  async close (): Promise<void> {
    await this.tail
    await this.store.close()
  }
}

export { TABLES }
