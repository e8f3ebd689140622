/**
 * Parses and validates the `-o` option string of a walkenfs mount, as it
 * arrives from the command line, from `mount -t fuse.walkenfs` (mount.fuse
 * appends `dev,suid`) or from an `/etc/fstab` line (which passes `nofail`).
 *
 * Promises:
 * - every option is classified before anything is mounted: a walkenfs
 *   setting, a libfuse/kernel option passed on, an fstab-only option that is
 *   accepted and dropped, or an error naming the option. libfuse leaves a
 *   stale mount behind when it meets an unknown option (PLATFORM.md), so an
 *   unknown option must never reach it;
 * - numbers are range-checked with a message that says what is allowed.
 *
 * Pure: no I/O.
 */
import { ALLOWED_MOUNT_OPTIONS, MOUNT_ONLY_OPTIONS, checkMountOptions, isPathApiOption } from '../fuse/mount-options.js'
import { CLUSTER_OPTIONS, ClusterOptionError, parseClusterOptions, type ClusterMountSettings } from './cluster-options.js'

export interface MountSettings {
  /** data directory of the local store */
  data: string
  /** fragments per table when the store is created; null: the store's own (or the default for a new one) */
  fragments: number | null
  /** kernel attribute cache lifetime in seconds (0: always ask) */
  attrTimeout: number
  /** kernel name→inode cache lifetime in seconds */
  entryTimeout: number
  /** where the daemon logs (default: <data>/walkenfs.log) */
  log: string | null
  /** stay in the foreground (no daemon) */
  foreground: boolean
  /** mount read-only */
  readOnly: boolean
  /** options handed to libfuse, validated, in order */
  fuseOptions: string[]
  /** the cluster this host serves (null: a one-host filesystem) */
  cluster: ClusterMountSettings | null
  /**
   * Which libfuse API serves the mount: 'lowlevel' (walkenfs's own binding,
   * native/fuse-ll: inode numbers, answers from the JS thread) or 'path'
   * (the patched fuse-native).
   */
  fuseApi: 'lowlevel' | 'path'
  /**
   * A cluster mount's kernel caches (`cache=`): 'lease' keeps names
   * and attributes in the kernel under fragment leases, dropped on every
   * host before a change commits (src/fuse/kernel-cache.ts); 'off' asks on
   * every call. Explicit attr_timeout/entry_timeout replace it.
   */
  kernelCache: 'lease' | 'off'
}

export class MountOptionError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'MountOptionError'
  }
}

export const DEFAULT_DATA_DIR = '/var/lib/walkenfs'

/** Options that only mean something to mount(8), fstab or systemd (besides MOUNT_ONLY_OPTIONS). */
const DROPPED = new Set(['nobootwait', 'comment'])
const DROPPED_PREFIXES = ['x-', 'comment=']

/** Values of libfuse options that walkenfs checks before libfuse sees them. */
const FUSE_VALUED: Record<string, 'string' | 'uint' | 'octal' | 'seconds'> = {
  fsname: 'string',
  subtype: 'string',
  max_read: 'uint',
  max_write: 'uint',
  max_readahead: 'uint',
  max_background: 'uint',
  congestion_threshold: 'uint',
  negative_timeout: 'seconds',
  attr_timeout: 'seconds',
  entry_timeout: 'seconds',
  ac_attr_timeout: 'seconds',
  umask: 'octal',
  uid: 'uint',
  gid: 'uint',
  blksize: 'uint',
  intr_signal: 'uint'
}

function parseNumber (name: string, value: string, min: number, max: number, integer: boolean): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new MountOptionError(`option ${name}=${value}: expected ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`)
  }
  return n
}

/** Splits "a,b=c,d" into items; an empty item (",,") is ignored. */
export function splitOptions (opts: string): string[] {
  return opts.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
}

export function parseMountOptions (items: string[], base: Partial<MountSettings> = {}): MountSettings {
  const s: MountSettings = {
    data: base.data ?? DEFAULT_DATA_DIR,
    fragments: base.fragments ?? null,
    // decided below, once the API and the cluster are known
    attrTimeout: base.attrTimeout ?? 0,
    entryTimeout: base.entryTimeout ?? 1,
    log: base.log ?? null,
    foreground: base.foreground ?? false,
    readOnly: base.readOnly ?? false,
    fuseOptions: [],
    cluster: null,
    fuseApi: base.fuseApi ?? 'lowlevel',
    kernelCache: base.kernelCache ?? 'lease'
  }
  const passed = new Map<string, string>()
  const clusterItems = new Map<string, string | null>()
  let entrySet = base.entryTimeout !== undefined
  let attrSet = base.attrTimeout !== undefined
  for (const item of items) {
    const eq = item.indexOf('=')
    const name = eq < 0 ? item : item.slice(0, eq)
    const value = eq < 0 ? null : item.slice(eq + 1)
    if (MOUNT_ONLY_OPTIONS.has(name) || DROPPED.has(name) || DROPPED_PREFIXES.some((p) => item.startsWith(p))) continue
    switch (name) {
      case 'data':
        if (!value) throw new MountOptionError('option data= needs a directory')
        s.data = value
        continue
      case 'fragments':
        s.fragments = parseNumber(name, value ?? '', 1, 4096, true)
        continue
      case 'attr_timeout':
        s.attrTimeout = parseNumber(name, value ?? '', 0, 3600, false)
        attrSet = true
        continue
      case 'entry_timeout':
        s.entryTimeout = parseNumber(name, value ?? '', 0, 3600, false)
        entrySet = true
        continue
      case 'log':
        if (!value) throw new MountOptionError('option log= needs a file path')
        s.log = value
        continue
      case 'foreground':
        s.foreground = true
        continue
      case 'cache':
        if (value !== 'lease' && value !== 'off') throw new MountOptionError(`option cache=${value ?? ''}: expected lease or off`)
        s.kernelCache = value
        continue
      case 'fuse_api':
        if (value !== 'lowlevel' && value !== 'path') throw new MountOptionError(`option fuse_api=${value ?? ''}: expected lowlevel or path`)
        s.fuseApi = value
        continue
    }
    if (CLUSTER_OPTIONS.has(name)) {
      clusterItems.set(name, value)
      continue
    }
    if (value === null && ALLOWED_MOUNT_OPTIONS.has(name)) {
      if (name === 'ro') s.readOnly = true
      if (name === 'rw') s.readOnly = false
      passed.set(name, item)
      continue
    }
    if (ALLOWED_MOUNT_OPTIONS.has(name + '=')) {
      if (value === null || value === '') throw new MountOptionError(`option ${name}= needs a value`)
      const kind = FUSE_VALUED[name]
      if (kind === 'uint') parseNumber(name, value, 0, 2 ** 32 - 1, true)
      if (kind === 'seconds') parseNumber(name, value, 0, 3600, false)
      if (kind === 'octal' && !/^[0-7]{1,4}$/.test(value)) throw new MountOptionError(`option ${name}=${value}: expected an octal mode such as 022`)
      if (/[,\s\\]/.test(value)) throw new MountOptionError(`option ${name}=${value}: no commas, spaces or backslashes`)
      passed.set(name, item)
      continue
    }
    throw new MountOptionError(`unknown mount option "${item}" (see "walkenfs help mount" for the list)`)
  }
  try {
    s.cluster = parseClusterOptions(clusterItems)
  } catch (e) {
    if (e instanceof ClusterOptionError) throw new MountOptionError(e.message)
    throw e
  }
  // Other hosts change names without telling this kernel, so a cluster
  // mount caches no name unless asked to (entry_timeout=S trades that).
  if (s.cluster !== null && !entrySet) s.entryTimeout = 0
  // Attributes: one host through the low-level binding keeps them 1 s. Every
  // change passes through this kernel, which updates or drops what it
  // cached; a hard link's names are one kernel inode; O_APPEND writes go to
  // the real end, whatever size the kernel has; and bytes dropped after a
  // failed commit drop the kernel's attributes (docs/fuse.md "Kernel
  // caches"). Not with the path API, where each name of a hard link is its
  // own kernel inode (a stale size or mode through the other names,
  // PLATFORM.md), and not on a cluster, where other hosts change
  // attributes without telling this kernel.
  if (!attrSet) s.attrTimeout = s.cluster === null && s.fuseApi === 'lowlevel' ? 1 : 0
  // A cluster mount's leases (cache=lease) need the low-level binding's
  // invalidations; fixed timeouts asked for replace them.
  if (s.cluster === null || s.fuseApi === 'path' || entrySet || attrSet) s.kernelCache = 'off'
  // walkenfs' own defaults for libfuse; a user value above wins.
  const defaults: Array<[string, string]> = [
    ['allow_other', 'allow_other'],
    ['default_permissions', 'default_permissions'],
    ['use_ino', 'use_ino'],
    // Not hard_remove: with it libfuse cannot fstat an unlinked open file
    // (ENOENT); the adapter turns libfuse's .fuse_hidden rename into a real
    // unlink instead (see src/fuse/adapter.ts).
    ['big_writes', 'big_writes'],
    ['max_write', 'max_write=131072'],
    ['fsname', `fsname=walkenfs:${s.data}`],
    ['subtype', 'subtype=walkenfs'],
    ['negative_timeout', 'negative_timeout=0']
  ]
  for (const [k, v] of defaults) if (!passed.has(k)) passed.set(k, v)
  if (s.fuseApi === 'path') {
    passed.set('attr_timeout', `attr_timeout=${s.attrTimeout}`)
    passed.set('entry_timeout', `entry_timeout=${s.entryTimeout}`)
  } else {
    // the low-level binding: timeouts travel with each answer, inodes are the model's own
    for (const k of ['use_ino', 'negative_timeout']) passed.delete(k)
    for (const item of passed.values()) {
      if (isPathApiOption(item)) throw new MountOptionError(`option ${item} belongs to libfuse's path API: mount with fuse_api=path to use it`)
    }
  }
  s.fuseOptions = [...passed.values()]
  try {
    checkMountOptions(s.fuseOptions)
  } catch (e) {
    throw new MountOptionError((e as Error).message)
  }
  return s
}
