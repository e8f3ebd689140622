/**
 * Path resolution for the path-based libfuse API: turns "/a/b/c" into an
 * inode number by looking up one component at a time, remembering
 * (parent inode, name) → inode.
 *
 * Keyed by parent inode rather than by full path, so renaming a directory
 * invalidates exactly one entry and never the paths below it.
 *
 * With a `walk` function (the filesystem resolves several names in one
 * transaction), the names from the first one not cached down to the end
 * are resolved in one call; what it finds is not remembered name by name
 * (it returns the last inode only). A cluster mount caches nothing
 * (ttlMs 0), so every path costs one walk: one read round, not one per
 * component.
 *
 * Promises:
 * - an entry is dropped whenever this host changes that name (the adapter
 *   calls `forget` on unlink/rmdir/rename), and expires after `ttlMs`, which
 *   bounds how long a change made elsewhere can go unseen;
 * - the cache holds at most `maxEntries` names (oldest dropped first).
 */

export type LookupFn = (parent: number, name: string) => Promise<number>
export type WalkFn = (parent: number, names: string[]) => Promise<number>

interface Entry { ino: number, expires: number }

export class NameCache {
  private readonly entries = new Map<string, Entry>()

  constructor (
    private readonly rootIno: number,
    private readonly lookup: LookupFn,
    private readonly ttlMs: number,
    private readonly maxEntries = 200_000,
    private readonly now: () => number = Date.now,
    private readonly walk?: WalkFn
  ) {}

  /** The components of an absolute path ("/a//b/" → ["a", "b"]). */
  static split (path: string): string[] {
    return path.split('/').filter((c) => c !== '')
  }

  /** The inode of `path`; throws what `lookup` throws (ENOENT, ENOTDIR, ...). */
  async resolve (path: string): Promise<number> {
    let ino = this.rootIno
    if (path === '/' || path === '') return ino
    if (this.walk !== undefined) {
      const names = NameCache.split(path)
      const t = this.now()
      let i = 0
      for (; i < names.length; i++) {
        const e = this.entries.get(`${ino}/${names[i]}`)
        if (e === undefined || e.expires <= t) break
        ino = e.ino
      }
      if (i === names.length) return ino
      if (i === names.length - 1) return await this.child(ino, names[i])
      return await this.walk(ino, names.slice(i))
    }
    let start = 1
    while (start <= path.length) {
      let end = path.indexOf('/', start)
      if (end < 0) end = path.length
      if (end > start) ino = await this.child(ino, path.slice(start, end))
      start = end + 1
    }
    return ino
  }

  /** The parent directory's inode and the last name of `path`. */
  async resolveParent (path: string): Promise<{ parent: number, name: string }> {
    const slash = path.lastIndexOf('/')
    const name = path.slice(slash + 1)
    const parent = await this.resolve(slash <= 0 ? '/' : path.slice(0, slash))
    return { parent, name }
  }

  async child (parent: number, name: string): Promise<number> {
    const key = `${parent}/${name}`
    const e = this.entries.get(key)
    const t = this.now()
    if (e !== undefined && e.expires > t) return e.ino
    const ino = await this.lookup(parent, name)
    this.remember(parent, name, ino)
    return ino
  }

  remember (parent: number, name: string, ino: number): void {
    const key = `${parent}/${name}`
    this.entries.delete(key)
    this.entries.set(key, { ino, expires: this.now() + this.ttlMs })
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
  }

  forget (parent: number, name: string): void {
    this.entries.delete(`${parent}/${name}`)
  }

  clear (): void {
    this.entries.clear()
  }
}
