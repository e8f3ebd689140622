/**
 * `walkenfs watch` on a one-host mount: another process changes files,
 * the watch prints exactly those changes, in order, with the same lines a
 * cluster mount prints; a watch of one file shows only that file; SIGINT
 * ends a watch cleanly; an unmount ends it with a message.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, mounted, sh } from '../helpers/mount.js'

interface Running { lines: string[], stderr: () => string, proc: ChildProcess, exited: Promise<number | null> }

function watch (t: { teardown: (fn: () => void | Promise<void>) => void }, path: string): Running {
  const proc = spawn(process.execPath, [CLI, 'watch', path])
  const lines: string[] = []
  let out = ''
  let err = ''
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
    const parts = out.split('\n')
    out = parts.pop()!
    lines.push(...parts)
  })
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)))
  t.teardown(async () => {
    if (proc.exitCode === null) { proc.kill('SIGKILL'); await exited }
  })
  return { lines, stderr: () => err, proc, exited }
}

async function until (what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const body = (l: string): string => l.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /, '')

t.test('watch a directory and a file while another process works', async (t) => {
  const m = mounted(t)
  mkdirSync(join(m.mnt, 'etc'))
  writeFileSync(join(m.mnt, 'etc', 'app.conf'), 'v0\n')
  const dir = watch(t, join(m.mnt, 'etc'))
  const one = watch(t, join(m.mnt, 'etc', 'app.conf'))
  await until('both watches subscribed', () => /watching .*\/etc \(1 fragment\)/.test(dir.stderr()) && /watching .*\/etc\/app\.conf/.test(one.stderr()))
  sh(`cd ${m.mnt} && echo hi > etc/new.conf && printf v1 > etc/.tmp1 && mv etc/.tmp1 etc/app.conf && echo outside > other.txt && ` +
    'mkdir etc/d && touch etc/d/f && rm -r etc/d && ln etc/new.conf etc/link && rm etc/new.conf && truncate -s 1 etc/link && echo more >> etc/app.conf')
  const want = [
    'created /etc/new.conf',
    'written /etc/new.conf',
    'created /etc/.tmp1',
    'written /etc/.tmp1',
    'renamed /etc/.tmp1 -> /etc/app.conf',
    'created /etc/d',
    'created /etc/d/f',
    'written /etc/d/f', // touch sets the mtime: "touch to reload" is reported
    'removed /etc/d/f',
    'removed /etc/d',
    'created /etc/link',
    'removed /etc/new.conf',
    'written /etc/link',
    'written /etc/app.conf'
  ]
  await until('every change printed', () => dir.lines.length >= want.length)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.ok(dir.lines.every((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /.test(l)), 'every line starts with an ISO time')
  t.same(dir.lines.map(body), want, 'exactly those changes, in order')
  await until('the file watch printed', () => one.lines.length >= 2)
  t.same(one.lines.map(body), ['renamed /etc/.tmp1 -> /etc/app.conf', 'written /etc/app.conf'], 'a watch of one file shows that file only')

  one.proc.kill('SIGINT')
  t.equal(await one.exited, 0, 'SIGINT ends a watch with status 0')
  m.umount()
  t.equal(await dir.exited, 1, 'an unmount ends the watch with status 1')
  t.match(dir.stderr(), /watch ended: the daemon is stopping/, 'and says why')
})

t.test('a path that is not on a walkenfs mount, or does not exist, is refused clearly', async (t) => {
  const m = mounted(t)
  const r1 = watch(t, '/proc')
  t.equal(await r1.exited, 1)
  t.match(r1.stderr(), /is not on a walkenfs mount/)
  const r2 = watch(t, join(m.mnt, 'nope'))
  t.equal(await r2.exited, 1)
  t.match(r2.stderr(), /no such file or directory: \/nope/)
})
