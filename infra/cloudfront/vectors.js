// Runs the CloudFront Function's `handler` over the transform vectors as
// CloudFront would call it, and counts the cases where it disagrees with the
// Rust canonicalizer. Plain ES5 so that node (test.mjs) and njs, the engine
// CloudFront Functions are built on (test-njs.sh), run the same checks.

// The query string as CloudFront hands it to a function: an object of keys
// (as sent), each { value } or { value, multiValue: [{ value }, ...] }.
function querystring(raw) {
  var qs = {};
  if (raw === undefined) return qs;
  var pieces = raw.split('&');
  for (var i = 0; i < pieces.length; i++) {
    var piece = pieces[i];
    if (piece === '') continue;
    var eq = piece.indexOf('=');
    var key = eq < 0 ? piece : piece.slice(0, eq);
    var value = eq < 0 ? '' : piece.slice(eq + 1);
    if (qs[key] === undefined) qs[key] = { value: value };
    else {
      qs[key].multiValue = qs[key].multiValue || [{ value: qs[key].value }];
      qs[key].multiValue.push({ value: value });
    }
  }
  return qs;
}

function outcome(handler, v) {
  var q = v.input.indexOf('?');
  var uri = q < 0 ? v.input : v.input.slice(0, q);
  var headers = v.accept === undefined ? {} : { accept: { value: v.accept } };
  var event = {
    version: '1.0',
    context: { eventType: 'viewer-request' },
    viewer: { ip: '203.0.113.7' },
    request: { method: 'GET', uri: uri, querystring: querystring(q < 0 ? undefined : v.input.slice(q + 1)), headers: headers, cookies: {} },
  };
  var out;
  try {
    out = handler(event);
  } catch (e) {
    return 'threw ' + e;
  }
  if (out.statusCode !== undefined) {
    var body = JSON.parse(out.body.data);
    if (out.statusCode !== 400 || body.status !== 400 || out.headers['content-type'].value !== 'application/problem+json') {
      return 'malformed error response ' + JSON.stringify(out);
    }
    return { error: body.code };
  }
  return Object.keys(out.querystring).length === 0 ? { canonical: out.uri } : { canonical: out.uri + ' with a query left' };
}

// The number of vectors the handler gets wrong; each is logged.
function checkVectors(handler, vectors, log) {
  var failed = 0;
  for (var i = 0; i < vectors.length; i++) {
    var v = vectors[i];
    var got = JSON.stringify(outcome(handler, v));
    var want = JSON.stringify(v.error !== undefined ? { error: v.error } : { canonical: v.canonical });
    if (got !== want) {
      failed++;
      log('FAIL ' + v.input.slice(0, 120) + ' (accept ' + JSON.stringify(v.accept) + '): got ' + got + ', want ' + want);
    }
  }
  return failed;
}
