output "cdn_domain" {
  description = "The distribution's domain name: https://<this>/uploads, /img/..., /meta/..."
  value       = aws_cloudfront_distribution.cdn.domain_name
}

output "cdn_url" {
  description = "Base URL of the service."
  value       = "https://${aws_cloudfront_distribution.cdn.domain_name}"
}

output "raw_bucket" {
  value = aws_s3_bucket.raw.bucket
}

output "processed_bucket" {
  value = aws_s3_bucket.processed.bucket
}

output "table" {
  value = aws_dynamodb_table.meta.name
}

output "queue_url" {
  value = aws_sqs_queue.events.url
}

output "dead_letter_queue_url" {
  value = aws_sqs_queue.dlq.url
}

output "function_names" {
  value = { for k, f in aws_lambda_function.fn : k => f.function_name }
}

output "alarm_topic_arn" {
  description = "The SNS topic every alarm notifies (subscribe a pager or an address to it)."
  value       = aws_sns_topic.alarms.arn
}
