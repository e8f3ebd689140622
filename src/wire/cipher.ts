/**
 * Per-direction frame protection after the handshake (pure, no I/O).
 * ChaCha20-Poly1305 (IETF) with a counter nonce: every frame is encrypted
 * and authenticated, and because each side counts frames, a dropped,
 * reordered, replayed or truncated frame fails authentication. One key per
 * direction, so the two counters never share a nonce.
 */
import sodium from 'sodium-native'
import { WireError } from './errors.js'

export const TAG_BYTES = sodium.crypto_aead_chacha20poly1305_ietf_ABYTES

export class FrameSealer {
  private counter = 0n
  private readonly nonce = Buffer.alloc(sodium.crypto_aead_chacha20poly1305_ietf_NPUBBYTES)
  constructor (private readonly key: Buffer) {}

  /** Returns `header ‖ ciphertext ‖ tag` ready to write, header = length. */
  seal (plain: Buffer): Buffer {
    const out = Buffer.allocUnsafe(4 + plain.length + TAG_BYTES)
    out.writeUInt32BE(plain.length + TAG_BYTES, 0)
    this.nonce.writeBigUInt64LE(this.counter++, 4)
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out.subarray(4), plain, null, null, this.nonce, this.key)
    return out
  }
}

export class FrameOpener {
  private counter = 0n
  private readonly nonce = Buffer.alloc(sodium.crypto_aead_chacha20poly1305_ietf_NPUBBYTES)
  constructor (private readonly key: Buffer) {}

  open (body: Buffer): Buffer {
    if (body.length <= TAG_BYTES) throw new WireError('EPROTO', 'encrypted frame shorter than its tag')
    const plain = Buffer.allocUnsafe(body.length - TAG_BYTES)
    this.nonce.writeBigUInt64LE(this.counter++, 4)
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(plain, null, body, null, this.nonce, this.key)
    } catch {
      throw new WireError('EPROTO', 'frame failed authentication (forged, replayed or corrupted)')
    }
    return plain
  }
}
