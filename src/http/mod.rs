//! HTTP handlers, one file per resource. They see only `AppState` and the
//! store traits; errors are `problem::Code`s.

/// Who a request comes from (the fair share of renders).
pub mod client;
pub mod cors;
pub mod delete;
pub mod health;
pub mod images;
/// What one client may create: uploads per minute and pending uploads.
pub mod limiter;
pub mod meta;
pub mod page;
/// `PUT /_upload/<id>`: the local stand-in for S3's presigned PUT.
pub mod presigned_put;
pub mod problem;
pub mod server;
pub mod trace;
/// `POST /uploads`: an id and where to upload its bytes.
pub mod uploads;

use crate::keys::ImageId;
use problem::{ApiError, Code};

/// Parse an id from a path segment (already percent-decoded by axum); a
/// segment axum could not decode is a bad id too.
pub(crate) fn parse_id(
    raw: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<ImageId, ApiError> {
    raw.ok()
        .and_then(|axum::extract::Path(s)| ImageId::parse(&s).ok())
        .ok_or_else(|| ApiError::new(Code::BadId, "not a valid image id"))
}
