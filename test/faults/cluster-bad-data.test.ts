/**
 * Bad data directories at a cluster mount (issue 7, item 5), on one real
 * cluster host in a network namespace: a data directory formed by another
 * cluster and an lmdb file with garbage over its meta pages are refused at
 * mount with a message saying what is wrong and what to do, nothing is
 * mounted; the foreign-cluster refusal loses nothing (mounted with its own
 * cluster name the host has its file), and the damaged file is left byte
 * for byte as it was (never a silent repair or loss).
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { closeSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { findMount } from '../../src/fuse/mount-table.js'
import { MountLab } from '../net/mount-lab.js'
import { netnsAvailable } from '../net/netns.js'

const skip = netnsAvailable()

/** sha256 of every file under dir but lmdb's lock file, by relative path. */
function digests (dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) Object.assign(out, digests(p, `${prefix}${name}/`))
    // lock.mdb is lmdb's reader table, rewritten by every open
    else if (name !== 'lock.mdb') out[`${prefix}${name}`] = createHash('sha256').update(readFileSync(p)).digest('hex')
  }
  return out
}

t.test('a cluster mount refuses the data directory of another cluster and a damaged lmdb file, and changes neither', { skip: skip ?? false }, async (t) => {
  const lab = new MountLab(t, 'alpha')
  const h = lab.addHost(['expect=1', 'heartbeat_ms=200'])
  await lab.mustMount(h)
  writeFileSync(join(h.mnt, 'kept.txt'), 'kept\n')
  const u = await lab.umount(h)
  t.equal(u.code, 0, `clean umount: ${u.stderr}`)
  const before = digests(h.data)
  t.ok(Object.keys(before).some((f) => f.endsWith('data.mdb')), `the data directory holds an lmdb file (${Object.keys(before).join(', ')})`)

  // the same directory mounted as a host of another cluster
  const other = await lab.mount(h, ['cluster=beta'])
  t.not(other.code, 0, 'mount as cluster beta fails')
  t.match(other.stderr, /alpha/, `the message names the cluster the data belongs to: ${other.stderr.trim()}`)
  t.equal(findMount(h.mnt), undefined, 'nothing mounted')
  t.same(digests(h.data), before, 'the data directory is unchanged')
  // mounted as the cluster it belongs to, the host has everything it had
  await lab.mustMount(h)
  t.equal(readFileSync(join(h.mnt, 'kept.txt'), 'utf8'), 'kept\n', 'mounted with its own cluster name again, the file is there')
  t.equal((await lab.umount(h)).code, 0, 'clean umount')
  const mdb = Object.keys(before).find((f) => f.endsWith('data.mdb'))!

  // garbage over lmdb's meta pages
  const file = join(h.data, mdb)
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.alloc(8192, 0x5a), 0, 8192, 0)
  closeSync(fd)
  const damaged = digests(h.data)
  const r = await lab.mount(h)
  t.not(r.code, 0, 'mount of a damaged store fails')
  t.match(r.stderr, /damaged/, `the message says the store is damaged: ${r.stderr.trim()}`)
  t.match(r.stderr, /Restore|move the data directory away/, 'and what to do')
  t.equal(findMount(h.mnt), undefined, 'nothing mounted')
  t.same(digests(h.data), damaged, 'the damaged file is left as it was')
})
