/** A filesystem model on a real lmdb store in a temp dir, closed and removed in teardown. */
import { ModelFs, type ModelOptions } from '../../src/fs/model.js'
import { tempDir } from './tmp.js'

export const caller = { uid: 1000, gid: 100, pid: 4242 }

interface Teardownable { teardown: (fn: () => void | Promise<void>) => void }

export async function openFs (t: Teardownable, opts: ModelOptions = {}, dir?: string): Promise<{ fs: ModelFs, dir: string }> {
  const d = dir ?? tempDir(t)
  // debugRerun: every transaction body runs twice, proving bodies have no side effects.
  const fs = await ModelFs.open(d, { fragments: 4, debugRerun: true, ...opts })
  t.teardown(() => fs.close())
  return { fs, dir: d }
}

export function pattern (size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    b[i] = x & 0xff
  }
  return b
}
