// Runs after `npm install` / `npm ci` of walkenfs itself.
// npm 11 no longer runs dependency install scripts, so the native parts we
// need are built here, from source, reproducibly:
//  1. apply our patches to dependencies (native/patches, patch-package format);
//  2. rebuild fuse-native from its (patched) C source with node-gyp, against
//     the system libfuse2;
//  3. build the small C programs of native/ (the mmap probe the tests use)
//     into native/build with `cc`;
//  4. build our own node addons (native/<name>/binding.gyp, e.g. tcp-tune).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd, args, cwd = root) => execFileSync(cmd, args, { cwd, stdio: 'inherit' })

const patchDir = join(root, 'native', 'patches')
if (existsSync(patchDir) && readdirSync(patchDir).some((f) => f.endsWith('.patch'))) {
  run(join(root, 'node_modules', '.bin', 'patch-package'), ['--patch-dir', 'native/patches', '--error-on-fail'])
}

const fuseDir = join(root, 'node_modules', 'fuse-native')
if (existsSync(fuseDir)) {
  const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  // Under npm, npm_config_nodedir points node-gyp at local headers; run by
  // hand (offline), use the headers installed next to a system node.
  const nodedir = !process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h') &&
    process.execPath.startsWith('/usr/') ? ['--nodedir=/usr'] : []
  run(process.execPath, [gyp, 'rebuild', '--silent', ...nodedir], fuseDir)
}

const nativeBuild = join(root, 'native', 'build')
mkdirSync(nativeBuild, { recursive: true })
run('cc', ['-O2', '-Wall', '-Werror', '-o', join(nativeBuild, 'mmap-probe'), join(root, 'native', 'mmap-probe.c')])

// Our own node addons (native/<name>/binding.gyp), e.g. tcp-tune.
await import('./build-addons.mjs')
