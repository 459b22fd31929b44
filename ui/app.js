// The upload page: for each chosen or dropped file, POST /uploads, PUT the
// bytes to the presigned URL (with upload progress), poll /meta/<id> until
// the image is ready or failed, then show its variants, metadata and an
// on-demand preview. Errors are the server's problem+json `detail`.
'use strict';

const VARIANTS = ['jpeg', 'jpeg-low', 'webp', 'png', 'thumb'];
const TYPES = {
  jpg: 'image/jpeg', jpeg: 'image/jpeg', jpe: 'image/jpeg', png: 'image/png', webp: 'image/webp',
  gif: 'image/gif', tif: 'image/tiff', tiff: 'image/tiff', bmp: 'image/bmp', avif: 'image/avif',
  svg: 'image/svg+xml',
};
// Headers a browser sets itself and refuses from a script.
const FORBIDDEN_HEADERS = new Set(['content-length', 'host', 'connection', 'expect']);
const TOKEN_KEY = 'imgpipe-upload-token';

const body = document.body;
const tokenRequired = body.dataset.tokenRequired === 'true';
const $ = (sel, root = document) => root.querySelector(sel);

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

// --- the token box -----------------------------------------------------------

const tokenBox = $('#token-box');
const DEFAULT_TOKEN_HELP = $('#token-help').textContent;
function showTokenBox(message) {
  tokenBox.hidden = false;
  if (message) $('#token-help').textContent = message;
  $('#token').focus();
}
$('#token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const value = $('#token').value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $('#token').value = '';
  $('#token-help').textContent = DEFAULT_TOKEN_HELP;
  $('#token-status').textContent = 'Token saved for this tab. Choose or drop images to upload.';
  $('#drop-target').focus();
});
if (tokenRequired) {
  tokenBox.hidden = false;
  if (token()) $('#token-status').textContent = 'A token is saved for this tab.';
}

// --- talking to the API ------------------------------------------------------

class Problem extends Error {
  constructor(code, detail, status) {
    super(detail);
    this.code = code;
    this.status = status;
  }
}

// The words of an error answer: problem+json's `detail` from the app, the
// <Message> of an S3 error document, or the status line.
async function problemOf(res) {
  const text = await res.text().catch(() => '');
  try {
    const p = JSON.parse(text);
    if (p && p.detail) return new Problem(p.code || 'error', p.detail, res.status);
  } catch (_) { /* not JSON */ }
  const s3 = /<Code>([^<]*)<\/Code>[\s\S]*?<Message>([^<]*)<\/Message>/.exec(text);
  if (s3) return new Problem(s3[1], s3[2], res.status);
  return new Problem('http_' + res.status, `the server answered ${res.status} ${res.statusText}`.trim(), res.status);
}

async function sha256Hex(text) {
  if (!window.crypto || !crypto.subtle) return null; // only in secure contexts
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function createUpload(file) {
  const ext = (file.name.split('.').pop() || '').toLowerCase();
  const contentType = file.type || TYPES[ext] || 'application/octet-stream';
  const payload = JSON.stringify({
    content_type: contentType,
    content_length: file.size,
    filename: file.name,
  });
  const headers = { 'content-type': 'application/json' };
  // Through CloudFront the app's origin is signed with SigV4 (OAC), which
  // needs the body's hash from the viewer for a POST.
  const hash = await sha256Hex(payload);
  if (hash) headers['x-amz-content-sha256'] = hash;
  if (token()) headers['x-imgpipe-token'] = token();
  let res;
  try {
    res = await fetch('/uploads', { method: 'POST', headers, body: payload });
  } catch (e) {
    throw new Problem('network', 'could not reach the server: ' + e.message, 0);
  }
  if (!res.ok) {
    const problem = await problemOf(res);
    if (res.status === 415 && problem.code === 'unsupported_format') {
      throw new Problem(problem.code, typeRefusal(file.name, contentType), res.status);
    }
    throw problem;
  }
  return res.json();
}

function putBytes(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method || 'PUT', upload.url);
    for (const [name, value] of Object.entries(upload.headers || {})) {
      if (!FORBIDDEN_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener('progress', (ev) => {
      if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
    });
    xhr.addEventListener('load', async () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      reject(await problemOf(new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText })));
    });
    xhr.addEventListener('error', () => reject(new Problem('network', 'the upload could not reach storage (network or CORS)', 0)));
    xhr.addEventListener('abort', () => reject(new Problem('aborted', 'the upload was cancelled', 0)));
    xhr.send(file);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForMeta(id, onPoll) {
  let delay = 300;
  const deadline = Date.now() + 5 * 60 * 1000;
  while (Date.now() < deadline) {
    let res;
    try {
      res = await fetch(`/meta/${id}`, { cache: 'no-store' });
    } catch (_) {
      res = null; // a blip: try again
    }
    if (res && res.ok) {
      const meta = await res.json();
      if (meta.status !== 'pending') return meta;
      onPoll(meta);
    } else if (res && res.status !== 404 && res.status < 500) {
      throw await problemOf(res);
    }
    await sleep(delay);
    delay = Math.min(delay * 1.5, 2000);
  }
  throw new Problem('timeout', 'the image is still processing after five minutes; reload its /meta later', 0);
}

// --- one upload's card --------------------------------------------------------

function urlRow(url, label) {
  const row = document.createElement('div');
  row.className = 'url-row';
  const input = document.createElement('input');
  input.type = 'text';
  input.readOnly = true;
  input.value = url;
  input.setAttribute('aria-label', label);
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = 'Copy';
  button.setAttribute('aria-label', `Copy the ${label}`);
  button.addEventListener('click', () => {
    input.select();
    copyText(url, button, 'Copy');
  });
  row.append(input, button);
  return row;
}

// A variant tile's links: open the URL, or copy it.
function linkRow(url, name) {
  const row = document.createElement('div');
  row.className = 'link-row';
  const open = document.createElement('a');
  open.href = url;
  open.target = '_blank';
  open.rel = 'noopener';
  open.textContent = 'Open';
  open.setAttribute('aria-label', `Open the ${name} variant`);
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'quiet';
  copy.textContent = 'Copy URL';
  copy.setAttribute('aria-label', `Copy the URL of the ${name} variant`);
  copy.addEventListener('click', () => copyText(url, copy, 'Copy URL'));
  row.append(open, copy);
  return row;
}

async function copyText(text, button, label) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch (_) {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => { button.textContent = label; }, 1500);
}

function fact(dl, term, value) {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}

function absolute(url) {
  return new URL(url, location.href).href;
}

function showReady(card, meta) {
  const o = meta.original;
  const dl = $('.facts', card);
  fact(dl, 'Id', meta.id);
  fact(dl, 'Original', `${o.format.toUpperCase()}, ${o.width} × ${o.height}, ${formatBytes(o.bytes)}`);
  if (o.orientation && o.orientation !== 1) fact(dl, 'EXIF orientation', `${o.orientation} (applied)`);
  fact(dl, 'SHA-256', o.sha256);
  const list = $('.variants', card);
  for (const name of VARIANTS) {
    const v = meta.variants[name];
    if (!v) continue;
    const li = document.createElement('li');
    li.className = 'variant';
    li.dataset.variant = name;
    const fig = document.createElement('figure');
    const img = document.createElement('img');
    img.src = v.url;
    img.alt = `${name} variant of ${card.dataset.filename}`;
    img.width = v.width;
    img.height = v.height;
    img.decoding = 'async';
    const cap = document.createElement('figcaption');
    const strong = document.createElement('strong');
    strong.textContent = name;
    cap.append(strong, ` ${v.width} × ${v.height} · ${formatBytes(v.bytes)}`);
    fig.append(img, cap);
    li.append(fig, linkRow(absolute(v.url), name));
    list.append(li);
  }
  fact(dl, 'Metadata', '');
  dl.lastElementChild.append(urlRow(absolute(`/meta/${meta.id}`), 'URL of the metadata'));

  const range = $('.preview-width', card);
  const out = $('.preview-width-out', card);
  range.max = String(Math.max(16, Math.min(o.width, 4096)));
  range.value = String(Math.min(640, Number(range.max)));
  out.value = range.value;
  range.setAttribute('aria-valuetext', `${range.value} pixels`);
  range.addEventListener('input', () => {
    out.value = range.value;
    range.setAttribute('aria-valuetext', `${range.value} pixels`);
  });
  $('.preview-form', card).addEventListener('submit', (ev) => {
    ev.preventDefault();
    renderPreview(card, meta, Number(range.value));
  });
  $('.delete', card).addEventListener('click', () => deleteImage(card, meta.id));
  $('.upload-result', card).hidden = false;
}

// Each image's delete token, from its POST /uploads answer: only whoever
// uploaded it may delete it. Kept for the tab's life (sessionStorage), so
// a reload can still delete what this tab uploaded.
const DELETE_KEY = 'imgpipe-delete-token-';
function rememberDeleteToken(id, token) {
  if (token) sessionStorage.setItem(DELETE_KEY + id, token);
}

// DELETE /images/<id> with the image's delete token: the original, the
// variants and the renders go, and their URLs answer 410.
async function deleteImage(card, id) {
  if (!window.confirm(`Delete ${card.dataset.filename}? Its original, variants and renders are removed, and their URLs stop working.`)) return;
  const button = $('.delete', card);
  const status = $('.delete-status', card);
  button.disabled = true;
  status.textContent = 'Deleting…';
  const headers = {};
  const deleteToken = sessionStorage.getItem(DELETE_KEY + id);
  if (deleteToken) headers['x-imgpipe-token'] = deleteToken;
  try {
    const res = await fetch(`/images/${id}`, { method: 'DELETE', headers });
    if (!res.ok) throw await problemOf(res);
    setState(card, 'deleted', 'Deleted');
    $('.variants', card).replaceChildren();
    $('.preview', card).hidden = true;
    button.hidden = true;
    status.textContent = 'Deleted: the original, its variants and its renders are gone; their URLs now answer 410.';
    sessionStorage.removeItem(DELETE_KEY + id);
  } catch (e) {
    button.disabled = false;
    status.textContent = `Not deleted: ${e.message}`;
    if (e.status === 401 || e.status === 403) {
      status.textContent = 'Not deleted: only the tab that uploaded an image (or an administrator) may delete it.';
    }
  }
}

async function renderPreview(card, meta, width) {
  const fig = $('.preview-figure', card);
  const cap = $('.preview-caption', card);
  const img = $('.preview-img', card);
  // Under the image's recipe: no redirect on the way (a path without one
  // is answered with a redirect to the server's current recipe).
  const base = meta.recipe ? `/img/${meta.id}/${meta.recipe}` : `/img/${meta.id}`;
  const url = `${base}/webp?w=${width}`;
  cap.textContent = `Rendering ${width} px wide…`;
  fig.hidden = false;
  const started = performance.now();
  try {
    const res = await fetch(url);
    if (!res.ok) throw await problemOf(res);
    const blob = await res.blob();
    const ms = Math.round(performance.now() - started);
    if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
    img.onload = () => {
      cap.textContent = `webp?w=${width}: ${img.naturalWidth} × ${img.naturalHeight} · ${formatBytes(blob.size)} · ${ms} ms`;
      card.dataset.preview = 'loaded';
    };
    img.alt = `WebP rendered ${width} pixels wide`;
    img.src = URL.createObjectURL(blob);
    const row = $('.preview-url', card);
    row.replaceChildren(...urlRow(absolute(url), 'URL of the on-demand render').childNodes);
    row.hidden = false;
  } catch (e) {
    cap.textContent = e.code === 'signature_required'
      ? 'This server renders other sizes only from signed URLs (s=, made with its signing key); the standard variants above need none. See the README, "Signed URLs".'
      : e.message;
    card.dataset.preview = 'failed';
  }
}

function setState(card, state, label) {
  card.dataset.state = state;
  $('.upload-state', card).textContent = label;
}

// A heading in words for the codes a person meets; the detail follows it.
const TITLES = {
  unsupported_format: 'Not an image type imgpipe takes',
  too_large: 'Too large',
  too_many_pixels: 'Too many pixels',
  undecodable: 'The image could not be read',
  unauthorized: 'An upload token is needed',
  forbidden: 'The token was refused',
  expired: 'The upload link expired',
  storage_unavailable: 'Storage is busy',
  network: 'Network error',
  timeout: 'Still processing',
};

// What a person reads for a file type the server refuses: the file's own
// kind ("SVG files can't be used"), then what can be, in place of the
// API's wording (content_type must be one of image/jpeg, …).
function typeRefusal(filename, declared) {
  const ext = (filename.includes('.') ? filename.split('.').pop() : '').toUpperCase();
  const kind = ext || (declared ? declared.replace(/^image\//, '').toUpperCase() : '');
  const what = kind ? `${kind} files` : 'Files of this type';
  return `${what} can't be used; use ${body.dataset.accepted}.`;
}

function showError(card, problem) {
  setState(card, 'failed', 'Failed');
  const p = $('.upload-error', card);
  const title = document.createElement('strong');
  title.textContent = TITLES[problem.code] || 'Upload failed';
  const detail = document.createElement('span');
  detail.className = 'upload-error-detail';
  detail.textContent = problem.message;
  p.replaceChildren(title, detail);
  p.dataset.code = problem.code || '';
  p.hidden = false;
  $('.upload-progress', card).hidden = true;
  if (problem.status === 401 || problem.status === 403) {
    if (problem.code === 'unauthorized' || problem.code === 'forbidden') {
      sessionStorage.removeItem(TOKEN_KEY);
      $('#token-status').textContent = '';
      showTokenBox(problem.code === 'forbidden'
        ? 'That token was refused. Enter a valid upload token, then try again.'
        : 'This server needs an upload token. Enter it, then try again.');
    }
  }
}

async function upload(file) {
  const card = $('#upload-template').content.firstElementChild.cloneNode(true);
  card.dataset.filename = file.name;
  $('.upload-name', card).textContent = file.name;
  $('#uploads').prepend(card);
  const progress = $('.upload-progress', card);
  progress.setAttribute('aria-label', `Upload progress of ${file.name}`);
  try {
    if (tokenRequired && !token()) {
      throw new Problem('unauthorized', 'this server needs an upload token: enter it above, then choose the file again', 401);
    }
    setState(card, 'creating', 'Preparing…');
    const created = await createUpload(file);
    card.dataset.id = created.id;
    rememberDeleteToken(created.id, created.delete_token);
    setState(card, 'uploading', 'Uploading…');
    await putBytes(created.upload, file, (f) => {
      progress.value = Math.round(f * 100);
      $('.upload-state', card).textContent = `Uploading ${Math.round(f * 100)} %`;
    });
    progress.value = 100;
    setState(card, 'processing', 'Processing…');
    progress.removeAttribute('value'); // indeterminate while the variants are made
    const meta = await waitForMeta(created.id, () => {});
    progress.hidden = true;
    if (meta.status === 'failed') {
      const e = meta.error || { code: 'failed', message: 'processing failed' };
      throw new Problem(e.code, e.message, 0);
    }
    setState(card, 'ready', 'Ready');
    showReady(card, meta);
  } catch (e) {
    showError(card, e instanceof Problem ? e : new Problem('error', String(e.message || e), 0));
  }
}

// --- picking and dropping -----------------------------------------------------

const input = $('#file');
const target = $('#drop-target');
$('#max-size').textContent = formatBytes(Number(body.dataset.maxUploadBytes) || 0);

input.addEventListener('change', () => {
  for (const f of input.files) upload(f);
  input.value = '';
});
// The label opens the file picker on click; Enter and Space do the same
// from the keyboard.
target.tabIndex = 0;
target.setAttribute('role', 'button');
target.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' || ev.key === ' ') {
    ev.preventDefault();
    input.click();
  }
});
for (const name of ['dragenter', 'dragover']) {
  target.addEventListener(name, (ev) => {
    ev.preventDefault();
    target.classList.add('dragging');
  });
}
for (const name of ['dragleave', 'drop']) {
  target.addEventListener(name, () => target.classList.remove('dragging'));
}
target.addEventListener('drop', (ev) => {
  ev.preventDefault();
  for (const f of ev.dataTransfer.files) upload(f);
});
// A file dropped beside the target must not navigate away from the page.
window.addEventListener('dragover', (ev) => ev.preventDefault());
window.addEventListener('drop', (ev) => ev.preventDefault());
