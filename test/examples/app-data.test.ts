/**
 * The app-data examples (examples/app-data/*.sh) run against a real walkenfs
 * mount, and their results are checked independently of what the scripts
 * print: sqlite's integrity_check and row counts, git fsck and history, the
 * config file's final version - also after an unmount and a fresh mount, so
 * what the applications wrote is really in walkenfs's store.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mounted, sh } from '../helpers/mount.js'

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'app-data')
const m = mounted(t)
const p = (...names: string[]) => join(m.mnt, 'app-data', ...names)

function runExample (script: string, env: Record<string, string> = {}): { status: number, out: string } {
  const r = spawnSync('bash', [join(examples, script), m.mnt], {
    encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000
  })
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` }
}

function remount (): void {
  m.umount()
  m.mount()
}

t.test('sqlite.sh: rollback journal with two concurrent writers, WAL only with exclusive locking', async (t) => {
  const r = runExample('sqlite.sh', { SQLITE_ROWS: '60' })
  t.equal(r.status, 0, 'sqlite.sh exits 0', { output: r.out })
  t.match(r.out, /disk I\/O error/, 'plain WAL is refused')
  const db = p('sqlite', 'app.db')
  const q = (sql: string): string => sh(`sqlite3 '${db}' "${sql}"`).trim()
  t.equal(q('PRAGMA integrity_check;'), 'ok')
  t.equal(q("SELECT writer || ':' || count(*) || ':' || sum(n) FROM events GROUP BY writer ORDER BY writer;"),
    'a:60:1830\nb:60:1830', 'every transaction of both writers is there once')
  t.equal(q('PRAGMA journal_mode;'), 'delete')
  remount()
  t.equal(q('PRAGMA integrity_check;'), 'ok', 'after a remount')
  t.equal(q('SELECT count(*) FROM events;'), '120', 'after a remount')
  t.equal(sh(`sqlite3 '${p('sqlite', 'wal.db')}' "PRAGMA locking_mode=EXCLUSIVE; SELECT sum(x) FROM t;"`).trim().split('\n').pop(), '15',
    'the exclusive-WAL database after a remount')
})

t.test('config-dir.sh: a reader racing write-temp-fsync-rename sees only whole versions', async (t) => {
  const versions = 40
  const r = runExample('config-dir.sh', { CONFIG_VERSIONS: String(versions) })
  t.equal(r.status, 0, 'config-dir.sh exits 0', { output: r.out })
  const line = /reader: (\d+) reads, (\d+) distinct versions, (\d+) partial, (\d+) missing, (\d+) reopened/.exec(r.out)
  t.ok(line, 'the reader printed its counts', { output: r.out })
  if (line === null) return
  const [reads, distinct, partial, missing] = line.slice(1, 5).map(Number)
  t.equal(partial, 0, 'no read saw a mix of versions or a short file')
  t.equal(missing, 0, 'the file was always there to open')
  t.ok(reads > 0, `the reader read while the writer wrote (${reads} reads)`)
  t.ok(distinct > 1, `the reader saw the file change under it (${distinct} versions)`)
  remount()
  const conf = readFileSync(p('config', 'app.conf'), 'utf8').split('\n')
  t.equal(conf[0], `version ${versions} lines 200`, 'the last version survives a remount')
  t.equal(conf[201], `end ${versions}`)
  t.equal(sh(`ls -A '${p('config')}'`).trim(), 'app.conf', 'no temporary file is left')
})

t.test('git-repo.sh: commits, branches, merge, gc and fsck on the mount', async (t) => {
  const r = runExample('git-repo.sh', { GIT_COMMITS: '12' })
  t.equal(r.status, 0, 'git-repo.sh exits 0', { output: r.out })
  t.match(r.out, /fsck: clean/)
  remount()
  const git = (args: string): string =>
    sh(`GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git -c safe.directory='*' -C '${p('work')}' ${args} 2>&1`).trim()
  t.equal(git('fsck --full --strict'), '', 'fsck is clean after a remount')
  t.equal(git('rev-list --count main'), '17', '12 commits, 2 on the branch, 1 on main, the merge, the pushed one')
  t.equal(git('log -1 --format=%s v1'), "Merge branch 'feature'", 'the tag points at the merge')
  t.equal(git('show main:file.txt').split('\n').length, 12, 'the last version of file.txt')
  t.equal(git('status --porcelain'), '', 'the work tree matches the index')
  t.equal(sh(`git --git-dir='${p('repo.git')}' rev-parse main`).trim(), git('rev-parse main'), 'the bare clone has the pushed commit')
})
