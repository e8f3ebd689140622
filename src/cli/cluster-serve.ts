/**
 * The daemon body of a cluster mount (cluster= given). Not served by this
 * build yet: it refuses with a clear message rather than run one-host.
 */
import type { MountSettings } from './mount-options.js'
import { fail } from './serve.js'

export async function serveCluster (_mountPoint: string, _settings: MountSettings & { log: string }, daemon: boolean): Promise<number> {
  return fail('cluster mode is not served by this build yet', daemon)
}
