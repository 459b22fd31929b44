// The same five-variant recipe with sharp (libvips), decoding once like
// imgpipe: decode + EXIF orientation + flatten on white to raw sRGB pixels,
// resize (lanczos3, inside) only when a side exceeds --max-dim, then each
// variant encoded from those pixels: JPEG q85 / q60 (optimised Huffman
// coding, 4:2:0), WebP q85 effort 4, PNG level 9 with adaptive filtering,
// thumbnail inside 300x300 (lanczos3) as JPEG q80.
//
//   node sharp_peer.mjs [--reps 5] [--warmup 1] [--max-dim 4096] [--concurrency 1] [--dump DIR] IMG...
//
// Prints one JSON line per image, the same shape as `imgpipe bench`.
import sharp from 'sharp';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';

const args = process.argv.slice(2);
const opt = { reps: 5, warmup: 1, maxDim: 4096, concurrency: 1, dump: null };
const images = [];
for (let i = 0; i < args.length; i++) {
  const flag = { '--reps': 'reps', '--warmup': 'warmup', '--max-dim': 'maxDim', '--concurrency': 'concurrency', '--dump': 'dump' }[args[i]];
  if (flag) opt[flag] = flag === 'dump' ? args[++i] : Number(args[++i]);
  else images.push(args[i]);
}
sharp.cache(false);
sharp.concurrency(opt.concurrency);

const STEPS = ['decode', 'resize', 'jpeg85', 'jpeg60', 'webp85', 'png', 'thumb300', 'total'];
const EXT = { jpeg85: 'jpg', jpeg60: 'jpg', webp85: 'webp', png: 'png', thumb300: 'jpg' };
const clock = () => Number(process.hrtime.bigint()) / 1e6;
const inside = (side) => ({ width: side, height: side, fit: 'inside', kernel: 'lanczos3' });

async function once(input) {
  const ms = {};
  const out = {};
  const start = clock();
  let { data, info } = await sharp(input).rotate().flatten({ background: '#ffffff' }).toColourspace('srgb')
    .raw().toBuffer({ resolveWithObject: true });
  let mark = clock();
  ms.decode = mark - start;
  const raw = () => ({ raw: { width: info.width, height: info.height, channels: info.channels } });
  if (Math.max(info.width, info.height) > opt.maxDim) {
    ({ data, info } = await sharp(data, raw()).resize(inside(opt.maxDim)).raw().toBuffer({ resolveWithObject: true }));
  }
  ms.resize = clock() - mark;
  const encodes = {
    jpeg85: () => sharp(data, raw()).jpeg({ quality: 85, optimiseCoding: true }).toBuffer(),
    jpeg60: () => sharp(data, raw()).jpeg({ quality: 60, optimiseCoding: true }).toBuffer(),
    webp85: () => sharp(data, raw()).webp({ quality: 85, effort: 4 }).toBuffer(),
    png: () => sharp(data, raw()).png({ compressionLevel: 9, adaptiveFiltering: true }).toBuffer(),
    thumb300: () => sharp(data, raw()).resize(inside(300)).jpeg({ quality: 80, optimiseCoding: true }).toBuffer(),
  };
  for (const [name, encode] of Object.entries(encodes)) {
    mark = clock();
    out[name] = await encode();
    ms[name] = clock() - mark;
  }
  ms.total = clock() - start;
  return { ms, out, data, info, raw };
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round1 = (x) => Math.round(x * 10) / 10;

for (const path of images) {
  const input = readFileSync(path);
  for (let i = 0; i < opt.warmup; i++) await once(input);
  const samples = Object.fromEntries(STEPS.map((k) => [k, []]));
  let last;
  for (let i = 0; i < opt.reps; i++) {
    last = await once(input);
    for (const k of STEPS) samples[k].push(last.ms[k]);
  }
  const thumb = await sharp(last.out.thumb300).metadata();
  if (opt.dump) {
    const dir = join(opt.dump, basename(path, extname(path)));
    mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries(last.out)) writeFileSync(join(dir, `${k}.${EXT[k]}`), v);
    await sharp(last.data, last.raw()).png({ compressionLevel: 1 }).toFile(join(dir, 'ref.png'));
    await sharp(last.data, last.raw()).resize(inside(300)).png({ compressionLevel: 1 }).toFile(join(dir, 'thumbref.png'));
  }
  console.log(JSON.stringify({
    peer: `sharp-${sharp.versions.sharp}`,
    image: basename(path),
    out_size: [last.info.width, last.info.height],
    thumb_size: [thumb.width, thumb.height],
    reps: opt.reps,
    median_ms: Object.fromEntries(STEPS.map((k) => [k, round1(median(samples[k]))])),
    min_ms: Object.fromEntries(STEPS.map((k) => [k, round1(Math.min(...samples[k]))])),
    bytes: Object.fromEntries(Object.entries(last.out).map(([k, v]) => [k, v.length])),
  }));
}
