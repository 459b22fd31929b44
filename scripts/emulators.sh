# Sourced by scripts/test.sh: install and start the AWS emulators the AWS
# tests talk to, export where they are, and stop them on exit.
#   moto    S3, SQS (with S3 event notifications) and DynamoDB; does not
#           check request signatures.
#   s3s-fs  S3 on a folder that does check SigV4: the presigned-URL tests.
# Requires: scripts/lib.sh sourced, ROOT set.

MOTO_VERSION=5.2.1
S3S_VERSION=0.14.1
EMULATORS_DIR=$(mktemp -d)
EMULATOR_PIDS=()

stop_emulators() {
  for pid in "${EMULATOR_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${EMULATOR_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  EMULATOR_PIDS=()
  rm -rf "$EMULATORS_DIR"
}

start_emulators() {
  venv "$ROOT/target/venv-moto" "bin/python -c 'import moto; assert moto.__version__ == \"$MOTO_VERSION\"'" \
    "moto[server]==$MOTO_VERSION"
  local s3s="$ROOT/target/tools/bin/s3s-fs"
  if ! "$s3s" --version 2>/dev/null | grep -q "$S3S_VERSION"; then
    echo "installing s3s-fs $S3S_VERSION into target/tools"
    cargo install --quiet "s3s-fs@$S3S_VERSION" --features binary --locked --root "$ROOT/target/tools"
  fi

  local moto_port s3s_port
  moto_port=$(free_port)
  # Without its global CORS, moto answers browsers with the bucket's own CORS
  # rules, as S3 does: the browser tests apply infra/'s rule and rely on it.
  MOTO_DISABLE_GLOBAL_CORS=true "$ROOT/target/venv-moto/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$EMULATORS_DIR/moto.log" 2>&1 &
  EMULATOR_PIDS+=($!)
  s3s_port=$(free_port)
  mkdir -p "$EMULATORS_DIR/s3s"
  "$s3s" --host 127.0.0.1 --port "$s3s_port" --access-key imgpipe-test --secret-key imgpipe-test-secret \
    "$EMULATORS_DIR/s3s" >"$EMULATORS_DIR/s3s.log" 2>&1 &
  EMULATOR_PIDS+=($!)

  wait_port "$moto_port" 30 || { cat "$EMULATORS_DIR/moto.log"; echo "moto did not start"; return 1; }
  wait_port "$s3s_port" 30 || { cat "$EMULATORS_DIR/s3s.log"; echo "s3s-fs did not start"; return 1; }
  export IMGPIPE_TEST_MOTO_URL="http://127.0.0.1:$moto_port"
  export IMGPIPE_TEST_S3S_URL="http://127.0.0.1:$s3s_port"
  export IMGPIPE_TEST_S3S_DIR="$EMULATORS_DIR/s3s"
  export IMGPIPE_TEST_S3S_KEYS="imgpipe-test:imgpipe-test-secret"
  # The AWS suites fail, rather than skip, when an emulator is missing.
  export IMGPIPE_REQUIRE_EMULATORS=1
  echo "== emulators: moto $IMGPIPE_TEST_MOTO_URL, s3s-fs $IMGPIPE_TEST_S3S_URL"
}
