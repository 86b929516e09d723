// console_png.js: how much a PNG screenshot varies, with node's zlib only
// (no image library): so the browser test can fail on a blank page.
//
// pngStats(buffer) -> { width, height, mean, stddev, distinct, nonBg }
//   mean/stddev of the luma (0-255) over every pixel, distinct = how many
//   distinct colours in a sample, nonBg = share of pixels that differ from
//   the top-left pixel by more than 16 in any channel.
// Handles what chromium writes: 8-bit RGB or RGBA, not interlaced, all five
// row filters. Anything else throws (a clear error, never a wrong figure).
'use strict';
const zlib = require('node:zlib');

function pngStats(buf) {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(sig)) {
    throw new Error('not a PNG (bad signature)');
  }
  let off = 8;
  let width = 0, height = 0, depth = 0, ctype = 0, interlace = 0;
  const idat = [];
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8];
      ctype = data[9];
      interlace = data[12];
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    off += 12 + len;
  }
  if (depth !== 8 || (ctype !== 2 && ctype !== 6) || interlace !== 0) {
    throw new Error(`PNG kind not handled: depth ${depth}, colour type ${ctype}, interlace ${interlace}`);
  }
  const bpp = ctype === 6 ? 4 : 3;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  if (raw.length < height * (stride + 1)) throw new Error('PNG data too short');
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = prev ? prev[i] : 0;
      const c = prev && i >= bpp ? prev[i - bpp] : 0;
      let v = src[i];
      switch (f) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) >> 1; break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error(`PNG row ${y}: unknown filter ${f}`);
      }
      row[i] = v & 0xff;
    }
  }
  let sum = 0, sum2 = 0, nonBg = 0;
  const n = width * height;
  const bg = [px[0], px[1], px[2]];
  const colours = new Set();
  for (let p = 0; p < n; p++) {
    const o = p * bpp;
    const r = px[o], g = px[o + 1], b = px[o + 2];
    const l = 0.299 * r + 0.587 * g + 0.114 * b;
    sum += l;
    sum2 += l * l;
    if (Math.abs(r - bg[0]) > 16 || Math.abs(g - bg[1]) > 16 || Math.abs(b - bg[2]) > 16) nonBg++;
    if ((p & 15) === 0 && colours.size < 4096) colours.add((r << 16) | (g << 8) | b);
  }
  const mean = sum / n;
  return {
    width, height, mean,
    stddev: Math.sqrt(Math.max(0, sum2 / n - mean * mean)),
    distinct: colours.size,
    nonBg: nonBg / n,
  };
}

module.exports = { pngStats };
