/**
 * Turns the row changes of one committed transaction into the events that
 * `walkenfs watch` prints (pure: no I/O, no clock).
 *
 * Owns: the name map of the watched subtree (`NameMap`: which names every
 * inode under the watched directory has, and every directory's parent and
 * name, so that an ino becomes a path) and the translation rules:
 * - a dirent that appears, for an ino that lost a dirent in the same
 *   transaction: one `renamed FROM -> TO` (a rename, also across
 *   directories, or over an existing name: the replaced name is not
 *   reported as removed, since the name still exists);
 * - a dirent that appears otherwise: `created` (a new file, directory,
 *   symlink, or a new hard link);
 * - a dirent that disappears: `removed`;
 * - block rows, or an inode's size or mtime, changing for a regular file
 *   that still exists and was not created by the same transaction:
 *   `written`, once per file and transaction however many blocks changed;
 * - attribute-only changes (chmod, chown, atime), xattrs: no event.
 * Moving something in from outside the watched tree is `created` (and the
 * caller must scan a directory moved in, see `scanDirs`); moving something
 * out is `removed`. Renamed paths are computed before the transaction's
 * changes, new paths after them.
 *
 * Bound: the map holds at most `maxNames` names; past that `add` throws a
 * WatchTooLarge error with a message that says to watch a smaller tree.
 */
import { decodeOwner } from '../tables/fragments.js'
import { TABLE_ID } from '../tables/local.js'
import type { RowChange } from '../tables/change-feed.js'
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, decodeDirent, decodeInode, type Inode } from './rows.js'

export type EventKind = 'created' | 'written' | 'renamed' | 'removed'

export interface WatchEvent {
  kind: EventKind
  /** path inside the mount ("/etc/app/app.conf"); for `renamed` the new one */
  path: string
  /** `renamed`: the old path */
  from?: string
  ino: number
  type: 'file' | 'dir' | 'symlink' | 'other'
}

export class WatchTooLarge extends Error {
  constructor (readonly names: number) {
    super(`more than ${names} names under the watched path; watch a smaller directory`)
    this.name = 'WatchTooLarge'
  }
}

function typeOf (mode: number): WatchEvent['type'] {
  switch (mode & S_IFMT) {
    case S_IFREG: return 'file'
    case S_IFDIR: return 'dir'
    case S_IFLNK: return 'symlink'
    default: return 'other'
  }
}

function join (dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

const nameKey = (parent: number, name: string): string => `${parent}/${name}`

/**
 * Names under one watched directory. `root` is the directory's ino and
 * `rootPath` its path inside the mount; `rootEntry` its own name in its
 * parent (null for the mount root), so that its own removal is seen too.
 */
export class NameMap {
  /** directory ino → [parent ino, name] (the root: its entry, or none) */
  private readonly dirs = new Map<number, [number, string]>()
  /** ino → its names as "parent/name" keys */
  private readonly names = new Map<number, Set<string>>()
  /** "parent/name" → [ino, type] */
  private readonly entries = new Map<string, [number, number]>()

  constructor (readonly root: number, readonly rootPath: string, readonly rootEntry: [number, string] | null, readonly maxNames = 200_000) {
    this.dirs.set(root, rootEntry ?? [root, ''])
  }

  get size (): number { return this.entries.size }

  /** Path of directory `ino` if it is inside the watched tree. */
  dirPath (ino: number): string | null {
    const parts: string[] = []
    let cur = ino
    for (let depth = 0; depth < 4096; depth++) {
      if (cur === this.root) return parts.length === 0 ? this.rootPath : join(this.rootPath, parts.reverse().join('/'))
      const d = this.dirs.get(cur)
      if (!d) return null
      parts.push(d[1])
      cur = d[0]
    }
    return null
  }

  /** Path of the name `name` in directory `parent`, if inside the watched tree. */
  entryPath (parent: number, name: string): string | null {
    if (this.rootEntry !== null && parent === this.rootEntry[0] && name === this.rootEntry[1]) return this.rootPath
    const d = this.dirPath(parent)
    return d === null ? null : join(d, name)
  }

  /** Whether `parent` is a directory of the watched tree (its entries are tracked). */
  tracks (parent: number): boolean { return this.dirPath(parent) !== null }

  /** Some path of `ino`, if it has a name inside the watched tree. */
  pathOf (ino: number): string | null {
    if (this.dirs.has(ino)) return this.dirPath(ino)
    for (const k of this.names.get(ino) ?? []) {
      const slash = k.indexOf('/')
      const p = this.entryPath(Number(k.slice(0, slash)), k.slice(slash + 1))
      if (p !== null) return p
    }
    return null
  }

  add (parent: number, name: string, ino: number, mode: number): void {
    if (!this.tracks(parent)) return
    const k = nameKey(parent, name)
    const prev = this.entries.get(k)
    if (prev) this.remove(parent, name)
    if (this.entries.size >= this.maxNames) throw new WatchTooLarge(this.maxNames)
    this.entries.set(k, [ino, mode])
    let s = this.names.get(ino)
    if (!s) this.names.set(ino, s = new Set())
    s.add(k)
    if ((mode & S_IFMT) === S_IFDIR) this.dirs.set(ino, [parent, name])
  }

  /** Removes a name; `keepChildren` when the directory is being renamed (the caller adds it back, or calls `forget`). */
  remove (parent: number, name: string, keepChildren = false): void {
    const k = nameKey(parent, name)
    const e = this.entries.get(k)
    if (!e) return
    this.entries.delete(k)
    const s = this.names.get(e[0])
    s?.delete(k)
    if (s && s.size === 0) this.names.delete(e[0])
    const d = this.dirs.get(e[0])
    if (d && d[0] === parent && d[1] === name && e[0] !== this.root) {
      this.dirs.delete(e[0])
      if (!keepChildren) this.forget(e[0])
    }
  }

  /** Whether `ino` is a directory of the watched tree. */
  isDir (ino: number): boolean { return this.dirs.has(ino) }

  /** Drops what is known below a directory that left the tree (its entries would be unreachable). */
  forget (dir: number): void {
    const prefix = `${dir}/`
    for (const k of [...this.entries.keys()]) {
      if (k.startsWith(prefix)) this.remove(dir, k.slice(prefix.length))
    }
  }
}

interface NameChange { parent: number, name: string, ino: number, mode: number }

export interface Translation {
  events: WatchEvent[]
  /** directories that moved into the watched tree: the caller scans them into the map */
  scanDirs: number[]
}

/** The events of one committed transaction (all its fragments' changes together); updates `map`. */
export function translate (changes: RowChange[], map: NameMap): Translation {
  const gone: NameChange[] = []
  const came: NameChange[] = []
  const inodeOld = new Map<number, Inode | null>()
  const inodeNew = new Map<number, Inode | null>()
  const blocks = new Set<number>()
  for (const c of changes) {
    const key = Buffer.from(c.key)
    if (c.table === TABLE_ID.dirent) {
      const parent = decodeOwner(key)
      const name = key.subarray(8).toString('utf8')
      const o = c.old ? decodeDirent(Buffer.from(c.old)) : null
      const n = c.value ? decodeDirent(Buffer.from(c.value)) : null
      if (o && (!n || n.ino !== o.ino)) gone.push({ parent, name, ino: o.ino, mode: o.type })
      if (n && (!o || n.ino !== o.ino)) came.push({ parent, name, ino: n.ino, mode: n.type })
    } else if (c.table === TABLE_ID.inode) {
      const ino = decodeOwner(key)
      if (!inodeOld.has(ino)) inodeOld.set(ino, c.old ? decodeInode(ino, Buffer.from(c.old)) : null)
      inodeNew.set(ino, c.value ? decodeInode(ino, Buffer.from(c.value)) : null)
    } else if (c.table === TABLE_ID.block) {
      blocks.add(decodeOwner(key))
    }
  }

  const events: WatchEvent[] = []
  const scanDirs: number[] = []
  // Old paths before anything changes.
  const gonePaths = gone.map((g) => map.entryPath(g.parent, g.name))
  const cameKeys = new Set(came.map((c) => nameKey(c.parent, c.name)))
  const pairedGone = new Set<number>()
  const pairOf = new Map<NameChange, number>()
  for (const c of came) {
    const i = gone.findIndex((g, j) => g.ino === c.ino && !pairedGone.has(j))
    if (i >= 0) { pairedGone.add(i); pairOf.set(c, i) }
  }
  gone.forEach((g, j) => { map.remove(g.parent, g.name, pairedGone.has(j)) })
  for (const c of came) map.add(c.parent, c.name, c.ino, c.mode)
  // A directory renamed out of the tree: what was below it is no longer ours.
  gone.forEach((g, j) => { if (pairedGone.has(j) && (g.mode & S_IFMT) === S_IFDIR && !map.isDir(g.ino)) map.forget(g.ino) })

  for (const c of came) {
    const to = map.entryPath(c.parent, c.name)
    const i = pairOf.get(c)
    const from = i === undefined ? null : gonePaths[i]!
    const type = typeOf(c.mode)
    if (from !== null && to !== null) events.push({ kind: 'renamed', from, path: to, ino: c.ino, type })
    else if (to !== null) {
      events.push({ kind: 'created', path: to, ino: c.ino, type })
      if (i !== undefined && type === 'dir') scanDirs.push(c.ino)
    } else if (from !== null) events.push({ kind: 'removed', path: from, ino: c.ino, type })
  }
  gone.forEach((g, j) => {
    const p = gonePaths[j]
    if (pairedGone.has(j) || p === null || cameKeys.has(nameKey(g.parent, g.name))) return
    events.push({ kind: 'removed', path: p, ino: g.ino, type: typeOf(g.mode) })
  })

  const created = new Set(came.filter((c) => !pairOf.has(c)).map((c) => c.ino))
  const touched = new Set<number>(blocks)
  for (const [ino, n] of inodeNew) {
    const o = inodeOld.get(ino) ?? null
    if (n && o && (n.size !== o.size || n.mtimeNs !== o.mtimeNs)) touched.add(ino)
  }
  for (const ino of touched) {
    const n = inodeNew.get(ino)
    if (n === null) continue // the file is gone
    if (n !== undefined && (n.mode & S_IFMT) !== S_IFREG) continue
    if (created.has(ino) && (inodeOld.get(ino) ?? null) === null) continue
    const p = map.pathOf(ino)
    if (p !== null) events.push({ kind: 'written', path: p, ino, type: 'file' })
  }
  return { events, scanDirs }
}
