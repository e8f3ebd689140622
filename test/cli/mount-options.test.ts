import t from 'tap'
import { parseMountOptions, splitOptions, MountOptionError } from '../../src/cli/mount-options.js'

t.test('walkenfs settings are taken out, defaults filled in', async (t) => {
  const s = parseMountOptions(splitOptions('data=/srv/w,fragments=8,attr_timeout=0.5,entry_timeout=2'))
  t.equal(s.data, '/srv/w')
  t.equal(s.fragments, 8)
  t.equal(s.attrTimeout, 0.5)
  t.equal(s.entryTimeout, 2)
  t.ok(s.fuseOptions.includes('allow_other'))
  t.ok(s.fuseOptions.includes('default_permissions'))
  t.ok(s.fuseOptions.includes('use_ino'))
  t.ok(s.fuseOptions.includes('big_writes'))
  t.ok(s.fuseOptions.includes('max_write=131072'))
  t.ok(s.fuseOptions.includes('attr_timeout=0.5'))
  t.notOk(s.fuseOptions.some((o) => o.startsWith('data=') || o.startsWith('fragments=')))
})

t.test('fstab-only options are accepted and never reach libfuse', async (t) => {
  const s = parseMountOptions(splitOptions('_netdev,nofail,noauto,x-systemd.automount,x-systemd.requires=network-online.target,defaults,dev,suid'))
  for (const o of ['_netdev', 'nofail', 'noauto', 'defaults']) t.notOk(s.fuseOptions.includes(o), o)
  t.notOk(s.fuseOptions.some((o) => o.startsWith('x-')))
  t.ok(s.fuseOptions.includes('dev'), 'mount.fuse appends dev,suid; they pass')
  t.ok(s.fuseOptions.includes('suid'))
})

t.test('a user value for a libfuse default wins', async (t) => {
  const s = parseMountOptions(splitOptions('max_write=65536,fsname=mine'))
  t.ok(s.fuseOptions.includes('max_write=65536'))
  t.notOk(s.fuseOptions.includes('max_write=131072'))
  t.ok(s.fuseOptions.includes('fsname=mine'))
})

t.test('ro sets read-only', async (t) => {
  t.equal(parseMountOptions(['ro']).readOnly, true)
  t.equal(parseMountOptions(['ro', 'rw']).readOnly, false)
})

t.test('bad options are refused with a message naming them', async (t) => {
  t.throws(() => parseMountOptions(['bogus']), { name: 'MountOptionError', message: /unknown mount option "bogus"/ })
  t.throws(() => parseMountOptions(['fragments=0']), /fragments=0: expected a whole number from 1 to 4096/)
  t.throws(() => parseMountOptions(['fragments=2.5']), MountOptionError)
  t.throws(() => parseMountOptions(['attr_timeout=-1']), /attr_timeout=-1/)
  t.throws(() => parseMountOptions(['attr_timeout=']), /attr_timeout=/)
  t.throws(() => parseMountOptions(['data=']), /data= needs a directory/)
  t.throws(() => parseMountOptions(['umask=999']), /octal/)
  t.throws(() => parseMountOptions(['max_write=abc']), /max_write=abc/)
  t.throws(() => parseMountOptions(['allow_other=1']), /unknown mount option/)
  t.throws(() => parseMountOptions(['copies=3']), /cluster settings/)
})
