#!/usr/bin/env bash
# infra/ checked by Terraform itself, offline: fmt, init against a local
# provider mirror (no registry), validate; then, on the moto server that
# scripts/test.sh runs, a plan and an apply of every resource moto
# implements, and checks that what was applied is what the code expects
# (tests/terraform/check_applied.py).
# Without terraform or a provider mirror it prints `SKIP terraform: <why>`
# (and fails under CI).
# Usage: scripts/check-terraform.sh   (IMGPIPE_TEST_MOTO_URL for the apply)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Without Terraform this check skips on a developer's machine; under CI
# (CI=true) it fails, so infra/ is never passed unchecked.
skip() {
  if [ -n "${CI:-}" ]; then
    echo "FAIL terraform: $1"
    exit 1
  fi
  echo "SKIP terraform: $1"
  exit 0
}
TERRAFORM=$(command -v terraform || true)
if [ -z "$TERRAFORM" ]; then
  skip "no terraform binary on PATH"
fi
MIRROR=${TF_PROVIDER_MIRROR:-}
if [ -z "$MIRROR" ]; then
  for root in /opt /usr/share/terraform /usr/local/share/terraform "$HOME/.terraform.d" "$HOME/.local/share/terraform"; do
    found=$(find "$root" -maxdepth 5 -type d -path '*/registry.terraform.io/hashicorp/aws' 2>/dev/null | head -1)
    if [ -n "$found" ]; then MIRROR=${found%/registry.terraform.io/hashicorp/aws}; break; fi
  done
fi
if [ -z "$MIRROR" ] || [ ! -d "$MIRROR/registry.terraform.io/hashicorp/aws" ]; then
  skip "no provider mirror holding registry.terraform.io/hashicorp/aws (set TF_PROVIDER_MIRROR)"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/cli.tfrc" <<TFRC
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
TFRC
export TF_CLI_CONFIG_FILE="$WORK/cli.tfrc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
# A scratch copy: .terraform/ and state never land in infra/.
cp -r infra "$WORK/infra"
cd "$WORK/infra"

# scripts/deploy.sh refuses what would fail half-way, before building or
# touching AWS: an unknown flag, and an apply that cannot ask for approval.
deploy_refuses() { # expected exit code, expected words, arguments...
  local want=$1 words=$2 out code=0
  shift 2
  out=$(bash "$ROOT/scripts/deploy.sh" "$@" </dev/null 2>&1) || code=$?
  if [ "$code" != "$want" ] || ! grep -q -- "$words" <<<"$out"; then
    echo "FAIL deploy.sh $*: exit $code, expected $want with \"$words\": $out"
    exit 1
  fi
}
deploy_refuses 2 "unknown argument" --bogus
deploy_refuses 2 "pass --yes" --arch x86_64
deploy_refuses 2 "x86_64 or arm64" --arch sparc
echo "-- deploy.sh: refuses unknown flags, and an apply without a terminal or --yes"

# The lock file lets `terraform init` verify the provider on any machine:
# the h1: hash of the unpacked provider (what this mirror holds, checked by
# init below) and a zh: hash of each platform's zip as the registry
# publishes it. 5.100.0 is published as 15 zips (darwin, linux, windows and
# freebsd builds, amd64 and arm64 among them); fewer zh: hashes means a
# lock made on one machine, which every other platform refuses.
ZH=$(grep -cE '^\s*"zh:[0-9a-f]{64}",$' .terraform.lock.hcl || true)
VERSION=$(sed -n 's/^ *version *= *"\([0-9.]*\)"/\1/p' .terraform.lock.hcl)
if [ "$VERSION" != "5.100.0" ] || [ "$ZH" -lt 15 ]; then
  echo "FAIL infra/.terraform.lock.hcl: hashicorp/aws $VERSION with $ZH zh: hashes; every platform's 15 are needed"
  echo "     (terraform providers lock -platform=linux_amd64 -platform=linux_arm64 -platform=darwin_amd64 -platform=darwin_arm64)"
  exit 1
fi
echo "-- lock file: hashicorp/aws $VERSION, h1: and $ZH zh: hashes (every platform's zip)"

echo "-- terraform $("$TERRAFORM" version | head -1 | cut -d' ' -f2), provider mirror $MIRROR"
"$TERRAFORM" fmt -check -recursive -diff
"$TERRAFORM" init -backend=false -lockfile=readonly -no-color >/dev/null
"$TERRAFORM" validate -no-color

MOTO=${IMGPIPE_TEST_MOTO_URL:-}
if [ -z "$MOTO" ]; then
  if [ -n "${IMGPIPE_REQUIRE_EMULATORS:-}" ]; then
    echo "FAIL terraform apply: IMGPIPE_TEST_MOTO_URL is unset but IMGPIPE_REQUIRE_EMULATORS is"
    exit 1
  fi
  echo "SKIP terraform apply: IMGPIPE_TEST_MOTO_URL is unset (scripts/test.sh starts moto)"
  exit 0
fi
ZIP=${LAMBDA_ZIP:-$ROOT/target/lambda/x86_64/imgpipe/bootstrap.zip}
[ -f "$ZIP" ] || { echo "FAIL terraform apply: no Lambda zip at $ZIP (scripts/build-lambda.sh)"; exit 1; }

sed "s|@MOTO@|$MOTO|g" "$ROOT/tests/terraform/moto_override.tf.in" >moto_override.tf
# Everything in infra/ that moto implements: not CloudFront (no cache or
# response-headers policies, no functions), nor what hangs off the
# distribution (the processed bucket's policy with its OAC grant, CloudFront's
# invoke permissions).
TARGETS=(
  aws_s3_bucket.raw aws_s3_bucket.processed
  aws_s3_bucket_public_access_block.all aws_s3_bucket_ownership_controls.all
  aws_s3_bucket_server_side_encryption_configuration.all
  aws_s3_bucket_lifecycle_configuration.raw aws_s3_bucket_lifecycle_configuration.processed
  aws_s3_bucket_cors_configuration.raw aws_s3_bucket_policy.raw aws_s3_bucket_notification.raw
  aws_sqs_queue.dlq aws_sqs_queue.events aws_sqs_queue_policy.events
  aws_dynamodb_table.meta
  aws_iam_role.fn aws_iam_role_policy.fn
  aws_cloudwatch_log_group.fn aws_cloudwatch_metric_alarm.dlq_not_empty
  aws_sns_topic.alarms aws_sns_topic_subscription.email
  aws_lambda_function.fn aws_lambda_function_url.http aws_lambda_event_source_mapping.events
  aws_ssm_parameter.public_base_url aws_ssm_parameter.distribution_id aws_ssm_parameter.secret
  aws_ssm_parameter.generated_signing_key
)
NAME="tf$(date +%s | tail -c 7)"
VARS=(-var "name=$NAME" -var "lambda_zip=$ZIP" -var 'cors_allowed_origins=["https://app.example"]'
  -var "upload_tokens=token-$NAME" -var "signing_key=key-$NAME" -var "admin_tokens=admin-$NAME" -var "alarm_email=oncall@example.com")
echo "-- plan and apply on moto ($MOTO): ${#TARGETS[@]} resources and their dependencies"
"$TERRAFORM" plan -no-color -out=moto.plan "${VARS[@]}" "${TARGETS[@]/#/-target=}" >plan.log 2>&1 || { cat plan.log; exit 1; }
grep -E '^Plan:' plan.log
"$TERRAFORM" apply -no-color -auto-approve moto.plan >apply.log 2>&1 || { cat apply.log; exit 1; }
grep -E '^Apply complete' apply.log
"$TERRAFORM" output -json >/dev/null 2>&1 || true
"$TERRAFORM" show -json >state.json
"$ROOT/target/venv-moto/bin/python" "$ROOT/tests/terraform/check_applied.py" "$MOTO" state.json "$ROOT"
