/**
 * A horizontal bar chart of ratios as a PNG file, with no dependency: an
 * RGB canvas, a 3×5 bitmap font (drawn at 2×), and a PNG encoder (the
 * signature, IHDR, one zlib IDAT, IEND; CRC-32 computed here).
 *
 * The x axis is logarithmic (a ratio of 0.5 is as far left of 1 as 2 is
 * right of it); every bar starts at 1×, a black tick marks its target, and
 * it is green when it meets the target, amber when better than 1 but short
 * of the target, red when worse than 1.
 */
import { writeFileSync } from 'node:fs'
import { deflateSync } from 'node:zlib'

const GLYPHS: Record<string, string> = {
  A: '.x.x.xxxxx.xx.x', B: 'xx.x.xxx.x.xxx.', C: '.xxx..x..x...xx', D: 'xx.x.xx.xx.xxx.', E: 'xxxx..xx.x..xxx',
  F: 'xxxx..xx.x..x..', G: '.xxx..x.xx.x.xx', H: 'x.xx.xxxxx.xx.x', I: 'xxx.x..x..x.xxx', J: '..x..x..xx.x.x.',
  K: 'x.xx.xxx.x.xx.x', L: 'x..x..x..x..xxx', M: 'x.xxxxx.xx.xx.x', N: 'xx.x.xx.xx.xx.x', O: '.x.x.xx.xx.x.x.',
  P: 'xx.x.xxx.x..x..', Q: '.x.x.xx.xxx..xx', R: 'xx.x.xxx.x.xx.x', S: '.xxx...x...xxx.', T: 'xxx.x..x..x..x.',
  U: 'x.xx.xx.xx.xxxx', V: 'x.xx.xx.xx.x.x.', W: 'x.xx.xxxxxxxx.x', X: 'x.xx.x.x.x.xx.x', Y: 'x.xx.x.x..x..x.',
  Z: 'xxx..x.x.x..xxx', 0: 'xxxx.xx.xx.xxxx', 1: '.x.xx..x..x.xxx', 2: 'xx...x.x.x..xxx', 3: 'xx...x.x...xxx.',
  4: 'x.xx.xxxx..x..x', 5: 'xxxx..xx...xxx.', 6: '.xxx..xxxx.xxxx', 7: 'xxx..x.x..x..x.', 8: 'xxxx.xxxxx.xxxx',
  9: 'xxxx.xxxx..xxx.', ' ': '...............', '.': '.............x.', ',': '..........x.x..', '/': '..x..x.x.x..x..',
  '+': '....x.xxx.x....', '-': '......xxx......', '%': 'x.x..x.x.x..x.x', '(': '.x.x..x..x...x.', ')': '.x...x..x..x.x.',
  ':': '....x.....x....', '=': '...xxx...xxx...', '>': 'x...x...x.x.x..', '<': '..x.x.x...x...x', 'µ': '...x.xx.xxx.x..',
  '?': 'xx...x.x.....x.', '×': '...x.x.x.x.x...', '≥': 'x...x.x.x...xxx', '_': '............xxx', '*': 'x.x.x.x.x.x.x.x'
}
const SCALE = 2
const CHAR_W = 4 * SCALE

type RGB = [number, number, number]

class Canvas {
  readonly px: Buffer
  constructor (readonly w: number, readonly h: number) {
    this.px = Buffer.alloc(w * h * 3, 255)
  }

  rect (x: number, y: number, w: number, h: number, c: RGB): void {
    for (let j = Math.max(0, Math.round(y)); j < Math.min(this.h, Math.round(y + h)); j++) {
      for (let i = Math.max(0, Math.round(x)); i < Math.min(this.w, Math.round(x + w)); i++) {
        const o = (j * this.w + i) * 3
        this.px[o] = c[0]; this.px[o + 1] = c[1]; this.px[o + 2] = c[2]
      }
    }
  }

  text (x: number, y: number, s: string, c: RGB = [0, 0, 0]): void {
    for (const ch of s) {
      const g = GLYPHS[ch.toUpperCase()] ?? GLYPHS['?']!
      for (let k = 0; k < 15; k++) if (g[k] === 'x') this.rect(x + (k % 3) * SCALE, y + Math.floor(k / 3) * SCALE, SCALE, SCALE, c)
      x += CHAR_W
    }
  }

  png (): Buffer {
    const raw = Buffer.alloc((this.w * 3 + 1) * this.h)
    for (let j = 0; j < this.h; j++) this.px.copy(raw, j * (this.w * 3 + 1) + 1, j * this.w * 3, (j + 1) * this.w * 3)
    const ihdr = Buffer.alloc(13)
    ihdr.writeUInt32BE(this.w, 0); ihdr.writeUInt32BE(this.h, 4)
    ihdr[8] = 8; ihdr[9] = 2 // 8 bits per channel, RGB
    return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))])
  }
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

function crc32 (b: Buffer): number {
  let c = 0xffffffff
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk (type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'latin1')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0)
  return Buffer.concat([head, data, crc])
}

export interface Bar {
  label: string
  /** how many times better than the reference (> 1: better) */
  ratio: number
  /** the ratio wanted (null: none) */
  target: number | null
}

/** Writes the chart to `file`. */
export function writeRatioChart (file: string, title: string, bars: Bar[]): void {
  const labelW = Math.max(...bars.map((b) => b.label.length)) * CHAR_W + 20
  const plotW = 560
  const rowH = 24
  const top = 50
  const w = labelW + plotW + 90
  const h = top + bars.length * rowH + 40
  const c = new Canvas(w, h)
  c.text(10, 10, title)
  const finite = bars.map((b) => b.ratio).filter((r) => Number.isFinite(r) && r > 0)
  const lo = Math.min(0.1, ...finite.map((r) => r / 1.5))
  const hi = Math.max(10, ...finite.map((r) => r * 1.5), ...bars.map((b) => (b.target ?? 1) * 1.5))
  const x = (r: number): number => labelW + (Math.log10(r) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * plotW
  // grid: powers of ten, labelled
  for (let p = Math.ceil(Math.log10(lo)); p <= Math.floor(Math.log10(hi)); p++) {
    const gx = x(10 ** p)
    c.rect(gx, top - 6, 1, bars.length * rowH + 6, p === 0 ? [0, 0, 0] : [200, 200, 200])
    c.text(gx - 8, top + bars.length * rowH + 8, p >= 0 ? `${10 ** p}x` : `${(10 ** p).toFixed(-p)}x`, [90, 90, 90])
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH
    c.text(10, y + 6, b.label)
    if (!Number.isFinite(b.ratio) || b.ratio <= 0) { c.text(x(1) + 6, y + 6, 'n/a', [150, 0, 0]); return }
    const color: RGB = b.target !== null && b.ratio >= b.target ? [46, 160, 67] : b.ratio >= 1 ? [230, 160, 30] : [205, 50, 50]
    const x0 = Math.min(x(1), x(b.ratio))
    const x1 = Math.max(x(1), x(b.ratio))
    c.rect(x0, y + 3, Math.max(1, x1 - x0), rowH - 8, color)
    if (b.target !== null) c.rect(x(b.target) - 1, y, 3, rowH - 2, [0, 0, 0])
    c.text(Math.max(x1, b.target !== null ? x(b.target) + 2 : 0) + 6, y + 6, `${b.ratio >= 10 ? b.ratio.toFixed(0) : b.ratio.toFixed(2)}x`)
  })
  writeFileSync(file, c.png())
}
