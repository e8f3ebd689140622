/**
 * The contract between the filesystem model (`src/fs`) and whatever serves
 * it to the kernel (`src/fuse`). Inode-based (not path-based): the FUSE
 * adapter resolves paths to inode numbers and caches them; the model never
 * sees a path or a FUSE type.
 *
 * Promises of every implementation:
 * - every method either completes its whole effect or none of it (each is
 *   one serializable transaction over the tables);
 * - errors are `FsError` with a POSIX code name (`ENOENT`, `EEXIST`, ...);
 *   anything else thrown is a bug and maps to `EIO`;
 * - a resolved mutation is committed (visible to every later call) but not
 *   necessarily durable; `fsync()` makes everything committed so far
 *   durable before it resolves.
 */

/** Who asked: taken from the FUSE request context. */
export interface Caller {
  uid: number
  gid: number
  pid: number
}

/** Attributes of one inode, as `stat(2)` reports them. */
export interface Attr {
  /** inode number, a safe integer (< 2^53); never reused while the inode exists */
  ino: number
  /** file type and permission bits (S_IFREG | 0644, ...) */
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  /** bytes; 64-bit safe (files may exceed 4 GiB) */
  size: number
  /** 512-byte units actually stored (sparse files have fewer) */
  blocks: number
  /** nanoseconds since the epoch */
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
}

/** A time change in setattr: a value, "now" (UTIME_NOW); absent = UTIME_OMIT. */
export type TimeChange = { now: true } | { ns: bigint }

export interface SetAttr {
  mode?: number
  uid?: number
  gid?: number
  size?: number
  atime?: TimeChange
  mtime?: TimeChange
}

export interface DirEntry {
  name: string
  attr: Attr
}

export interface StatFs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

export interface RenameFlags {
  /** RENAME_NOREPLACE: fail with EEXIST if the target exists */
  noreplace?: boolean
  /** RENAME_EXCHANGE: swap the two names atomically */
  exchange?: boolean
}

/** setxattr flags: XATTR_CREATE = 1, XATTR_REPLACE = 2 (as in <sys/xattr.h>). */
export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2

export const ROOT_INO = 1

/** A POSIX error with its code name; the FUSE adapter maps it to -errno. */
export class FsError extends Error {
  readonly code: string
  constructor (code: string, message?: string) {
    super(message ? `${code}: ${message}` : code)
    this.code = code
    this.name = 'FsError'
  }
}

export interface FileSystem {
  /** Resolve one name in a directory (ENOENT, ENOTDIR, ENAMETOOLONG). */
  lookup (parent: number, name: string): Promise<Attr>
  /**
   * Resolve several names from `parent` down (a path's components) in one
   * transaction, returning the last one's attributes: what lookup() one
   * name at a time would give, at one instant, for the cost of one read
   * round (optional: the adapter falls back to lookup()).
   */
  lookupPath? (parent: number, names: string[]): Promise<Attr>
  getattr (ino: number): Promise<Attr>
  /** chmod/chown/truncate/utimens in one call; sets ctime. Returns the new attributes. */
  setattr (ino: number, change: SetAttr, caller: Caller): Promise<Attr>

  /** Regular files, fifos, sockets and device nodes (mode carries the type). */
  mknod (parent: number, name: string, mode: number, rdev: number, caller: Caller): Promise<Attr>
  mkdir (parent: number, name: string, mode: number, caller: Caller): Promise<Attr>
  symlink (parent: number, name: string, target: string, caller: Caller): Promise<Attr>
  readlink (ino: number): Promise<string>
  /** A new name for an existing non-directory inode (EPERM for directories). */
  link (ino: number, newParent: number, newName: string): Promise<Attr>
  unlink (parent: number, name: string): Promise<void>
  rmdir (parent: number, name: string): Promise<void>
  rename (parent: number, name: string, newParent: number, newName: string, flags?: RenameFlags): Promise<void>
  /** Entries without "." and ".." (the adapter adds those). */
  readdir (ino: number): Promise<DirEntry[]>

  /**
   * Count an open handle on the inode. While any handle is open, an inode
   * whose last name was removed keeps its data; `release` of the last handle
   * frees it.
   */
  open (ino: number): Promise<void>
  release (ino: number): Promise<void>

  /** Bytes in [offset, offset+length) clipped at EOF; holes read as zeros. */
  read (ino: number, offset: number, length: number): Promise<Buffer>
  /** Write bytes at offset (extends the file; updates mtime/ctime). Returns bytes written. */
  write (ino: number, offset: number, data: Buffer): Promise<number>
  /**
   * Write bytes at the end of the file as it is when the write commits
   * (O_APPEND when other hosts may append too: no caller's idea of the size
   * is trusted). Returns the offset they went to.
   */
  append (ino: number, data: Buffer): Promise<number>
  /** Make everything committed so far durable (on disk) before resolving. */
  fsync (): Promise<void>

  statfs (): Promise<StatFs>

  getxattr (ino: number, name: string): Promise<Buffer>
  setxattr (ino: number, name: string, value: Buffer, flags: number): Promise<void>
  listxattr (ino: number): Promise<string[]>
  removexattr (ino: number, name: string): Promise<void>

  /** Stop background work and close the store. */
  close (): Promise<void>
}
