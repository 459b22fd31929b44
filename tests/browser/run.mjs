// The upload page and CORS in headless Chromium (Debian's chromium, driven by
// playwright-core), against the real binary:
//   a. the page on `imgpipe serve`: a JPEG with EXIF orientation 6 and a PNG
//      with alpha to ready, their five variants rendered at the oriented
//      sizes, the on-demand preview, the SVG and too-large messages, the
//      token prompt, the keyboard and a narrow screen;
//   b. a page on another loopback origin calling the API with fetch():
//      allowed when IMGPIPE_CORS_ORIGINS names it, blocked when not;
//   c. the same page flow on `serve --backend aws` + `worker` against moto,
//      the browser PUTting to moto's S3 under infra/'s CORS rule, with the
//      token in X-Imgpipe-Token.
// Screenshots go to target/browser/. Usage (scripts/browser-test.sh sets it
// up): node tests/browser/run.mjs
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.IMGPIPE_BIN || path.join(ROOT, 'target/debug/imgpipe');
const CORPUS = process.env.IMGPIPE_CORPUS || path.join(ROOT, '../shared/corpus');
const SHOTS = path.join(ROOT, 'target/browser');
const MOTO = process.env.IMGPIPE_TEST_MOTO_URL || '';
const MOTO_PYTHON = process.env.MOTO_PYTHON || path.join(ROOT, 'target/venv-moto/bin/python');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Corpus files and their oriented sizes (../shared/corpus/MANIFEST.tsv).
const JPEG6 = 'exif-orientation-6.jpg';
const PNG_ALPHA = 'png-grey-alpha-8bit.png';
const SVG = 'svg-plain.svg';

const children = [];
const tempDirs = [];
let failures = 0;

function manifest() {
  const file = path.join(CORPUS, 'MANIFEST.tsv');
  if (!fs.existsSync(file)) throw new Error(`the corpus is missing: ${file} (set IMGPIPE_CORPUS)`);
  const sizes = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
    const cols = line.split('\t');
    const m = /oriented=(\d+)x(\d+)/.exec(cols[6] || '');
    if (m) sizes[cols[0]] = [Number(m[1]), Number(m[2])];
  }
  return sizes;
}

function corpusFile(name) {
  return path.join(CORPUS, name);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

async function waitHealthy(base, proc, logFile) {
  for (let i = 0; i < 300; i += 1) {
    if (proc.exitCode !== null) break;
    try {
      const res = await fetch(`${base}/health`);
      if (res.ok) return;
    } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`imgpipe did not come up at ${base}:\n${fs.readFileSync(logFile, 'utf8')}`);
}

function startProcess(args, env, logName) {
  const log = path.join(tempDir('imgpipe-log-'), `${logName}.log`);
  const fd = fs.openSync(log, 'w');
  const proc = spawn(BIN, args, { env: { ...process.env, RUST_LOG: 'info', ...env }, stdio: ['ignore', fd, fd] });
  children.push(proc);
  return { proc, log };
}

// `imgpipe serve` on a free port with `env`; resolves once /health is 200.
async function serve(env = {}, extraArgs = []) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const args = ['serve', '--addr', `127.0.0.1:${port}`, ...extraArgs];
  if (!extraArgs.includes('--backend')) args.push('--data-dir', tempDir('imgpipe-data-'));
  const { proc, log } = startProcess(args, { IMGPIPE_PUBLIC_BASE_URL: base, ...env }, `serve-${port}`);
  await waitHealthy(base, proc, log);
  return { base, port, proc, log };
}

async function test(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}\n${e.stack || e}`);
  }
}

async function newPage(browser, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.consoleErrors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => page.consoleErrors.push(String(err)));
  // Listening from the start intercepts every file chooser the page opens.
  page.fileChoosers = [];
  page.on('filechooser', (chooser) => page.fileChoosers.push(chooser));
  return page;
}

async function shot(page, name, fullPage = true) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}

function card(page, filename) {
  return page.locator(`li.upload[data-filename="${filename}"]`);
}

async function waitState(page, filename, states, timeout = 120_000) {
  const c = card(page, filename);
  await c.waitFor({ timeout: 10_000 });
  await page.waitForFunction(
    ({ f, s }) => {
      const el = document.querySelector(`li.upload[data-filename="${f}"]`);
      return el && s.includes(el.dataset.state);
    },
    { f: filename, s: states },
    { timeout },
  );
  return c;
}

// Every variant <img> of a ready card has loaded, at the size its caption
// and the oriented original say.
async function assertVariants(page, filename, [ow, oh]) {
  const c = await waitState(page, filename, ['ready', 'failed']);
  assert.equal(await c.getAttribute('data-state'), 'ready', `${filename}: ${await c.locator('.upload-error').textContent()}`);
  await page.waitForFunction(
    (f) => [...document.querySelectorAll(`li.upload[data-filename="${f}"] .variant img`)]
      .every((img) => img.complete && img.naturalWidth > 0),
    filename,
    { timeout: 30_000 },
  );
  const imgs = await c.locator('.variant').evaluateAll((els) => els.map((li) => {
    const img = li.querySelector('img');
    return { name: li.dataset.variant, w: img.naturalWidth, h: img.naturalHeight, src: img.src };
  }));
  assert.deepEqual(imgs.map((v) => v.name), ['jpeg', 'jpeg-low', 'webp', 'png', 'thumb']);
  for (const v of imgs) {
    if (v.name === 'thumb') {
      assert.equal(Math.max(v.w, v.h), 300, `${filename} thumb ${v.w}x${v.h}`);
      assert.ok(Math.abs(v.w / v.h - ow / oh) < 0.02, `${filename} thumb aspect ${v.w}x${v.h}`);
    } else {
      assert.deepEqual([v.w, v.h], [ow, oh], `${filename} ${v.name}`);
    }
  }
  const facts = await c.locator('.facts').textContent();
  assert.ok(facts.includes(`${ow} × ${oh}`), `facts show the oriented size: ${facts}`);
  return c;
}

async function assertPreview(page, c, width) {
  await c.locator('.preview-width').fill(String(width));
  await c.locator('.preview-form button').click();
  await page.waitForFunction(
    (id) => ['loaded', 'failed'].includes(document.querySelector(`li.upload[data-id="${id}"]`).dataset.preview),
    await c.getAttribute('data-id'),
    { timeout: 60_000 },
  );
  assert.equal(await c.getAttribute('data-preview'), 'loaded', await c.locator('.preview-caption').textContent());
  const natural = await c.locator('.preview-img').evaluate((img) => img.naturalWidth);
  assert.equal(natural, width);
}

// --- a. the page on `imgpipe serve` -------------------------------------------

async function pageOnServe(browser, sizes) {
  const app = await serve();
  const page = await newPage(browser);
  const res = await page.goto(`${app.base}/`);
  const headers = res.headers();
  assert.equal(res.status(), 200);
  assert.match(headers['content-type'], /^text\/html/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  const csp = headers['content-security-policy'];
  assert.match(csp, /script-src 'self';/);
  assert.match(csp, /style-src 'self';/);
  assert.doesNotMatch(csp, /unsafe/);
  assert.equal(await page.locator('#token-box').isHidden(), true, 'no token box on an open server');

  // Keyboard: Tab reaches the drop target and Enter opens the file chooser.
  await page.keyboard.press('Tab');
  let focused = '';
  for (let i = 0; i < 10 && focused !== 'drop-target'; i += 1) {
    focused = await page.evaluate(() => document.activeElement.id);
    if (focused !== 'drop-target') await page.keyboard.press('Tab');
  }
  assert.equal(focused, 'drop-target', 'the drop target is reachable with Tab');
  await page.keyboard.press('Enter');
  for (let i = 0; i < 50 && page.fileChoosers.length === 0; i += 1) await page.waitForTimeout(100);
  assert.equal(page.fileChoosers.length, 1, 'Enter on the drop target opens the file chooser');
  assert.equal(page.fileChoosers[0].isMultiple(), true);


  await page.locator('#file').setInputFiles([corpusFile(JPEG6), corpusFile(PNG_ALPHA)]);
  const jpeg = await assertVariants(page, JPEG6, sizes[JPEG6]);
  await assertVariants(page, PNG_ALPHA, sizes[PNG_ALPHA]);
  // The upload went through the progress bar to 100 %.
  assert.equal(await card(page, JPEG6).locator('.upload-progress').isHidden(), true);
  await assertPreview(page, jpeg, 640);
  await shot(page, 'page-ready');

  await page.locator('#file').setInputFiles([corpusFile(SVG)]);
  const svg = await waitState(page, SVG, ['failed']);
  const err = svg.locator('.upload-error');
  assert.equal(await err.getAttribute('data-code'), 'unsupported_format');
  assert.match(await err.textContent(), /SVG files can't be used; use JPEG, PNG, WebP, GIF, TIFF, BMP or AVIF\./);
  assert.doesNotMatch(await err.textContent(), /content_type/);
  await shot(page, 'page-svg-refused');
  // Nothing refused by the policy, nothing missing (the 415 of the SVG's
  // POST is the one error the browser logs).
  assert.deepEqual(page.consoleErrors.filter((e) => !/status of 415/.test(e)), []);

  // A narrow screen: nothing wider than the viewport.
  const narrow = await newPage(browser, { width: 375, height: 800 });
  await narrow.goto(`${app.base}/`);
  await narrow.locator('#file').setInputFiles([corpusFile(PNG_ALPHA)]);
  await assertVariants(narrow, PNG_ALPHA, sizes[PNG_ALPHA]);
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 375px screen`);
  await shot(narrow, 'page-narrow');
  await narrow.context().close();
  await page.context().close();
  return app;
}

async function tokenPrompt(browser, sizes) {
  const app = await serve({ IMGPIPE_UPLOAD_TOKENS: 'page-token-1', IMGPIPE_MAX_UPLOAD_BYTES: '200000' });
  const page = await newPage(browser);
  await page.goto(`${app.base}/`);
  assert.equal(await page.locator('#token-box').isVisible(), true, 'the token box is shown');
  await shot(page, 'token-prompt', false);

  // A wrong token: refused in words, and asked for again.
  await page.locator('#token').fill('not-the-token');
  await page.locator('#token-form button').click();
  await page.locator('#file').setInputFiles([corpusFile(PNG_ALPHA)]);
  const refused = await waitState(page, PNG_ALPHA, ['failed']);
  assert.equal(await refused.locator('.upload-error').getAttribute('data-code'), 'forbidden');
  assert.match(await page.locator('#token-help').textContent(), /refused/);
  assert.doesNotMatch(await page.locator('#token-status').textContent(), /saved/, 'no stale "Token saved"');
  await refused.evaluate((el) => el.remove());

  // The right token: the upload goes through, with the token in X-Imgpipe-Token.
  await page.locator('#token').fill('page-token-1');
  await page.locator('#token-form button').click();
  const sent = page.waitForRequest((r) => r.url().endsWith('/uploads') && r.method() === 'POST');
  await page.locator('#file').setInputFiles([corpusFile(PNG_ALPHA)]);
  const req = await sent;
  assert.equal(req.headers()['x-imgpipe-token'], 'page-token-1');
  assert.match(req.headers()['x-amz-content-sha256'], /^[0-9a-f]{64}$/);
  const kept = await assertVariants(page, PNG_ALPHA, sizes[PNG_ALPHA]);

  // Delete, after a confirmation: with the image's own delete token (from
  // its POST /uploads answer, never the upload token), then the URLs
  // answer 410.
  const id = (await kept.locator('.facts dd').first().textContent()).trim();
  const deleteToken = await page.evaluate((id) => sessionStorage.getItem(`imgpipe-delete-token-${id}`), id);
  assert.match(deleteToken || '', /^[0-9a-f]{48}$/, 'the page kept the delete token');
  page.once('dialog', (d) => d.accept());
  const del = page.waitForRequest((r) => r.method() === 'DELETE');
  await kept.locator('.delete').click();
  assert.equal((await del).headers()['x-imgpipe-token'], deleteToken);
  await waitState(page, PNG_ALPHA, ['deleted']);
  assert.match(await kept.locator('.delete-status').textContent(), /410/);
  assert.equal(await kept.locator('.variants img').count(), 0);
  const gone = await page.evaluate(async (u) => (await fetch(u)).status, `/meta/${id}`);
  assert.equal(gone, 410);
  await shot(page, 'token-deleted');
  await kept.evaluate((el) => el.remove());

  // A file over IMGPIPE_MAX_UPLOAD_BYTES: the server's 413 detail, in words.
  await page.locator('#file').setInputFiles([corpusFile(JPEG6)]);
  const big = await waitState(page, JPEG6, ['failed']);
  assert.equal(await big.locator('.upload-error').getAttribute('data-code'), 'too_large');
  assert.match(await big.locator('.upload-error').textContent(), /200000 byte limit/);
  await shot(page, 'token-and-too-large');
  await page.context().close();
}

// --- b. another origin ----------------------------------------------------------

// A plain page on its own loopback origin, as another site's page would be.
async function otherOrigin() {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>another site</title><canvas id="c"></canvas>');
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${port}`, server };
}

// What an app's own page does (the README's fetch() snippet): POST, PUT,
// poll /meta, then draw the thumbnail into a canvas and read it back.
async function crossOriginFlow(page, api, bytesB64, token) {
  return page.evaluate(async ({ api, bytesB64, token }) => {
    const bytes = Uint8Array.from(atob(bytesB64), (c) => c.charCodeAt(0));
    const file = new Blob([bytes], { type: 'image/png' });
    const headers = { 'content-type': 'application/json' };
    if (token) headers['x-imgpipe-token'] = token;
    try {
      const created = await fetch(`${api}/uploads`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ content_type: file.type, content_length: file.size }),
      });
      if (!created.ok) return { stage: 'post', status: created.status };
      const { id, upload } = await created.json();
      const own = new Set(['content-length', 'host']); // the browser sets these itself
      const putHeaders = Object.fromEntries(Object.entries(upload.headers).filter(([name]) => !own.has(name)));
      const put = await fetch(upload.url, { method: upload.method, headers: putHeaders, body: file });
      if (!put.ok) return { stage: 'put', status: put.status };
      let meta;
      for (let i = 0; i < 200; i += 1) {
        meta = await (await fetch(`${api}/meta/${id}`)).json();
        if (meta.status !== 'pending') break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const img = new Image();
      img.crossOrigin = 'anonymous';
      img.src = meta.variants.thumb.url;
      await img.decode();
      const canvas = document.getElementById('c');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const pixel = Array.from(ctx.getImageData(0, 0, 1, 1).data); // throws on a tainted canvas
      return { stage: 'done', status: meta.status, thumb: [img.naturalWidth, img.naturalHeight], pixel };
    } catch (e) {
      return { stage: 'blocked', error: `${e.name}: ${e.message}` };
    }
  }, { api, bytesB64, token });
}

async function crossOrigin(browser, sizes, sameOriginApp) {
  const site = await otherOrigin();
  try {
    const app = await serve({ IMGPIPE_CORS_ORIGINS: `https://elsewhere.example, ${site.origin}`, IMGPIPE_UPLOAD_TOKENS: 'cors-token' });
    const page = await newPage(browser);
    await page.goto(`${site.origin}/`);
    const png = fs.readFileSync(corpusFile(PNG_ALPHA)).toString('base64');
    const ok = await crossOriginFlow(page, app.base, png, 'cors-token');
    assert.equal(ok.stage, 'done', JSON.stringify(ok));
    assert.equal(ok.status, 'ready');
    const [w, h] = sizes[PNG_ALPHA];
    assert.equal(Math.max(...ok.thumb), 300);
    assert.ok(Math.abs(ok.thumb[0] / ok.thumb[1] - w / h) < 0.02, JSON.stringify(ok.thumb));
    assert.equal(ok.pixel.length, 4);

    // The preflight needed no token, and named what the route takes.
    const pre = await fetch(`${app.base}/uploads`, {
      method: 'OPTIONS',
      headers: { origin: site.origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-imgpipe-token' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), site.origin);
    assert.match(pre.headers.get('access-control-allow-headers'), /x-imgpipe-token/);

    // The same page against a server that does not name its origin: the
    // browser blocks the very first call.
    for (const other of [sameOriginApp, await serve({ IMGPIPE_CORS_ORIGINS: 'https://elsewhere.example' })]) {
      const blocked = await crossOriginFlow(page, other.base, png, null);
      assert.equal(blocked.stage, 'blocked', JSON.stringify(blocked));
      assert.match(blocked.error, /TypeError: Failed to fetch/);
    }
    await page.context().close();
  } finally {
    site.server.close();
  }
}

// --- c. the AWS path --------------------------------------------------------------

async function awsPath(browser, sizes) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const stack = JSON.parse(execFileSync(MOTO_PYTHON, [path.join(ROOT, 'tests/browser/aws_stack.py'), MOTO, base], { encoding: 'utf8' }));
  const env = {
    AWS_ENDPOINT_URL: MOTO,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_EC2_METADATA_DISABLED: 'true',
    IMGPIPE_S3_PATH_STYLE: 'true',
    IMGPIPE_BACKEND: 'aws',
    IMGPIPE_RAW_BUCKET: stack.raw,
    IMGPIPE_PROCESSED_BUCKET: stack.processed,
    IMGPIPE_TABLE: stack.table,
    IMGPIPE_QUEUE_URL: stack.queue_url,
    IMGPIPE_PUBLIC_BASE_URL: base,
    IMGPIPE_UPLOAD_TOKENS: 'aws-token',
  };
  const { proc, log } = startProcess(['serve', '--backend', 'aws', '--addr', `127.0.0.1:${port}`], env, 'serve-aws');
  await waitHealthy(base, proc, log);
  startProcess(['worker'], env, 'worker');

  const page = await newPage(browser);
  const res = await page.goto(`${base}/`);
  assert.match(res.headers()['content-security-policy'], new RegExp(`connect-src 'self'[^;]* ${MOTO.replace(/[.]/g, '\\.')}`));
  await page.locator('#token').fill('aws-token');
  await page.locator('#token-form button').click();
  const requests = [];
  page.on('request', (r) => requests.push(r));
  await page.locator('#file').setInputFiles([corpusFile(JPEG6)]);
  const c = await assertVariants(page, JPEG6, sizes[JPEG6]);
  await assertPreview(page, c, 480);
  const post = requests.find((r) => r.url() === `${base}/uploads`);
  assert.equal(post.headers()['x-imgpipe-token'], 'aws-token');
  assert.equal(post.headers().authorization, undefined);
  const put = requests.find((r) => r.method() === 'PUT');
  assert.ok(put.url().startsWith(`${MOTO}/${stack.raw}/uploads/`), put.url());
  await shot(page, 'aws-ready');
  await page.context().close();
}

// --- main ------------------------------------------------------------------------

async function main() {
  const sizes = manifest();
  if (!fs.existsSync(BIN)) throw new Error(`no imgpipe binary at ${BIN} (cargo build first)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    let app;
    await test('a. the upload page on imgpipe serve', async () => { app = await pageOnServe(browser, sizes); });
    await test('a. the token prompt and a file over the limit', () => tokenPrompt(browser, sizes));
    await test('b. another origin: allowed when named, blocked when not', async () => {
      await crossOrigin(browser, sizes, app || await serve());
    });
    if (MOTO) {
      await test('c. the page on serve --backend aws + worker (moto)', () => awsPath(browser, sizes));
    } else if (process.env.IMGPIPE_REQUIRE_EMULATORS) {
      failures += 1;
      console.log('FAIL c. IMGPIPE_TEST_MOTO_URL is unset but IMGPIPE_REQUIRE_EMULATORS is');
    } else {
      console.log('SKIP c. the AWS path: IMGPIPE_TEST_MOTO_URL is unset (scripts/test.sh starts moto)');
    }
  } finally {
    await browser.close();
  }
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  console.log(`FAIL ${e.stack || e}`);
  failures += 1;
} finally {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  exitCode = failures ? 1 : 0;
  console.log(`browser: ${failures ? `${failures} failed` : 'all passed'}; screenshots in ${path.relative(ROOT, SHOTS)}/`);
}
process.exit(exitCode);
