/**
 * The LSB init script, run as an operator would: start, status, restart,
 * stop, with its settings from a defaults file.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findMount } from '../../src/fuse/mount-table.js'
import { isAlive } from '../../src/cli/daemon.js'
import { forceUnmount, makeMount, walkenfs } from '../helpers/mount.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const script = join(repo, 'init.d', 'walkenfs')

t.test('init.d/walkenfs start, status, restart, stop', async (t) => {
  const m = makeMount(t)
  const defaults = join(m.base, 'default-walkenfs')
  writeFileSync(defaults, `WALKENFS_MOUNT=${m.mnt}\nWALKENFS_DATA=${m.data}\nWALKENFS_OPTIONS=entry_timeout=2\nWALKENFS_BIN=${join(repo, 'bin', 'walkenfs')}\n`)
  const run = (action: string) => spawnSync('sh', [script, action], { encoding: 'utf8', env: { ...process.env, WALKENFS_DEFAULTS: defaults } })

  let r = run('status')
  t.equal(r.status, 3, 'not mounted yet: LSB 3')
  r = run('start')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /mounting .* done/)
  t.equal(findMount(m.mnt)?.fsType, 'fuse.walkenfs')
  r = run('start')
  t.equal(r.status, 0)
  t.match(r.stdout, /already mounted/)
  r = run('status')
  t.equal(r.status, 0)
  t.match(r.stdout, /is mounted/)
  writeFileSync(join(m.mnt, 'kept'), 'through a restart')
  r = run('restart')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.equal(readFileSync(join(m.mnt, 'kept'), 'utf8'), 'through a restart')
  r = run('stop')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.equal(findMount(m.mnt), undefined, 'unmounted')
  t.equal(run('status').status, 3)
  t.equal(run('bogus').status, 2, 'usage error')
})

t.test('init.d/walkenfs with a cluster from /etc/default/walkenfs: start, status with the quorum verdict, stop', async (t) => {
  const m = makeMount(t)
  const defaults = join(m.base, 'default-walkenfs')
  const cookie = join(m.base, 'cookie')
  writeFileSync(cookie, 'init-script-cookie-0123456789abcdef\n', { mode: 0o600 })
  const port = 20000 + (process.pid % 20000)
  writeFileSync(defaults, [
    `WALKENFS_MOUNT=${m.mnt}`, `WALKENFS_DATA=${m.data}`, 'WALKENFS_CLUSTER=initd', `WALKENFS_COOKIE=${cookie}`,
    `WALKENFS_LISTEN=127.0.0.1:${port}`, 'WALKENFS_EXPECT=1', 'WALKENFS_OPTIONS=host=solo,mcast=off,fragments=4',
    `WALKENFS_BIN=${join(repo, 'bin', 'walkenfs')}`, ''
  ].join('\n'))
  const run = (action: string) => spawnSync('sh', [script, action], { encoding: 'utf8', env: { ...process.env, WALKENFS_DEFAULTS: defaults } })
  let r = run('start')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.equal(findMount(m.mnt)?.fsType, 'fuse.walkenfs')
  r = run('status')
  t.equal(r.status, 0)
  t.match(r.stdout, /is mounted, cluster initd, in quorum \(writable\)/)

  // Another mount of this host whose daemon died: its state is not this mount's (the script asks about its own).
  const other = makeMount(t)
  other.mount()
  const dead = other.pid()
  t.ok(dead > 0)
  process.kill(dead, 'SIGKILL')
  while (isAlive(dead)) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(walkenfs(['status']).status, 1, 'all mounts together: one is broken')
  const own = walkenfs(['status', m.mnt])
  t.equal(own.status, 0, own.stdout)
  t.notMatch(own.stdout, other.mnt, 'only the mount asked about')
  r = run('status')
  t.match(r.stdout, /is mounted, cluster initd, in quorum \(writable\)/, 'the init script reports its own mount')
  // Once that dead mount is unmounted too, its record is history: shown once, then gone.
  forceUnmount(other.mnt)
  t.match(walkenfs(['status']).stdout, `${other.mnt}  gone (daemon exited, not mounted`)
  t.notMatch(walkenfs(['status']).stdout, other.mnt, 'and removed')

  writeFileSync(join(m.mnt, 'kept'), 'one-host cluster')
  t.equal(readFileSync(join(m.mnt, 'kept'), 'utf8'), 'one-host cluster')
  r = run('stop')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.equal(findMount(m.mnt), undefined, 'unmounted')
  t.equal(run('status').status, 3)
})
