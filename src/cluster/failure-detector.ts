/**
 * The membership view's failure detector (pure: time comes in as `now`,
 * events go out as return values).
 *
 * A peer is `up` while we hear from it; `suspect` after `suspectAfterMs`
 * of silence; `down` after `downAfterMs` of silence. Silence counts from
 * the last frame heard on any link to the peer, so losing one path while
 * another works (failover) costs at most a suspicion, never a `down`, as
 * long as `downAfterMs` exceeds link timeout + redial time (checked by
 * `checkTimings`). Only `up` and `down` are events for the layers above;
 * `suspect` is visible in the view.
 */
export type PeerState = 'up' | 'suspect' | 'down'

export interface DetectorSettings { suspectAfterMs: number, downAfterMs: number }

export interface MembershipEvent { type: 'up' | 'down', peerId: string }

export class FailureDetector {
  private readonly peers = new Map<string, { state: PeerState, lastHeard: number, downAt: number }>()
  constructor (private readonly s: DetectorSettings) {
    if (!(s.suspectAfterMs > 0 && s.downAfterMs > s.suspectAfterMs)) {
      throw new Error(`failure detector: need 0 < suspectAfterMs (${s.suspectAfterMs}) < downAfterMs (${s.downAfterMs})`)
    }
  }

  /**
   * Something was heard from the peer at `at` (or a link came up). News
   * older than the peer's death does not revive it (a dying link may still
   * report its last frame).
   */
  heard (peerId: string, at: number): MembershipEvent[] {
    const p = this.peers.get(peerId)
    if (!p) {
      this.peers.set(peerId, { state: 'up', lastHeard: at, downAt: -Infinity })
      return [{ type: 'up', peerId }]
    }
    if (p.state === 'down' && at <= p.downAt) return []
    if (at > p.lastHeard) p.lastHeard = at
    if (p.state === 'down') { p.state = 'up'; return [{ type: 'up', peerId }] }
    p.state = 'up'
    return []
  }

  tick (now: number): MembershipEvent[] {
    const out: MembershipEvent[] = []
    for (const [peerId, p] of this.peers) {
      if (p.state === 'down') continue
      const silent = now - p.lastHeard
      if (silent > this.s.downAfterMs) { p.state = 'down'; p.downAt = now; out.push({ type: 'down', peerId }) } else if (silent > this.s.suspectAfterMs) p.state = 'suspect'
    }
    return out
  }

  forget (peerId: string): void { this.peers.delete(peerId) }

  view (): Record<string, PeerState> {
    return Object.fromEntries([...this.peers].map(([id, p]) => [id, p.state]))
  }

  up (): string[] { return [...this.peers].filter(([, p]) => p.state !== 'down').map(([id]) => id).sort() }
}

/** Refuses settings with which a failover would show as a `down`. */
export function checkTimings (t: { heartbeatMs: number, linkTimeoutMs: number, connectTimeoutMs: number } & DetectorSettings): void {
  if (t.linkTimeoutMs < 2 * t.heartbeatMs) throw new Error(`link timeout (${t.linkTimeoutMs} ms) must be at least two heartbeats (${t.heartbeatMs} ms)`)
  if (t.downAfterMs <= t.linkTimeoutMs + t.connectTimeoutMs) {
    throw new Error(`down_after (${t.downAfterMs} ms) must exceed link timeout + connect timeout (${t.linkTimeoutMs} + ${t.connectTimeoutMs} ms), ` +
      'or losing one of several paths would report the peer down')
  }
}
