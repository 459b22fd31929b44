#!/usr/bin/env bash
# Load and slow clients against `imgpipe serve` on this machine (not in CI):
# a burst of concurrent distinct renders of the 12 MP photo, then slow
# readers of its PNG variant (bench/load.py). Writes the figures into the
# "Load" section of BENCHMARKS.md.
#   scripts/load.sh      (RENDERS=300 SLOW=100 STALL=20; IMGPIPE_CORPUS to point elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${IMGPIPE_CORPUS:-$PWD/../shared/corpus}
IMAGE=$CORPUS/photo-12mp-4032x3024.jpg
[ -f "$IMAGE" ] || { echo "missing $IMAGE (set IMGPIPE_CORPUS)"; exit 1; }
cargo build --release --locked --bin imgpipe
mkdir -p target/load
echo "== ${RENDERS:-300} concurrent renders, then ${SLOW:-100} slow readers"
python3 bench/load.py target/release/imgpipe "$IMAGE" --renders "${RENDERS:-300}" --slow "${SLOW:-100}" \
  --stall "${STALL:-20}" | tee target/load/load.json
python3 bench/report.py --load target/load/load.json "bash scripts/load.sh" BENCHMARKS.md
echo "== wrote the Load section of BENCHMARKS.md"
