/**
 * Length-prefixed framing over a byte stream (pure, no I/O): a frame is a
 * 4-byte big-endian length followed by that many bytes. Promise: the
 * decoder never buffers more than one frame of at most `maxFrameBytes`
 * (plus one partial header); a longer announced length is refused before
 * any of its bytes are stored, so a peer cannot make us allocate what it
 * claims.
 */
import { WireError } from './errors.js'

export const FRAME_HEADER_BYTES = 4

export function frameHeader (length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
  h.writeUInt32BE(length, 0)
  return h
}

export class FrameDecoder {
  private chunks: Buffer[] = []
  private buffered = 0
  private need = -1 // body length of the frame being read; -1 while reading a header

  constructor (private readonly maxFrameBytes: number) {}

  /** Bytes held waiting for the rest of a frame. */
  get pendingBytes (): number { return this.buffered }

  /**
   * Adds received bytes and returns the complete frames they finish.
   * Throws EPROTO on an oversized or empty frame; the stream is then
   * unusable (framing is lost) and must be closed.
   */
  push (chunk: Buffer): Buffer[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const out: Buffer[] = []
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break
        const len = this.take(FRAME_HEADER_BYTES).readUInt32BE(0)
        if (len === 0) throw new WireError('EPROTO', 'empty frame')
        if (len > this.maxFrameBytes) {
          throw new WireError('EPROTO', `frame of ${len} bytes exceeds the limit of ${this.maxFrameBytes}`)
        }
        this.need = len
      }
      if (this.buffered < this.need) break
      out.push(this.take(this.need))
      this.need = -1
    }
    return out
  }

  /** Removes and returns every byte not yet part of a returned frame. */
  rest (): Buffer {
    const r = Buffer.concat(this.chunks)
    this.chunks = []
    this.buffered = 0
    this.need = -1
    return r
  }

  private take (n: number): Buffer {
    const first = this.chunks[0]!
    let result: Buffer
    if (first.length >= n) {
      result = first.subarray(0, n)
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
    } else {
      result = Buffer.allocUnsafe(n)
      let off = 0
      while (off < n) {
        const c = this.chunks[0]!
        const k = Math.min(c.length, n - off)
        c.copy(result, off, 0, k)
        off += k
        if (k === c.length) this.chunks.shift()
        else this.chunks[0] = c.subarray(k)
      }
    }
    this.buffered -= n
    return result
  }
}
