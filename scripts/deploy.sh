#!/usr/bin/env bash
# Deploy imgpipe to AWS: build the Lambda zip, `terraform init` + `apply`
# in infra/, then print the CDN URL and a first request.
# Usage: scripts/deploy.sh [--arch x86_64|arm64] [--yes] [-- extra terraform apply arguments]
#   e.g. scripts/deploy.sh -- -var name=imgpipe-prod -var region=eu-west-1
#   --yes (or AUTO_APPROVE=1) applies without asking, for unattended runs.
# Needs: terraform >= 1.6, AWS credentials for the target account (the AWS
# CLI's usual environment or profile), Python 3 (for the build tools).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ARCH=x86_64
APPROVE=()
case "${AUTO_APPROVE:-}" in 1 | true | yes) APPROVE=(-auto-approve) ;; esac
while [ $# -gt 0 ]; do
  case $1 in
    --arch) ARCH=${2:?--arch needs x86_64 or arm64}; shift 2 ;;
    --yes | -y) APPROVE=(-auto-approve); shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (terraform arguments go after --)"; exit 2 ;;
  esac
done
case $ARCH in x86_64 | arm64) ;; *) echo "--arch is x86_64 or arm64, not $ARCH"; exit 2 ;; esac
command -v terraform >/dev/null || { echo "terraform is required (https://developer.hashicorp.com/terraform/install)"; exit 1; }
if [ ${#APPROVE[@]} -eq 0 ] && [ ! -t 0 ]; then
  echo "stdin is not a terminal, so terraform cannot ask for approval: pass --yes (or AUTO_APPROVE=1) to apply unattended"
  exit 2
fi

bash scripts/build-lambda.sh --arch "$ARCH"
ZIP="$ROOT/target/lambda/$ARCH/imgpipe/bootstrap.zip"
[ -f "$ZIP" ] || { echo "no Lambda zip at $ZIP (is the Rust target for $ARCH installed? rustup target add aarch64-unknown-linux-gnu)"; exit 1; }
# The build skips an architecture whose Rust target is missing, so an old zip
# could still be lying there: refuse one older than the code it packages.
NEWER=$(find src ui Cargo.toml Cargo.lock openapi.yaml -newer "$ZIP" -type f | head -3)
if [ -n "$NEWER" ]; then
  echo "refusing to deploy $ZIP: it is older than the source ($(echo "$NEWER" | tr '\n' ' '))"
  exit 1
fi

cd infra
terraform init -input=false
terraform apply -input=false "${APPROVE[@]}" -var "lambda_zip=$ZIP" -var "architecture=$ARCH" "$@"
CDN=$(terraform output -raw cdn_url)
echo
echo "imgpipe is at $CDN (a new distribution takes a few minutes to reach every edge)"
echo "Open $CDN/ for the upload page, or upload from a shell (x-amz-content-sha256 is"
echo "required through CloudFront; add -H \"x-imgpipe-token: \$TOKEN\" if upload_tokens is set):"
cat <<CURL
  BODY='{"content_type":"image/jpeg","content_length":'\$(stat -c %s photo.jpg)'}'
  curl -sf -X POST $CDN/uploads -H 'content-type: application/json' \\
    -H "x-amz-content-sha256: \$(printf %s "\$BODY" | sha256sum | cut -d' ' -f1)" -d "\$BODY"
CURL
