//! `GET|HEAD /img/<id>/<recipe>/<variant>`, `/img/<id>/<recipe>/<format>/<opts>`
//! and the query form. Everything is validated before any I/O; a store hit
//! is served as stored; a miss is rendered from the raw object under the
//! CPU semaphore, once per key however many ask at the same time, written
//! back, and served with the same headers a store hit would have.
//!
//! Only the current recipe is rendered. A path without a recipe version, or
//! with another one, is served when its object exists (a URL that once had
//! bytes keeps them) and is otherwise redirected to the current recipe's
//! path: never rendered under a key whose recipe it would not match.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::cpu::CpuPermit;
use crate::engine::RenderSpec;
use crate::http::client::{client, Peer};
use crate::http::problem::{ApiError, Code};
use crate::keys::{ImageId, Key};
use crate::meta::Status;
use crate::store::{ByteStream, ObjectInfo, StoreError, IMMUTABLE};
use crate::transform::{self, Canonical, Target};

pub async fn get_image(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let mut canonical = transform::parse(uri.path(), uri.query(), accept)?;
    check_signature(&state, &canonical)?;
    if state.config.signing_key.is_none() {
        // Unsigned: an `s=` means nothing, and must not make a new key
        // (a new render) per value.
        canonical.signature = None;
    }
    let key = canonical.key();
    if let Some((info, body)) = stored(&state, &key).await? {
        return Ok(serve(info, Body::from_stream(body), &headers, &canonical, None));
    }
    // A box the current settings refuse is refused here, not redirected to
    // a URL that would refuse it.
    if let Target::Custom(spec) = &canonical.target {
        check_box(&state, spec)?;
    }
    let current = state.engine.recipe();
    if canonical.recipe != Some(current) {
        return Ok(redirect(&canonical.with_recipe(current)));
    }
    let who = client(peer.map(|Extension(Peer(ip))| ip), &headers, &state.config.trusted_proxies);
    render_on_miss(&state, &canonical, &key, &headers, who).await
}

/// How long a redirect to the current recipe may be cached. After a recipe
/// change a cached one still leads to the older recipe's path, whose
/// objects are served or which redirects again: stale, never wrong.
pub const REDIRECT_CACHE: &str = "public, max-age=3600";

/// `302` to `to`'s path, relative, so that it stays on the host the client
/// asked (CloudFront's, not the function's).
fn redirect(to: &Canonical) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&to.path()) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(REDIRECT_CACHE));
    if to.negotiated {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    res
}

/// The stored object at `key`, streamed. One whose bytes do not match its
/// recorded length (cut short on disk) is a miss: rendered again and
/// replaced, never served.
async fn stored(state: &AppState, key: &Key) -> Result<Option<(ObjectInfo, ByteStream)>, ApiError> {
    match state.processed.open(key).await {
        Ok(found) => Ok(found),
        Err(StoreError::Corrupt(why)) => {
            tracing::warn!(%key, %why, "stored object is damaged; rendering it again");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// `s=` must be the base64url (no padding) HMAC-SHA256 of the canonical
/// path without `s`, when a signing key is configured. Standard variants
/// never need it.
fn check_signature(state: &AppState, c: &Canonical) -> Result<(), ApiError> {
    let Some(secret) = &state.config.signing_key else { return Ok(()) };
    if matches!(c.target, Target::Standard(_)) {
        return Ok(());
    }
    let Some(given) = &c.signature else {
        return Err(ApiError::new(Code::SignatureRequired, "on-demand options need s="));
    };
    let given = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, given)
        .map_err(|_| ApiError::new(Code::BadSignature, "signature does not match"))?;
    if crate::signing::path_signature_matches(secret, &c.signed_path(), &given) {
        Ok(())
    } else {
        Err(ApiError::new(Code::BadSignature, "signature does not match"))
    }
}

/// `cover` and `fill` can enlarge: each side of the box they ask for is
/// capped at the standard variant's (`IMGPIPE_MAX_DIMENSION`), so a tiny
/// original cannot buy a huge render. `inside` never enlarges, so its
/// output is bounded by the original's own limits. A cap per side, not per
/// area, so that openapi.yaml can state it exactly.
fn check_box(state: &AppState, spec: &transform::Spec) -> Result<(), ApiError> {
    let (Some(w), Some(h)) = (spec.w, spec.h) else { return Ok(()) };
    let cap = state.engine.limits.max_dimension;
    if spec.fit != crate::engine::Fit::Inside && w.max(h) > cap {
        return Err(ApiError::new(
            Code::BadOptions,
            format!("a {w}x{h} {} box is over the {cap} pixel output limit per side", spec.fit.name()),
        ));
    }
    Ok(())
}

/// `inside` never enlarges, so a box side past the (oriented) original's is
/// the original's: `w=8192` of a 1920-wide photo is `w=1920`, and a box
/// holding the whole original is `w=<its width>`. `Some` with that spec
/// when it differs from `spec`, so that equal bytes have one key (and one
/// stored object) and the request is redirected there.
fn capped_at_source(spec: &transform::Spec, width: u32, height: u32) -> Option<transform::Spec> {
    if spec.fit != crate::engine::Fit::Inside || (spec.w.is_none() && spec.h.is_none()) {
        return None;
    }
    let (w, h) = (spec.w.map(|w| w.min(width)), spec.h.map(|h| h.min(height)));
    let whole = w.is_none_or(|w| w == width) && h.is_none_or(|h| h == height);
    let (w, h) = if whole { (Some(width), None) } else { (w, h) };
    let capped = transform::Spec { w, h, ..*spec };
    (capped != *spec).then_some(capped)
}

/// A render's cost is known before it starts, from the original's pixels
/// and format (`config::render_cost`): past `IMGPIPE_MAX_RENDER_COST` it is
/// refused, so that no request can buy seconds of CPU, whoever waits behind
/// it. The standard variants, made at upload, are always there.
fn check_cost(state: &AppState, original: Option<&crate::meta::Original>) -> Result<(), ApiError> {
    let Some(o) = original else { return Ok(()) };
    let cost = crate::config::render_cost(&o.format, o.width, o.height);
    let max = state.config.max_render_cost;
    if cost > max {
        return Err(ApiError::new(
            Code::TooCostly,
            format!(
                "rendering from this {}x{} {} on demand costs {cost}, over this server's limit of {max} \
                 (IMGPIPE_MAX_RENDER_COST); its standard variants are served as made at upload",
                o.width, o.height, o.format
            ),
        ));
    }
    Ok(())
}

struct Timing {
    decode: Duration,
    resize: Duration,
    encode: Duration,
    store: Duration,
}

async fn render_on_miss(
    state: &AppState,
    canonical: &Canonical,
    key: &Key,
    headers: &HeaderMap,
    who: crate::cpu::Client,
) -> Result<Response, ApiError> {
    let id = canonical.id;
    let spec: RenderSpec = match &canonical.target {
        Target::Standard(v) => state.engine.standard_spec(*v),
        Target::Custom(spec) => spec.render_spec(&state.engine.limits),
    };
    let meta = state.meta.get(&id).await?.ok_or_else(|| ApiError::new(Code::NotFound, "no image with this id"))?;
    match meta.status {
        Status::Failed => {
            let (code, message) = meta.error.map(|e| (e.code, e.message)).unwrap_or_default();
            return Err(ApiError::stored_failure(&code, &message));
        }
        Status::Pending => return Err(ApiError::new(Code::NotReady, "the image is still being processed")),
        Status::Deleted => return Err(ApiError::new(Code::Deleted, "the image was deleted")),
        Status::Ready => {}
    }
    check_cost(state, meta.original.as_ref())?;
    if let (Target::Custom(spec), Some(o)) = (&canonical.target, &meta.original) {
        if let Some(capped) = capped_at_source(spec, o.width, o.height) {
            let mut to = Canonical { target: Target::Custom(capped), ..canonical.clone() };
            to.signature = state.config.signing_key.as_ref().map(|k| crate::signing::sign_path(k, &to.signed_path()));
            return Ok(redirect(&to));
        }
    }
    // Single flight: the first request renders; the others wait, then find
    // the object in the store.
    let lock = state.key_lock(key.as_str());
    let _guard = lock.lock().await;
    if let Some((info, body)) = stored(state, key).await? {
        return Ok(serve(info, Body::from_stream(body), headers, canonical, None));
    }
    // A core first, then the original: a render waiting in the queue holds
    // no image in memory, and past the queue's bound it is refused (503).
    let permit = state.cpu.admit(who).await?;
    let rendered = render_and_store(state, permit, &id, key, spec).await;
    // A delete that ran meanwhile has removed the image's objects, perhaps
    // from under this render's read or write: take back what it wrote
    // rather than bring it back, and answer as for any deleted image.
    if state.meta.get(&id).await?.is_none_or(|m| m.status == Status::Deleted) {
        state.processed.delete(key).await?;
        return Err(ApiError::new(Code::Deleted, "the image was deleted"));
    }
    let (info, body, timing) = rendered?;
    Ok(serve(info, Body::from(body), headers, canonical, Some(timing)))
}

/// On `permit`'s core: decode the original, render `spec`, store it at
/// `key`. Returns the stored object's headers, its bytes, and where the
/// time went.
async fn render_and_store(
    state: &AppState,
    permit: CpuPermit,
    id: &ImageId,
    key: &Key,
    spec: RenderSpec,
) -> Result<(ObjectInfo, bytes::Bytes, Timing), ApiError> {
    let raw =
        state.raw.get(&Key::raw(id)).await?.ok_or_else(|| ApiError::new(Code::NotFound, "the original is gone"))?;
    let engine = state.engine.clone();
    let (rendered, decode) = permit
        .run(move || {
            let started = Instant::now();
            let decoded = engine.decode_for(&raw.body, spec.plan)?;
            let decode = started.elapsed();
            Ok::<_, crate::engine::EngineError>((engine.render(&decoded, &spec)?, decode))
        })
        .await??;
    let body = bytes::Bytes::from(rendered.bytes);
    let started = Instant::now();
    let info = state.processed.put(key, body.clone(), rendered.format.content_type(), IMMUTABLE).await?;
    let timing = Timing { decode, resize: rendered.resize, encode: rendered.encode, store: started.elapsed() };
    Ok((info, body, timing))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn serve(info: ObjectInfo, body: Body, req: &HeaderMap, canonical: &Canonical, timing: Option<Timing>) -> Response {
    let not_modified = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == info.etag));
    let mut res = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(body);
        r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(info.len));
        if let Ok(v) = HeaderValue::from_str(&info.content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&info.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&info.cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    if canonical.negotiated {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    res.extensions_mut().insert(crate::app::StoredAt(canonical.key()));
    let h = res.headers_mut();
    if let Some(t) = timing {
        let value = format!(
            "decode;dur={}, resize;dur={}, encode;dur={}, store;dur={}",
            ms(t.decode),
            ms(t.resize),
            ms(t.encode),
            ms(t.store)
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert("server-timing", v);
        }
    }
    res
}
