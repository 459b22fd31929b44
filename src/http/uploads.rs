//! `POST /uploads`: mint an id, create the pending item, answer with a
//! presigned PUT. Only image content types are offered an upload; the bytes
//! themselves are sniffed later, never trusted from this declaration.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;

use crate::app::AppState;
use crate::engine::Variant;
use crate::http::problem::{ApiError, Code};
use crate::keys::{ImageId, Key};
use crate::meta::{Declared, Metadata};

/// Content types an upload may declare.
pub const ACCEPTED_TYPES: [&str; 7] =
    ["image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/bmp", "image/avif"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    pub content_type: String,
    #[serde(deserialize_with = "json_integer")]
    pub content_length: u64,
    #[serde(default)]
    pub filename: Option<String>,
}

/// A JSON number that is a whole number, however it is spelled: JSON has
/// one number type, and JSON Schema's `integer` includes `4096.0`.
fn json_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(n) = n.as_u64() {
        return Ok(n);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Ok(f as u64),
        _ => Err(serde::de::Error::custom(format!("expected a whole number of bytes, got {n}"))),
    }
}

/// The header that carries an upload token. CloudFront's Origin Access
/// Control signs origin requests and overwrites `Authorization`, so through
/// the CDN this is the only header that reaches the app intact.
pub const TOKEN_HEADER: &str = "x-imgpipe-token";

/// The token a request presents: `X-Imgpipe-Token`, else `Authorization:
/// Bearer` (where no OAC sits in between).
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let own = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty());
    own.or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
    })
}

pub(crate) fn check_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.upload_tokens.is_empty() {
        return Ok(());
    }
    let given = presented_token(headers).ok_or_else(|| {
        ApiError::new(
            Code::Unauthorized,
            "this server needs an upload token: send it as X-Imgpipe-Token (or Authorization: Bearer)",
        )
    })?;
    if one_of(&state.config.upload_tokens, given) {
        Ok(())
    } else {
        Err(ApiError::new(Code::Forbidden, "this upload token is not valid here"))
    }
}

/// Whether `given` is one of `tokens`, comparing every one in full so that
/// timing says nothing.
fn one_of(tokens: &[String], given: &str) -> bool {
    let mut ok = false;
    for t in tokens {
        ok |= constant_time_eq(t.as_bytes(), given.as_bytes());
    }
    ok
}

/// The SHA-256 (hex) a delete token is kept as.
pub(crate) fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who may delete `meta`: an admin token (`IMGPIPE_ADMIN_TOKENS`), or the
/// delete token `POST /uploads` gave for this image, in `X-Imgpipe-Token`
/// (or `Authorization: Bearer`). An upload token is neither. Without a
/// token, only a server that answers on loopback alone deletes (a laptop,
/// where whoever can connect owns the data dir anyway).
pub(crate) fn check_delete(state: &AppState, headers: &HeaderMap, meta: &Metadata) -> Result<(), ApiError> {
    let Some(given) = presented_token(headers) else {
        if state.config.loopback_only {
            return Ok(());
        }
        return Err(ApiError::new(
            Code::Unauthorized,
            "deleting needs the image's delete token (from POST /uploads) or an admin token, in X-Imgpipe-Token",
        ));
    };
    let own = meta
        .delete_token_sha256
        .as_deref()
        .is_some_and(|hash| constant_time_eq(hash.as_bytes(), token_hash(given).as_bytes()));
    if own | one_of(&state.config.admin_tokens, given) {
        Ok(())
    } else {
        Err(ApiError::new(Code::Forbidden, "this token may not delete this image"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn create_upload(
    State(state): State<AppState>,
    peer: Option<axum::extract::Extension<crate::http::client::Peer>>,
    headers: HeaderMap,
    body: Result<Json<CreateUpload>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    check_token(&state, &headers)?;
    let Json(req) = body.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    // Malformed requests (400) are answered before limits (413/415).
    if req.filename.as_ref().is_some_and(|f| f.chars().count() > 1024) {
        return Err(ApiError::new(Code::BadRequest, "filename is longer than 1024 characters"));
    }
    if req.content_length == 0 {
        return Err(ApiError::new(Code::BadRequest, "content_length must be at least 1"));
    }
    let content_type = req.content_type.trim().to_ascii_lowercase();
    if !ACCEPTED_TYPES.contains(&content_type.as_str()) {
        return Err(ApiError::new(
            Code::UnsupportedFormat,
            format!(
                "{} is not an image type imgpipe takes; content_type must be one of {}",
                if content_type.is_empty() {
                    "an empty type".to_string()
                } else {
                    content_type.chars().take(100).collect()
                },
                ACCEPTED_TYPES.join(", ")
            ),
        ));
    }
    let max = state.engine.limits.max_upload_bytes;
    if req.content_length > max {
        return Err(ApiError::new(
            Code::TooLarge,
            format!("{} bytes is over the {max} byte limit", req.content_length),
        ));
    }
    let id = ImageId::new();
    let who = crate::http::client::client(
        peer.map(|axum::extract::Extension(crate::http::client::Peer(ip))| ip),
        &headers,
        &state.config.trusted_proxies,
    );
    state.uploads.admit(who, id).map_err(|r| {
        let secs = r.retry_after.as_secs().max(1);
        let detail = if r.pending {
            format!(
                "this client has {} uploads still waiting for their bytes; finish them, or retry in {secs} s",
                state.config.max_pending_uploads
            )
        } else {
            format!("this client may create {} uploads a minute; retry in {secs} s", state.config.uploads_per_minute)
        };
        let mut e = ApiError::new(Code::TooManyRequests, detail);
        e.retry_after = Some(u32::try_from(secs).unwrap_or(u32::MAX));
        e
    })?;
    let declared = Declared { content_type: content_type.clone(), content_length: req.content_length };
    // The delete token is the uploader's alone: only its hash is stored.
    let mut secret = [0u8; 24];
    getrandom::fill(&mut secret).map_err(|e| ApiError::internal(e.to_string()))?;
    let delete_token = hex::encode(secret);
    let pending = Metadata { delete_token_sha256: Some(token_hash(&delete_token)), ..Metadata::pending(id, declared) };
    state.meta.put(&pending).await?;
    let upload =
        state.raw.presign_put(&Key::raw(&id), &content_type, req.content_length, state.config.upload_ttl).await?;
    let base = &state.config.public_base_url;
    // Where the variants will be: under the recipe this server makes.
    let recipe = Some(state.engine.recipe());
    let urls: BTreeMap<&str, String> =
        Variant::ALL.iter().map(|v| (v.name(), format!("{base}/{}", Key::variant(&id, recipe, v.name())))).collect();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": id,
            "upload": upload,
            "meta_url": format!("{base}/meta/{id}"),
            "urls": urls,
            "delete_token": delete_token,
        })),
    ))
}
