/**
 * Inode numbers without a hot counter row.
 *
 * Each fragment f has its own counter row (`meta` key "ino-next" in f); an
 * inode number is `n * fragments + f`, so `ino % fragments` names the
 * fragment that holds the inode's rows. A host reserves `RANGE` numbers of a
 * fragment in one small transaction and hands them out from memory, so a
 * burst of creates touches a counter row once per RANGE creates. Numbers
 * reserved but unused (a crash, a body that was re-run) are skipped, never
 * reused. All numbers stay below 2^53; running out is EOVERFLOW.
 *
 * ROOT_INO (1) is fixed and sits outside the allocation (n starts at 2).
 */
import { metaKey } from './fragments.js'
import type { Tables } from './types.js'

const RANGE = 1024
const FIRST_N = 2

export class InodeAllocator {
  private readonly pools = new Map<number, { next: number, end: number }>()
  /** one reservation at a time per fragment, so two callers never both reserve */
  private readonly reserving = new Map<number, Promise<void>>()

  constructor (private readonly tables: Tables) {}

  /** A fresh inode number in `fragment`. */
  async allocate (fragment: number): Promise<number> {
    const F = this.tables.fragments
    if (!Number.isInteger(fragment) || fragment < 0 || fragment >= F) throw new RangeError(`fragment ${fragment} out of 0..${F - 1}`)
    for (;;) {
      const pool = this.pools.get(fragment)
      if (pool && pool.next < pool.end) {
        const n = pool.next++
        return n * F + fragment
      }
      let r = this.reserving.get(fragment)
      if (!r) {
        r = this.reserve(fragment).finally(() => this.reserving.delete(fragment))
        this.reserving.set(fragment, r)
      }
      await r
    }
  }

  private async reserve (fragment: number): Promise<void> {
    const F = this.tables.fragments
    const key = metaKey(fragment, 'ino-next')
    const start = await this.tables.txn(async (tx) => {
      const cur = await tx.get('meta', key)
      const n = cur ? cur.readUInt32BE(0) * 0x100000000 + cur.readUInt32BE(4) : FIRST_N
      const end = n + RANGE
      if (end * F + fragment > Number.MAX_SAFE_INTEGER) throw Object.assign(new Error(`EOVERFLOW: inode numbers of fragment ${fragment} exhausted`), { code: 'EOVERFLOW' })
      const b = Buffer.allocUnsafe(8)
      b.writeUInt32BE(Math.floor(end / 0x100000000), 0)
      b.writeUInt32BE(end >>> 0, 4)
      tx.put('meta', key, b)
      return n
    })
    this.pools.set(fragment, { next: start, end: start + RANGE })
  }
}
