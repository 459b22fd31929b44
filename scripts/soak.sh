#!/usr/bin/env bash
# A soak of `imgpipe serve` (bench/soak.py): mixed uploads, renders, hits and
# slow clients at a bounded rate for DURATION seconds (default 1800), the
# server SIGKILLed and restarted twice in the middle, then an audit that
# nothing was lost. Not in CI. Writes the Soak section of BENCHMARKS.md.
#   scripts/soak.sh            (DURATION=1800)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib.sh
venv "$ROOT/target/venv-bench" "bin/python -c 'import PIL'" pillow==12.0.0
cargo build --release --locked --bin imgpipe
mkdir -p target/soak
echo "== soak: ${DURATION:-1800} s"
"$ROOT/target/venv-bench/bin/python" bench/soak.py target/release/imgpipe --duration "${DURATION:-1800}" \
  | tee target/soak/soak.json
python3 bench/report.py --soak target/soak/soak.json "bash scripts/soak.sh (DURATION=${DURATION:-1800})" BENCHMARKS.md
echo "== wrote the Soak section of BENCHMARKS.md"
