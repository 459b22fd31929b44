//! `GET /meta/<id>`: the metadata item. Short cache while pending (it will
//! change), longer once final.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::app::AppState;
use crate::http::parse_id;
use crate::http::problem::{ApiError, Code};

pub async fn get_meta(
    State(state): State<AppState>,
    raw_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(raw_id)?;
    let meta = state.meta.get(&id).await?.ok_or_else(|| ApiError::new(Code::NotFound, "no image with this id"))?;
    let cache = if meta.status.is_terminal() { "public, max-age=300" } else { "no-cache, max-age=0" };
    let mut res = Json(meta).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(res)
}
