/**
 * examples/rrdtool on a real walkenfs mount: builds rrdtool from Debian's
 * source package with --disable-mmap (cached after the first run; needs root
 * and deb.debian.org), runs run.sh, and checks the stored values
 * independently - with both builds, and after an unmount and a fresh mount;
 * then the same on a 3-host cluster (real daemons in network namespaces),
 * where a second host fetches the rows and adds a sample the first reads.
 * Run by `npm run test:examples`, not by `npm test` (see README.md).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mounted, sh, shr } from '../helpers/mount.js'
import { netnsAvailable } from '../net/netns.js'
import { MountLab, type ClusterHost } from '../net/mount-lab.js'

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'rrdtool')
const cache = process.env.WALKENFS_EXAMPLES_CACHE ?? '/var/cache/walkenfs-examples'
const built = join(cache, 'rrdtool', 'bin', 'rrdtool')
const START = 1699999980
const STEP = 60

t.test('build-rrdtool.sh builds a no-mmap rrdtool (or finds it built)', async (t) => {
  const r = spawnSync('bash', [join(examples, 'build-rrdtool.sh')], { encoding: 'utf8', timeout: 900_000 })
  t.equal(r.status, 0, 'build-rrdtool.sh exits 0', { output: `${r.stdout}${r.stderr}` })
  const imports = sh(`nm -D --undefined-only '${built}'`)
  t.notMatch(imports, /\bmmap(64)?\b/, 'the built rrdtool does not import mmap')
  t.match(sh(`nm -D --undefined-only /usr/lib/x86_64-linux-gnu/librrd.so.8`), /\bmmap\b/, "Debian's librrd does (the check can fail)")
})

t.test('run.sh: the no-mmap build updates on walkenfs, Debian\'s build is refused', async (t) => {
  const m = mounted(t)
  const r = spawnSync('bash', [join(examples, 'run.sh'), m.mnt], { encoding: 'utf8', timeout: 300_000 })
  const out = `${r.stdout}${r.stderr}`
  t.equal(r.status, 0, 'run.sh exits 0', { output: out })
  t.match(out, /mmaping file '.*debian\.rrd': No such device/)
  const rrd = join(m.mnt, 'rrdtool-example', 'load.rrd')
  const fetch = (tool: string): Map<number, string> => {
    const rows = new Map<number, string>()
    for (const line of sh(`${tool} fetch '${rrd}' AVERAGE --start ${START} --end ${START + 30 * STEP}`).split('\n')) {
      const x = /^(\d+): (\S+)/.exec(line)
      if (x) rows.set(Number(x[1]), x[2])
    }
    return rows
  }
  const check = (tool: string, when: string): void => {
    const rows = fetch(tool)
    for (const i of [1, 10, 30]) {
      t.equal(Number(rows.get(START + i * STEP)), i, `${when}: sample ${i} read back by ${tool}`)
    }
  }
  check(built, 'on the mount')
  t.match(sh(`${built} lastupdate '${rrd}'`), new RegExp(`${START + 30 * STEP}: 30`))
  m.umount()
  m.mount()
  check('/usr/bin/rrdtool', 'after a remount')
  const again = shr(`${built} update '${rrd}' ${START + 31 * STEP}:31`)
  t.equal(again.status, 0, again.stderr)
  t.match(sh(`/usr/bin/rrdtool lastupdate '${rrd}'`), new RegExp(`${START + 31 * STEP}: 31`), 'updates go on after a remount')
})

t.test('run.sh across hosts: written on A, fetched and updated on B, read on C', { skip: netnsAvailable() ?? false }, async (t) => {
  const lab = new MountLab(t)
  const [a, b, c] = await lab.formCluster(3) as [ClusterHost, ClusterHost, ClusterHost]
  const r = spawnSync('bash', [join(examples, 'run.sh'), a.mnt, b.mnt], { encoding: 'utf8', timeout: 600_000 })
  t.equal(r.status, 0, 'run.sh A B exits 0', { output: `${r.stdout}${r.stderr}` })
  t.match(r.stdout, /an update on either is seen on the other/)
  const last = sh(`/usr/bin/rrdtool lastupdate '${join(c.mnt, 'rrdtool-example', 'load.rrd')}'`)
  t.match(last, new RegExp(`${START + 31 * STEP}: 31`), 'C reads the sample B added')
})
