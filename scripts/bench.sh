#!/usr/bin/env bash
# Benchmark imgpipe against sharp and the original Pillow pipeline in one
# run, interleaved image by image, on one core (taskset -c 0), and write
# BENCHMARKS.md. Installs its own peers (pip venv, npm) on first use.
#   scripts/bench.sh                 (REPS=5 by default; IMGPIPE_CORPUS to point elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${IMGPIPE_CORPUS:-$ROOT/../shared/corpus}
REPS=${REPS:-5}
IMAGES=(photo-12mp-4032x3024.jpg photo-2725x2225.jpg photo-9mp-4608x1976.jpg exif-orientation-6.jpg)
OUT=$ROOT/target/bench
VENV=$ROOT/target/venv-bench

for img in "${IMAGES[@]}"; do
  [ -f "$CORPUS/$img" ] || { echo "missing $CORPUS/$img (set IMGPIPE_CORPUS)"; exit 1; }
done

echo "== installing what the benchmark needs"
missing=()
command -v taskset >/dev/null || missing+=(util-linux)
[ -x /usr/bin/time ] || missing+=(time)
command -v node >/dev/null || missing+=(nodejs npm)
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check pillow==12.0.0 numpy scikit-image
(cd bench/peers && npm install --no-audit --no-fund --silent)
cargo build --release --locked --bin imgpipe

rm -rf "$OUT" && mkdir -p "$OUT"
run() { # name, then the command; records JSON lines and /usr/bin/time figures
  local name=$1; shift
  /usr/bin/time -f '{"wall_s": %e, "user_s": %U, "sys_s": %S, "max_rss_kb": %M}' -o "$OUT/$name.time.tmp" \
    taskset -c 0 "$@" >>"$OUT/$name.jsonl"
  local img=${@: -1}
  python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); t["image"]=sys.argv[2].rsplit("/",1)[-1]; print(json.dumps(t))' \
    "$OUT/$name.time.tmp" "$img" >>"$OUT/$name.time.jsonl"
  rm -f "$OUT/$name.time.tmp"
}

echo "== five-variant set, single core, $REPS reps each, interleaved"
for img in "${IMAGES[@]}"; do
  echo "-- $img"
  run pillow "$VENV/bin/python" bench/peers/pillow_peer.py --reps "$REPS" --warmup 1 --dump "$OUT/dump-pillow" "$CORPUS/$img"
  run sharp node bench/peers/sharp_peer.mjs --reps "$REPS" --warmup 1 --concurrency 1 --dump "$OUT/dump-sharp" "$CORPUS/$img"
  run imgpipe target/release/imgpipe bench --reps "$REPS" --warmup 1 --dump "$OUT/dump-imgpipe" "$CORPUS/$img"
done

echo "== SSIM against the pre-encode pixels"
for peer in pillow sharp imgpipe; do
  "$VENV/bin/python" bench/ssim.py "$OUT/dump-$peer" >"$OUT/$peer.ssim.jsonl"
done

echo "== throughput: imgpipe process, 1 thread vs 2 threads"
mkdir -p "$OUT/set"
for i in 1 2; do for img in "${IMAGES[@]}"; do cp "$CORPUS/$img" "$OUT/set/$i-$img"; done; done
for jobs in 1 2; do
  start=$(date +%s.%N)
  target/release/imgpipe process --jobs "$jobs" --out "$OUT/process-$jobs" "$OUT/set" >/dev/null
  end=$(date +%s.%N)
  echo "{\"jobs\": $jobs, \"images\": $(ls "$OUT/set" | wc -l), \"wall_s\": $(python3 -c "print(round($end - $start, 3))")}" >>"$OUT/throughput.jsonl"
done

echo "== on-demand webp/w=640 from the 12 MP JPEG, single core, interleaved"
BIG="$CORPUS/${IMAGES[0]}"
taskset -c 0 target/release/imgpipe bench --render webp/w=640 --reps "$REPS" --warmup 1 "$BIG" >>"$OUT/render.jsonl"
taskset -c 0 node bench/peers/sharp_render.mjs --width 640 --reps "$REPS" --warmup 1 "$BIG" >>"$OUT/render.jsonl"

echo "== Lambda cold-start proxy and package size"
"$VENV/bin/python" bench/coldstart.py target/release/imgpipe --reps 20 >"$OUT/coldstart.jsonl"
bash scripts/build-lambda.sh --arch x86_64
ZIP=target/lambda/x86_64/imgpipe/bootstrap.zip
echo "{\"arch\": \"x86_64\", \"bytes\": $(stat -c %s "$ZIP")}" >"$OUT/zip.jsonl"

echo "== cache hits: imgpipe serve against nginx (wrk)"
"$VENV/bin/python" bench/throughput.py target/release/imgpipe "$CORPUS/${IMAGES[1]}" --connections 64 --seconds 10 \
  >"$OUT/throughput-hit.jsonl"

echo "== AWS requests and log bytes per upload and per miss (serve --backend aws + worker on moto)"
source scripts/lib.sh
MOTO_VERSION=$(sed -n 's/^MOTO_VERSION=//p' scripts/emulators.sh)
venv "$ROOT/target/venv-moto" "bin/python -c 'import moto; assert moto.__version__ == \"$MOTO_VERSION\"'" \
  "moto[server]==$MOTO_VERSION"
"$VENV/bin/python" bench/requests.py target/release/imgpipe "$CORPUS/${IMAGES[0]}" "$ROOT/target/venv-moto/bin/python" \
  >"$OUT/requests.jsonl"

# The Load section (scripts/load.sh) is carried over as it is.
"$VENV/bin/python" bench/report.py "$OUT" "bash scripts/bench.sh (REPS=$REPS)" BENCHMARKS.md >"$OUT/BENCHMARKS.md"
cp "$OUT/BENCHMARKS.md" BENCHMARKS.md
echo "== wrote BENCHMARKS.md"
