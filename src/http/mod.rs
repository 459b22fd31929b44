//! HTTP handlers, one file per resource. They see only `AppState` and the
//! store traits; statuses come from `problem::ApiError`.

pub mod health;
pub mod images;
pub mod meta;
pub mod problem;
pub mod upload;
pub mod uploads;

use crate::keys::ImageId;
use problem::ApiError;

/// Parse an id from a path segment (already percent-decoded by axum).
pub(crate) fn parse_id(raw: &str) -> Result<ImageId, ApiError> {
    ImageId::parse(raw).map_err(|_| ApiError::bad_request("bad_id", "not a valid image id"))
}
