import t from 'tap'
import { parseMountOptions, splitOptions, MountOptionError } from '../../src/cli/mount-options.js'

t.test('walkenfs settings are taken out, defaults filled in', async (t) => {
  const s = parseMountOptions(splitOptions('data=/srv/w,fragments=8,attr_timeout=0.5,entry_timeout=2,fuse_api=path'))
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
  t.throws(() => parseMountOptions(['copies=3']), /copies needs cluster=NAME/)
})

t.test('cluster options: lists joined by +, durations with units, defaults', async (t) => {
  const s = parseMountOptions(splitOptions('cluster=prod,host=a1,cookie_file=/etc/wk/cookie,listen=10.77.0.1:7401+10.78.0.1:7401,' +
    'peers=10.77.0.2:7401+10.77.0.3,expect=5,copies=2,fragments=32,replace_after=2m,quorum_wait=3s,mcast=off,_netdev'))
  t.ok(s.cluster)
  const c = s.cluster!
  t.equal(c.host.id, 'a1')
  t.equal(c.host.cluster, 'prod')
  t.equal(c.host.cookie, '/etc/wk/cookie')
  t.equal(c.host.port, 7401)
  t.equal(c.host.listen, '0.0.0.0', 'several addresses: listen on all, advertise the list')
  t.same(c.host.advertise, ['10.77.0.1:7401', '10.78.0.1:7401'])
  t.same(c.host.peers, ['10.77.0.2:7401', '10.77.0.3:7400'])
  t.equal(c.host.mcast, false)
  t.equal(c.expect, 5)
  t.equal(c.copies, 2)
  t.equal(s.fragments, 32)
  t.equal(c.replaceAfterMs, 120_000)
  t.equal(c.quorumWaitMs, 3000)
  t.notOk(s.fuseOptions.some((o) => /^(cluster|listen|peers|copies|host)=/.test(o)), 'cluster options never reach libfuse')

  const d = parseMountOptions(['cluster=x', 'host=h']).cluster!
  t.equal(d.expect, 3, 'hosts started together wait for three by default')
  t.equal(d.host.port, 7400)
  t.equal(d.host.cookie, '/etc/walkenfs/cookie')
  t.equal(d.copies, null, 'a joining host takes the cluster settings')
  t.equal(parseMountOptions(['cluster=x', 'host=h']).entryTimeout, 0, 'a cluster mount keeps no fixed name timeout: other hosts change names')
  t.equal(parseMountOptions(['cluster=x', 'host=h']).kernelCache, 'lease', 'it caches under fragment leases instead (cache=lease)')
  t.equal(parseMountOptions(['cluster=x', 'host=h', 'cache=off']).kernelCache, 'off')
  t.equal(parseMountOptions(['cluster=x', 'host=h', 'entry_timeout=0']).kernelCache, 'off', 'fixed timeouts asked for replace the leases')
  t.equal(parseMountOptions(['cluster=x', 'host=h', 'fuse_api=path']).kernelCache, 'off', 'the path API cannot invalidate: no leases')
  t.equal(parseMountOptions([]).kernelCache, 'off', 'one host: fixed timeouts (every change passes through its kernel)')
  t.throws(() => parseMountOptions(['cluster=x', 'host=h', 'cache=always']), /option cache=always: expected lease or off/)
  t.equal(parseMountOptions(['cluster=x', 'host=h', 'entry_timeout=2']).entryTimeout, 2)
  t.equal(parseMountOptions([]).entryTimeout, 1)
  t.equal(parseMountOptions(['cluster=x', 'host=h', 'listen=10.77.0.4']).cluster!.host.listen, '10.77.0.4')
})

t.test('bad cluster options are refused before anything starts', async (t) => {
  t.throws(() => parseMountOptions(['cluster=x', 'listen=10.77.0.1:99999']), /port 99999/)
  t.throws(() => parseMountOptions(['cluster=x', 'listen=example.com']), /not an IPv4 address/)
  t.throws(() => parseMountOptions(['cluster=x', 'listen=0.0.0.0+10.77.0.1']), /cannot be combined/)
  t.throws(() => parseMountOptions(['cluster=x', 'quorum_wait=soon']), /quorum_wait=soon: expected a duration/)
  t.throws(() => parseMountOptions(['cluster=x', 'replace_after=0']), /replace_after=0/)
  t.throws(() => parseMountOptions(['cluster=x', 'copies=10']), /copies=10: expected a whole number from 1 to 9/)
  t.throws(() => parseMountOptions(['cluster=x', 'expect=0']), /expect=0/)
  t.throws(() => parseMountOptions(['cluster=bad name']), /cluster=bad name/)
  t.throws(() => parseMountOptions(['cluster=x', 'host=-x']), /host id "-x"/)
  t.throws(() => parseMountOptions(['cluster=']), /cluster= needs a value/)
  t.throws(() => parseMountOptions(['cluster=x', 'peers=10.77.0.2:notaport']), MountOptionError)
})

t.test('the FUSE API and the attribute cache it allows', async (t) => {
  const one = parseMountOptions([])
  t.equal(one.fuseApi, 'lowlevel', 'the low-level binding by default')
  t.equal(one.attrTimeout, 1, 'one host, low-level: attributes kept 1 s')
  t.equal(parseMountOptions(['fuse_api=path']).attrTimeout, 0, 'the path API: none (hard links are separate kernel inodes there)')
  t.equal(parseMountOptions(['cluster=x']).attrTimeout, 0, 'a cluster: none (other hosts change attributes)')
  t.equal(parseMountOptions(['cluster=x']).entryTimeout, 0)
  t.equal(parseMountOptions(['cluster=x', 'attr_timeout=2']).attrTimeout, 2, 'a chosen value wins')
  t.equal(parseMountOptions(['attr_timeout=0']).attrTimeout, 0, 'a chosen 0 too')
  t.equal(parseMountOptions(['fuse_api=path']).fuseApi, 'path')
  t.throws(() => parseMountOptions(['fuse_api=fast']), /fuse_api=fast: expected lowlevel or path/)
})

t.test('the low-level API gets no path-API options', async (t) => {
  const s = parseMountOptions(splitOptions('attr_timeout=0.5,dev,suid'))
  t.notOk(s.fuseOptions.some((o) => /^(use_ino|attr_timeout|entry_timeout|negative_timeout)/.test(o)), 'timeouts travel with each answer')
  t.ok(s.fuseOptions.includes('default_permissions'))
  t.ok(s.fuseOptions.includes('big_writes'))
  t.throws(() => parseMountOptions(['kernel_cache']), /option kernel_cache belongs to libfuse's path API: mount with fuse_api=path/)
  t.ok(parseMountOptions(['kernel_cache', 'fuse_api=path']).fuseOptions.includes('kernel_cache'))
})
