/**
 * The demo that `npm start` runs: three walkenfs hosts in network
 * namespaces on this machine, each with a real FUSE mount, and its stop,
 * which must leave no mount, namespace or daemon behind. Runs with a layout
 * of its own (names, subnet, directories), so it never touches a demo an
 * operator started.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { findMount } from '../../src/fuse/mount-table.js'
import { readRecord, isAlive } from '../../src/cli/daemon.js'
import { mountOf, startDemo, stopDemo, type DemoLayout } from '../../src/cli/demo.js'
import { netnsAvailable } from '../net/netns.js'
import { tempDir } from '../helpers/tmp.js'

const skip = netnsAvailable()

t.test('the demo: three hosts mount one tree; stop leaves no mount, namespace or daemon', { skip: skip ?? false }, async (t) => {
  const dir = tempDir(t, 'walkenfs-demo-')
  const l: DemoLayout = { prefix: `wkdt${process.pid % 10000}`, subnet: 1, base: join(dir, 'data'), mounts: join(dir, 'mnt'), hosts: 3 }
  const lines: string[] = []
  t.teardown(() => stopDemo(l, () => {}))
  const code = await startDemo(l, (line) => lines.push(line))
  t.equal(code, 0, lines.join('\n'))
  t.ok(lines.some((x) => /\[h2\] waiting/.test(x)), 'progress of the hosts was shown while they joined')
  writeFileSync(join(mountOf(l, 1), 'hello.txt'), 'from h1\n')
  t.equal(readFileSync(join(mountOf(l, 3), 'hello.txt'), 'utf8'), 'from h1\n', 'h3 reads what h1 wrote')
  const pids = [1, 2, 3].map((n) => readRecord(mountOf(l, n))!.pid)
  t.ok(pids.every((p) => isAlive(p)), 'three daemons run')

  await stopDemo(l, (line) => lines.push(line))
  for (let n = 1; n <= 3; n++) t.equal(findMount(mountOf(l, n)), undefined, `h${n} is unmounted`)
  t.ok(pids.every((p) => !isAlive(p)), 'every daemon exited')
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((x) => x.startsWith(l.prefix))
  t.same(left, [], 'no namespace is left')
})
