//! `PUT /_upload/<id>?ct=&len=&expires=&sig=`: the local stand-in for S3's
//! presigned PUT. The signature covers method, key, content type, length
//! and expiry; the request's own headers must match what was signed; the
//! body is read up to the signed length and no further. One upload per id.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use std::time::Duration;

use crate::app::AppState;
use crate::config::MIN_UPLOAD_RATE;
use crate::http::parse_id;
use crate::http::problem::{ApiError, Code};
use crate::keys::Key;
use crate::meta::Status;
use crate::signing::{UploadCheck, UploadSigner};
use crate::store::StoreError;

/// What the query of a local upload URL signs.
#[derive(Debug)]
pub struct SignedUpload {
    pub ct: String,
    pub len: u64,
    pub expires: u64,
}

impl SignedUpload {
    /// Read the query's `ct`, `len`, `expires` and `sig` and check the
    /// signature over them and `key` (and the expiry).
    pub fn check(signer: &UploadSigner, key: &Key, q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let missing = || ApiError::new(Code::BadSignature, "the upload URL is incomplete");
        let ct = q.get("ct").ok_or_else(missing)?;
        let len: u64 = q.get("len").and_then(|v| v.parse().ok()).ok_or_else(missing)?;
        let expires: u64 = q.get("expires").and_then(|v| v.parse().ok()).ok_or_else(missing)?;
        let sig = q.get("sig").ok_or_else(missing)?;
        signer.verify(key, ct, len, expires, sig).map_err(|e| match e {
            UploadCheck::BadSignature => ApiError::new(Code::BadSignature, "the upload signature does not match"),
            UploadCheck::Expired => ApiError::new(Code::Expired, "the upload URL has expired"),
        })?;
        Ok(SignedUpload { ct: ct.clone(), len, expires })
    }
}

/// How long an upload body may send nothing before it is abandoned.
pub const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn put_upload(
    State(state): State<AppState>,
    raw_id: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let signer = state.upload_signer.clone().ok_or_else(|| ApiError::new(Code::NotFound, "no local upload target"))?;
    let id = parse_id(raw_id)?;
    let Query(q) = query.map_err(|_| ApiError::new(Code::BadSignature, "the upload URL is malformed"))?;
    let key = Key::raw(&id);
    let SignedUpload { ct, len, .. } = SignedUpload::check(&signer, &key, &q)?;
    let ct = &ct;

    let sent_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !sent_type.eq_ignore_ascii_case(ct) {
        return Err(ApiError::new(Code::UploadMismatch, format!("Content-Type must be {ct}, as signed")));
    }
    if let Some(sent_len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()) {
        match sent_len.parse::<u64>() {
            Ok(n) if n > len => return Err(ApiError::new(Code::TooLarge, "body is longer than signed")),
            Ok(n) if n < len => return Err(ApiError::new(Code::UploadMismatch, "body is shorter than signed")),
            Ok(_) => {}
            Err(_) => return Err(ApiError::new(Code::BadRequest, "bad Content-Length")),
        }
    }

    // One upload per id, also under concurrent PUTs.
    let lock = state.key_lock(key.as_str());
    let _guard = lock.lock().await;
    let meta = state.meta.get(&id).await?.ok_or_else(|| ApiError::new(Code::NotFound, "no upload with this id"))?;
    if meta.status != Status::Pending || state.raw.head(&key).await?.is_some() {
        return Err(ApiError::new(Code::AlreadyUploaded, "this id already has its upload"));
    }

    // Streamed into the raw store; the store refuses more or fewer bytes
    // than were signed and keeps nothing in that case. A client that stops
    // sending, or sends too slowly to finish by the body's deadline (a
    // base plus a second per MIN_UPLOAD_RATE bytes signed), is cut off:
    // its temporary file goes and the id's lock is released at once.
    let allowed = state.config.upload_body_timeout + Duration::from_secs(len / MIN_UPLOAD_RATE);
    let deadline = tokio::time::Instant::now() + allowed;
    let chunks = futures_util::stream::unfold(body.into_data_stream(), move |mut body| async move {
        let wait = BODY_IDLE_TIMEOUT.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let next = match tokio::time::timeout(wait, body.next()).await {
            Ok(None) => return None,
            Ok(Some(chunk)) => chunk.map_err(|e| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e)),
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the upload body stalled")),
        };
        Some((next, body))
    })
    .boxed();
    match state.raw.put_stream(&key, chunks, len, ct, "private, no-store").await {
        Ok(()) => {}
        Err(StoreError::Length { longer: true, .. }) => {
            return Err(ApiError::new(Code::TooLarge, "body is longer than signed"))
        }
        Err(StoreError::Length { longer: false, .. }) => {
            return Err(ApiError::new(Code::UploadMismatch, "body is shorter than signed"))
        }
        Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
            return Err(ApiError::new(
                Code::Timeout,
                format!(
                    "the upload body did not arrive in time: {} s for {len} bytes, with no pause over {} s",
                    allowed.as_secs(),
                    BODY_IDLE_TIMEOUT.as_secs()
                ),
            ))
        }
        Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(ApiError::new(Code::UploadMismatch, "the upload body was cut off"))
        }
        Err(e) => return Err(e.into()),
    }
    state.uploads.uploaded(&id);
    let etag = state.raw.head(&key).await?.map(|i| i.etag).unwrap_or_default();
    if let Some(queue) = &state.jobs {
        queue.submit(id);
    }
    let mut res = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    Ok(res)
}
