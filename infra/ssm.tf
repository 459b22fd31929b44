# Settings the functions read from SSM Parameter Store once per cold start
# (IMGPIPE_PARAMETERS), rather than from their environment:
# - the upload tokens, the admin tokens and the signing key, as SecureStrings (encrypted with
#   the account's aws/ssm key), so they are not in the functions' plain
#   configuration;
# - the distribution's id (for the invalidation a delete makes), and
# - the public base URL, which defaults to the distribution's own URL. The
#   distribution needs the function URL, so the functions cannot name the
#   distribution in their environment; a parameter written after the
#   distribution exists breaks that cycle. Until it exists (the first few
#   minutes of a first deploy) a cold start finds none and answers relative
#   URLs; the next cold start reads it.
# Values given as variables also sit in Terraform's state: keep state in an
# encrypted backend (README.md, "State").

locals {
  parameters_path = "/imgpipe/${var.name}/"
}

resource "aws_ssm_parameter" "public_base_url" {
  #checkov:skip=CKV2_AWS_34:The public base URL is public by definition: it is in every answer's metadata.
  name  = "${local.parameters_path}IMGPIPE_PUBLIC_BASE_URL"
  type  = "String"
  value = var.public_base_url != "" ? var.public_base_url : "https://${aws_cloudfront_distribution.cdn.domain_name}"
}

# The distribution a DELETE /images/<id> invalidates: a parameter for the
# same reason as the URL (the distribution needs the functions first).
resource "aws_ssm_parameter" "distribution_id" {
  #checkov:skip=CKV2_AWS_34:A distribution id is not a secret: it is in every CloudFront answer's headers' reach and grants nothing.
  name  = "${local.parameters_path}IMGPIPE_DISTRIBUTION_ID"
  type  = "String"
  value = aws_cloudfront_distribution.cdn.id
}

# Only the secrets that are set: an empty value would be refused by SSM.
locals {
  secrets = {
    IMGPIPE_UPLOAD_TOKENS = var.upload_tokens
    IMGPIPE_SIGNING_KEY   = var.signing_key
    IMGPIPE_ADMIN_TOKENS  = var.admin_tokens
  }
}

resource "aws_ssm_parameter" "secret" {
  for_each = nonsensitive(toset([for name, value in local.secrets : name if value != ""]))
  name     = "${local.parameters_path}${each.key}"
  type     = "SecureString"
  value    = local.secrets[each.key]
  key_id   = "alias/aws/ssm"
}

# Signed URLs by default: a deploy whose operator set no signing_key and did
# not open arbitrary transforms (open_transforms) gets a generated key, so a
# stranger cannot buy renders (CPU, storage) with made-up sizes; the
# standard variants never need a signature. Generated once and kept
# (ignore_changes): read it with `aws ssm get-parameter --with-decryption
# --name /imgpipe/<name>/IMGPIPE_SIGNING_KEY` to sign URLs (README, "Signed
# URLs").
resource "aws_ssm_parameter" "generated_signing_key" {
  count  = var.signing_key == "" && !var.open_transforms ? 1 : 0
  name   = "${local.parameters_path}IMGPIPE_SIGNING_KEY"
  type   = "SecureString"
  value  = "${uuid()}${uuid()}"
  key_id = "alias/aws/ssm"
  lifecycle {
    ignore_changes = [value]
  }
}
