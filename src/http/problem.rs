//! `ApiError`: the only place that knows HTTP statuses. Every error leaves
//! as `application/problem+json` (RFC 9457) with a stable snake_case `code`,
//! the same string stored in `meta.error.code`. 5xx bodies say nothing of
//! the cause; it is logged once, here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::engine::EngineError;
use crate::meta::MetaError;
use crate::store::StoreError;
use crate::transform::TransformError;

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    source: Option<Source>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        ApiError { status, code: code.to_string(), detail: detail.into(), source: None }
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn internal(source: impl Into<Source>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal".into(),
            detail: "internal error".into(),
            source: Some(source.into()),
        }
    }

    pub fn unavailable(source: impl Into<Source>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "storage_unavailable".into(),
            detail: "storage is busy; retry shortly".into(),
            source: Some(source.into()),
        }
    }

    /// The status for an error code stored in `meta.error.code`.
    pub fn from_code(code: &str, message: &str) -> Self {
        let status = match code {
            "unsupported_format" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "too_large" | "too_many_pixels" => StatusCode::PAYLOAD_TOO_LARGE,
            "undecodable" => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, code, message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Encode(_) => ApiError::internal(e),
            other => ApiError::from_code(other.code(), &other.to_string()),
        }
    }
}

impl From<TransformError> for ApiError {
    fn from(e: TransformError) -> Self {
        ApiError::bad_request(e.code(), e.to_string())
    }
}

/// A storage failure: throttling and timeouts are 503 (retry), the rest 500.
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
        if let Some(src) = &self.source {
            tracing::error!(code = %self.code, error = ?src, "request failed");
        }
        let body = serde_json::json!({
            "type": format!("urn:imgpipe:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        let mut res = (self.status, body.to_string()).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        // An unknown id may exist a moment later (the eager pipeline may not
        // have finished): cache that answer only briefly.
        let cache = if self.status == StatusCode::NOT_FOUND { "public, max-age=10" } else { "no-store" };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}
