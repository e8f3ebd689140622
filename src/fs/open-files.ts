/**
 * Open-handle counts of this host's inodes (memory only: handles die with
 * the process, and the orphans they kept alive are freed at the next start).
 * Bounded by the number of inodes the kernel holds open through us.
 */
export class OpenFiles {
  private readonly counts = new Map<number, number>()

  open (ino: number): void {
    this.counts.set(ino, (this.counts.get(ino) ?? 0) + 1)
  }

  /** Returns true when this was the last handle. Releasing an unopened inode is a no-op that returns true. */
  release (ino: number): boolean {
    const c = this.counts.get(ino) ?? 0
    if (c <= 1) {
      this.counts.delete(ino)
      return true
    }
    this.counts.set(ino, c - 1)
    return false
  }

  isOpen (ino: number): boolean {
    return (this.counts.get(ino) ?? 0) > 0
  }
}
