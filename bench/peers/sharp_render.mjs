// On-demand render with sharp, the recipe the benchmark names: the encoded
// source in, `resize(W)` (lanczos3; sharp shrinks JPEGs on load),
// WebP q85 out.
//
//   node sharp_render.mjs [--reps 5] [--warmup 1] [--width 640] [--concurrency 1] IMG...
//
// Prints one JSON line per image, the same shape as `imgpipe bench --render`.
import sharp from 'sharp';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const args = process.argv.slice(2);
const opt = { reps: 5, warmup: 1, width: 640, concurrency: 1 };
const images = [];
for (let i = 0; i < args.length; i++) {
  const flag = { '--reps': 'reps', '--warmup': 'warmup', '--width': 'width', '--concurrency': 'concurrency' }[args[i]];
  if (flag) opt[flag] = Number(args[++i]);
  else images.push(args[i]);
}
sharp.cache(false);
sharp.concurrency(opt.concurrency);

const clock = () => Number(process.hrtime.bigint()) / 1e6;
const render = (input) => sharp(input).resize(opt.width).webp({ quality: 85 }).toBuffer({ resolveWithObject: true });
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round1 = (x) => Math.round(x * 10) / 10;

for (const path of images) {
  const input = readFileSync(path);
  for (let i = 0; i < opt.warmup; i++) await render(input);
  const ms = [];
  let last;
  for (let i = 0; i < opt.reps; i++) {
    const start = clock();
    last = await render(input);
    ms.push(clock() - start);
  }
  console.log(JSON.stringify({
    peer: `sharp-${sharp.versions.sharp}`,
    image: basename(path),
    spec: `webp/w=${opt.width}`,
    reps: opt.reps,
    median_ms: round1(median(ms)),
    min_ms: round1(Math.min(...ms)),
    bytes: last.data.length,
    size: [last.info.width, last.info.height],
  }));
}
