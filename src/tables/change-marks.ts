/**
 * Per fragment, the newest Raft log index whose entry may have changed the
 * fragment's rows or write intents on this host's replica: the "change
 * mark". It lets a transaction's end check its optimistic reads without
 * reading them again (replicated.ts, router.recheck): reads taken when the
 * replica showed index `seen` still hold at any later point of that replica
 * whose mark is ≤ `seen`, because no entry in between touched anything a
 * read can return.
 *
 * Promise: the mark is never lower than the index of a change this replica
 * applied. It may be higher (that only makes a check re-read):
 * - the FragmentMachine raises it while applying, inside the cycle's lmdb
 *   transaction, before the change is visible to readers;
 * - a replica that opens, or restores a snapshot, starts at that index
 *   (`start`): everything before is taken as changed. A snapshot restore
 *   and a dropped replica first lose their mark (`forget`), and a fragment
 *   without a mark is never "unchanged".
 * Entries that change only transaction bookkeeping (decisions, forgetting
 * them, dedupe sweeps) leave it alone: no read of a row or intent sees them.
 *
 * In memory only (a restart opens every replica, which sets the marks
 * again); bounded by the number of fragments.
 */
export class ChangeMarks {
  private readonly marks = new Map<number, number>()

  /**
   * The replica shows log index `index` (it opened there, or restored a
   * snapshot of it, or applied it): a fragment without a mark starts there,
   * a marked one keeps its mark.
   */
  start (fragment: number, index: number): void {
    if (!this.marks.has(fragment)) this.marks.set(fragment, index)
  }

  /** The entry at `index` may change rows or intents. A fragment not started stays unknown. */
  changed (fragment: number, index: number): void {
    const m = this.marks.get(fragment)
    if (m !== undefined && index > m) this.marks.set(fragment, index)
  }

  /** The replica's rows are replaced (snapshot) or dropped: nothing is known until it starts again. */
  forget (fragment: number): void {
    this.marks.delete(fragment)
  }

  /** Whether nothing a read can see has changed in the fragment after log index `seen`. */
  unchangedSince (fragment: number, seen: number): boolean {
    const m = this.marks.get(fragment)
    return m !== undefined && m <= seen
  }
}
