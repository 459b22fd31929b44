//! `GET /` (the upload page) and `GET /ui/<file>` (its script, style and icon).
//! The files are compiled into the binary from `ui/`: no build step, nothing
//! fetched from elsewhere. The page's Content-Security-Policy allows only
//! its own script and style, images from this service and its public base
//! URL, and connections to this service and to where presigned PUTs go
//! (the app's `/_upload` locally, the raw bucket in AWS).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::http::problem::{ApiError, Code};
use crate::keys::{ImageId, Key};

const INDEX: &str = include_str!("../../ui/index.html");
const SCRIPT: &str = include_str!("../../ui/app.js");
const STYLE: &str = include_str!("../../ui/app.css");
const ICON: &str = include_str!("../../ui/icon.svg");

/// `scheme://host[:port]` of an absolute URL, if it is one.
fn origin_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).map_or(url.len(), |i| url.len() - rest.len() + i);
    Some(&url[..end]).filter(|o| !o.ends_with("//"))
}

/// Where this deployment's presigned PUTs go, found by presigning one (a
/// local computation on both stores: nothing is sent).
async fn upload_origin(state: &AppState) -> Option<String> {
    let probe = Key::raw(&ImageId::new());
    let put = state.raw.presign_put(&probe, "image/jpeg", 1, state.config.upload_ttl).await.ok()?;
    origin_of(&put.url).map(str::to_string)
}

fn content_security_policy(extra_origins: &[String]) -> String {
    let extra = extra_origins.iter().fold(String::new(), |acc, o| acc + " " + o);
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:{extra}; \
         connect-src 'self'{extra}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// The accepted types as a person names them ("JPEG, PNG, … or AVIF"),
/// from the one list `POST /uploads` checks.
fn accepted_names() -> String {
    let names: Vec<String> = crate::http::uploads::ACCEPTED_TYPES
        .iter()
        .map(|t| match t.trim_start_matches("image/") {
            "webp" => "WebP".to_string(),
            other => other.to_ascii_uppercase(),
        })
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

pub async fn index(State(state): State<AppState>) -> Response {
    let mut extra: Vec<String> = Vec::new();
    if let Some(o) = origin_of(&state.config.public_base_url) {
        extra.push(o.to_string());
    }
    if let Some(o) = upload_origin(&state).await {
        extra.push(o);
    }
    extra.sort();
    extra.dedup();
    let html = INDEX
        .replace("{{TOKEN_REQUIRED}}", if state.config.upload_tokens.is_empty() { "false" } else { "true" })
        .replace("{{MAX_UPLOAD_BYTES}}", &state.engine.limits.max_upload_bytes.to_string())
        .replace("{{ACCEPTED}}", &accepted_names());
    let mut res = html.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&extra)) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    res
}

pub async fn asset(raw: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let name = raw.map(|Path(n)| n).unwrap_or_default();
    let (body, content_type) = match name.as_str() {
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "app.css" => (STYLE, "text/css; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return Err(ApiError::new(Code::NotFound, "no such file")),
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_urls() {
        for (url, want) in [
            ("https://cdn.example.com", Some("https://cdn.example.com")),
            ("http://127.0.0.1:8080/_upload/x?sig=1", Some("http://127.0.0.1:8080")),
            (
                "https://raw.s3.eu-west-1.amazonaws.com/uploads/x?X-Amz-Date=1",
                Some("https://raw.s3.eu-west-1.amazonaws.com"),
            ),
            ("", None),
            ("/relative", None),
            ("https://", None),
        ] {
            assert_eq!(origin_of(url), want, "{url}");
        }
    }

    #[test]
    fn the_policy_names_only_our_scripts_and_styles() {
        let csp = content_security_policy(&["https://raw.example".into()]);
        assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self';"), "{csp}");
        assert!(csp.contains("connect-src 'self' https://raw.example;"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }
}
