//! The two Lambda entry points of the one binary (`IMGPIPE_HANDLER`):
//! `http` runs the same `router(state)` as `serve` behind a Function URL;
//! `events` ingests S3 notifications delivered through SQS (or directly).
//! Clients and state are built once per execution environment, outside the
//! per-invocation handler.

use std::convert::Infallible;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;

use crate::app::{router, AppState, StoredAt};
use crate::aws::{self, Clients};
use crate::config::{Config, Handler};
use crate::http::problem::ApiError;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Lambda refuses a response payload over 6 MB; a binary body is sent as
/// base64 (4/3 larger) inside a JSON document. Bodies above this are
/// answered with a redirect to the stored object instead.
pub const MAX_INLINE_BODY: usize = 4_500_000;

/// Run the configured handler until the Lambda runtime stops us.
pub async fn run(config: Config) -> Result<(), Error> {
    let handler = config.handler.ok_or("IMGPIPE_HANDLER is not set")?;
    let clients = Clients::from_env(&config).await;
    let services = Arc::new(Services::new(config, clients));
    // Loaded during init when it can be, so the first request is not the
    // one that waits; a failure here is logged and tried again per request.
    let _ = services.get().await;
    match handler {
        Handler::Http => {
            lambda_http::run(lambda_http::service_fn(move |req| {
                let services = services.clone();
                async move {
                    Ok::<_, Infallible>(match services.get().await {
                        Ok(s) => http(&s.app, &s.state, req).await,
                        Err(e) => problem(ApiError::unavailable(e)).await,
                    })
                }
            }))
            .await
        }
        Handler::Events => {
            lambda_runtime::run(lambda_runtime::service_fn(
                move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
                    let services = services.clone();
                    async move {
                        let s = services.get().await?;
                        events(&s.state, &s.raw_bucket, event.payload).await
                    }
                },
            ))
            .await
        }
    }
}

/// What the handlers run on, built from the settings (SSM parameters
/// included) once per execution environment.
struct Loaded {
    app: Router,
    state: AppState,
    raw_bucket: String,
}

/// `Loaded`, built on first use and kept; a build that fails (SSM still
/// throttled after its retries, say) is tried again on the next
/// invocation. A failed init would make Lambda answer 502 to the Function
/// URL's callers; this way they get a 503 with `Retry-After`, and an SQS
/// batch is delivered again.
struct Services {
    config: Config,
    clients: Clients,
    loaded: tokio::sync::Mutex<Option<Arc<Loaded>>>,
}

impl Services {
    fn new(config: Config, clients: Clients) -> Self {
        Services { config, clients, loaded: tokio::sync::Mutex::new(None) }
    }

    async fn get(&self) -> Result<Arc<Loaded>, Error> {
        let mut loaded = self.loaded.lock().await;
        if let Some(l) = &*loaded {
            return Ok(l.clone());
        }
        let built = async {
            let config = aws::with_parameters(self.config.clone(), &self.clients).await?;
            let raw_bucket = aws::names(&config)?.raw_bucket.to_string();
            let state = aws::state(config, &self.clients)?;
            Ok::<_, Error>(Arc::new(Loaded { app: router(state.clone()), state, raw_bucket }))
        }
        .await;
        match built {
            Ok(l) => Ok(loaded.insert(l).clone()),
            Err(e) => {
                tracing::error!(error = %e, "cannot load the settings; answering 503 until they load");
                Err(e)
            }
        }
    }
}

/// One Function URL request through the router. A body too large for a
/// Lambda response is already in the processed bucket (every image the
/// router serves is stored before it is sent), so the client is sent there:
/// a 302 to the same path under the public base URL, never cached.
pub async fn http(
    app: &Router,
    state: &AppState,
    req: lambda_http::Request,
) -> lambda_http::Response<lambda_http::Body> {
    let (mut parts, body) = req.into_parts();
    // The Function URL is reachable only through CloudFront, which names
    // the viewer: that is the client (the connection is CloudFront's).
    if let Some(viewer) = crate::http::client::cloudfront_viewer(&parts.headers) {
        parts.extensions.insert(crate::http::client::Peer(viewer));
    }
    let body = match body {
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let res = match app.clone().oneshot(axum::http::Request::from_parts(parts, axum::body::Body::from(body))).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let (mut parts, body) = res.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return problem(ApiError::internal(e)).await,
    };
    if bytes.len() > MAX_INLINE_BODY {
        let Some(StoredAt(key)) = parts.extensions.get::<StoredAt>() else {
            return problem(ApiError::internal(format!("a {} byte response with no stored object", bytes.len()))).await;
        };
        let location = format!("{}/{}", state.config.public_base_url, key);
        tracing::info!(%key, bytes = bytes.len(), "response too large for Lambda: redirecting to the stored object");
        let mut res = lambda_http::Response::new(lambda_http::Body::Empty);
        *res.status_mut() = StatusCode::FOUND;
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&location) {
            h.insert(header::LOCATION, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        return res;
    }
    let textual = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        let ct = ct.split(';').next().unwrap_or_default().trim();
        ct.starts_with("text/") || ct.ends_with("json") || ct.ends_with("yaml") || ct.ends_with("xml")
    });
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else if textual {
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => lambda_http::Body::Text(s),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    } else {
        lambda_http::Body::Binary(bytes.to_vec())
    };
    parts.extensions.clear();
    lambda_http::Response::from_parts(parts, body)
}

async fn problem(e: ApiError) -> lambda_http::Response<lambda_http::Body> {
    let res = axum::response::IntoResponse::into_response(e);
    let (parts, body) = res.into_parts();
    let text = body.collect().await.map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned()).unwrap_or_default();
    lambda_http::Response::from_parts(parts, lambda_http::Body::Text(text))
}

#[derive(Deserialize)]
struct SqsEvent {
    #[serde(rename = "Records", default)]
    records: Vec<SqsRecord>,
}

#[derive(Deserialize)]
struct SqsRecord {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(rename = "eventSource", default)]
    event_source: String,
    #[serde(default)]
    body: String,
}

/// One `events` invocation. An SQS batch answers with `batchItemFailures`
/// naming only the records to deliver again (storage faults); records are
/// independent. A direct S3 invocation fails as a whole so Lambda retries it.
pub async fn events(
    state: &AppState,
    raw_bucket: &str,
    payload: serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let is_sqs = payload
        .get("Records")
        .and_then(|r| r.as_array())
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .is_some_and(|s| s == "aws:sqs");
    if !is_sqs {
        crate::events::handle(state, raw_bucket, &payload.to_string()).await?;
        return Ok(serde_json::json!({}));
    }
    let batch: SqsEvent = serde_json::from_value(payload)?;
    let runs = batch.records.iter().map(|r| async move {
        if r.event_source != "aws:sqs" {
            tracing::warn!(message_id = %r.message_id, source = %r.event_source, "skipping a record that is not from SQS");
            return None;
        }
        crate::events::handle(state, raw_bucket, &r.body).await.err().map(|_| r.message_id.clone())
    });
    let failures: Vec<_> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .map(|id| serde_json::json!({ "itemIdentifier": id }))
        .collect();
    Ok(serde_json::json!({ "batchItemFailures": failures }))
}
