/**
 * One `walkenfs watch PATH`: follows the change feeds of every fragment
 * (a ChangeSource: the cluster's, or the one-host tables'), puts the
 * fragments of a two-phase transaction back together, turns each committed
 * transaction into events (watch-events.ts) and hands those under PATH to
 * `onLine`.
 *
 * Order: the batches of one fragment arrive in log order. A transaction
 * that spans fragments is translated once every participant's batch has
 * arrived; meanwhile later batches of the fragments that delivered their
 * part wait behind it, so a file created in a directory whose (two-phase)
 * mkdir is still incomplete is reported after the mkdir. If a participant's
 * feed is slow, the transaction is translated `pendingMs` after its first
 * part from what arrived (its late parts then on their own: a rename may
 * then show as removed + created). Independent transactions of different
 * fragments are reported in the order their batches arrive.
 *
 * Resume: each fragment is read from the last index seen, so a retry on
 * another replica (leader change, dead host, lost link) neither misses nor
 * repeats a batch. When a feed says `gap` (the replica no longer holds the
 * batches after that index), a `rescan` line says that changes may have
 * been missed, and the name map is rebuilt from the tables.
 *
 * Bounds: the name map (NameMap.maxNames), transactions waiting for their
 * other fragments and batches held behind them (`maxPending` each; past it
 * the oldest transaction is translated as is),
 * one long poll per fragment at a time.
 */
import { ROOT_INO } from './types.js'
import { decodeDirent, decodeInode, direntKey, direntPrefix, inodeKey, isDir } from './rows.js'
import { NameMap, translate, type WatchEvent } from './watch-events.js'
import { prefixEnd, type Tables } from '../tables/types.js'
import type { ChangeBatch, ChangeSource, RowChange } from '../tables/change-feed.js'

export type WatchLine =
  | (WatchEvent & { at: number, host?: string })
  | { kind: 'rescan', at: number, reason: string }

export interface WatcherOptions {
  tables: Tables
  source: ChangeSource
  /** the watched path inside the mount, absolute ("/etc/app") */
  path: string
  onLine: (line: WatchLine) => void
  /** host id of a transaction's coordinator, if the txn id tells */
  hostOf?: (txn: string) => string | undefined
  pollWaitMs?: number
  pendingMs?: number
  maxPending?: number
  maxNames?: number
}

export class WatchPathError extends Error {
  readonly code = 'ENOENT'
}

interface Pending { changes: RowChange[], got: Set<number>, need: number[], at: number, txn: string, first: number }

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Normalizes a path inside the mount: absolute, no `.`/`..`/empty parts, no trailing slash. */
export function normalizeWatchPath (p: string): string {
  const out: string[] = []
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') out.pop()
    else out.push(part)
  }
  return '/' + out.join('/')
}

export class Watcher {
  private readonly o: Required<Omit<WatcherOptions, 'hostOf'>> & Pick<WatcherOptions, 'hostOf'>
  private map: NameMap | null = null
  private after: number[] = []
  private stopped = false
  private readonly pending = new Map<string, Pending>()
  /** fragment → the incomplete two-phase transaction its later batches wait behind */
  private readonly blocked = new Map<number, string>()
  private readonly held = new Map<number, ChangeBatch[]>()
  /** transactions translated before all their parts came (bounded) */
  private readonly late = new Set<string>()
  private chain: Promise<void> = Promise.resolve()
  private loops: Array<Promise<void>> = []
  private timer: NodeJS.Timeout | undefined
  private readonly path: string
  private failure: Error | null = null
  private endWatch: () => void = () => {}
  /** Settles when the watch stopped by itself (see `error`). */
  readonly ended = new Promise<void>((resolve) => { this.endWatch = resolve })

  constructor (opts: WatcherOptions) {
    this.o = { pollWaitMs: 5000, pendingMs: 3000, maxPending: 1000, maxNames: 200_000, ...opts }
    this.path = normalizeWatchPath(opts.path)
  }

  /** Subscribes to every fragment, reads the names under PATH, then follows changes. Resolves once watching. */
  async start (): Promise<{ streams: number }> {
    const n = this.o.source.streams
    // Positions first, names second: a change between the two is reported (and is harmless to the map).
    this.after = await Promise.all(Array.from({ length: n }, async (_, s) => await this.position(s)))
    this.map = await this.scan()
    for (let s = 0; s < n; s++) this.loops.push(this.follow(s))
    this.timer = setInterval(() => { this.flushOld() }, Math.max(100, Math.floor(this.o.pendingMs / 3)))
    return { streams: n }
  }

  /** Stops following; resolves once every poll ended (each ends within pollWaitMs). */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    await Promise.allSettled(this.loops)
    await this.chain
  }

  /** A failure that ended the watch (the name map grew too large), if any. */
  get error (): Error | null { return this.failure }

  private async position (s: number): Promise<number> {
    const deadline = Date.now() + 60_000
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.o.source.poll(s, null, 0)).position
      } catch (e) {
        if (Date.now() > deadline || this.stopped) throw new Error(`cannot subscribe to the changes of fragment ${s}: ${(e as Error).message}`)
        await sleep(Math.min(1000, 50 * 2 ** attempt))
      }
    }
  }

  /** The name map of the watched tree, read from the tables. */
  private async scan (): Promise<NameMap> {
    const t = this.o.tables
    const parts = this.path === '/' ? [] : this.path.slice(1).split('/')
    const found = await t.txn(async (tx) => {
      let parent = ROOT_INO
      let ino = ROOT_INO
      for (const name of parts) {
        const d = await tx.get('dirent', direntKey(ino, name))
        if (!d) return null
        parent = ino
        ino = decodeDirent(d).ino
      }
      const row = await tx.get('inode', inodeKey(ino))
      if (!row) return null
      return { parent, ino, dir: isDir(decodeInode(ino, row).mode) }
    })
    if (found === null) throw new WatchPathError(`no such file or directory: ${this.path} (inside the mount)`)
    let map: NameMap
    if (found.dir) {
      map = new NameMap(found.ino, this.path, parts.length === 0 ? null : [found.parent, parts[parts.length - 1]!], this.o.maxNames)
    } else {
      // A file: watch its directory, report only the file (filtered in emit).
      const dirPath = '/' + parts.slice(0, -1).join('/')
      map = new NameMap(found.parent, dirPath, null, this.o.maxNames)
    }
    await this.scanInto(map, map.root)
    return map
  }

  /** Adds every name below directory `dir` to `map` (breadth first, one transaction per directory). */
  private async scanInto (map: NameMap, dir: number): Promise<void> {
    const queue = [dir]
    while (queue.length > 0 && !this.stopped) {
      const d = queue.shift()!
      const rows = await this.o.tables.txn(async (tx) => await tx.range('dirent', direntPrefix(d), prefixEnd(direntPrefix(d))))
      for (const r of rows) {
        const name = r.key.subarray(8).toString('utf8')
        const e = decodeDirent(r.value)
        map.add(d, name, e.ino, e.type)
        if (isDir(e.type)) queue.push(e.ino)
      }
    }
  }

  private async follow (s: number): Promise<void> {
    let failures = 0
    while (!this.stopped) {
      let r
      try {
        r = await this.o.source.poll(s, this.after[s]!, this.o.pollWaitMs)
        failures = 0
      } catch {
        // No replica answers now: try again (maybe another replica), from the same index.
        await sleep(Math.min(2000, 50 * 2 ** Math.min(failures++, 6)))
        continue
      }
      if (this.stopped) break
      if (r.gap) {
        this.after[s] = r.position
        this.enqueue(async () => {
          this.o.onLine({ kind: 'rescan', at: Date.now(), reason: `changes of fragment ${s} may have been missed (the replica that answered no longer holds them); rescan ${this.path}` })
          this.map = await this.scan()
        })
        continue
      }
      for (const b of r.batches) {
        if (b.index <= this.after[s]!) continue
        this.after[s] = b.index
        this.accept(s, b)
      }
      this.after[s] = Math.max(this.after[s]!, r.position)
      // Backpressure: no new poll before what came is translated (at most one poll's batches per fragment wait).
      await this.chain
    }
  }

  private accept (s: number, b: ChangeBatch): void {
    const blocker = this.blocked.get(s)
    if (blocker !== undefined) {
      // A later batch of this fragment may depend on the incomplete transaction before it (a file
      // created in a directory whose mkdir is not complete yet): keep the fragment's order.
      let q = this.held.get(s)
      if (!q) this.held.set(s, q = [])
      q.push(b)
      if (q.length > this.o.maxPending) this.complete(blocker)
      return
    }
    if (b.participants.length <= 1 || this.late.has(b.txn)) {
      this.enqueue(async () => await this.process(b.changes, b.at, b.txn))
      return
    }
    let p = this.pending.get(b.txn)
    if (!p) {
      if (this.pending.size >= this.o.maxPending) this.complete(this.pending.keys().next().value!)
      this.pending.set(b.txn, p = { changes: [], got: new Set(), need: b.participants, at: b.at, txn: b.txn, first: Date.now() })
    }
    p.changes.push(...b.changes)
    p.got.add(s)
    if (p.need.every((f) => p.got.has(f))) this.complete(b.txn)
    else this.blocked.set(s, b.txn)
  }

  /** Translates a pending transaction (complete, or given up waiting for) and releases the fragments it held back. */
  private complete (txn: string): void {
    const p = this.pending.get(txn)
    if (!p) return
    this.pending.delete(txn)
    if (!p.need.every((f) => p.got.has(f))) {
      // Its other parts, when they come, are translated on their own at once.
      this.late.add(txn)
      if (this.late.size > this.o.maxPending) this.late.delete(this.late.values().next().value!)
    }
    this.enqueue(async () => await this.process(p.changes, p.at, p.txn))
    for (const [s, t] of [...this.blocked]) {
      if (t !== txn) continue
      this.blocked.delete(s)
      const q = this.held.get(s) ?? []
      this.held.delete(s)
      for (const b of q) this.accept(s, b)
    }
  }

  /** Translates transactions whose other fragments are late. */
  private flushOld (): void {
    const now = Date.now()
    for (const [txn, p] of [...this.pending]) {
      if (now - p.first >= this.o.pendingMs) this.complete(txn)
    }
  }

  private enqueue (fn: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.stopped && this.failure) return
      try {
        await fn()
      } catch (e) {
        this.failure = e as Error
        this.stopped = true
        this.endWatch()
      }
    })
  }

  private async process (changes: RowChange[], at: number, txn: string): Promise<void> {
    const map = this.map!
    const { events, scanDirs } = translate(changes, map)
    const host = this.o.hostOf?.(txn)
    for (const e of events) {
      const line = this.filter(e)
      if (line) this.o.onLine({ ...line, at, ...(host !== undefined ? { host } : {}) })
    }
    for (const d of scanDirs) await this.scanInto(map, d)
  }

  private under (p: string): boolean {
    return this.path === '/' || p === this.path || p.startsWith(this.path + '/')
  }

  /** A rename is shown whole when either side is under PATH (both paths are known: the map tracks them). */
  private filter (e: WatchEvent): WatchEvent | null {
    if (e.kind !== 'renamed') return this.under(e.path) ? e : null
    return this.under(e.from!) || this.under(e.path) ? e : null
  }
}

/** Host id of a cluster transaction: its id is `<host>.<random>.<seq>` (replicated.ts). */
export function hostOfTxn (txn: string): string | undefined {
  const parts = txn.split('.')
  return parts.length >= 3 ? parts.slice(0, -2).join('.') : undefined
}

/** One line of output: `2026-11-22T10:00:00.123Z renamed /a -> /b`, or the JSON form. */
export function formatLine (l: WatchLine, json: boolean): string {
  if (json) return JSON.stringify({ time: new Date(l.at).toISOString(), ...l, at: undefined })
  const t = new Date(l.at).toISOString()
  if (l.kind === 'rescan') return `${t} rescan ${l.reason}`
  if (l.kind === 'renamed') return `${t} renamed ${l.from!} -> ${l.path}`
  return `${t} ${l.kind} ${l.path}`
}
