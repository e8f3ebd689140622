/**
 * Aligns the kernel's TCP timeouts with the wire's failure detector, via
 * the small addon native/tcp-tune (built by `npm install`), because Node
 * cannot set these options itself:
 * - TCP_USER_TIMEOUT = link timeout: the kernel gives up on unacknowledged
 *   data after the same time the heartbeat would (instead of ~15 min of
 *   retransmissions);
 * - keepalive idle/interval = heartbeat (rounded up to whole seconds, the
 *   option's unit), count = link timeout / interval: an idle dead path
 *   fails within about the same bound.
 * The heartbeat timer in link.ts still bounds detection on its own; if the
 * addon is missing, `tcpTuneProblem()` says why and links work without it.
 */
import { createRequire } from 'node:module'
import type { Socket } from 'node:net'

interface Addon { tune: (fd: number, userTimeoutMs: number, idleS: number, intvlS: number, cnt: number) => number, get: (fd: number) => number[] }

let addon: Addon | null = null
let problem: string | null = null
try {
  // dist/src/wire → repository root
  addon = createRequire(import.meta.url)('../../../native/tcp-tune/build/Release/tcp_tune.node') as Addon
} catch (err) {
  problem = `native/tcp-tune is not built (${(err as Error).message.split('\n')[0]}); run npm install or node scripts/build-addons.mjs. ` +
    'Links still time out by heartbeat, but TCP_USER_TIMEOUT stays at the kernel default'
}

export function tcpTuneProblem (): string | null { return problem }

function fdOf (socket: Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : null
}

/** Applies the options; returns null on success, else the reason. */
export function tuneSocket (socket: Socket, heartbeatMs: number, linkTimeoutMs: number): string | null {
  if (!addon) return problem
  const fd = fdOf(socket)
  if (fd === null) return 'socket has no file descriptor'
  const intvl = Math.max(1, Math.ceil(heartbeatMs / 1000))
  const cnt = Math.max(1, Math.ceil(linkTimeoutMs / (intvl * 1000)))
  const err = addon.tune(fd, linkTimeoutMs, intvl, intvl, cnt)
  return err === 0 ? null : `setsockopt failed with errno ${err}`
}

/** Reads back [TCP_USER_TIMEOUT ms, keepidle s, keepintvl s, keepcnt] from the kernel. */
export function socketTimeouts (socket: Socket): number[] | null {
  const fd = fdOf(socket)
  return addon && fd !== null ? addon.get(fd) : null
}
