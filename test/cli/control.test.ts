import t from 'tap'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { askControl, serveControl, streamControl } from '../../src/cli/control.js'

t.test('the control socket answers, reports handler errors and unknown commands, and times out', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-control-'))
  const path = join(dir, 'x.sock')
  const logs: string[] = []
  const close = await serveControl(path, {
    echo: (args) => ({ got: args }),
    fail: () => { throw new Error('no quorum for fs/3') },
    hang: () => new Promise(() => {})
  }, (l) => logs.push(l))
  t.teardown(async () => { await close(); rmSync(dir, { recursive: true, force: true }) })
  t.equal(statSync(path).mode & 0o777, 0o600, 'only its owner may ask')
  t.same(await askControl(path, 'echo', { a: 1 }), { got: { a: 1 } })
  await t.rejects(askControl(path, 'fail'), /no quorum for fs\/3/)
  await t.rejects(askControl(path, 'nope'), /unknown control command "nope"; known: echo, fail, hang/)
  await t.rejects(askControl(path, 'hang', {}, 200), /did not answer "hang" .* within 0.2 s/)
  await t.rejects(askControl(join(dir, 'missing.sock'), 'echo'), /cannot reach the daemon/)
})

t.test('streams: messages in order, the client closing aborts the handler, a slow client is cut off, an unmount ends them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-control-'))
  const path = join(dir, 'x.sock')
  let aborted = 0
  let refusedAt = -1
  const close = await serveControl(path, {}, () => {}, {
    count: async (args, send, signal) => {
      for (let i = 0; i < (args.n as number); i++) send(i)
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => { aborted++; resolve() }, { once: true }))
    },
    flood: async (_args, send, signal) => {
      const big = 'x'.repeat(64 * 1024)
      for (let i = 0; !signal.aborted; i++) {
        if (!send(big)) { refusedAt = i; return }
        if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
    },
    bad: async () => { throw new Error('no such file or directory: /nope') },
    forever: async (_args, _send, signal) => { await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })) }
  })
  t.teardown(async () => { rmSync(dir, { recursive: true, force: true }) })

  const got: unknown[] = []
  const s = streamControl(path, 'count', { n: 5 }, (m) => got.push(m))
  while (got.length < 5) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(got, [0, 1, 2, 3, 4])
  s.stop()
  await s.done
  while (aborted === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(aborted, 1, 'closing the connection aborts the handler')

  t.match(await streamControl(path, 'bad', {}, () => {}).done, /no such file or directory: \/nope/, 'a handler error is the final line')

  // A client that never reads: the daemon stops sending once 1 MiB waits, instead of growing memory.
  const raw = net.connect(path)
  raw.on('connect', () => { raw.write(JSON.stringify({ cmd: 'flood', args: {} }) + '\n'); raw.pause() })
  while (refusedAt < 0) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(refusedAt > 0, `send refused after ${refusedAt} messages of 64 KiB`)
  raw.destroy()

  const f = streamControl(path, 'forever', {}, () => {})
  await new Promise((resolve) => setTimeout(resolve, 50))
  await close()
  t.match(await f.done, /the daemon is stopping/, 'closing the socket ends open streams with a reason')
})
