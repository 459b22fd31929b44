// imgpipe: CloudFront Function (cloudfront-js-2.0), viewer request on /img/*.
//
// Turns the query form (/img/<id>/<recipe>/webp?w=640&fit=cover) and `auto`
// into the canonical path (/img/<id>/<recipe>/webp/w=640,fit=cover; the
// recipe version is optional, and a path without it is redirected by the
// app), so the cache key and the
// processed bucket's key are the path alone, and answers 400 at the edge for
// a bad id, variant or options. The rules are src/transform.rs's, and both
// are held to tests/vectors/transform.json (infra/cloudfront/test.mjs).
// Query keys and values are taken as sent (still percent-encoded) and
// decoded here exactly as the app decodes them.

var MAX_SIDE = 8192;
var DEFAULT_QUALITY = 85;
var MAX_INPUT = 1024;
var FORMATS = ['jpeg', 'webp', 'png'];
var QUALITY_FORMATS = ['jpeg', 'webp'];
var VARIANTS = ['jpeg', 'jpeg-low', 'webp', 'png', 'thumb'];
var FITS = ['inside', 'cover', 'fill'];
var ID = /^[0-7][0-9a-hjkmnp-tv-z]{25}$/;
var RECIPE = /^r[0-9a-f]{8}$/;

function Bad(code, detail) {
  this.code = code;
  this.detail = detail;
}

function asciiLower(s) {
  return s.replace(/[A-Z]+/g, function (m) {
    return m.toLowerCase();
  });
}

function utf8Length(s) {
  var n = 0;
  for (var i = 0; i < s.length; i++) {
    var c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function isHex(c) {
  return /^[0-9a-fA-F]$/.test(c);
}

// Percent-decode (a `%` not followed by two hex digits stays as it is),
// then strict UTF-8; null when the bytes are not UTF-8 or the text holds a
// control character, `/` or `\`.
function decode(raw) {
  var bytes = [];
  for (var i = 0; i < raw.length; i++) {
    var ch = raw.charAt(i);
    if (ch === '%' && i + 2 < raw.length && isHex(raw.charAt(i + 1)) && isHex(raw.charAt(i + 2))) {
      bytes.push(parseInt(raw.substr(i + 1, 2), 16));
      i += 2;
      continue;
    }
    var cp = raw.codePointAt(i);
    if (cp > 0xffff) i++;
    if (cp < 0x80) bytes.push(cp);
    else if (cp < 0x800) bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) bytes.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else bytes.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
  var out = '';
  for (var j = 0; j < bytes.length; ) {
    var b = bytes[j];
    var need, min, code;
    if (b < 0x80) {
      need = 0;
      code = b;
      min = 0;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      code = b & 31;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      code = b & 15;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      code = b & 7;
      min = 0x10000;
    } else return null;
    for (var k = 1; k <= need; k++) {
      var cont = bytes[j + k];
      if (cont === undefined || (cont & 0xc0) !== 0x80) return null;
      code = (code << 6) | (cont & 63);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return null;
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2f || code === 0x5c) return null;
    out += String.fromCodePoint(code);
    j += need + 1;
  }
  return out;
}

// Decimal digits only (leading zeros allowed), within lo..=hi.
function number(v, lo, hi) {
  if (v.length === 0 || v.length > 9 || !/^[0-9]+$/.test(v)) return null;
  var n = parseInt(v, 10);
  return n >= lo && n <= hi ? n : null;
}

// The first 32 code points (runtime 2.0 has codePointAt, not Array.from).
function clip(s) {
  var i = 0;
  for (var n = 0; n < 32 && i < s.length; n++) i += s.codePointAt(i) > 0xffff ? 2 : 1;
  return s.slice(0, i);
}

function addOption(opts, pair) {
  var eq = pair.indexOf('=');
  if (eq < 0) throw new Bad('bad_options', 'expected key=value, got "' + clip(pair) + '"');
  var k = pair.slice(0, eq);
  var v = pair.slice(eq + 1);
  if (v.length === 0) throw new Bad('bad_options', 'empty value for "' + clip(k) + '"');
  var key = asciiLower(k);
  var value;
  if (key === 'w' || key === 'h') {
    value = number(v, 1, MAX_SIDE);
    if (value === null) throw new Bad('bad_options', key + ' must be 1..=' + MAX_SIDE);
  } else if (key === 'fit') {
    value = asciiLower(v);
    if (FITS.indexOf(value) < 0) throw new Bad('bad_options', 'fit must be inside, cover or fill');
  } else if (key === 'q') {
    value = number(v, 1, 100);
    if (value === null) throw new Bad('bad_options', 'q must be 1..=100');
  } else if (key === 's') {
    if (v.length > 128 || !/^[A-Za-z0-9_-]+$/.test(v)) throw new Bad('bad_options', 's must be base64url');
    value = v;
  } else {
    throw new Bad('bad_options', 'unknown option "' + clip(k) + '"');
  }
  if (opts[key] !== undefined) throw new Bad('bad_options', 'duplicate option ' + key);
  opts[key] = value;
}

function rustFloat(s) {
  if (!/^[+-]?([0-9]+\.?[0-9]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?|inf|infinity|nan)$/i.test(s)) return null;
  var body = s.replace(/^[+-]/, '').toLowerCase();
  var sign = s.charAt(0) === '-' ? -1 : 1;
  if (body === 'inf' || body === 'infinity') return sign * Infinity;
  if (body === 'nan') return NaN;
  return Number(s);
}

// `webp` if Accept lists image/webp without q=0, else `jpeg`.
function negotiate(accept) {
  if (accept === undefined || accept === null) return 'jpeg';
  var items = accept.split(',');
  for (var i = 0; i < items.length; i++) {
    var parts = items[i].split(';').map(function (p) {
      return p.trim();
    });
    if (asciiLower(parts[0]) !== 'image/webp') continue;
    var refused = false;
    for (var j = 1; j < parts.length; j++) {
      if (parts[j].indexOf('q=') === 0) {
        var q = rustFloat(parts[j].slice(2).trim());
        if (q !== null && q <= 0) refused = true;
      }
    }
    if (!refused) return 'webp';
  }
  return 'jpeg';
}

// path: still percent-encoded; pairs: raw `key=value` strings of the query.
function canonicalize(path, pairs, accept) {
  var queryLength = pairs.length === 0 ? 0 : utf8Length(pairs.join('&'));
  if (utf8Length(path) + queryLength > MAX_INPUT) throw new Bad('bad_options', 'request too long');
  if (path.indexOf('/img/') !== 0) throw new Bad('bad_variant', 'not an image path');
  var segments = path.slice(5).split('/');
  var id = decode(segments[0]);
  if (id === null || !ID.test(asciiLower(id))) throw new Bad('bad_id', 'not a valid image id');
  id = asciiLower(id);
  if (segments.length < 2) throw new Bad('bad_variant', 'missing variant');
  var name = decode(segments[1]);
  if (name === null) throw new Bad('bad_variant', 'missing variant');
  name = asciiLower(name);
  var base = '/img/' + id + '/';
  var at = 2;
  if (RECIPE.test(name)) {
    base += name + '/';
    if (segments.length < 3) throw new Bad('bad_variant', 'missing variant');
    name = decode(segments[2]);
    if (name === null) throw new Bad('bad_variant', 'missing variant');
    name = asciiLower(name);
    at = 3;
  }
  var optsSegment = null;
  if (segments.length > at) {
    optsSegment = decode(segments[at]);
    if (optsSegment === null) throw new Bad('bad_options', 'bad encoding');
  }
  if (segments.length > at + 1) throw new Bad('bad_options', 'too many path segments');

  var opts = {};
  if (optsSegment !== null) {
    if (optsSegment.length === 0) throw new Bad('bad_options', 'empty options segment');
    optsSegment.split(',').forEach(function (pair) {
      addOption(opts, pair);
    });
  }
  pairs.forEach(function (raw) {
    if (raw.length === 0) return;
    if (optsSegment !== null) throw new Bad('bad_options', 'options in both the path and the query');
    var pair = decode(raw.replace(/\+/g, ' '));
    if (pair === null) throw new Bad('bad_options', 'bad encoding');
    addOption(opts, pair);
  });

  var format;
  var negotiated = false;
  if (name === 'auto') {
    format = negotiate(accept);
    negotiated = true;
  } else if (FORMATS.indexOf(name) >= 0) {
    format = name;
  } else {
    if (VARIANTS.indexOf(name) < 0) throw new Bad('bad_variant', 'unknown variant: ' + clip(name));
    if (Object.keys(opts).length > 0) throw new Bad('bad_options', name + ' takes no options; use jpeg, webp or png');
    return { path: base + name, negotiated: false };
  }
  if (opts.q !== undefined && QUALITY_FORMATS.indexOf(format) < 0) {
    throw new Bad('bad_options', 'q does not apply to ' + format);
  }
  var q = opts.q === undefined ? DEFAULT_QUALITY : opts.q;
  if (opts.w === undefined && opts.h === undefined && q === DEFAULT_QUALITY) {
    return { path: base + format, negotiated: negotiated };
  }
  var fit = opts.w !== undefined && opts.h !== undefined && opts.fit !== undefined ? opts.fit : 'inside';
  var out = [];
  if (opts.w !== undefined) out.push('w=' + opts.w);
  if (opts.h !== undefined) out.push('h=' + opts.h);
  if (fit !== 'inside') out.push('fit=' + fit);
  if (q !== DEFAULT_QUALITY) out.push('q=' + q);
  if (opts.s !== undefined) out.push('s=' + opts.s);
  return { path: base + format + '/' + out.join(','), negotiated: negotiated };
}

// The query as sent: CloudFront hands it over as an object of (possibly
// repeated) keys; put the `key=value` pairs back together.
function queryPairs(querystring) {
  var pairs = [];
  Object.keys(querystring || {}).forEach(function (key) {
    var entry = querystring[key];
    var values = entry.multiValue ? entry.multiValue : [entry];
    values.forEach(function (v) {
      pairs.push(v.value === undefined || v.value === null ? key : key + '=' + v.value);
    });
  });
  return pairs;
}

function handler(event) {
  var request = event.request;
  var accept = request.headers && request.headers.accept ? request.headers.accept.value : undefined;
  try {
    var c = canonicalize(request.uri, queryPairs(request.querystring), accept);
    request.uri = c.path;
    request.querystring = {};
    return request;
  } catch (e) {
    if (!(e instanceof Bad)) throw e;
    return {
      statusCode: 400,
      statusDescription: 'Bad Request',
      headers: {
        'content-type': { value: 'application/problem+json' },
        'cache-control': { value: 'no-store' },
        'x-content-type-options': { value: 'nosniff' },
      },
      body: {
        encoding: 'text',
        data: JSON.stringify({
          type: 'urn:imgpipe:problem:' + e.code,
          title: 'Bad Request',
          status: 400,
          code: e.code,
          detail: e.detail,
        }),
      },
    };
  }
}
