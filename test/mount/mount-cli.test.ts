/**
 * Mounting as an operator does: `walkenfs mount`/`umount`, `mount -t
 * fuse.walkenfs`, an fstab line (with `_netdev,nofail`), plain `umount`,
 * a second mount of the same point, bad options, an external umount.
 */
import t from 'tap'
import { closeSync, existsSync, openSync, readFileSync, realpathSync, writeFileSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findMount } from '../../src/fuse/mount-table.js'
import { isAlive, readRecord } from '../../src/cli/daemon.js'
import { makeMount, sh, shr, walkenfs } from '../helpers/mount.js'

const repoBin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'walkenfs')

async function waitFor (cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return cond()
}

t.test('walkenfs mount / umount: data survives a remount, the daemon exits', async (t) => {
  const m = makeMount(t)
  m.mount()
  const mi = findMount(m.mnt)
  t.equal(mi?.fsType, 'fuse.walkenfs')
  t.equal(mi?.source, `walkenfs:${m.data}`)
  writeFileSync(join(m.mnt, 'kept'), 'across remounts')
  const st = walkenfs(['status', m.mnt])
  t.equal(st.status, 0, `status of a one-host mount: fine (${st.stdout})`)
  t.match(st.stdout, `${m.mnt}  mounted  data=${m.data}`)
  t.notMatch(st.stdout, /unavailable/, 'no cluster status asked of a mount that has none')
  const online = walkenfs(['check', m.mnt])
  t.equal(online.status, 0, online.stderr)
  t.equal(online.stdout, `walkenfs check ${m.mnt}: clean\n`, 'the daemon checks the store it holds open')
  for (const cmd of [['check', '--replicas', m.mnt], ['repair', m.mnt], ['retire', 'h2', m.mnt]]) {
    const r = walkenfs(cmd)
    t.not(r.status, 0, cmd.join(' '))
    t.match(r.stderr, `${m.mnt} is a one-host mount (data ${m.data}): it has no other hosts or replicas; ${cmd[0]}`)
  }
  const pid = m.pid()
  m.umount()
  t.equal(findMount(m.mnt), undefined, 'unmounted')
  t.notOk(isAlive(pid), 'the daemon exited')
  m.mount()
  t.equal(readFileSync(join(m.mnt, 'kept'), 'utf8'), 'across remounts')
})

t.test('a second mount on the same point exits 32 with a message', async (t) => {
  const m = makeMount(t)
  m.mount()
  const r = walkenfs(['mount', m.mnt, '-o', `data=${m.data}`])
  t.equal(r.status, 32)
  t.match(r.stderr, /already mounted/)
})

t.test('a bad option is refused before anything is mounted', async (t) => {
  const m = makeMount(t)
  const r = walkenfs(['mount', m.mnt, '-o', `data=${m.data},bogus_option`])
  t.equal(r.status, 1)
  t.match(r.stderr, /unknown mount option "bogus_option"/)
  t.equal(findMount(m.mnt), undefined, 'no (stale) mount left behind')
  const r2 = walkenfs(['mount', m.mnt, '-o', `data=${m.data},fragments=0`])
  t.equal(r2.status, 1)
  t.match(r2.stderr, /fragments=0/)
})

t.test('an external umount makes the daemon exit cleanly', async (t) => {
  const m = makeMount(t)
  m.mount()
  const pid = m.pid()
  sh(`umount ${m.mnt}`)
  t.ok(await waitFor(() => !isAlive(pid), 10_000), 'daemon gone')
  t.equal(readRecord(m.mnt), null, 'its run-time record is removed')
  t.match(readFileSync(join(m.data, 'walkenfs.log'), 'utf8'), /unmounted/)
})

t.test('mount -t fuse.walkenfs and an fstab line', async (t) => {
  const which = shr('command -v walkenfs')
  t.equal(which.status, 0, 'walkenfs is on the PATH mount.fuse uses (scripts/setup.sh installs it)')
  t.equal(realpathSync(which.stdout.trim()), realpathSync(repoBin), 'and it is this checkout\'s walkenfs')
  const m = makeMount(t)
  sh(`mount -t fuse.walkenfs ${m.data} ${m.mnt} -o fragments=4`)
  t.equal(findMount(m.mnt)?.fsType, 'fuse.walkenfs')
  writeFileSync(join(m.mnt, 'via-mount'), 'x')
  sh(`umount ${m.mnt}`)
  t.ok(await waitFor(() => findMount(m.mnt) === undefined, 5000))

  const fstab = join(m.base, 'fstab')
  writeFileSync(fstab, `# test fstab\n${m.data} ${m.mnt} fuse.walkenfs _netdev,nofail,x-systemd.automount,entry_timeout=2 0 0\n`)
  sh(`mount -T ${fstab} ${m.mnt}`)
  t.equal(findMount(m.mnt)?.fsType, 'fuse.walkenfs', 'mounted from the fstab line')
  t.ok(existsSync(join(m.mnt, 'via-mount')), 'same data directory')
  const pid = readRecord(m.mnt)!.pid
  sh(`umount ${m.mnt}`)
  t.ok(await waitFor(() => !isAlive(pid), 10_000), 'daemon exited after plain umount')
})

t.test('check refuses a data directory in use; a damaged store refuses to mount', async (t) => {
  const m = makeMount(t)
  m.mount()
  writeFileSync(join(m.mnt, 'f'), 'x')
  const busy = walkenfs(['check', m.data])
  t.equal(busy.status, 2)
  t.match(busy.stderr, /in use by process \d+; stop it \(unmount\) first/)
  m.umount()
  t.equal(walkenfs(['check', m.data]).status, 0, 'clean once unmounted')
  // garbage over lmdb's meta pages
  const file = join(m.data, 'walkenfs-store', 'data.mdb')
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.alloc(8192, 0x5a), 0, 8192, 0)
  closeSync(fd)
  const r = walkenfs(['mount', m.mnt, '-o', `data=${m.data}`])
  t.equal(r.status, 32)
  t.match(r.stderr, /data\.mdb is damaged .*Restore this host from its replicas, or move the data directory away/)
  t.equal(findMount(m.mnt), undefined, 'nothing mounted')
  const c = walkenfs(['check', m.data])
  t.equal(c.status, 2, 'check says it cannot read the store, not "clean"')
})

t.test('umount then mount at once: the new daemon waits for the old one to let go of the store', async (t) => {
  const m = makeMount(t)
  m.mount()
  writeFileSync(join(m.mnt, 'again'), 'x')
  const r = shr(`umount ${m.mnt} && ${process.execPath} ${join(repoBin, '..', '..', 'dist', 'src', 'cli', 'main.js')} mount ${m.mnt} -o data=${m.data}`)
  t.equal(r.status, 0, r.stderr)
  t.equal(readFileSync(join(m.mnt, 'again'), 'utf8'), 'x')
})
