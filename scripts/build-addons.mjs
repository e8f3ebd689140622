// Builds walkenfs's own small node addons (native/<name>/binding.gyp) with
// node-gyp, offline: under npm, npm_config_nodedir points at local headers;
// run by hand, the headers installed next to a system node are used.
// Called by postinstall.mjs; safe to run again (`node scripts/build-addons.mjs`).
//  - tcp-tune: sets the TCP options Node cannot (TCP_USER_TIMEOUT, keepalive
//    interval and count), see src/wire/tcp-tune.ts.
//  - fuse-ll: libfuse's low-level API with answers from the JS thread and
//    kernel cache invalidation, see src/fuse/ll-binding.ts.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
const nodedir = !process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h') &&
  process.execPath.startsWith('/usr/') ? ['--nodedir=/usr'] : []

for (const name of ['tcp-tune', 'fuse-ll']) {
  const dir = join(root, 'native', name)
  if (existsSync(join(dir, 'binding.gyp'))) {
    execFileSync(process.execPath, [gyp, 'rebuild', '--silent', ...nodedir], { cwd: dir, stdio: 'inherit' })
  }
}
