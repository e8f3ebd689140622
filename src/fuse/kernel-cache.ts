/**
 * How long the kernel may keep the names and attributes a mount answers
 * with (CachePolicy), and, on a cluster mount, what this host's kernel
 * holds and how it is dropped before another host's change is committed
 * (KernelCache, the RaftHost's CacheGate; docs/fuse.md "Kernel caches on a
 * cluster").
 *
 * Owns: the record of every name (parent, name) and inode whose answer
 * carried a non-zero timeout, with the time that timeout ends at the
 * latest; the translation of changed table rows into the kernel's names
 * and inodes.
 *
 * Promises (KernelCache):
 * - an answer's timeout is non-zero only if the row's fragment allows it
 *   (Leases.until: this host holds a lease that makes every commit of the
 *   fragment wait for this host, and nothing changing it was in flight
 *   since the operation began), and ends `marginMs` before that lease does;
 *   a name's timeout is at most `maxEntrySeconds`;
 * - drop(rows) resolves once no recorded name or attributes of those rows
 *   can be shown any more, undefined if none was recorded: attributes are
 *   invalidated in the kernel (attributes only: that never blocks), and the
 *   wait ends when the kernel did so or when their timeout ends; names are
 *   never invalidated, the wait lasts until their timeout ends. The kernel
 *   drops a name under the parent directory's lock, uninterruptibly, and a
 *   request holding that lock may be waiting for this daemon: killed then,
 *   the daemon's notice thread could never leave the kernel, its /dev/fuse
 *   would never close, and the mount would hang for good (seen: a torture
 *   run's kill -9; dropping cached pages waits on page locks the same way);
 * - the record is bounded (`maxItems`): past it, answers get timeout 0;
 *   expired records are forgotten every 10 s.
 */
import { decodeOwner, OWNER_BYTES } from '../tables/fragments.js'
import { TABLE_ID } from '../tables/local.js'
import type { CacheGate } from '../raft/host.js'

/** The cache timeouts (seconds) of one operation's answers. */
export interface CachePolicy {
  /** Taken when an operation begins, before it reads anything. */
  start (): number
  /** How long the kernel may keep the name `name` in `parent`, read by an operation that began at `stamp`. */
  entry (stamp: number, parent: number, name: string): number
  /** How long the kernel may keep the attributes of `ino`, read by an operation that began at `stamp`. */
  attr (stamp: number, ino: number): number
}

/** The same timeouts for every answer (one host: every change passes through this kernel). */
export function fixedCache (times: { entry: number, attr: number }): CachePolicy {
  return { start: () => 0, entry: () => times.entry, attr: () => times.attr }
}

/** What the cluster tells about a row's fragment (RaftHost.cacheStamp / cacheUntil by owner). */
export interface Leases {
  stamp (): number
  /** Until when (performance.now() ms) rows owned by `owner` (an inode number) may be cached; 0: not. */
  until (owner: number, stamp: number): number
}

/** The kernel side (LowLevelMount). */
export interface Invalidator {
  invalInode (ino: number, off?: number, len?: number): void
  invalidated (): Promise<void>
}

export interface KernelCacheOptions {
  /** the longest timeout given (s) */
  maxSeconds?: number
  /** the longest timeout given to a name (s): a change of a name another host keeps waits until it ends */
  maxEntrySeconds?: number
  /** how long before the lease ends every timeout ends (ms): covers the kernel's own rounding and its late start */
  marginMs?: number
  /** timeouts shorter than this are not worth recording (ms) */
  minMs?: number
  maxItems?: number
}

/** expired records are forgotten at least this often (ms), so the record holds about a lease's worth */
const SWEEP_EVERY_MS = 10_000

const INODE_ROWS = new Set([TABLE_ID.inode, TABLE_ID.block, TABLE_ID.xattr, TABLE_ID.symlink])

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => { setTimeout(resolve, Math.max(0, Math.ceil(ms))).unref() })
}

export class KernelCache implements CachePolicy, CacheGate {
  /** `${parent}/${name}` → when its timeout ends at the latest (performance.now() ms) */
  private readonly entries = new Map<string, number>()
  private readonly attrs = new Map<number, number>()
  private readonly o: Required<KernelCacheOptions>
  private lastSweep = 0
  /** counters for status and tests */
  readonly stats = { kept: 0, dropped: 0, waits: 0 }

  constructor (private readonly leases: Leases, private readonly kernel: () => Invalidator | null, opts: KernelCacheOptions = {}) {
    this.o = { maxSeconds: 1, maxEntrySeconds: 0.25, marginMs: 100, minMs: 20, maxItems: 1 << 17, ...opts }
  }

  start (): number {
    return this.leases.stamp()
  }

  entry (stamp: number, parent: number, name: string): number {
    return this.keep(this.entries, `${parent}/${name}`, this.leases.until(parent, stamp), this.o.maxEntrySeconds)
  }

  attr (stamp: number, ino: number): number {
    return this.keep(this.attrs, ino, this.leases.until(ino, stamp), this.o.maxSeconds)
  }

  private keep<K> (map: Map<K, number>, key: K, until: number, maxSeconds: number): number {
    if (until <= 0) return 0
    const now = performance.now()
    const ms = Math.min(until - this.o.marginMs - now, maxSeconds * 1000)
    if (ms < this.o.minMs) return 0
    if ((this.entries.size + this.attrs.size >= this.o.maxItems || now - this.lastSweep > SWEEP_EVERY_MS) && !this.sweep(now)) return 0
    // The kernel starts the timeout when it takes the answer, a little later than now: the margin covers that.
    const end = now + ms + this.o.marginMs
    if ((map.get(key) ?? 0) < end) map.set(key, end)
    this.stats.kept++
    return Math.floor(ms) / 1000
  }

  /** Forgets what has expired; whether that made room. */
  private sweep (now: number): boolean {
    if (now - this.lastSweep > 100) {
      this.lastSweep = now
      for (const [k, end] of this.entries) if (end <= now) this.entries.delete(k)
      for (const [k, end] of this.attrs) if (end <= now) this.attrs.delete(k)
    }
    return this.entries.size + this.attrs.size < this.o.maxItems
  }

  drop (rows: unknown): Promise<void> | undefined {
    const now = performance.now()
    const kernel = this.kernel()
    let names = 0
    let attrs = 0
    for (const { table, key } of rows as Array<{ table: number, key: Buffer }>) {
      if (key.length < OWNER_BYTES) continue
      const owner = decodeOwner(key)
      if (table === TABLE_ID.dirent) {
        const k = `${owner}/${key.subarray(OWNER_BYTES).toString('utf8')}`
        const end = this.entries.get(k)
        if (end === undefined) continue
        this.entries.delete(k)
        if (end > now) names = Math.max(names, end)
      } else if (INODE_ROWS.has(table)) {
        const end = this.attrs.get(owner)
        if (end === undefined) continue
        this.attrs.delete(owner)
        if (end <= now) continue
        kernel?.invalInode(owner, -1, 0)
        attrs = Math.max(attrs, end)
      }
    }
    return this.wait(kernel, names, attrs, now)
  }

  dropAll (): Promise<void> | undefined {
    const now = performance.now()
    const kernel = this.kernel()
    let names = 0
    let attrs = 0
    for (const end of this.entries.values()) if (end > now) names = Math.max(names, end)
    for (const [ino, end] of this.attrs) {
      if (end <= now) continue
      kernel?.invalInode(ino, -1, 0)
      attrs = Math.max(attrs, end)
    }
    this.entries.clear()
    this.attrs.clear()
    return this.wait(kernel, names, attrs, now)
  }

  /** Until the names' timeouts end, and the attributes are invalidated (or their timeouts end). */
  private wait (kernel: Invalidator | null, names: number, attrs: number, now: number): Promise<void> | undefined {
    if (names === 0 && attrs === 0) return undefined
    this.stats.dropped++
    this.stats.waits++
    const waits: Array<Promise<void>> = []
    if (names > 0) waits.push(sleep(names - now))
    if (attrs > 0) {
      const expired = sleep(attrs - now)
      waits.push(kernel !== null ? Promise.race([kernel.invalidated(), expired]) : expired)
    }
    return Promise.all(waits).then(() => {}).finally(() => { this.stats.waits-- })
  }
}
