// Runs infra/cloudfront/viewer-request.js over every case in
// tests/vectors/transform.json, as CloudFront would call it, and fails
// unless it agrees with the Rust canonicalizer on all of them.
// Usage: node infra/cloudfront/test.mjs
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = readFileSync(join(here, 'viewer-request.js'), 'utf8');
// CloudFront Functions have no modules: the file defines `handler` globally.
const handler = new Function(`${source}\nreturn handler;`)();
const vectors = JSON.parse(readFileSync(join(here, '../../tests/vectors/transform.json'), 'utf8'));

// The query string as CloudFront hands it to a function: an object of keys
// (as sent), each { value } or { value, multiValue: [{ value }, ...] }.
function querystring(raw) {
  const qs = {};
  if (raw === undefined) return qs;
  for (const piece of raw.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const key = eq < 0 ? piece : piece.slice(0, eq);
    const value = eq < 0 ? '' : piece.slice(eq + 1);
    if (qs[key] === undefined) qs[key] = { value };
    else {
      qs[key].multiValue = qs[key].multiValue || [{ value: qs[key].value }];
      qs[key].multiValue.push({ value });
    }
  }
  return qs;
}

let failed = 0;
for (const v of vectors) {
  const q = v.input.indexOf('?');
  const uri = q < 0 ? v.input : v.input.slice(0, q);
  const headers = v.accept === undefined ? {} : { accept: { value: v.accept } };
  const event = {
    version: '1.0',
    context: { eventType: 'viewer-request' },
    viewer: { ip: '203.0.113.7' },
    request: { method: 'GET', uri, querystring: querystring(q < 0 ? undefined : v.input.slice(q + 1)), headers, cookies: {} },
  };
  const out = handler(event);
  let got;
  if (out.statusCode !== undefined) {
    const body = JSON.parse(out.body.data);
    if (out.statusCode !== 400 || body.status !== 400 || out.headers['content-type'].value !== 'application/problem+json') {
      got = `malformed error response ${JSON.stringify(out)}`;
    } else {
      got = { error: body.code };
    }
  } else {
    got = Object.keys(out.querystring).length === 0 ? { canonical: out.uri } : { canonical: `${out.uri} with a query left` };
  }
  const want = v.error !== undefined ? { error: v.error } : { canonical: v.canonical };
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    failed++;
    console.log(`FAIL ${v.input.slice(0, 120)} (accept ${JSON.stringify(v.accept)}): got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}
console.log(`cloudfront function: ${vectors.length - failed} of ${vectors.length} transform vectors agree with the Rust canonicalizer`);
process.exit(failed === 0 && vectors.length > 100 ? 0 : 1);
