/**
 * Reads the cluster cookie, the one secret every host of a cluster shares.
 * Promise: a cookie file that anyone but its owner can read (or write) is
 * refused with a message saying how to fix it, as is a missing or too
 * short cookie; the secret itself never appears in a message.
 */
import { readFileSync, statSync } from 'node:fs'
import { WireError } from './errors.js'

/** Fewer bytes than this cannot be a random secret worth the name. */
export const MIN_COOKIE_BYTES = 16

export function readCookieFile (path: string): Buffer {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch (err) {
    throw new WireError('ECOOKIE', `cannot read cookie file ${path}: ${(err as Error).message}`)
  }
  if ((mode & 0o077) !== 0) {
    throw new WireError('ECOOKIE', `cookie file ${path} has mode ${(mode & 0o777).toString(8)}; ` +
      `it must be readable by its owner only (chmod 600 ${path})`)
  }
  const cookie = Buffer.from(readFileSync(path, 'utf8').trim(), 'utf8')
  if (cookie.length < MIN_COOKIE_BYTES) {
    throw new WireError('ECOOKIE', `cookie in ${path} is ${cookie.length} bytes; at least ${MIN_COOKIE_BYTES} are needed ` +
      `(e.g. head -c 32 /dev/urandom | base64 > ${path})`)
  }
  return cookie
}
