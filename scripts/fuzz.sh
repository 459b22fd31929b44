#!/usr/bin/env bash
# Fuzz every target in fuzz/ (cargo-fuzz, libFuzzer, AddressSanitizer) for
# SECONDS each, seeded from the corpus and the test fixtures, and write the
# executions and findings into the Fuzzing section of BENCHMARKS.md. Long:
# not part of scripts/test.sh. Needs a nightly toolchain; installs
# cargo-fuzz when missing. Findings land in fuzz/artifacts/<target>/.
# fuzz/lsan.supp names the one known leak, in a dependency.
#   scripts/fuzz.sh [SECONDS]        (default 120; IMGPIPE_CORPUS to point elsewhere)
#   TARGETS="transform s3_event" scripts/fuzz.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EACH=${1:-120}
CORPUS=${IMGPIPE_CORPUS:-$ROOT/../shared/corpus}
WORK=$ROOT/target/fuzz-work
[ -d "$CORPUS" ] || { echo "missing the corpus at $CORPUS (set IMGPIPE_CORPUS)"; exit 1; }
rustup toolchain list | grep -q '^nightly' || { echo "cargo fuzz needs a nightly toolchain: rustup toolchain install nightly"; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

declare -A WHAT=(
  [decode_jpeg]="sniff + decode + renders, JPEG seeds"
  [decode_png]="sniff + decode + renders, PNG seeds"
  [decode_webp]="sniff + decode + renders, WebP seeds"
  [decode_gif]="sniff + decode + renders, GIF seeds"
  [decode_tiff]="sniff + decode + renders, TIFF seeds"
  [decode_bmp]="sniff + decode + renders, BMP seeds"
  [decode_avif]="sniff + decode + renders, AVIF seeds"
  [transform]="the image path, query and Accept parser"
  [presign_query]="the local upload URL's query and signature check"
  [s3_event]="S3 notifications (SQS and Lambda shapes)"
)
TARGETS=${TARGETS:-"decode_jpeg decode_png decode_webp decode_gif decode_tiff decode_bmp decode_avif transform presign_query s3_event"}

echo "== seeds"
rm -rf "$WORK/seeds" "$WORK/corpus" && mkdir -p "$WORK/seeds"
seed() { # target, files...
  local t=$1; shift
  mkdir -p "$WORK/seeds/$t"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$WORK/seeds/$t/"; done
  return 0
}
# Small files only (the codec fixtures, and corpus files under 256 KiB):
# a multi-megapixel seed makes every execution a full photo decode.
small() { for f in "$@"; do [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 262144 ] && echo "$f"; done; }
shopt -s nullglob nocaseglob
FIX=tests/fixtures/codecs
seed decode_jpeg $(small "$CORPUS"/*.jpg "$CORPUS"/*.jpeg "$FIX"/*.jpg)
seed decode_png $(small "$CORPUS"/*.png "$FIX"/*.png)
seed decode_webp $(small "$CORPUS"/*.webp "$FIX"/*.webp)
seed decode_gif $(small "$CORPUS"/*.gif "$FIX"/*.gif)
seed decode_tiff $(small "$CORPUS"/*.tif "$CORPUS"/*.tiff "$FIX"/*.tif)
seed decode_bmp $(small "$CORPUS"/*.bmp "$FIX"/*.bmp)
seed decode_avif $(small "$CORPUS"/*.avif tests/fixtures/avif/*.avif "$FIX"/*.avif)
seed s3_event tests/fixtures/lambda/*.json
shopt -u nullglob nocaseglob
python3 - "$WORK/seeds" <<'PY'
import json, pathlib, sys
seeds = pathlib.Path(sys.argv[1])
(seeds / "transform").mkdir(exist_ok=True)
for i, case in enumerate(json.load(open("tests/vectors/transform.json"))):
    path, _, query = case["input"].partition("?")
    (seeds / "transform" / f"v{i}").write_text(f"{path}\0{query}\0{case.get('accept') or 'image/webp,*/*'}")
(seeds / "presign_query").mkdir(exist_ok=True)
(seeds / "presign_query" / "ok").write_text("ct=image%2Fjpeg&len=1000&expires=4102444800&sig=" + "ab" * 32)
(seeds / "presign_query" / "short").write_text("ct=&len=&expires=&sig=")
PY

echo "== build"
(cd fuzz && cargo +nightly fuzz build -O)

mkdir -p "$WORK/logs"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
for t in $TARGETS; do
  echo "== $t: ${EACH}s"
  mkdir -p "$WORK/corpus/$t" "fuzz/artifacts/$t"
  status=0
  (cd fuzz && LSAN_OPTIONS="suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0" cargo +nightly fuzz run -O "$t" "$WORK/corpus/$t" "$WORK/seeds/$t" -- \
    -max_total_time="$EACH" -max_len=262144 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1) >"$WORK/logs/$t.log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/logs/$t.log" | tail -1)
  secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$WORK/logs/$t.log" | tail -1)
  crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
  corpus=$(find "$WORK/corpus/$t" -type f | wc -l)
  echo "   $t: ${runs:-0} executions (${secs:-0}/s), corpus $corpus, findings $crashes (exit $status)"
  [ "$status" = 0 ] || tail -40 "$WORK/logs/$t.log"
  python3 -c 'import json,sys; t,w,r,e,c,k=sys.argv[1:]; print(json.dumps({"target":t,"what":w,"runs":int(r or 0),"seconds":int(e),"corpus":int(c),"crashes":int(k)}))' \
    "$t" "${WHAT[$t]}" "${runs:-0}" "$EACH" "$corpus" "$crashes" >>"$RESULTS"
done
python3 bench/report.py --fuzz "$RESULTS" "scripts/fuzz.sh $EACH" BENCHMARKS.md
echo "== wrote the Fuzzing section of BENCHMARKS.md"
