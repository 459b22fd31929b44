#!/usr/bin/env bash
# The one test command. On a fresh machine it installs what the tests need,
# starts what they talk to (moto, s3s-fs), runs every test (Rust, browser,
# infra with a Terraform apply on moto, API conformance), builds the Lambda
# package, and stops what it started.
# Usage: scripts/test.sh            (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export IMGPIPE_CORPUS="${IMGPIPE_CORPUS:-$ROOT/../shared/corpus}"
# Here the corpus is required: its tests fail, never skip, without it.
export IMGPIPE_REQUIRE_CORPUS=1
if [ -f "$IMGPIPE_CORPUS/MANIFEST.tsv" ]; then
  echo "== corpus: $IMGPIPE_CORPUS"
else
  echo "FAIL corpus: no MANIFEST.tsv at $IMGPIPE_CORPUS (put the shared corpus beside the repository, or set IMGPIPE_CORPUS)"
  exit 1
fi

command -v cargo >/dev/null || { echo "cargo is required (rustup.rs)"; exit 1; }
. scripts/lib.sh
. scripts/emulators.sh

# A gate whose tool is missing skips on a developer's machine, with a
# word; under CI (CI=true) it fails, so a missing tool never passes as clean.
missing() {
  if [ -n "${CI:-}" ]; then
    echo "FAIL $1 is not installed (rustup component add $2), and CI runs every gate"
    exit 1
  fi
  echo "$1 not installed; skipping (rustup component add $2)"
}

echo "== format"
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --check
else
  missing rustfmt rustfmt
fi

echo "== lints"
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --all-targets --locked --quiet -- -D warnings
else
  missing clippy clippy
fi

echo "== AWS emulators"
LOG=$(mktemp)
trap 'stop_emulators; rm -f "$LOG"' EXIT
start_emulators

echo "== build and run the Rust tests"
set +e
cargo test --locked --no-fail-fast 2>&1 | tee "$LOG"
RUST_STATUS=${PIPESTATUS[0]}
set -e
# Sum the "test result:" lines of every test binary.
read -r PASSED FAILED < <(awk '/^test result:/ {
  for (i = 2; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) }
} END { print p + 0, f + 0 }' "$LOG")
if [ "$RUST_STATUS" -ne 0 ]; then
  echo "rust: $PASSED passed, $FAILED failed"
  exit "$RUST_STATUS"
fi

# `cargo test` built the binary the integration tests ran (in
# CARGO_TARGET_DIR when that is set, so a fresh clone can share one build);
# the browser tests and schemathesis drive that same binary.
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/imgpipe"
echo "== browser (headless Chromium: the upload page, CORS, the AWS path)"
bash scripts/browser-test.sh "$BIN"

# The Lambda zip is what the Terraform apply on moto deploys.
echo "== Lambda package"
bash scripts/build-lambda.sh

echo "== infra/ (offline, and a Terraform apply on moto)"
bash scripts/check-infra.sh

stop_emulators

echo "== API conformance (schemathesis against imgpipe serve)"
bash scripts/schemathesis.sh "$BIN"

echo "rust: $PASSED passed, $FAILED failed"
