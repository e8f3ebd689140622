/**
 * The control socket of a running daemon: how `walkenfs status`, `retire`
 * and `check --replicas` ask the daemon that holds the store (only one
 * process may open a store, so the CLI cannot read it itself).
 *
 * A Unix socket next to the mount record (/run/walkenfs/<mount>.sock, mode
 * 0600: only root may ask), one JSON request per connection:
 *   → {"cmd":"status","args":{…}}\n
 *   ← {"ok":true,"result":…}\n   or   {"ok":false,"error":"…"}\n
 *
 * Promises: a request that gets no answer within its timeout fails with a
 * message naming the socket; a request line over 64 KiB is refused; a
 * handler's exception becomes an error answer, never a crash of the daemon.
 */
import net from 'node:net'
import { chmodSync, rmSync } from 'node:fs'

export type ControlHandler = (args: Record<string, unknown>) => Promise<unknown> | unknown

const MAX_REQUEST = 64 * 1024

export async function serveControl (path: string, handlers: Record<string, ControlHandler>, log: (line: string) => void): Promise<() => Promise<void>> {
  rmSync(path, { force: true })
  const server = net.createServer((sock) => {
    let buf = ''
    sock.setEncoding('utf8')
    sock.on('error', () => {})
    sock.on('data', (chunk: string) => {
      buf += chunk
      if (buf.length > MAX_REQUEST) {
        sock.end(JSON.stringify({ ok: false, error: 'request too large' }) + '\n')
        return
      }
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const line = buf.slice(0, nl)
      buf = ''
      void (async () => {
        let reply: unknown
        try {
          const req = JSON.parse(line) as { cmd?: unknown, args?: unknown }
          const h = typeof req.cmd === 'string' ? handlers[req.cmd] : undefined
          if (!h) throw new Error(`unknown control command ${JSON.stringify(req.cmd)}; known: ${Object.keys(handlers).join(', ')}`)
          const args = typeof req.args === 'object' && req.args !== null ? req.args as Record<string, unknown> : {}
          reply = { ok: true, result: await h(args) }
        } catch (e) {
          reply = { ok: false, error: (e as Error).message }
        }
        sock.end(JSON.stringify(reply) + '\n')
      })()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => { server.off('error', reject); resolve() })
  })
  chmodSync(path, 0o600)
  server.on('error', (e) => log(`control socket ${path}: ${e.message}`))
  return async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()))
    rmSync(path, { force: true })
  }
}

export class ControlError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ControlError'
  }
}

export function askControl (path: string, cmd: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path)
    let buf = ''
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new ControlError(`the daemon did not answer "${cmd}" on ${path} within ${timeoutMs / 1000} s`))
    }, timeoutMs)
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(JSON.stringify({ cmd, args }) + '\n'))
    sock.on('data', (c: string) => { buf += c })
    sock.on('error', (e) => {
      clearTimeout(timer)
      reject(new ControlError(`cannot reach the daemon on ${path}: ${e.message}`))
    })
    sock.on('end', () => {
      clearTimeout(timer)
      try {
        const r = JSON.parse(buf) as { ok: boolean, result?: unknown, error?: string }
        if (r.ok) resolve(r.result)
        else reject(new ControlError(r.error ?? 'the daemon refused the request'))
      } catch {
        reject(new ControlError(`the daemon on ${path} sent an answer that is not JSON${buf === '' ? ' (it closed the connection without answering)' : `: ${buf.slice(0, 200)}`}`))
      }
    })
  })
}
