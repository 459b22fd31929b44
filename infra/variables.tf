variable "name" {
  description = "Prefix of every resource name (lowercase letters, digits and hyphens). At most 26 characters: the longest name it feeds is the processed bucket's prefix, \"<name>-processed-\", and S3 allows a bucket_prefix of 37."
  type        = string
  default     = "imgpipe"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,24}[a-z0-9]$", var.name))
    error_message = "name must be 2-26 lowercase letters, digits or hyphens, starting with a letter and ending with a letter or digit (it prefixes bucket names, whose prefix S3 limits to 37 characters)."
  }
}

variable "region" {
  description = "AWS region of the stack (CloudFront is global)."
  type        = string
  default     = "us-east-1"
}

variable "lambda_zip" {
  description = "Path of the bootstrap zip built by scripts/build-lambda.sh."
  type        = string
  default     = "../target/lambda/x86_64/imgpipe/bootstrap.zip"
}

variable "architecture" {
  description = "Lambda architecture of the zip: x86_64 or arm64."
  type        = string
  default     = "x86_64"
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "http_memory_mb" {
  description = "Memory of the http function (CPU scales with it: 1769 MB is one full vCPU)."
  type        = number
  default     = 2048
}

# 1,769 MB is where Lambda gives a function one full vCPU. The five-variant
# set runs on one core, so below that it is slower at the same cost per
# upload, and above it costs more for no speed (BENCHMARKS.md, "Cost per
# million"); peak RSS on a 12 MP photo is well under it.
variable "events_memory_mb" {
  description = "Memory of the events function (decodes the original once, encodes five variants); 1769 MB is one full vCPU."
  type        = number
  default     = 1769
}

variable "http_timeout_s" {
  description = "Timeout of the http function, in seconds (an on-demand render of a large original)."
  type        = number
  default     = 30
}

variable "events_timeout_s" {
  description = "Timeout of the events function, in seconds. The queue's visibility timeout is six times this."
  type        = number
  default     = 120
}

# Reserved concurrency is opt-in: Lambda keeps 100 of the account's
# concurrency unreserved, and new accounts start with a limit too low to
# reserve any, so a reservation by default fails the first apply there.
variable "http_reserved_concurrency" {
  description = "Reserved concurrency of the http function, to cap cost and downstream load; -1 (the default) reserves none. Needs an account concurrency limit of at least this plus 100."
  type        = number
  default     = -1
  validation {
    condition     = var.http_reserved_concurrency == -1 || var.http_reserved_concurrency >= 1
    error_message = "http_reserved_concurrency is -1 (none) or at least 1."
  }
}

variable "events_reserved_concurrency" {
  description = "Reserved concurrency of the events function; -1 (the default) reserves none. Needs an account concurrency limit of at least this plus 100."
  type        = number
  default     = -1
  validation {
    condition     = var.events_reserved_concurrency == -1 || var.events_reserved_concurrency >= 1
    error_message = "events_reserved_concurrency is -1 (none) or at least 1."
  }
}

# A new account may run 10 functions at once in all: 5 ingests leave the
# other 5 to the http function (uploads, /meta, renders). Raise it with the
# account's limit (infra/README.md, "New accounts").
variable "events_max_concurrency" {
  description = "At most this many events functions run at once, fed by the SQS queue (the event source mapping's maximum concurrency, 2-1000; reserves nothing). The default fits a new account's limit of 10 with room for the http function."
  type        = number
  default     = 5
  validation {
    condition     = var.events_max_concurrency >= 2 && var.events_max_concurrency <= 1000
    error_message = "events_max_concurrency is 2-1000."
  }
}

variable "events_batch_size" {
  description = "SQS messages per events invocation."
  type        = number
  default     = 5
}

variable "max_receive_count" {
  description = "Deliveries of a message before it moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 30
}

variable "public_base_url" {
  description = "Base of the URLs in metadata (e.g. https://images.example.com). Empty: URLs relative to the CDN host."
  type        = string
  default     = ""
}

variable "upload_tokens" {
  description = "Comma-separated bearer tokens accepted by POST /uploads. Empty: open uploads."
  type        = string
  default     = ""
  sensitive   = true
}

variable "max_render_cost" {
  description = "The most one on-demand render may cost, in megapixels of the original weighted by format (JPEG 1, PNG/WebP/TIFF 1.5, AVIF 4): past it a render is refused with 422 too_costly. 100 is a 50 MP JPEG or a 25 MP AVIF."
  type        = number
  default     = 100
}

variable "open_transforms" {
  description = "Serve any on-demand size and format unsigned when signing_key is empty. false (the default): with no signing_key, one is generated and on-demand renders need s= (standard variants never do)."
  type        = bool
  default     = false
}

variable "admin_tokens" {
  description = "Comma-separated tokens that may DELETE any image (drop-ins and imports, which have no delete token of their own). Empty: only an image's own delete token deletes it."
  type        = string
  default     = ""
  sensitive   = true
}

variable "signing_key" {
  description = "Key for s= signatures on on-demand transforms. Empty: unsigned transforms."
  type        = string
  default     = ""
  sensitive   = true
}

variable "max_upload_bytes" {
  description = "Largest upload accepted (signed into the presigned PUT)."
  type        = number
  default     = 52428800
}

variable "max_pixels" {
  description = "Largest image accepted, in pixels, checked from the header before decoding."
  type        = number
  default     = 50000000
}

variable "max_dimension" {
  description = "Long side of the standard variants."
  type        = number
  default     = 4096
}

variable "thumb_size" {
  description = "Box of the thumbnail."
  type        = number
  default     = 300
}

variable "upload_ttl_s" {
  description = "Lifetime of a presigned PUT, in seconds."
  type        = number
  default     = 900
}

variable "render_expiry_days" {
  description = "Delete on-demand renders this many days after they were written (0: keep). Standard variants are kept."
  type        = number
  default     = 0
}

variable "origin_shield_region" {
  description = "Region of CloudFront Origin Shield in front of the origins; empty for none."
  type        = string
  default     = ""
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_100"
}

variable "domain_names" {
  description = "Alternate domain names of the distribution (needs acm_certificate_arn)."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (us-east-1) for domain_names; empty: the default *.cloudfront.net certificate."
  type        = string
  default     = ""
}

variable "cors_allowed_origins" {
  description = "Origins of other sites' pages allowed to call the API and PUT uploads from a browser, e.g. [\"https://app.example.com\"], or [\"*\"]; empty (the default): only the upload page served through the CDN itself. Sets IMGPIPE_CORS_ORIGINS, the raw bucket's CORS rule and the CDN's CORS headers on /img/*."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for o in var.cors_allowed_origins : o == "*" || can(regex("^https?://[^/?#*]+$", o))])
    error_message = "Each entry is * or an origin such as https://app.example.com (scheme and host, no path)."
  }
}

variable "alarm_email" {
  description = "An address the stack's alarm topic mails (after the address confirms the subscription); empty for none."
  type        = string
  default     = ""
  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email is empty or an e-mail address."
  }
}

variable "alarm_topic_arn" {
  description = "An existing SNS topic (a pager, a chat bridge) notified as well as the stack's own alarm topic; empty for none."
  type        = string
  default     = ""
}

variable "tracing_mode" {
  description = "X-Ray tracing of both functions: PassThrough (the default) traces only requests that arrive sampled; Active samples every function's invocations, at X-Ray's prices."
  type        = string
  default     = "PassThrough"
  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode is PassThrough or Active."
  }
}
