# S3 ObjectCreated (any key of the raw bucket) -> SQS -> the events function; a message that
# fails max_receive_count times moves to the dead-letter queue, and an alarm
# (alarms.tf) fires as soon as that queue is not empty.

locals {
  # Both queues keep messages for SQS's longest, 14 days: a backlog the
  # poller works through slowly (a throttled account, a bug fixed days
  # later) must reach the dead-letter queue, never expire on the way. The
  # dead-letter queue counts from the message's first enqueue, so it keeps
  # the same.
  queue_retention_s = 1209600
}

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-events-dlq"
  message_retention_seconds = local.queue_retention_s
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "events" {
  name                       = "${var.name}-events"
  visibility_timeout_seconds = var.events_timeout_s * 6
  message_retention_seconds  = local.queue_retention_s
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
  lifecycle {
    # The longest retry path: every delivery waits out the visibility timeout.
    precondition {
      condition     = var.max_receive_count * var.events_timeout_s * 6 < local.queue_retention_s
      error_message = "max_receive_count x the visibility timeout (6 x events_timeout_s) must be shorter than the queue's 14-day retention, or messages expire before they reach the dead-letter queue."
    }
  }
}

data "aws_iam_policy_document" "events_queue" {
  statement {
    sid       = "RawBucketNotifies"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.raw.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.events_queue.json
}
