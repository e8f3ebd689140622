import t from 'tap'
import { NameCache } from '../../src/fuse/name-cache.js'
import { FsError } from '../../src/fs/types.js'

// A directory tree as the model would answer lookups: (parent, name) → ino.
function tree (): { lookups: string[], lookup: (p: number, n: string) => Promise<number>, names: Map<string, number> } {
  const names = new Map<string, number>([['1/a', 2], ['2/b', 3], ['3/c', 4]])
  const lookups: string[] = []
  return {
    names,
    lookups,
    lookup: async (p, n) => {
      lookups.push(`${p}/${n}`)
      const ino = names.get(`${p}/${n}`)
      if (ino === undefined) throw new FsError('ENOENT')
      return ino
    }
  }
}

t.test('resolves paths component by component and caches names', async (t) => {
  const fx = tree()
  const c = new NameCache(1, fx.lookup, 60_000)
  t.equal(await c.resolve('/'), 1)
  t.equal(await c.resolve('/a/b/c'), 4)
  t.same(fx.lookups, ['1/a', '2/b', '3/c'])
  t.equal(await c.resolve('/a/b'), 3)
  t.equal(fx.lookups.length, 3, 'second resolution served from the cache')
  t.same(await c.resolveParent('/a/b/c'), { parent: 3, name: 'c' })
  t.same(await c.resolveParent('/a'), { parent: 1, name: 'a' })
})

t.test('forget drops one name; a renamed directory keeps its children cached', async (t) => {
  const fx = tree()
  const c = new NameCache(1, fx.lookup, 60_000)
  await c.resolve('/a/b/c')
  // rename /a → /z: the model now has 1/z → 2, and 1/a is gone
  fx.names.delete('1/a')
  fx.names.set('1/z', 2)
  c.forget(1, 'a')
  await t.rejects(c.resolve('/a/b'), { code: 'ENOENT' })
  t.equal(await c.resolve('/z/b/c'), 4)
  t.same(fx.lookups.slice(3), ['1/a', '1/z'], 'only the renamed name was looked up again')
})

t.test('entries expire after the ttl and the size stays bounded', async (t) => {
  const fx = tree()
  let now = 0
  const c = new NameCache(1, fx.lookup, 1000, 2, () => now)
  await c.resolve('/a/b')
  now = 500
  await c.resolve('/a/b')
  t.same(fx.lookups, ['1/a', '2/b'], 'within the ttl, served from the cache')
  await c.resolve('/a/b/c')
  t.same(fx.lookups.slice(2), ['3/c'])
  await c.resolve('/a')
  t.same(fx.lookups.slice(3), ['1/a'], 'the oldest entry was evicted past maxEntries')
  now = 5000
  await c.resolve('/a')
  t.same(fx.lookups.slice(4), ['1/a'], 'an expired entry is looked up again')
})
