/**
 * The membership view the layers above use: binds the failure detector to
 * the wire. Emits 'up' (peerId) and 'down' (peerId); `view()` shows every
 * known peer as up, suspect or down.
 *
 * Promise: a peer is reported down only after `downAfterMs` without a
 * frame from it on any link (heartbeats keep quiet links audible), and
 * reported up again as soon as a link to it works.
 */
import { EventEmitter } from 'node:events'
import type { Wire } from '../wire/wire.js'
import { FailureDetector, type DetectorSettings, type MembershipEvent } from './failure-detector.js'

export class Membership extends EventEmitter {
  private readonly fd: FailureDetector
  private readonly timer: NodeJS.Timeout
  private readonly onUp = (peerId: string): void => this.publish(this.fd.heard(peerId, Date.now()))

  constructor (private readonly wire: Wire, s: DetectorSettings & { checkMs?: number }) {
    super()
    this.fd = new FailureDetector(s)
    wire.on('peer-up', this.onUp)
    this.timer = setInterval(() => this.check(), s.checkMs ?? Math.max(50, Math.floor(s.suspectAfterMs / 4)))
  }

  view (): Record<string, string> { return this.fd.view() }
  up (): string[] { return this.fd.up() }

  stop (): void {
    clearInterval(this.timer)
    this.wire.off('peer-up', this.onUp)
  }

  private check (): void {
    for (const id of this.wire.linkedPeers()) {
      const at = this.wire.lastHeard(id)
      if (at !== null) this.publish(this.fd.heard(id, at))
    }
    this.publish(this.fd.tick(Date.now()))
  }

  private publish (events: MembershipEvent[]): void {
    for (const e of events) this.emit(e.type, e.peerId)
  }
}
