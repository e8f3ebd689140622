/**
 * What a leader knows about one follower's log, and the flow-control window
 * toward it: `probe` sends one append per heartbeat until the follower's
 * match point is found, `replicate` streams up to `maxInflight` appends
 * without waiting, `snapshot` waits while a snapshot is being installed.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot'

export class Progress {
  match = 0
  next: number
  state: ProgressState = 'probe'
  /** probe: an append is outstanding; cleared by any heartbeat response. */
  probeSent = false
  /** snapshot: index of the snapshot sent. */
  pendingSnapshot = 0
  /** snapshot: heartbeat responses seen while waiting; resend after a bound. */
  snapshotWait = 0
  /** Heard from since the last check-quorum round. */
  recentActive = true
  /** Lease reads: when (leader's clock) the newest heartbeat round this follower answered was sent. */
  ackedAt: number | undefined
  /** Follower leases: the grant to send with the next heartbeat to this follower. */
  grant: { seq: number, ms: number, commit: number } | undefined
  /** replicate: last index of each append in flight, oldest first (bounded by maxInflight). */
  private inflight: number[] = []

  constructor (next: number, readonly maxInflight: number) {
    this.next = next
  }

  becomeProbe (): void {
    if (this.state === 'snapshot') this.next = Math.max(this.match + 1, this.pendingSnapshot + 1)
    else this.next = this.match + 1
    this.state = 'probe'
    this.probeSent = false
    this.pendingSnapshot = 0
    this.inflight = []
  }

  becomeReplicate (): void {
    this.state = 'replicate'
    this.next = this.match + 1
    this.probeSent = false
    this.inflight = []
  }

  becomeSnapshot (index: number): void {
    this.state = 'snapshot'
    this.pendingSnapshot = index
    this.snapshotWait = 0
    this.probeSent = false
    this.inflight = []
  }

  /** A follower acknowledged `index`; returns false when that is old news. */
  maybeUpdate (index: number): boolean {
    let updated = false
    if (this.match < index) {
      this.match = index
      updated = true
      this.probeSent = false
    }
    if (this.next < index + 1) this.next = index + 1
    return updated
  }

  /**
   * A follower rejected the append at `rejected`; `hint` is the highest index
   * it might still match. Returns false for stale rejections.
   */
  maybeDecrTo (rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1)
    this.probeSent = false
    return true
  }

  sentAppend (lastIndex: number, entries: number): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        this.next = lastIndex + 1
        this.inflight.push(lastIndex)
      }
    } else if (this.state === 'probe') {
      this.probeSent = true
    }
  }

  freeUpTo (index: number): void {
    let n = 0
    while (n < this.inflight.length && this.inflight[n] <= index) n++
    if (n > 0) this.inflight.splice(0, n)
  }

  freeFirst (): void {
    this.inflight.shift()
  }

  inflightFull (): boolean {
    return this.inflight.length >= this.maxInflight
  }

  isPaused (): boolean {
    switch (this.state) {
      case 'probe': return this.probeSent
      case 'replicate': return this.inflightFull()
      case 'snapshot': return true
    }
  }
}
