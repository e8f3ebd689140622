/**
 * `walkenfs check`: an fsck over the filesystem tables. Reads every row of
 * every fragment in one transaction (a consistent snapshot) and returns the
 * problems it finds; it never repairs. An empty list means clean; the CLI
 * exits non-zero on any problem.
 *
 * What it verifies:
 * - every directory entry lives under an existing directory and points to
 *   an existing inode; a directory has exactly one entry naming it, and its
 *   parent pointer names that entry's directory;
 * - nlink: a non-directory's equals the entries naming it; a directory's is
 *   2 + its subdirectories; an inode with nlink 0 has an orphan record;
 * - every block, xattr and symlink row belongs to an existing inode of the
 *   right type; no block lies past EOF or is larger than the block size;
 *   only a file's last block may be short; the stored-byte count matches the
 *   blocks; a symlink has its target row.
 * On a cluster every read is current (TxnOptions.current): where a
 * fragment has no reachable leader the check fails with EIO rather than
 * judge a replica that may be behind.
 * Memory grows with the number of inodes (one small record each).
 */
import { decodeOwner, encodeOwner } from '../tables/fragments.js'
import type { TableName, Tables, Tx } from '../tables/types.js'
import {
  FS_SETTINGS_KEY, S_IFLNK, S_IFMT, S_IFREG, blockIndexOf, decodeDirent, decodeInode, direntName, isDir,
  orphanInoOf, orphanPrefix, type FsSettings
} from './rows.js'
import { ROOT_INO } from './types.js'

export interface Problem {
  kind: 'bad-row' | 'dangling-entry' | 'entry-in-non-directory' | 'nlink' | 'unreferenced-inode' | 'directory-links' |
  'orphan-block' | 'block-past-eof' | 'short-block' | 'stored-bytes' | 'orphan-xattr' | 'orphan-symlink' | 'missing-symlink-target' |
  'missing-root' | 'stale-orphan-record' | 'missing-settings'
  ino?: number
  message: string
}

interface InodeInfo { mode: number, nlink: number, size: number, stored: number, parent: number, inline: boolean, refs: number, subdirs: number, blockBytes: number, entryParents: number[] }

const PAGE = 4096

async function * scan (tx: Tx, table: TableName, fragments: number): AsyncGenerator<{ key: Buffer, value: Buffer }> {
  const end = encodeOwner(Number.MAX_SAFE_INTEGER)
  for (let f = 0; f < fragments; f++) {
    let start = encodeOwner(f)
    for (;;) {
      const rows = await tx.range(table, start, end, { limit: PAGE })
      for (const r of rows) yield r
      if (rows.length < PAGE) break
      start = Buffer.concat([rows[rows.length - 1].key, Buffer.from([0])])
    }
  }
}

export async function checkFs (tables: Tables): Promise<Problem[]> {
  return await tables.txn(async (tx) => {
    const problems: Problem[] = []
    const F = tables.fragments
    const sv = await tx.get('meta', FS_SETTINGS_KEY)
    if (!sv) return [{ kind: 'missing-settings', message: 'no filesystem settings row (not initialised?)' }]
    const settings = JSON.parse(sv.toString()) as FsSettings
    const inodes = new Map<number, InodeInfo>()
    for await (const r of scan(tx, 'inode', F)) {
      const ino = decodeOwner(r.key)
      try {
        const n = decodeInode(ino, r.value)
        inodes.set(ino, { mode: n.mode, nlink: n.nlink, size: n.size, stored: n.stored, parent: n.parent, inline: n.inline !== null, refs: 0, subdirs: 0, blockBytes: n.inline ? n.inline.length : 0, entryParents: [] })
      } catch (e) {
        problems.push({ kind: 'bad-row', ino, message: (e as Error).message })
      }
    }
    if (!inodes.has(ROOT_INO)) problems.push({ kind: 'missing-root', ino: ROOT_INO, message: 'the root directory inode is missing' })

    for await (const r of scan(tx, 'dirent', F)) {
      const parent = decodeOwner(r.key)
      const name = direntName(r.key)
      const { ino } = decodeDirent(r.value)
      const p = inodes.get(parent)
      if (!p || !isDir(p.mode)) {
        problems.push({ kind: 'entry-in-non-directory', ino: parent, message: `entry "${name}" → ${ino} is under ${parent}, which is ${p ? 'not a directory' : 'missing'}` })
      }
      const n = inodes.get(ino)
      if (!n) {
        problems.push({ kind: 'dangling-entry', ino, message: `entry "${name}" in ${parent} points to missing inode ${ino}` })
        continue
      }
      n.refs++
      n.entryParents.push(parent)
      if (isDir(n.mode) && p) p.subdirs++
    }

    const orphans = new Set<number>()
    for (let f = 0; f < F; f++) {
      const pfx = orphanPrefix(f)
      const end = Buffer.concat([pfx, encodeOwner(Number.MAX_SAFE_INTEGER)])
      for (const r of await tx.range('meta', pfx, end)) {
        const ino = orphanInoOf(r.key)
        const n = inodes.get(ino)
        if (!n || n.nlink !== 0) problems.push({ kind: 'stale-orphan-record', ino, message: `orphan record for inode ${ino}, which is ${n ? `linked (nlink ${n.nlink})` : 'gone'}` })
        else orphans.add(ino)
      }
    }

    for await (const r of scan(tx, 'block', F)) {
      const ino = decodeOwner(r.key)
      const n = inodes.get(ino)
      const i = blockIndexOf(r.key)
      if (!n || (n.mode & S_IFMT) !== S_IFREG || n.inline) {
        problems.push({ kind: 'orphan-block', ino, message: `block ${i} of inode ${ino}, which is ${n ? (n.inline ? 'inline' : 'not a regular file') : 'missing'}` })
        continue
      }
      n.blockBytes += r.value.length
      const B = settings.blockSize
      if (r.value.length > B || i * B + r.value.length > n.size) {
        problems.push({ kind: 'block-past-eof', ino, message: `block ${i} of inode ${ino} (${r.value.length} bytes) reaches past EOF ${n.size} or the block size` })
      } else if (r.value.length < B && i < Math.floor((n.size - 1) / B)) {
        problems.push({ kind: 'short-block', ino, message: `block ${i} of inode ${ino} holds ${r.value.length} bytes but is not the last block (needs ${B})` })
      }
    }
    for await (const r of scan(tx, 'xattr', F)) {
      const ino = decodeOwner(r.key)
      if (!inodes.has(ino)) problems.push({ kind: 'orphan-xattr', ino, message: `xattr "${r.key.subarray(8).toString()}" of missing inode ${ino}` })
    }
    const targets = new Set<number>()
    for await (const r of scan(tx, 'symlink', F)) {
      const ino = decodeOwner(r.key)
      const n = inodes.get(ino)
      if (!n || (n.mode & S_IFMT) !== S_IFLNK) problems.push({ kind: 'orphan-symlink', ino, message: `symlink target of inode ${ino}, which is ${n ? 'not a symlink' : 'missing'}` })
      targets.add(ino)
    }

    for (const [ino, n] of inodes) {
      if (isDir(n.mode)) {
        const want = 2 + n.subdirs
        if (n.nlink !== 0 && n.nlink !== want) problems.push({ kind: 'nlink', ino, message: `directory ${ino} has nlink ${n.nlink}, expected ${want} (2 + ${n.subdirs} subdirectories)` })
        const wantRefs = ino === ROOT_INO ? 0 : (n.nlink === 0 ? 0 : 1)
        if (n.refs !== wantRefs) problems.push({ kind: 'directory-links', ino, message: `directory ${ino} is named by ${n.refs} entries, expected ${wantRefs}` })
        else if (n.refs === 1 && n.entryParents[0] !== n.parent) problems.push({ kind: 'directory-links', ino, message: `directory ${ino} is in ${n.entryParents[0]} but its parent pointer says ${n.parent}` })
      } else if (n.nlink !== n.refs) {
        problems.push({ kind: 'nlink', ino, message: `inode ${ino} has nlink ${n.nlink} but ${n.refs} entries name it` })
      }
      if (n.nlink === 0 && !orphans.has(ino)) problems.push({ kind: 'unreferenced-inode', ino, message: `inode ${ino} has nlink 0 and no orphan record (space leak)` })
      if ((n.mode & S_IFMT) === S_IFREG && n.stored !== n.blockBytes) problems.push({ kind: 'stored-bytes', ino, message: `inode ${ino} counts ${n.stored} stored bytes, its data holds ${n.blockBytes}` })
      if ((n.mode & S_IFMT) === S_IFLNK && !targets.has(ino)) problems.push({ kind: 'missing-symlink-target', ino, message: `symlink ${ino} has no target row` })
    }
    return problems
    // Current reads only: a stale replica could show half of a committed cross-fragment change and report a problem that is not there.
  }, { current: true })
}
