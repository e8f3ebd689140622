// The README's test command. Runs every compiled test file under tap and
// ends with the one line CI reads: "N passed, N failed[, N skipped]".
// Usage: node scripts/run-tests.mjs [glob-prefix ...]   (default: all tests but test/examples-slow)
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const testRoot = join(root, 'dist', 'test')

function walk (dir) {
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...walk(p))
    else if (name.endsWith('.test.js')) out.push(p)
  }
  return out
}

const filters = process.argv.slice(2)
// test/examples-slow builds software from source (network, root, minutes):
// only run when a filter names it (`npm run test:examples`).
const SLOW = 'examples-slow'
const files = walk(testRoot).filter((f) => {
  const rel = relative(root, f)
  if (filters.length === 0) return !rel.includes(SLOW)
  return filters.some((x) => rel.includes(x) && (!rel.includes(SLOW) || x.includes(SLOW)))
})
if (files.length === 0) {
  console.error('no test files matched', filters)
  process.exit(1)
}

const tap = join(root, 'node_modules', '.bin', 'tap')
const child = spawn(tap, ['--reporter=tap', '--disable-coverage', '--jobs=1', ...files.map((f) => relative(root, f))],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })

// Collects every failing line with the parts of the YAML block tap prints
// under it that say why (not the echoed source, not the command line), so the
// end of the output (all that a CI summary may show) names what failed.
const NOISE = new Set(['source', 'at', 'args', 'stdio', 'cwd', 'command', 'externalID'])
function failures (text) {
  const out = []
  let file = ''
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const sub = /^# Subtest: (.*)$/.exec(lines[i])
    if (sub) file = sub[1]
    if (!/^\s*not ok \d+ - /.test(lines[i])) continue
    out.push(`${file}: ${lines[i].trim()}`)
    if (lines[i + 1]?.trim() !== '---') continue
    const base = lines[i + 1].indexOf('---')
    let skipping = false
    for (let j = i + 2; j < lines.length && j < i + 200; j++) {
      const line = lines[j]
      if (line.trim() === '...') break
      const key = new RegExp(`^ {${base}}([A-Za-z]+):`).exec(line)
      if (key) skipping = NOISE.has(key[1])
      if (!skipping) out.push('    ' + line.slice(base).trimEnd())
    }
  }
  return out
}

// Counts the tests one level under each file (each top-level t.test of a
// file, or each assertion of a file that has no subtests). A file that fails
// without a failing test inside (it crashed, timed out) counts as one failure.
let passed = 0, failed = 0, skipped = 0
let buf = ''
child.stdout.on('data', (d) => {
  process.stdout.write(d)
  buf += d
})
child.on('close', (code) => {
  let fileFailed = 0
  for (const line of buf.split('\n')) {
    const inner = /^    (not ok|ok) \d+ - /.exec(line)
    if (inner) {
      if (/# SKIP/i.test(line)) skipped++
      else if (inner[1] === 'ok') passed++
      else { failed++; fileFailed++ }
      continue
    }
    const top = /^(not ok|ok) \d+ - /.exec(line)
    if (top) {
      if (top[1] === 'not ok' && fileFailed === 0) failed++
      fileFailed = 0
    }
  }
  if (code !== 0 && failed === 0) failed = 1
  const why = failures(buf)
  if (why.length > 0) console.log('\nfailures:\n' + why.join('\n'))
  console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
  process.exit(code === 0 && failed === 0 ? 0 : 1)
})
