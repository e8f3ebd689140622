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
import { makeMount } from '../helpers/mount.js'

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
  writeFileSync(join(m.mnt, 'kept'), 'one-host cluster')
  t.equal(readFileSync(join(m.mnt, 'kept'), 'utf8'), 'one-host cluster')
  r = run('stop')
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.equal(findMount(m.mnt), undefined, 'unmounted')
  t.equal(run('status').status, 3)
})
