/** Shared setup for wire tests: wires on loopback that close at teardown. */
import { Wire, type WireOptions } from '../../src/wire/wire.js'

export const COOKIE = Buffer.from('a-test-cookie-of-enough-length-0123456789')

export async function startWire (t: { teardown: (fn: () => unknown) => void }, hostId: string,
  opts: Partial<WireOptions> = {}): Promise<{ wire: Wire, logs: string[] }> {
  const logs: string[] = []
  const wire = new Wire({
    hostId, cookie: COOKIE, clusterName: 'test', port: 0, listenHost: '127.0.0.1',
    heartbeatMs: 200, linkTimeoutMs: 1000, handshakeTimeoutMs: 1000, connectTimeoutMs: 1000,
    backoff: { baseMs: 20, maxMs: 200 }, log: (l) => logs.push(l), ...opts,
  })
  t.teardown(() => wire.close())
  await wire.start()
  return { wire, logs }
}

export function waitFor (what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve()
      else if (Date.now() > until) reject(new Error(`timed out waiting for ${what}`))
      else setTimeout(tick, 10)
    }
    tick()
  })
}

export function once<T extends unknown[]> (em: { once: (ev: string, fn: (...a: T) => void) => unknown }, ev: string): Promise<T> {
  return new Promise((resolve) => em.once(ev, (...a: T) => resolve(a)))
}
