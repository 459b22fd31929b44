# Least privilege per function. The permissions below are the one list of
# the AWS calls each function's code makes; scripts/check_infra.py holds
# them to the SDK calls in src/ (every call granted, nothing granted that no
# code calls) and checks the policies are built from them.

locals {
  permissions = {
    http = {
      # GetObject: renders on a miss read the original (and HeadObject).
      # PutObject: presigned PUTs act with the signer's permissions.
      # DeleteObject: DELETE /images/<id>.
      raw = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      # DELETE /images/<id> of a drop-in removes its own object too
      # (HeadObject first, to remove it only while it is the same bytes),
      # or the next import of the bucket would bring the image back.
      # Drop-ins may have any key, so this is the bucket's objects.
      dropped = ["s3:GetObject", "s3:DeleteObject"]
      # Get: serve, Put: write back renders (tagged imgpipe=render),
      # Delete: DELETE /images/<id> (a render that raced it, too).
      processed = ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"]
      # HeadBucket for /health; ListObjectsV2 for DELETE /images/<id>.
      buckets = ["s3:ListBucket"]
      table   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DescribeTable"]
      queue   = []
      # The settings under parameters_path, once per cold start (ssm.tf).
      parameters = ["ssm:GetParametersByPath"]
      # DELETE /images/<id> invalidates /img/<id>/* on this distribution
      # (a policy of its own: see aws_iam_role_policy.cdn).
      cdn = ["cloudfront:CreateInvalidation"]
    }
    events = {
      # GetObject on uploads/<id>; PutObject: a drop-in's bytes copied to
      # uploads/<id> (with If-None-Match, as the bucket policy demands).
      raw = ["s3:GetObject", "s3:PutObject"]
      # A drop-in is any other key in the raw bucket: read, never written.
      dropped = ["s3:GetObject"]
      # DeleteObject: variants written by an ingest that a delete overtook.
      processed = ["s3:PutObject", "s3:DeleteObject"]
      # ListObjectsV2, to find those variants.
      buckets = ["s3:ListBucket"]
      table   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      # What the SQS event source mapping calls with the function's role.
      queue      = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      parameters = ["ssm:GetParametersByPath"]
      cdn        = []
    }
  }
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fn" {
  for_each           = local.permissions
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "fn" {
  for_each = local.permissions

  dynamic "statement" {
    for_each = length(each.value.raw) > 0 ? [each.value.raw] : []
    content {
      sid       = "RawObjects"
      actions   = statement.value
      resources = ["${aws_s3_bucket.raw.arn}/uploads/*"]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.dropped) > 0 ? [each.value.dropped] : []
    content {
      sid       = "DroppedObjects"
      actions   = statement.value
      resources = ["${aws_s3_bucket.raw.arn}/*"]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.processed) > 0 ? [each.value.processed] : []
    content {
      sid       = "ProcessedObjects"
      actions   = statement.value
      resources = ["${aws_s3_bucket.processed.arn}/img/*"]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.buckets) > 0 ? [each.value.buckets] : []
    content {
      sid       = "Buckets"
      actions   = statement.value
      resources = [aws_s3_bucket.raw.arn, aws_s3_bucket.processed.arn]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.table) > 0 ? [each.value.table] : []
    content {
      sid       = "Table"
      actions   = statement.value
      resources = [aws_dynamodb_table.meta.arn]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.queue) > 0 ? [each.value.queue] : []
    content {
      sid       = "Queue"
      actions   = statement.value
      resources = [aws_sqs_queue.events.arn]
    }
  }
  dynamic "statement" {
    for_each = length(each.value.parameters) > 0 ? [each.value.parameters] : []
    content {
      sid     = "Parameters"
      actions = statement.value
      # GetParametersByPath is authorised on the path; the parameters below it too.
      resources = [
        "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${trimsuffix(local.parameters_path, "/")}",
        "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${local.parameters_path}*",
      ]
    }
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.fn[each.key].arn}:*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "fn" {
  for_each = local.permissions
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.fn[each.key].id
  policy   = data.aws_iam_policy_document.fn[each.key].json
}

# The CDN grant names the distribution, which needs the functions (through
# their URL) first, while the functions wait for aws_iam_role_policy.fn: so
# it is a policy of its own, attached once the distribution exists.
data "aws_iam_policy_document" "cdn" {
  for_each = { for fn, p in local.permissions : fn => p.cdn if length(p.cdn) > 0 }
  statement {
    sid       = "Invalidations"
    actions   = each.value
    resources = [aws_cloudfront_distribution.cdn.arn]
  }
}

resource "aws_iam_role_policy" "cdn" {
  for_each = data.aws_iam_policy_document.cdn
  name     = "${var.name}-${each.key}-cdn"
  role     = aws_iam_role.fn[each.key].id
  policy   = each.value.json
}
