# The CDN. /img/* -> the processed bucket first (Origin Access Control), and
# on 403/404/5xx the Function URL renders, writes back and answers; the
# CloudFront Function first turns query transforms and `auto` into the
# canonical path, which is the cache key and the S3 key. /meta/*, /uploads,
# the upload page (/ and /ui/*) and anything else -> the Function URL;
# uploads never cached. OPTIONS preflights reach the app, which answers them
# without a token.

locals {
  function_url_domain = trimsuffix(trimprefix(aws_lambda_function_url.http.function_url, "https://"), "/")
}

resource "aws_cloudfront_origin_access_control" "s3" {
  name                              = "${var.name}-processed"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_origin_access_control" "lambda" {
  name                              = "${var.name}-http"
  origin_access_control_origin_type = "lambda"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_function" "viewer_request" {
  name    = "${var.name}-canonicalize"
  runtime = "cloudfront-js-2.0"
  comment = "Query transforms and auto -> canonical /img path; 400 for bad ids and options"
  publish = true
  # Shipped without comment lines and indentation, to stay well under
  # CloudFront's 10 KB limit; infra/cloudfront/test-njs.sh checks the size
  # and runs the vectors on the code after the same two rules.
  code = replace(replace(file("${path.module}/cloudfront/viewer-request.js"), "/(?m)^[ \t]*//.*\n/", ""), "/(?m)^[ \t]+/", "")
}

# Images: the path alone is the key (no headers, cookies or query).
resource "aws_cloudfront_cache_policy" "images" {
  name        = "${var.name}-images"
  min_ttl     = 0
  default_ttl = 86400
  max_ttl     = 31536000
  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
    enable_accept_encoding_gzip   = false
    enable_accept_encoding_brotli = false
  }
}

# Metadata: keyed on the path and Origin (the app's CORS answer depends on
# Origin, and CloudFront does not honour Vary); the app's Cache-Control
# decides (short while pending, longer once ready).
resource "aws_cloudfront_cache_policy" "meta" {
  name        = "${var.name}-meta"
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = 3600
  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "whitelist"
      headers {
        items = ["Origin"]
      }
    }
    query_strings_config {
      query_string_behavior = "none"
    }
    enable_accept_encoding_gzip   = true
    enable_accept_encoding_brotli = true
  }
}

data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

# Everything but Host (a Function URL answers only to its own host name).
data "aws_cloudfront_origin_request_policy" "all_but_host" {
  name = "Managed-AllViewerExceptHostHeader"
}

# Security headers on everything. CORS on the app's routes is the app's own
# (IMGPIPE_CORS_ORIGINS, from the same variable), and OPTIONS is forwarded to
# it, so a preflight never needs a token.
resource "aws_cloudfront_response_headers_policy" "api" {
  name = "${var.name}-api"
  security_headers_config {
    content_type_options {
      override = true
    }
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = false
    }
  }
}

# /img/*: a CDN hit comes from S3 with no CORS headers of the app's, so the
# CDN adds the same ones the app would (and answers preflights itself). The
# function rewrites `auto` to a format from Accept while the cache key stays
# the path alone, so browsers and any cache downstream must be told that the
# answer varies with Accept (and Origin, with CORS): every /img answer says
# so, since a rewritten `auto` and its format share one cached object.
resource "aws_cloudfront_response_headers_policy" "images" {
  name = "${var.name}-images-cors"
  custom_headers_config {
    items {
      header   = "Vary"
      value    = "Accept, Origin"
      override = true
    }
  }
  dynamic "cors_config" {
    for_each = length(var.cors_allowed_origins) == 0 ? [] : [var.cors_allowed_origins]
    content {
      access_control_allow_credentials = false
      access_control_allow_headers {
        items = ["if-none-match"]
      }
      access_control_allow_methods {
        items = ["GET", "HEAD", "OPTIONS"]
      }
      access_control_allow_origins {
        items = cors_config.value
      }
      access_control_expose_headers {
        items = ["etag", "server-timing"]
      }
      access_control_max_age_sec = 3600
      origin_override            = true
    }
  }
  security_headers_config {
    content_type_options {
      override = true
    }
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = false
    }
  }
}

resource "aws_cloudfront_distribution" "cdn" {
  #checkov:skip=CKV_AWS_68:A WAF web ACL costs per month and per request; attach one (web_acl_id) where abuse is a concern.
  #checkov:skip=CKV2_AWS_47:No WAF by default (see CKV_AWS_68); the origins run no Java.
  #checkov:skip=CKV_AWS_86:Access logs need a log bucket; enable standard logging where wanted.
  #checkov:skip=CKV_AWS_174:The default *.cloudfront.net certificate has a fixed TLS policy; with acm_certificate_arn the minimum is TLSv1.2_2021.
  #checkov:skip=CKV2_AWS_42:A custom certificate needs a domain the operator owns (domain_names, acm_certificate_arn).
  #checkov:skip=CKV_AWS_305:No root object: / is the upload page, answered by the app.
  #checkov:skip=CKV_AWS_374:Images are served worldwide; geo restriction is an operator choice.
  enabled         = true
  is_ipv6_enabled = true
  comment         = "imgpipe ${var.name}"
  price_class     = var.price_class
  aliases         = var.domain_names
  http_version    = "http2and3"

  origin {
    origin_id                = "processed"
    domain_name              = aws_s3_bucket.processed.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.s3.id
    dynamic "origin_shield" {
      for_each = var.origin_shield_region == "" ? [] : [var.origin_shield_region]
      content {
        enabled              = true
        origin_shield_region = origin_shield.value
      }
    }
  }

  origin {
    origin_id                = "app"
    domain_name              = local.function_url_domain
    origin_access_control_id = aws_cloudfront_origin_access_control.lambda.id
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
      origin_read_timeout    = 60
    }
    dynamic "origin_shield" {
      for_each = var.origin_shield_region == "" ? [] : [var.origin_shield_region]
      content {
        enabled              = true
        origin_shield_region = origin_shield.value
      }
    }
  }

  origin_group {
    origin_id = "images"
    failover_criteria {
      status_codes = [403, 404, 500, 502, 503, 504]
    }
    member {
      origin_id = "processed"
    }
    member {
      origin_id = "app"
    }
  }

  # /uploads and anything not matched below: the app, never cached.
  default_cache_behavior {
    target_origin_id           = "app"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_but_host.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.api.id
    compress                   = true
  }

  ordered_cache_behavior {
    path_pattern               = "/img/*"
    target_origin_id           = "images"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.images.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.images.id
    compress                   = false
    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.viewer_request.arn
    }
  }

  ordered_cache_behavior {
    path_pattern               = "/meta/*"
    target_origin_id           = "app"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.meta.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.api.id
    compress                   = true
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.acm_certificate_arn == ""
    acm_certificate_arn            = var.acm_certificate_arn == "" ? null : var.acm_certificate_arn
    ssl_support_method             = var.acm_certificate_arn == "" ? null : "sni-only"
    minimum_protocol_version       = var.acm_certificate_arn == "" ? "TLSv1" : "TLSv1.2_2021"
  }
}
