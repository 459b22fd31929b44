//! `GET /meta/<id>`: the metadata item. Short cache while pending (it will
//! change), longer once final. `GET /meta?source_key=<key>`: the same
//! document for the newest image dropped under that name.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::app::AppState;
use crate::http::parse_id;
use crate::http::problem::{ApiError, Code};
use crate::meta::Status;

pub async fn get_meta(
    State(state): State<AppState>,
    raw_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(raw_id)?;
    let meta = state.meta.get(&id).await?.ok_or_else(|| ApiError::new(Code::NotFound, "no image with this id"))?;
    if meta.status == Status::Deleted {
        return Err(ApiError::new(Code::Deleted, "the image was deleted"));
    }
    Ok(document(meta))
}

#[derive(serde::Deserialize)]
pub struct Lookup {
    source_key: Option<String>,
}

/// The newest image from a drop-in's name. Never cached for long: a new
/// object at the same name makes a new image.
pub async fn lookup(
    State(state): State<AppState>,
    query: Result<Query<Lookup>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let key = query.ok().and_then(|Query(q)| q.source_key).unwrap_or_default();
    if key.is_empty() || key.len() > 1024 {
        return Err(ApiError::new(
            Code::BadRequest,
            "give source_key: the name the image was dropped under (1 to 1024 bytes)",
        ));
    }
    let not_found = || ApiError::new(Code::NotFound, "no image was dropped under this name");
    let id = state.meta.by_source(&key).await?.ok_or_else(not_found)?;
    let meta = state.meta.get(&id).await?.ok_or_else(not_found)?;
    if meta.status == Status::Deleted {
        return Err(ApiError::new(Code::Deleted, "the newest image dropped under this name was deleted"));
    }
    let mut res = document(meta);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, max-age=0"));
    Ok(res)
}

fn document(meta: crate::meta::Metadata) -> Response {
    let cache = if meta.status.is_terminal() { "public, max-age=300" } else { "no-cache, max-age=0" };
    // The delete token's hash is the server's to check, not the public's.
    let mut res = Json(crate::meta::Metadata { delete_token_sha256: None, ..meta }).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}
