#!/usr/bin/env bash
# Build the Lambda package: `bootstrap` (the imgpipe binary) zipped for the
# provided.al2023 runtime, with cargo-lambda and zig as the linker (both
# from PyPI, into a venv under target/). x86_64 always; arm64 too when that
# Rust target is installed (`rustup target add aarch64-unknown-linux-gnu`).
# Prints each zip's path and size.
# Usage: scripts/build-lambda.sh [--arch x86_64|arm64|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib.sh

ARCH=all
if [ "${1:-}" = "--arch" ]; then ARCH=${2:?--arch needs x86_64, arm64 or all}; fi
CARGO_LAMBDA_VERSION=1.9.2
ZIG_VERSION=0.17.1
VENV="$ROOT/target/venv-lambda"
venv "$VENV" "bin/cargo-lambda lambda --version | grep -q $CARGO_LAMBDA_VERSION && bin/python -m ziglang version" \
  "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIG_VERSION"
# cargo-lambda finds zig through `python3 -m ziglang` on PATH.
export PATH="$VENV/bin:$PATH"

installed=$(rustup target list --installed 2>/dev/null || rustc -vV | sed -n 's/^host: //p')
build() {
  local triple=$1 out="$ROOT/target/lambda/$2"
  if ! grep -qx "$triple" <<<"$installed"; then
    echo "skipping $2: the Rust target $triple is not installed"
    return 0
  fi
  echo "== lambda build: $2 ($triple)"
  cargo lambda build --release --locked --no-default-features --target "$triple" --bin imgpipe --output-format zip --lambda-dir "$out"
  local zip="$out/imgpipe/bootstrap.zip"
  python3 -c 'import sys, zipfile; assert "bootstrap" in zipfile.ZipFile(sys.argv[1]).namelist()' "$zip" ||
    { echo "$zip holds no bootstrap"; exit 1; }
  echo "$2: $zip $(stat -c %s "$zip") bytes"
}
case $ARCH in
  x86_64) build x86_64-unknown-linux-gnu x86_64 ;;
  arm64) build aarch64-unknown-linux-gnu arm64 ;;
  all)
    build x86_64-unknown-linux-gnu x86_64
    build aarch64-unknown-linux-gnu arm64
    ;;
  *) echo "unknown --arch $ARCH"; exit 2 ;;
esac
