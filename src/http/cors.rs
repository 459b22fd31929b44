//! CORS for the routes a page on another origin calls: `/uploads`,
//! `/_upload/*` (the local presigned PUT), `/meta`, `/meta/*` and `/img/*`.
//! Preflights are answered here, before any handler or token check, so a
//! preflight never needs a token; which origins may read the answers is
//! `Config::cors_origins` (`IMGPIPE_CORS_ORIGINS`). Every other route (the
//! page, `/health`, `/openapi.yaml`) stays same-origin.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::config::CorsOrigins;

/// Request headers a cross-origin caller may send: the JSON body's type,
/// the upload token, the body hash CloudFront's OAC needs for a POST
/// through the CDN, and conditional GETs and PUTs.
pub const ALLOWED_HEADERS: &str = "content-type, x-imgpipe-token, authorization, x-amz-content-sha256, if-none-match";

/// Response headers a cross-origin caller may read besides the safelisted ones.
pub const EXPOSED_HEADERS: &str = "etag, location, retry-after, server-timing";

/// How long a browser may cache a preflight answer.
const MAX_AGE_SECS: &str = "3600";

/// The methods a CORS-enabled route takes, or `None` for a same-origin route.
pub fn methods_for(path: &str) -> Option<&'static str> {
    if path == "/uploads" {
        Some("POST, OPTIONS")
    } else if path.starts_with("/_upload/") {
        Some("PUT, OPTIONS")
    } else if path.starts_with("/images/") {
        Some("DELETE, OPTIONS")
    } else if path == "/meta" || path.starts_with("/meta/") || path.starts_with("/img/") {
        Some("GET, HEAD, OPTIONS")
    } else {
        None
    }
}

fn allowed_origin(origins: &CorsOrigins, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    origins.allow(origin).and_then(|v| HeaderValue::from_str(&v).ok())
}

pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(methods) = methods_for(req.uri().path()) else {
        return next.run(req).await;
    };
    let origins = &state.config.cors_origins;
    let allow = allowed_origin(origins, req.headers());
    if req.method() == Method::OPTIONS {
        // A preflight (or a plain OPTIONS): 204 with what the route takes.
        // An origin that is not allowed gets no Access-Control-* headers,
        // which is how a browser learns the answer is no.
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        h.insert(header::ALLOW, HeaderValue::from_static(methods));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(origin) = allow {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
        }
        if *origins != CorsOrigins::None {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
            h.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Method"));
            h.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
        }
        return res;
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Some(origin) = allow {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    }
    // The answer depends on Origin whenever CORS is on, so caches must not
    // hand one origin's answer to another.
    if *origins != CorsOrigins::None {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_routes_are_cross_origin() {
        for (path, want) in [
            ("/uploads", Some("POST, OPTIONS")),
            ("/_upload/01hzz", Some("PUT, OPTIONS")),
            ("/meta/01hzz", Some("GET, HEAD, OPTIONS")),
            ("/meta", Some("GET, HEAD, OPTIONS")),
            ("/images/01hzz", Some("DELETE, OPTIONS")),
            ("/img/01hzz/webp", Some("GET, HEAD, OPTIONS")),
            ("/", None),
            ("/health", None),
            ("/openapi.yaml", None),
            ("/ui/app.js", None),
            ("/uploads/x", None),
        ] {
            assert_eq!(methods_for(path), want, "{path}");
        }
    }
}
