/**
 * `walkenfs check DATA` on one host: open the local store of a data
 * directory (never creating one), run the fsck over its tables, close.
 * Orphans are reported, not freed: the check changes nothing.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Store, StoreError, STORE_DIR } from '../store/store.js'
import { LocalTables } from '../tables/local.js'
import { checkFs, type Problem } from './check.js'

export async function checkDataDir (dataDir: string): Promise<Problem[]> {
  if (!existsSync(join(dataDir, STORE_DIR))) throw new StoreError('ENOENT', `${dataDir} holds no walkenfs store (${STORE_DIR}/ is missing)`)
  const store = Store.open(dataDir)
  try {
    return await checkFs(LocalTables.open(store))
  } finally {
    await store.close()
  }
}
