/**
 * The table/transaction API: the only way `src/fs` touches data.
 *
 * Tables: `inode`, `dirent`, `block`, `xattr`, `symlink`, `meta`. Keys and
 * values are opaque bytes; every key starts with an 8-byte big-endian
 * *owner* (an inode number, or for `meta` a fragment number), and the owner
 * alone decides the key's fragment (see fragments.ts). So the rows of one
 * file share a fragment, and a directory's entries live in the directory's.
 *
 * Transactions: `tables.txn(async (tx) => ...)` runs the body against one
 * serializable snapshot and commits its writes atomically. The body MAY BE
 * RUN MORE THAN ONCE (a conflicting transaction, or a replicated fragment
 * that lost its leader, makes the implementation discard the attempt and run
 * the body again), so a body must be free of side effects outside `tx`: no
 * I/O, no mutation of shared state; compute, read through `tx`, write
 * through `tx`, and return a value. Only the returned value of the attempt
 * that committed reaches the caller. Errors thrown by the body abort the
 * transaction (nothing is written) and reach the caller unchanged.
 *
 * Nothing here names lmdb: the same interface is served locally (local.ts)
 * and by replicated fragment groups (replicated.ts).
 */

export const TABLES = ['inode', 'dirent', 'block', 'xattr', 'symlink', 'meta'] as const
export type TableName = typeof TABLES[number]

export interface Row { key: Buffer, value: Buffer }

export interface RangeOptions {
  /** at most this many rows (the implementation may cap it) */
  limit?: number
  /** return keys only (values are empty buffers): for deletes that need no values */
  keysOnly?: boolean
}

export interface Tx {
  get (table: TableName, key: Buffer): Promise<Buffer | undefined>
  /**
   * Rows with start <= key < end in key order. `start` and `end` must have
   * the same owner (one fragment); use `prefixEnd()` for "all keys with this
   * prefix".
   */
  range (table: TableName, start: Buffer, end: Buffer, opts?: RangeOptions): Promise<Row[]>
  /** Keeps `value` as given until the commit: the caller must not change it afterwards. */
  put (table: TableName, key: Buffer, value: Buffer): void
  delete (table: TableName, key: Buffer): void
}

export interface TxnOptions {
  /** how many times a conflicting body is re-run before giving up (EAGAIN) */
  maxAttempts?: number
  /**
   * Read-only hint: the reads may be behind (this host's replica as it is)
   * and show committed rows past other transactions' intents; nothing is
   * validated and the body runs once. A body that writes is refused. For checks whose stale answer is harmless (see ModelFs.open
   * and release); tables that are always current ignore it.
   */
  unchecked?: boolean
  /**
   * Every read must be current: a read that only a replica without a
   * reachable leader can answer (stale, which may be behind and show
   * committed rows past other transactions' intents) re-runs the body until
   * the quorum wait has passed, then the transaction fails with EIO. For
   * readers whose answer must never come from a partial view (`walkenfs
   * check`); tables that are always current ignore it.
   */
  current?: boolean
}

export interface Tables {
  /** number of fragments, fixed when the tables were created */
  readonly fragments: number
  txn<T> (body: (tx: Tx) => Promise<T>, opts?: TxnOptions): Promise<T>
  /** Make every committed transaction durable before resolving. */
  flush (): Promise<void>
  /** Rows of a table in one fragment (for statistics; not transactional). */
  countRows (table: TableName, fragment: number): Promise<number>
  close (): Promise<void>
}

/** A transaction that could not commit after its attempts ran out. */
export class TxnConflictError extends Error {
  readonly code = 'EAGAIN'
  constructor (attempts: number) {
    super(`EAGAIN: transaction conflicted ${attempts} times`)
    this.name = 'TxnConflictError'
  }
}

/** A full store: the commit wrote nothing. */
export class TablesFullError extends Error {
  readonly code = 'ENOSPC'
  constructor (message: string) {
    super(message)
    this.name = 'TablesFullError'
  }
}

/** Smallest key greater than every key that starts with `prefix`. */
export function prefixEnd (prefix: Buffer): Buffer {
  const out = Buffer.from(prefix)
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0xff) {
      out[i]++
      return out.subarray(0, i + 1)
    }
  }
  throw new Error('prefixEnd: prefix of only 0xff bytes has no end')
}
