#!/usr/bin/env bash
# Runs infra/cloudfront/viewer-request.js over every transform vector under
# njs, the engine CloudFront Functions are built on, through the same checks
# as test.mjs (vectors.js), and checks the function's size against
# CloudFront's 10,240-byte limit with 1 KB of headroom. Both on the code as
# cloudfront.tf ships it: comment lines and indentation stripped (the same
# two rules as the replace() calls there).
# Usage: infra/cloudfront/test-njs.sh
set -euo pipefail
cd "$(dirname "$0")"
LIMIT=10240
HEADROOM=1024
shipped=$(mktemp --suffix=.js)
script=$(mktemp --suffix=.js)
trap 'rm -f "$shipped" "$script"' EXIT
sed -e '/^[[:space:]]*\/\//d' -e 's/^[[:space:]]*//' viewer-request.js >"$shipped"
size=$(wc -c < "$shipped")
if [ "$size" -gt $((LIMIT - HEADROOM)) ]; then
  echo "FAIL viewer-request.js is $size bytes: CloudFront allows $LIMIT, and we keep $HEADROOM of headroom"
  exit 1
fi
echo "cloudfront function: $size bytes as shipped (limit $LIMIT, headroom kept $HEADROOM)"
{
  cat "$shipped" vectors.js
  # njs has no JSON import: the vectors are inlined as a literal.
  printf '\nvar vectors = %s;\n' "$(cat ../../tests/vectors/transform.json)"
  cat <<'JS'
var failed = checkVectors(handler, vectors, function (line) { console.log(line); });
console.log('cloudfront function (njs): ' + (vectors.length - failed) + ' of ' + vectors.length +
  ' transform vectors agree with the Rust canonicalizer');
if (failed !== 0 || vectors.length <= 100) throw new Error('the CloudFront Function disagrees under njs');
JS
} >"$script"
njs "$script"
