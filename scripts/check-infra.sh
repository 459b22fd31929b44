#!/usr/bin/env bash
# Offline checks of infra/: every .tf parses and the Lambda environment and
# IAM match the code (python-hcl2, scripts/check_infra.py), checkov finds 0
# failed checks (no downloads), and the CloudFront Function agrees with the
# Rust canonicalizer on every transform vector under node and under njs (the
# engine CloudFront Functions run on), within its size limit; then
# scripts/check-terraform.sh (Terraform itself, and an apply on moto).
# checkov and python-hcl2 clash, so each has its own venv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib.sh
CHECKOV_VERSION=3.3.30
HCL2_VERSION=8.1.4

venv "$ROOT/target/venv-hcl2" "bin/python -c 'import hcl2' && bin/pip show python-hcl2 | grep -q 'Version: $HCL2_VERSION'" \
  "python-hcl2==$HCL2_VERSION"
venv "$ROOT/target/venv-checkov" "bin/checkov --version | grep -q $CHECKOV_VERSION" "checkov==$CHECKOV_VERSION"

echo "-- parse, environment and IAM"
"$ROOT/target/venv-hcl2/bin/python" scripts/check_infra.py "$ROOT"

echo "-- checkov"
"$ROOT/target/venv-checkov/bin/checkov" -d infra --framework terraform --skip-download --compact --quiet

echo "-- CloudFront Function against tests/vectors/transform.json"
command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs >/dev/null; }
node infra/cloudfront/test.mjs
command -v njs >/dev/null || { echo "installing njs (apt)"; apt-get update -qq && apt-get install -y -qq njs >/dev/null; }
bash infra/cloudfront/test-njs.sh

echo "-- Terraform (fmt, init from a local provider mirror, validate, plan and apply on moto)"
bash scripts/check-terraform.sh
