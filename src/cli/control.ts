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
 * Streams (`watch`): the request is the same, the answer is many lines,
 *   ← {"ok":true,"stream":true}\n  then {"msg":…}\n …  then {"ok":false,"error":"…"}\n
 * until the handler ends or the client closes the connection (which aborts
 * the handler's signal). A client that reads too slowly (more than 1 MiB
 * waiting in the socket) gets an error line and the connection is closed:
 * memory never grows without bound.
 *
 * Promises: a request that gets no answer within its timeout fails with a
 * message naming the socket; a request line over 64 KiB is refused; a
 * handler's exception becomes an error answer, never a crash of the daemon.
 */
import net from 'node:net'
import { chmodSync, rmSync } from 'node:fs'

export type ControlHandler = (args: Record<string, unknown>) => Promise<unknown> | unknown
/**
 * A streaming command: sends messages with `send` until `signal` aborts
 * (client gone) or it ends; `send` returns false (and the stream is ended)
 * once the client reads too slowly. Its promise settles when it is done;
 * a rejection becomes the stream's final error line.
 */
export type ControlStream = (args: Record<string, unknown>, send: (msg: unknown) => boolean, signal: AbortSignal) => Promise<void>

const MAX_BUFFERED = 1024 * 1024

const MAX_REQUEST = 64 * 1024

export async function serveControl (path: string, handlers: Record<string, ControlHandler>, log: (line: string) => void,
  streams: Record<string, ControlStream> = {}): Promise<() => Promise<void>> {
  const open = new Set<net.Socket>()
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
      let req: { cmd?: unknown, args?: unknown } = {}
      try { req = JSON.parse(line) as typeof req } catch {}
      if (typeof req.cmd === 'string' && Object.hasOwn(streams, req.cmd)) {
        stream(sock, streams[req.cmd]!, typeof req.args === 'object' && req.args !== null ? req.args as Record<string, unknown> : {})
        return
      }
      void (async () => {
        let reply: unknown
        try {
          const req = JSON.parse(line) as { cmd?: unknown, args?: unknown }
          const h = typeof req.cmd === 'string' && Object.hasOwn(handlers, req.cmd) ? handlers[req.cmd] : undefined
          if (!h) throw new Error(`unknown control command ${JSON.stringify(req.cmd)}; known: ${[...Object.keys(handlers), ...Object.keys(streams)].join(', ')}`)
          const args = typeof req.args === 'object' && req.args !== null ? req.args as Record<string, unknown> : {}
          reply = { ok: true, result: await h(args) }
        } catch (e) {
          reply = { ok: false, error: (e as Error).message }
        }
        sock.end(JSON.stringify(reply) + '\n')
      })()
    })
  })
  const stream = (sock: net.Socket, h: ControlStream, args: Record<string, unknown>): void => {
    const ac = new AbortController()
    open.add(sock)
    let ended = false
    const end = (last: unknown): void => {
      if (ended) return
      ended = true
      ac.abort()
      open.delete(sock)
      sock.end(JSON.stringify(last) + '\n')
    }
    sock.on('close', () => { ended = true; ac.abort(); open.delete(sock) })
    sock.write(JSON.stringify({ ok: true, stream: true }) + '\n')
    const send = (msg: unknown): boolean => {
      if (ended) return false
      if (sock.writableLength > MAX_BUFFERED) {
        end({ ok: false, error: `the client read too slowly (${sock.writableLength} bytes waiting); the stream was ended, so later changes were not sent` })
        return false
      }
      sock.write(JSON.stringify({ msg }) + '\n')
      return true
    }
    h(args, send, ac.signal).then(
      () => end({ ok: false, error: 'the stream ended' }),
      (e: Error) => end({ ok: false, error: e.message }))
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => { server.off('error', reject); resolve() })
  })
  chmodSync(path, 0o600)
  server.on('error', (e) => log(`control socket ${path}: ${e.message}`))
  return async () => {
    // Streams never end by themselves: tell their clients the daemon is going.
    for (const sock of [...open]) sock.end(JSON.stringify({ ok: false, error: 'the daemon is stopping (the filesystem was unmounted)' }) + '\n')
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

/**
 * Runs a streaming command: `onMsg` gets every message until the daemon
 * ends the stream; resolves with the daemon's final error text (or a
 * message saying the connection was lost), rejects if it cannot start.
 * `stop()` of the returned handle closes the connection (the daemon stops).
 */
export function streamControl (path: string, cmd: string, args: Record<string, unknown>, onMsg: (msg: unknown) => void): { done: Promise<string>, stop: () => void } {
  const sock = net.connect(path)
  let buf = ''
  let started = false
  let final: string | null = null
  const done = new Promise<string>((resolve, reject) => {
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(JSON.stringify({ cmd, args }) + '\n'))
    sock.on('data', (c: string) => {
      buf += c
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let m: { ok?: boolean, stream?: boolean, msg?: unknown, error?: string }
        try { m = JSON.parse(line) as typeof m } catch { continue }
        if (m.stream === true) started = true
        else if (m.msg !== undefined) onMsg(m.msg)
        else if (m.ok === false) final = m.error ?? 'the daemon ended the stream'
      }
    })
    sock.on('error', (e) => {
      if (!started) reject(new ControlError(`cannot reach the daemon on ${path}: ${e.message}`))
      else resolve(`lost the connection to the daemon on ${path}: ${e.message}`)
    })
    sock.on('close', () => {
      if (!started && final !== null) reject(new ControlError(final))
      else if (!started) reject(new ControlError(`the daemon on ${path} closed the connection without answering`))
      else resolve(final ?? `the daemon on ${path} closed the connection (it stopped)`)
    })
  })
  return { done, stop: () => { final = final ?? 'stopped'; sock.destroy() } }
}
