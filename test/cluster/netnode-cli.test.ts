/** The netnode host program refuses bad settings before starting, and links two hosts on loopback. */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'

const NETNODE = new URL('../../src/cli/netnode.js', import.meta.url).pathname

function start (t: Test, args: string[]): { proc: ChildProcess, lines: Array<Record<string, unknown>>, err: () => string, exit: Promise<number | null> } {
  const proc = spawn(process.execPath, [NETNODE, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => { if (proc.exitCode === null && proc.pid) process.kill(proc.pid, 'SIGKILL') })
  const lines: Array<Record<string, unknown>> = []
  let err = ''
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>))
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  return { proc, lines, err: () => err, exit: new Promise((resolve) => proc.on('exit', (c) => resolve(c))) }
}

async function until (cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('netnode refuses a readable cookie file and bad settings, with exit code 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-netnode-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cookie = join(dir, 'cookie')
  writeFileSync(cookie, 'a-cookie-long-enough-for-the-test-000')
  chmodSync(cookie, 0o644)
  let r = start(t, ['id=a', `cookie=${cookie}`, 'port=0', 'mcast=off'])
  t.equal(await r.exit, 2)
  t.match(r.err(), /cookie file .* has mode 644; it must be readable by its owner only/)
  chmodSync(cookie, 0o600)
  r = start(t, ['id=a', `cookie=${cookie}`, 'port=0', 'mcast=off', 'down_after_ms=100'])
  t.equal(await r.exit, 2)
  t.match(r.err(), /down_after \(100 ms\) must exceed/)
  r = start(t, ['id=a', `cookie=${cookie}`, 'colour=blue'])
  t.equal(await r.exit, 2)
  t.match(r.err(), /unknown setting "colour"/)
})

t.test('two netnodes link over loopback by a static peer and answer view and call', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-netnode-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cookie = join(dir, 'cookie')
  writeFileSync(cookie, 'a-cookie-long-enough-for-the-test-000')
  chmodSync(cookie, 0o600)
  const fast = ['mcast=off', 'listen=127.0.0.1', 'port=0', 'heartbeat_ms=100', 'link_timeout_ms=300', 'connect_timeout_ms=200']
  const a = start(t, ['id=a', `cookie=${cookie}`, ...fast, 'advertise=127.0.0.1:1'])
  await until(() => a.lines.some((l) => l.ev === 'ready'))
  const port = a.lines.find((l) => l.ev === 'ready')!.port as number
  const b = start(t, ['id=b', `cookie=${cookie}`, ...fast, `peers=127.0.0.1:${port}`])
  await until(() => a.lines.some((l) => l.ev === 'up' && l.peer === 'b') && b.lines.some((l) => l.ev === 'up' && l.peer === 'a'))
  b.proc.stdin!.write('call a\nview\n')
  await until(() => b.lines.some((l) => l.ev === 'view'))
  t.match(b.lines.find((l) => l.ev === 'call'), { ok: true, result: 'a' })
  t.match(b.lines.find((l) => l.ev === 'view'), { up: ['a'], members: { a: 'up' } })
  b.proc.stdin!.write('quit\n')
  t.equal(await b.exit, 0, 'quit ends the process cleanly')
  await until(() => a.lines.some((l) => l.ev === 'down' && l.peer === 'b'))
  t.pass('a saw b go down')
})
