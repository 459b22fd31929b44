# Raw uploads (uploads/<id>, written by presigned PUTs, and drop-ins under any other key) and processed images
# (img/<id>/..., the standard variants and on-demand renders, read by
# CloudFront through Origin Access Control).

locals {
  buckets = {
    raw       = aws_s3_bucket.raw
    processed = aws_s3_bucket.processed
  }
}

resource "aws_s3_bucket" "raw" {
  #checkov:skip=CKV_AWS_18:Access logs would need a third bucket; CloudTrail data events cover audits when wanted.
  #checkov:skip=CKV_AWS_21:Uploads are create-only (If-None-Match: * signed into each presigned PUT and required by the bucket policy); versions would only add cost.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice left to the operator.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256) instead of KMS: presigned PUTs and reads need no kms:* grants and no per-request KMS cost.
  bucket_prefix = "${var.name}-raw-"
  force_destroy = false
}

resource "aws_s3_bucket" "processed" {
  #checkov:skip=CKV_AWS_18:Access logs would need a third bucket; CloudFront logs are the access log of this bucket.
  #checkov:skip=CKV_AWS_21:Every object is derived from the raw bucket and can be rendered again; versions would only add cost.
  #checkov:skip=CKV_AWS_144:Cross-region replication is pointless for a cache of derived images.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256) instead of KMS: CloudFront OAC reads need no KMS key policy and no per-request KMS cost.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to writes in the processed bucket.
  bucket_prefix = "${var.name}-processed-"
  force_destroy = false
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each                = local.buckets
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "raw" {
  bucket = aws_s3_bucket.raw.id
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "processed" {
  bucket = aws_s3_bucket.processed.id
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  # On-demand renders carry the tag imgpipe=render (S3Store::put); a
  # render that expired is simply rendered again on the next miss.
  dynamic "rule" {
    for_each = var.render_expiry_days > 0 ? [var.render_expiry_days] : []
    content {
      id     = "expire-renders"
      status = "Enabled"
      filter {
        tag {
          key   = "imgpipe"
          value = "render"
        }
      }
      expiration {
        days = rule.value
      }
    }
  }
}

# Browsers PUT straight to the raw bucket with the presigned URL: the upload
# page served through the CDN (the distribution's own origins) and the pages
# named in cors_allowed_origins. The rule itself is infra/cors/raw-bucket.json,
# which the browser tests apply to the emulated bucket as well.
locals {
  raw_cors = jsondecode(file("${path.module}/cors/raw-bucket.json"))
  cdn_origins = concat(
    ["https://${aws_cloudfront_distribution.cdn.domain_name}"],
    [for d in var.domain_names : "https://${d}"],
  )
  upload_origins = distinct(concat(local.cdn_origins, var.cors_allowed_origins))
}

resource "aws_s3_bucket_cors_configuration" "raw" {
  bucket = aws_s3_bucket.raw.id
  cors_rule {
    allowed_methods = local.raw_cors.allowed_methods
    allowed_origins = local.upload_origins
    allowed_headers = local.raw_cors.allowed_headers
    expose_headers  = local.raw_cors.expose_headers
    max_age_seconds = local.raw_cors.max_age_seconds
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# Uploads are create-only: the presigned PUT signs If-None-Match: *, and a
# PutObject under uploads/ without it is refused, so a replayed URL (or one
# minted with another client) cannot swap an original whose variants exist.
# Objects the owner drops in under other keys stay writable.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html
data "aws_iam_policy_document" "raw" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["raw"].json]
  statement {
    sid       = "UploadsAreCreateOnly"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.raw.arn}/uploads/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
  }
}

# CloudFront (this distribution only, through OAC) reads variants.
data "aws_iam_policy_document" "processed" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["processed"].json]
  statement {
    sid       = "CloudFrontReadsVariants"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.processed.arn}/img/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.cdn.arn]
    }
  }
}

# Two resources, not one for_each, so the raw bucket's policy does not
# depend on the distribution (and can be applied without it).
resource "aws_s3_bucket_policy" "raw" {
  bucket     = aws_s3_bucket.raw.id
  policy     = data.aws_iam_policy_document.raw.json
  depends_on = [aws_s3_bucket_public_access_block.all]
}

resource "aws_s3_bucket_policy" "processed" {
  bucket     = aws_s3_bucket.processed.id
  policy     = data.aws_iam_policy_document.processed.json
  depends_on = [aws_s3_bucket_public_access_block.all]
}

moved {
  from = aws_s3_bucket_policy.all["raw"]
  to   = aws_s3_bucket_policy.raw
}

moved {
  from = aws_s3_bucket_policy.all["processed"]
  to   = aws_s3_bucket_policy.processed
}

# Every object created in the raw bucket is announced on the queue: the
# API's uploads (uploads/<id>) and drop-ins under any other key, as in
# `aws s3 cp cat.jpg s3://<raw bucket>/holiday/cat.jpg`.
resource "aws_s3_bucket_notification" "raw" {
  bucket = aws_s3_bucket.raw.id
  queue {
    queue_arn = aws_sqs_queue.events.arn
    events    = ["s3:ObjectCreated:*"]
  }
  depends_on = [aws_sqs_queue_policy.events]
}
