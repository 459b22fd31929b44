// Runs infra/cloudfront/viewer-request.js over every case in
// tests/vectors/transform.json under node, through the checks in vectors.js
// (test-njs.sh runs the same under njs), and fails unless it agrees with the
// Rust canonicalizer on all of them.
// Usage: node infra/cloudfront/test.mjs
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const read = (name) => readFileSync(join(here, name), 'utf8');
// CloudFront Functions have no modules: the file defines `handler` globally.
const handler = new Function(`${read('viewer-request.js')}\nreturn handler;`)();
const checkVectors = new Function(`${read('vectors.js')}\nreturn checkVectors;`)();
const vectors = JSON.parse(read('../../tests/vectors/transform.json'));
const failed = checkVectors(handler, vectors, console.log);
console.log(`cloudfront function (node): ${vectors.length - failed} of ${vectors.length} transform vectors agree with the Rust canonicalizer`);
process.exit(failed === 0 && vectors.length > 100 ? 0 : 1);
