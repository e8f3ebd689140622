/**
 * The host's local store: one lmdb environment per data directory.
 *
 * Owns: opening (and creating) the environment, recognising a data directory
 * as ours, synchronous commits, durable flushes, and turning lmdb's failures
 * into errors a person can act on (`StoreError` with a `code`).
 *
 * Layout (see docs/store.md): DATA/walkenfs-store/ holds lmdb's data.mdb and
 * lock.mdb. Two named lmdb databases: `store` (identity: the `format` row)
 * and `rows` (everything else, binary keys and values; the tables layer owns
 * the key layout inside it). The replicated layers open their own through
 * `lmdbRoot` (`raft`, `catalog`, `cluster`, …; at most 12 databases in all).
 *
 * Promises:
 * - `commit()` applies a batch of puts/deletes atomically and synchronously:
 *   when it returns, every later `get` sees it; a crash of the process keeps
 *   it (it is in the kernel's page cache), a crash of the machine may lose it.
 * - `flush()` resolves only after everything committed before the call is on
 *   disk (fdatasync of data.mdb). Concurrent flushes share one sync; a
 *   flush with nothing committed since the last sync costs nothing.
 * - every `autoFlushMs` (default 1 s) a background flush covers whatever
 *   was committed, so a machine crash loses at most about that much.
 * - a full disk fails the commit with code `ENOSPC`, normally before lmdb
 *   sees it (checkRoom); the environment stays usable and keeps its
 *   previous state. A reserve of RESERVE_BYTES stays usable for batches that
 *   free space, so a full store can be emptied.
 *
 * Option choice, and why: `noSync` (commits do not fsync; `flush()` syncs
 * explicitly) because a synced commit costs ~300 µs and the filesystem only
 * owes durability at fsync; no `useWritemap` (a write map turns a full disk
 * into SIGBUS, while pwrite turns it into a failed commit);
 * `noMemInit` is left off so that stale heap bytes never reach the file.
 * The cost of `noSync`, as lmdb documents it: a machine crash between two
 * flushes can lose the transactions since the last flush, and in the worst
 * case damage the store; a process crash cannot. The replicated layer will
 * rebuild a damaged replica from its peers.
 */
import { open, type RootDatabase, type Database } from 'lmdb'
import { existsSync, mkdirSync, readdirSync, statSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { StoreError } from './errors.js'
import { checkMetaPages } from './meta-pages.js'
import { releaseOwnership, takeOwnership } from './ownership.js'

export const STORE_DIR = 'walkenfs-store'
const MAGIC = 'walkenfs-store'
/**
 * 2: Raft log entries of fragments may hold row patches (fragment-machine.ts
 * RowPatch), which a build of format 1 would apply as whole rows. A format 1
 * store holds none yet, so it is taken over as it is; a build of format 1
 * refuses a format 2 store, which is the point.
 * 3: the Raft snapshot of a fragment or catalog group holds no data (its
 * rows in the store are the state: GroupStateMachine.liveSnapshots), which a
 * build of format 2 would send to a new replica as an empty state. Formats 1
 * and 2 are taken over as they are (their snapshots with data stay valid);
 * a build of format 2 refuses a format 3 store.
 * 4: the Raft log keeps a head [term, bytes] beside each entry with a
 * payload (raft-storage.ts), and a restart trusts the heads of what it had
 * applied. A build of format 3 would truncate or compact the log without
 * removing heads, and a head left behind would name the wrong term when
 * this build read it again: it refuses a format 4 store. Formats 1–3 are
 * taken over as they are (entries without a head are read whole).
 */
const FORMAT_VERSION = 4
const READABLE_FORMATS = new Set([1, 2, 3, 4])

export { StoreError }

function listed (xs: number[]): string {
  return xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`
}

export interface StoreOptions {
  /** Initial lmdb map size in bytes; the map grows by itself when full. */
  mapSize?: number
  /**
   * Flush in the background this often (ms) when something was committed
   * since the last flush, bounding what a machine crash can take; 0 = never.
   * Default 1000.
   */
  autoFlushMs?: number
}

export interface Row { key: Buffer, value: Buffer }

/** One write of a commit batch: a value to put, or `null` to delete. */
export type Write = [key: Buffer, value: Buffer | null]

/** A full disk reported by the OS, or lmdb running out of map. */
function isNoSpace (e: unknown): boolean {
  const err = e as { code?: unknown, message?: unknown }
  const msg = String(err?.message ?? '')
  return err?.code === 'ENOSPC' || err?.code === 28 || err?.code === -28 ||
    /ENOSPC|No space left on device|MDB_MAP_FULL/.test(msg)
}

const EMPTY = Buffer.alloc(0)
/** space kept free for batches that free space (see checkRoom) */
export const RESERVE_BYTES = 1 << 20


export class Store {
  readonly dataDir: string
  private readonly root: RootDatabase
  private readonly rows: Database<Buffer, Buffer>
  private closed = false
  /** The flush that will include every commit made so far (not yet started). */
  private nextFlush: Promise<void> | null = null
  private flushing: Promise<void> | null = null
  /** commits made so far, and how many of them a finished sync covered */
  private commits = 0
  private flushedUpTo = 0

  private readonly owner: string
  private readonly meta: Database<Buffer, string>
  private roomCache: { until: number } | null = null
  private readonly autoFlush: NodeJS.Timeout | null

  private constructor (dataDir: string, root: RootDatabase, rows: Database<Buffer, Buffer>, meta: Database<Buffer, string>, owner: string, autoFlushMs: number) {
    this.meta = meta
    this.dataDir = dataDir
    this.root = root
    this.rows = rows
    this.owner = owner
    this.autoFlush = autoFlushMs > 0
      ? setInterval(() => {
        if (this.flushedUpTo !== this.commits && !this.flushing && !this.nextFlush) this.flush().catch(() => {})
      }, autoFlushMs).unref()
      : null
  }

  /**
   * The lmdb environment, for the layers that keep their own databases in
   * this store (Raft logs, the catalog, replicated fragments). Writes they
   * make bypass commit(), so they must call noteCommit() before flush().
   */
  get lmdbRoot (): RootDatabase { return this.root }

  /** The `rows` database: [u16 fragment][u8 table][key] → value (see src/tables/local.ts). */
  get rowsDb (): Database<Buffer, Buffer> { return this.rows }

  /** Counts a write made directly through lmdbRoot, so that the next flush() syncs it. */
  noteCommit (): void {
    this.commits++
  }

  /** Commits not yet covered by a finished flush (0 = everything is on disk). */
  unflushedCommits (): number {
    return this.commits - this.flushedUpTo
  }

  /**
   * Open the store of `dataDir`, creating it in an empty or missing
   * directory. Refuses a non-empty directory that holds no walkenfs store,
   * and a store of another format version.
   */
  static open (dataDir: string, opts: StoreOptions = {}): Store {
    const envDir = join(dataDir, STORE_DIR)
    if (existsSync(dataDir)) {
      if (!statSync(dataDir).isDirectory()) throw new StoreError('ENOTDIR', `data directory ${dataDir} is not a directory`)
      const names = readdirSync(dataDir).filter((n) => n !== 'lost+found' && n !== 'walkenfs.log') // the daemon's default log may come first
      if (names.length > 0 && !names.includes(STORE_DIR)) {
        throw new StoreError('EINVAL', `${dataDir} is not a walkenfs data directory (it is not empty and has no ${STORE_DIR}/); refusing to touch it`)
      }
    }
    try {
      mkdirSync(envDir, { recursive: true })
    } catch (e) {
      throw new StoreError(isNoSpace(e) ? 'ENOSPC' : 'EIO', `cannot create ${envDir}: ${(e as Error).message}`, { cause: e })
    }
    checkMetaPages(envDir)
    const owner = takeOwnership(envDir)
    let root: RootDatabase
    try {
      root = open({
        path: envDir,
        // store, rows, raft, catalog, cluster (identity), and room for the replicated layers.
        maxDbs: 12,
        mapSize: opts.mapSize ?? 1 << 30,
        noSync: true,
        useWritemap: false,
        encoding: 'binary',
        keyEncoding: 'binary'
      })
    } catch (e) {
      releaseOwnership(owner)
      const msg = (e as Error).message
      if (isNoSpace(e)) throw new StoreError('ENOSPC', `cannot open the store in ${envDir}: disk full`, { cause: e })
      throw new StoreError('EIO', `cannot open the store in ${envDir}; lmdb says: ${msg}. ` +
        'If the files are damaged, restore this host from its replicas (or move the data directory away).', { cause: e })
    }
    let store: Store
    try {
      const meta = root.openDB<Buffer, string>('store', { encoding: 'binary', keyEncoding: 'ordered-binary' } as never)
      const rows = root.openDB<Buffer, Buffer>('rows', { encoding: 'binary', keyEncoding: 'binary' })
      store = new Store(dataDir, root, rows, meta, owner, opts.autoFlushMs ?? 1000)
      const format = meta.getBinary('format')
      if (format === undefined) {
        root.transactionSync(() => { meta.putSync('format', Buffer.from(JSON.stringify({ magic: MAGIC, version: FORMAT_VERSION }))) })
      } else {
        let parsed: { magic?: string, version?: number }
        try { parsed = JSON.parse(format.toString()) } catch { parsed = {} }
        if (parsed.magic !== MAGIC) throw new StoreError('EINVAL', `${envDir} is not a walkenfs store (bad format row)`)
        if (!READABLE_FORMATS.has(parsed.version as number)) {
          throw new StoreError('EINVAL', `${envDir} has store format ${String(parsed.version)}, this build reads ${listed([...READABLE_FORMATS])}: ` +
            'it was written by another walkenfs release; run the release that wrote it')
        }
        if (parsed.version !== FORMAT_VERSION) root.transactionSync(() => { meta.putSync('format', Buffer.from(JSON.stringify({ magic: MAGIC, version: FORMAT_VERSION }))) })
      }
    } catch (e) {
      void root.close()
      releaseOwnership(owner)
      if (e instanceof StoreError) throw e
      throw new StoreError(isNoSpace(e) ? 'ENOSPC' : 'EIO', `cannot read the store in ${envDir}; lmdb says: ${(e as Error).message}`, { cause: e })
    }
    return store
  }

  get (key: Buffer): Buffer | undefined {
    return this.rows.getBinary(key)
  }

  /** Rows with start <= key < end, in key order, at most `limit`; `keysOnly` leaves values empty (no copy). */
  range (start: Buffer, end: Buffer, limit?: number, keysOnly = false): Row[] {
    const out: Row[] = []
    if (keysOnly) {
      for (const key of this.rows.getKeys({ start, end, limit })) out.push({ key: key as Buffer, value: EMPTY })
      return out
    }
    for (const { key, value } of this.rows.getRange({ start, end, limit })) {
      out.push({ key: key as Buffer, value: value as Buffer })
    }
    return out
  }

  count (start: Buffer, end: Buffer): number {
    return this.rows.getKeysCount({ start, end })
  }

  /**
   * Refuse a batch that cannot fit before lmdb tries it: lmdb-js survives
   * one failed commit on a full disk, but repeated failures corrupted its
   * heap in our tests (malloc abort). Room = free space of the filesystem +
   * pages lmdb can reuse inside data.mdb (file pages minus pages in use).
   * The estimate of the need is generous (copy-on-write of the tree path
   * for every row); the statfs result is cached while space is plentiful.
   */
  private checkRoom (writes: Write[]): void {
    const now = Date.now()
    if (this.roomCache && this.roomCache.until > now) return
    // Puts need their bytes plus new tree pages; deletes only copies of the
    // leaves they touch (neighbouring keys share leaves, hence the cap), so
    // freeing space stays possible on a full disk.
    let bytes = 0
    let puts = 0
    let deletes = 0
    for (const [k, v] of writes) {
      if (v) { bytes += k.length + v.length; puts++ } else deletes++
    }
    const st = statfsSync(join(this.dataDir, STORE_DIR))
    const fsFree = st.bavail * st.bsize
    const psize = 4096
    // A reserve that only batches which free space may use (mostly deletes,
    // like unlink), so that a full disk can always be emptied again.
    const freeing = deletes > 0 && deletes >= puts && bytes <= (128 << 10)
    const reserve = freeing ? 0 : RESERVE_BYTES
    const need = (bytes + (puts * 3 + Math.min(deletes, 64) + 16) * psize) * 1.25 + (128 << 10) + reserve
    if (fsFree > 64 * 1024 * 1024) {
      this.roomCache = { until: now + 100 }
      return
    }
    this.roomCache = null
    if (fsFree >= need) return
    if (fsFree + this.reusableBytes() >= need) return
    throw new StoreError('ENOSPC', `no space left for the store in ${this.dataDir} (${fsFree} bytes free on disk)`)
  }

  /**
   * Whether a batch of about `bytes` (plus the reserve) fits now: for
   * writers that cannot refuse part of a batch once they started it (the
   * Raft driver persists log, hard state and applied rows in one go).
   * `countReusable: false` counts only the filesystem's free space: lmdb
   * puts a large value (overflow pages) in one contiguous run of pages,
   * which the free pages inside data.mdb rarely offer, and then grows the
   * file — a Raft cycle carrying a 1 MiB write failed so on a disk that
   * had "room" only inside data.mdb (docs/torture.md). `growth` (with
   * countReusable) is the middle way: free pages inside data.mdb count, as
   * long as the filesystem still has `growth` bytes (plus the reserve) for
   * the file to grow by when the large values of one batch find no run of
   * pages there. Without it, a data.mdb that once grew to fill its disk
   * would count as full for good, though mostly free inside (the torture
   * harness met exactly that: two hosts of three "full" for good).
   */
  hasRoom (bytes: number, countReusable = true, growth = 0): boolean {
    try {
      const st = statfsSync(join(this.dataDir, STORE_DIR))
      const fsFree = st.bavail * st.bsize
      const need = bytes + RESERVE_BYTES
      return fsFree >= need || (countReusable && (growth === 0 || fsFree >= growth + RESERVE_BYTES) && fsFree + this.reusableBytes() >= need)
    } catch {
      return true
    }
  }

  private reusableBytes (): number {
    const pages = (st: { treeBranchPageCount?: number, treeLeafPageCount?: number, overflowPages?: number }): number =>
      (st.treeBranchPageCount ?? 0) + (st.treeLeafPageCount ?? 0) + (st.overflowPages ?? 0)
    const env = (this.root as unknown as { env: { info (): { lastPageNumber: number }, freeStat (): object } }).env
    const used = 2 + pages(this.rows.getStats() as object) + pages(this.root.getStats() as object) + pages(this.meta.getStats() as object) + pages(env.freeStat())
    return Math.max(0, env.info().lastPageNumber + 1 - used) * 4096
  }

  /** Apply the batch atomically (see the module doc for what it promises). */
  commit (writes: Write[]): void {
    if (this.closed) throw new StoreError('EIO', 'the store is closed')
    if (writes.length === 0) return
    this.checkRoom(writes)
    try {
      this.root.transactionSync(() => {
        for (const [k, v] of writes) {
          if (v === null) this.rows.removeSync(k)
          else this.rows.putSync(k, v)
        }
      })
      this.commits++
    } catch (e) {
      if (isNoSpace(e) || this.looksFull(writes)) throw new StoreError('ENOSPC', `no space left for the store in ${this.dataDir}`, { cause: e })
      throw new StoreError('EIO', `commit failed in ${this.dataDir}: ${(e as Error).message}`, { cause: e })
    }
  }

  /**
   * lmdb reports a short pwrite (the usual shape of a full disk) as EIO, so
   * after a failed commit we ask the filesystem: with less free space than
   * the batch plus a margin for lmdb's page copies, the cause was space.
   */
  private looksFull (writes: Write[]): boolean {
    try {
      const st = statfsSync(join(this.dataDir, STORE_DIR))
      let bytes = 0
      for (const [k, v] of writes) bytes += k.length + (v?.length ?? 0)
      return st.bavail * st.bsize < bytes * 2 + (1 << 20)
    } catch {
      return false
    }
  }

  /** Make every commit made before this call durable (see module doc). */
  flush (): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError('EIO', 'the store is closed'))
    // A sync already running may have started before our last commit, so we
    // wait for the one after it; every caller arriving meanwhile shares it.
    if (this.nextFlush) return this.nextFlush
    // Nothing committed since the last finished sync: already durable.
    if (!this.flushing && this.flushedUpTo === this.commits) return Promise.resolve()
    const after = this.flushing ?? Promise.resolve()
    const p: Promise<void> = after.catch(() => {}).then(() => {
      this.nextFlush = null
      this.flushing = p
      const upTo = this.commits
      return new Promise<void>((resolve, reject) => {
        // lmdb-js has RootDatabase.sync(cb) (mdb_env_sync(force) on a worker thread); its typings omit it.
        ;(this.root as unknown as { sync (cb: (err: unknown) => void): void }).sync((err: unknown) => {
          if (this.flushing === p) this.flushing = null
          if (err) reject(new StoreError(isNoSpace(err) ? 'ENOSPC' : 'EIO', `flush failed in ${this.dataDir}: ${String((err as Error)?.message ?? err)}`))
          else {
            this.flushedUpTo = Math.max(this.flushedUpTo, upTo)
            resolve()
          }
        })
      })
    })
    this.nextFlush = p
    return p
  }

  async close (): Promise<void> {
    if (this.closed) return
    if (this.autoFlush) clearInterval(this.autoFlush)
    await this.flush().catch(() => {})
    this.closed = true
    await this.root.close()
    releaseOwnership(this.owner)
  }
}
