//! One span per request (method, route, request id), so everything logged
//! while a request is handled names it, and one event when it is answered
//! (status, latency): at `debug`, or `warn` for a 5xx, so the default
//! `info` level adds no line per request to a busy server's logs (or to
//! CloudWatch's bill) while our own faults still stand out. The request id
//! is the client's `X-Request-Id` when it sends a sane one, otherwise a new
//! ULID, and is sent back in `X-Request-Id`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";

pub async fn trace(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(|| ulid::Ulid::new().to_string().to_ascii_lowercase(), String::from);
    // The route's pattern (`/img/{*rest}`), not the path: no ids or
    // options in a field meant for grouping.
    let route = req.extensions().get::<MatchedPath>().map_or("(no route)", MatchedPath::as_str).to_string();
    let span = tracing::info_span!("request", method = %req.method(), route = %route, request_id = %id);
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    let latency_ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    span.in_scope(|| match status {
        500.. => tracing::warn!(status, latency_ms, "answered"),
        _ => tracing::debug!(status, latency_ms, "answered"),
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}
