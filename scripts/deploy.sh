#!/usr/bin/env bash
# Deploy imgpipe to AWS: build the Lambda zip, `terraform init` + `apply`
# in infra/, then print the CDN URL and a first request.
# Usage: scripts/deploy.sh [--arch x86_64|arm64] [-- extra terraform apply arguments]
#   e.g. scripts/deploy.sh -- -var name=imgpipe-prod -var region=eu-west-1
# Needs: terraform >= 1.6, AWS credentials for the target account (the AWS
# CLI's usual environment or profile), Python 3 (for the build tools).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ARCH=x86_64
if [ "${1:-}" = "--arch" ]; then ARCH=${2:?--arch needs x86_64 or arm64}; shift 2; fi
if [ "${1:-}" = "--" ]; then shift; fi
command -v terraform >/dev/null || { echo "terraform is required (https://developer.hashicorp.com/terraform/install)"; exit 1; }

bash scripts/build-lambda.sh --arch "$ARCH"
ZIP="$ROOT/target/lambda/$ARCH/imgpipe/bootstrap.zip"
[ -f "$ZIP" ] || { echo "no Lambda zip at $ZIP (is the Rust target for $ARCH installed?)"; exit 1; }

cd infra
terraform init -input=false
terraform apply -input=false -var "lambda_zip=$ZIP" -var "architecture=$ARCH" "$@"
CDN=$(terraform output -raw cdn_url)
echo
echo "imgpipe is at $CDN (a new distribution takes a few minutes to reach every edge)"
echo "First upload (the x-amz-content-sha256 header is required through CloudFront):"
cat <<CURL
  BODY='{"content_type":"image/jpeg","content_length":'\$(stat -c %s photo.jpg)'}'
  curl -s -X POST $CDN/uploads -H 'content-type: application/json' \\
    -H "x-amz-content-sha256: \$(printf %s "\$BODY" | sha256sum | cut -d' ' -f1)" -d "\$BODY"
CURL
