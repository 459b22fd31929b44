//! The error vocabulary. `Code` is every error the API answers, each with
//! its status and title, and the string stored in `meta.error.code`;
//! `ApiError` carries one out as `application/problem+json` (RFC 9457).
//! Handlers return a `Code` and a detail, never a status or a literal. 5xx
//! bodies say nothing of the cause: it is logged once, here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::cpu::CpuError;
use crate::engine::EngineError;
use crate::meta::MetaError;
use crate::store::StoreError;
use crate::transform::TransformError;

type Source = Box<dyn std::error::Error + Send + Sync>;

macro_rules! codes {
    ($($variant:ident = $name:literal, $status:ident;)*) => {
        /// Every error code the API answers, in one place.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable snake_case string (`code` in answers and in `meta.error`).
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status,)* }
            }

            /// The code for a stored `meta.error.code`, if it is one of ours.
            pub fn parse(s: &str) -> Option<Code> {
                match s { $($name => Some(Code::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    BadRequest = "bad_request", BAD_REQUEST;
    BadId = "bad_id", BAD_REQUEST;
    BadVariant = "bad_variant", BAD_REQUEST;
    BadOptions = "bad_options", BAD_REQUEST;
    UploadMismatch = "upload_mismatch", BAD_REQUEST;
    Unauthorized = "unauthorized", UNAUTHORIZED;
    SignatureRequired = "signature_required", UNAUTHORIZED;
    Forbidden = "forbidden", FORBIDDEN;
    BadSignature = "bad_signature", FORBIDDEN;
    Expired = "expired", FORBIDDEN;
    NotFound = "not_found", NOT_FOUND;
    NotReady = "not_ready", NOT_FOUND;
    NoRoute = "no_route", NOT_FOUND;
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED;
    Timeout = "timeout", REQUEST_TIMEOUT;
    AlreadyUploaded = "already_uploaded", CONFLICT;
    TooManyRequests = "too_many_requests", TOO_MANY_REQUESTS;
    Deleted = "deleted", GONE;
    TooLarge = "too_large", PAYLOAD_TOO_LARGE;
    TooManyPixels = "too_many_pixels", PAYLOAD_TOO_LARGE;
    UnsupportedFormat = "unsupported_format", UNSUPPORTED_MEDIA_TYPE;
    Undecodable = "undecodable", UNPROCESSABLE_ENTITY;
    TooCostly = "too_costly", UNPROCESSABLE_ENTITY;
    Internal = "internal", INTERNAL_SERVER_ERROR;
    Busy = "busy", SERVICE_UNAVAILABLE;
    StorageUnavailable = "storage_unavailable", SERVICE_UNAVAILABLE;
}

impl Code {
    /// The problem's `title`: the status's reason phrase.
    pub fn title(self) -> &'static str {
        self.status().canonical_reason().unwrap_or("Error")
    }

    /// Whether an image can be stored as `failed` with this code: the
    /// image's own fault, never ours or the storage's.
    pub fn blames_the_image(self) -> bool {
        matches!(self, Code::TooLarge | Code::TooManyPixels | Code::UnsupportedFormat | Code::Undecodable)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub detail: String,
    /// Seconds for `Retry-After` on a 503 or a 429.
    pub retry_after: Option<u32>,
    source: Option<Source>,
}

impl ApiError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        ApiError { code, detail: detail.into(), retry_after: None, source: None }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// Our own fault: 500, the cause logged and never shown.
    pub fn internal(source: impl Into<Source>) -> Self {
        ApiError {
            code: Code::Internal,
            detail: "internal error".into(),
            retry_after: None,
            source: Some(source.into()),
        }
    }

    /// Storage that failed in a way worth retrying: 503 with `Retry-After`.
    pub fn unavailable(source: impl Into<Source>) -> Self {
        ApiError {
            code: Code::StorageUnavailable,
            detail: "storage is unavailable; retry shortly".into(),
            retry_after: Some(2),
            source: Some(source.into()),
        }
    }

    /// Overload: 503 `busy` with `Retry-After`.
    pub fn busy(detail: impl Into<String>) -> Self {
        ApiError { code: Code::Busy, detail: detail.into(), retry_after: Some(1), source: None }
    }

    /// The answer for an image stored as `failed` with `code`: an image
    /// fault as stored; anything else (older items) as undecodable.
    pub fn stored_failure(code: &str, message: &str) -> Self {
        match Code::parse(code).filter(|c| c.blames_the_image()) {
            Some(code) => Self::new(code, message),
            None => Self::new(Code::Undecodable, message),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match Code::parse(e.code()) {
            Some(code) if code.blames_the_image() => ApiError::new(code, e.to_string()),
            _ => ApiError::internal(e),
        }
    }
}

impl From<TransformError> for ApiError {
    fn from(e: TransformError) -> Self {
        ApiError::new(Code::parse(e.code()).unwrap_or(Code::BadRequest), e.to_string())
    }
}

impl From<CpuError> for ApiError {
    fn from(e: CpuError) -> Self {
        match e {
            CpuError::Busy { .. } => ApiError {
                code: Code::Busy,
                detail: "the server is at capacity; retry shortly".into(),
                retry_after: Some(1),
                source: Some(e.into()),
            },
            CpuError::Panicked(_) | CpuError::Closed => ApiError::internal(e),
        }
    }
}

/// A storage failure: throttling, timeouts and a full disk are 503 (retry),
/// the rest 500.
fn storage_failure(retryable: bool, e: impl Into<Source>) -> ApiError {
    if retryable {
        ApiError::unavailable(e)
    } else {
        ApiError::internal(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        storage_failure(e.is_retryable(), e)
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        storage_failure(e.is_retryable(), e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Some(src) = &self.source {
            if status == StatusCode::SERVICE_UNAVAILABLE && self.code == Code::Busy {
                tracing::debug!(code = %self.code, error = %src, "request shed");
            } else {
                tracing::error!(code = %self.code, error = ?src, "request failed");
            }
        }
        let body = serde_json::json!({
            "type": format!("urn:imgpipe:problem:{}", self.code),
            "title": self.code.title(),
            "status": status.as_u16(),
            "code": self.code.as_str(),
            "detail": self.detail,
        });
        let mut res = (status, body.to_string()).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        // An unknown id may exist a moment later (the eager pipeline may not
        // have finished): cache that answer only briefly.
        let cache = if status == StatusCode::NOT_FOUND { "public, max-age=10" } else { "no-store" };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.code == Code::Timeout {
            // The request was not read to its end: the connection cannot
            // carry another.
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_only_image_faults_are_stored() {
        for &code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(code));
            assert!(code.status().is_client_error() || code.status().is_server_error(), "{code}");
            if code.blames_the_image() {
                assert!(code.status().is_client_error(), "{code} blames the image but is {}", code.status());
            }
        }
        // A stored code that is not an image fault never comes back as 5xx.
        assert_eq!(ApiError::stored_failure("internal", "x").status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ApiError::stored_failure("too_large", "x").status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
