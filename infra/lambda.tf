# One zip, two functions: IMGPIPE_HANDLER=http behind the Function URL,
# IMGPIPE_HANDLER=events on the SQS queue.

locals {
  # Every IMGPIPE_* variable the binary reads in AWS mode, but those kept in
  # SSM Parameter Store under parameters_path (ssm.tf); scripts/check_infra.py
  # holds both lists to src/.
  environment = {
    IMGPIPE_BACKEND          = "aws"
    IMGPIPE_RAW_BUCKET       = aws_s3_bucket.raw.bucket
    IMGPIPE_PROCESSED_BUCKET = aws_s3_bucket.processed.bucket
    IMGPIPE_TABLE            = aws_dynamodb_table.meta.name
    IMGPIPE_QUEUE_URL        = aws_sqs_queue.events.url
    IMGPIPE_PARAMETERS       = local.parameters_path
    IMGPIPE_CORS_ORIGINS     = join(",", var.cors_allowed_origins)
    IMGPIPE_UPLOAD_TTL_SECS  = tostring(var.upload_ttl_s)
    IMGPIPE_MAX_UPLOAD_BYTES = tostring(var.max_upload_bytes)
    IMGPIPE_MAX_PIXELS       = tostring(var.max_pixels)
    IMGPIPE_MAX_DIMENSION    = tostring(var.max_dimension)
    IMGPIPE_THUMB_SIZE       = tostring(var.thumb_size)
    IMGPIPE_MAX_RENDER_COST  = tostring(var.max_render_cost)
    IMGPIPE_LOG_FORMAT       = "json"
    IMGPIPE_S3_PATH_STYLE    = "false"
  }
  functions = {
    http = {
      memory      = var.http_memory_mb
      timeout     = var.http_timeout_s
      concurrency = var.http_reserved_concurrency
    }
    events = {
      memory      = var.events_memory_mb
      timeout     = var.events_timeout_s
      concurrency = var.events_reserved_concurrency
    }
  }
}

resource "aws_cloudwatch_log_group" "fn" {
  #checkov:skip=CKV_AWS_158:Logs hold request metadata only, encrypted at rest by CloudWatch; a KMS key is an operator choice.
  #checkov:skip=CKV_AWS_338:Retention is a variable (log_retention_days, 30 by default); a year of image-request logs is cost without use.
  for_each          = local.functions
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "fn" {
  #checkov:skip=CKV_AWS_116:Failed events go to the SQS queue's dead-letter queue; the http function is invoked synchronously.
  #checkov:skip=CKV_AWS_117:The functions reach only S3, DynamoDB and SQS over their public endpoints; a VPC adds NAT cost and cold-start time.
  #checkov:skip=CKV_AWS_173:Environment variables are encrypted at rest with the Lambda-managed key; secrets in them are optional tokens.
  #checkov:skip=CKV_AWS_50:X-Ray is PassThrough by default (tracing_mode): the code emits no segments of its own, and Active tracing is billed per trace.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the operator owns; the zip is built by scripts/build-lambda.sh.
  for_each                       = local.functions
  function_name                  = "${var.name}-${each.key}"
  role                           = aws_iam_role.fn[each.key].arn
  filename                       = var.lambda_zip
  source_code_hash               = filebase64sha256(var.lambda_zip)
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.architecture]
  memory_size                    = each.value.memory
  timeout                        = each.value.timeout
  reserved_concurrent_executions = each.value.concurrency
  environment {
    variables = merge(local.environment, { IMGPIPE_HANDLER = each.key })
  }
  tracing_config {
    mode = var.tracing_mode
  }
  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.fn[each.key].name
  }
  depends_on = [aws_iam_role_policy.fn]
}

# The http function is reachable only through CloudFront: AWS_IAM auth, and
# only the distribution (Origin Access Control, SigV4) may invoke it.
resource "aws_lambda_function_url" "http" {
  function_name      = aws_lambda_function.fn["http"].function_name
  authorization_type = "AWS_IAM"
  invoke_mode        = "BUFFERED"
}

resource "aws_lambda_permission" "cloudfront_url" {
  statement_id           = "CloudFrontInvokeFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.fn["http"].function_name
  principal              = "cloudfront.amazonaws.com"
  source_arn             = aws_cloudfront_distribution.cdn.arn
  function_url_auth_type = "AWS_IAM"
}

resource "aws_lambda_permission" "cloudfront_invoke" {
  statement_id  = "CloudFrontInvokeFunction"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["http"].function_name
  principal     = "cloudfront.amazonaws.com"
  source_arn    = aws_cloudfront_distribution.cdn.arn
}

resource "aws_lambda_event_source_mapping" "events" {
  event_source_arn                   = aws_sqs_queue.events.arn
  function_name                      = aws_lambda_function.fn["events"].arn
  batch_size                         = var.events_batch_size
  maximum_batching_window_in_seconds = 1
  function_response_types            = ["ReportBatchItemFailures"]
  # The poller's own cap bounds concurrent ingests without reserving any of
  # the account's concurrency (never above a reservation, when one is set).
  scaling_config {
    maximum_concurrency = var.events_reserved_concurrency == -1 ? var.events_max_concurrency : max(2, min(var.events_max_concurrency, var.events_reserved_concurrency))
  }
}
