#!/usr/bin/env bash
# The browser tests: the upload page and CORS in headless Chromium, driven by
# playwright-core (tests/browser/run.mjs). Installs Debian's chromium and the
# npm package when missing (never a downloaded browser). Screenshots go to
# target/browser/. The AWS case needs moto (IMGPIPE_TEST_MOTO_URL, started
# by scripts/test.sh); run alone without it, that case prints SKIP.
# Usage: scripts/browser-test.sh [path to the imgpipe binary]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export IMGPIPE_BIN=${1:-$ROOT/target/debug/imgpipe}

if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium (apt)"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null || { echo "installing nodejs and npm (apt)"; apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "installing playwright-core (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
export CHROMIUM=$(command -v chromium)
export MOTO_PYTHON="$ROOT/target/venv-moto/bin/python"
node tests/browser/run.mjs
