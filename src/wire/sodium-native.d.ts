/**
 * Types for the part of sodium-native (v5) that walkenfs uses. The package
 * ships no declarations; these follow its README (buffers are written in
 * place, sizes are the libsodium constants).
 */
declare module 'sodium-native' {
  export const crypto_kx_PUBLICKEYBYTES: number
  export const crypto_kx_SECRETKEYBYTES: number
  export const crypto_kx_SESSIONKEYBYTES: number
  export function crypto_kx_keypair (pk: Buffer, sk: Buffer): void
  export function crypto_kx_client_session_keys (rx: Buffer, tx: Buffer, clientPk: Buffer, clientSk: Buffer, serverPk: Buffer): void
  export function crypto_kx_server_session_keys (rx: Buffer, tx: Buffer, serverPk: Buffer, serverSk: Buffer, clientPk: Buffer): void

  export const crypto_generichash_BYTES: number
  export function crypto_generichash (out: Buffer, input: Buffer, key?: Buffer): void

  export const crypto_auth_BYTES: number
  export const crypto_auth_KEYBYTES: number
  export function crypto_auth (out: Buffer, input: Buffer, key: Buffer): void
  export function crypto_auth_verify (mac: Buffer, input: Buffer, key: Buffer): boolean

  export const crypto_aead_chacha20poly1305_ietf_ABYTES: number
  export const crypto_aead_chacha20poly1305_ietf_KEYBYTES: number
  export const crypto_aead_chacha20poly1305_ietf_NPUBBYTES: number
  export function crypto_aead_chacha20poly1305_ietf_encrypt (c: Buffer, m: Buffer, ad: Buffer | null, nsec: null, npub: Buffer, k: Buffer): number
  export function crypto_aead_chacha20poly1305_ietf_decrypt (m: Buffer, nsec: null, c: Buffer, ad: Buffer | null, npub: Buffer, k: Buffer): number

  export function randombytes_buf (buf: Buffer): void
  export function sodium_memcmp (a: Buffer, b: Buffer): boolean
}
