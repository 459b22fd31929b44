//! `AppState` and `router(state)`: the one Router that `imgpipe serve` runs
//! on a port and the Lambda http handler runs per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;

use crate::config::Config;
use crate::cpu::CpuPool;
use crate::engine::Engine;
use crate::http;
use crate::http::problem::{ApiError, Code};
use crate::meta::MetaStore;
use crate::queue::JobQueue;
use crate::signing::UploadSigner;
use crate::store::BlobStore;

/// Response extension: the body is the stored object at this key (the
/// Lambda adapter redirects there when the body is too large to send).
#[derive(Debug, Clone)]
pub struct StoredAt(pub crate::keys::Key);

#[derive(Clone)]
pub struct AppState {
    pub raw: Arc<dyn BlobStore>,
    pub processed: Arc<dyn BlobStore>,
    pub meta: Arc<dyn MetaStore>,
    pub engine: Engine,
    pub config: Arc<Config>,
    /// Bounds CPU work (decode, resize, encode) to the cores, and the
    /// renders waiting for one.
    pub cpu: CpuPool,
    /// The local presigned-PUT target (`/_upload`); `None` in AWS mode.
    pub upload_signer: Option<UploadSigner>,
    /// The local work queue; `None` where S3 events drive ingest.
    pub jobs: Option<JobQueue>,
    /// The CDN whose copies a delete invalidates; `None` locally.
    pub cdn: Option<Arc<dyn crate::cdn::Cdn>>,
    /// What each client may still create (`POST /uploads`).
    pub uploads: Arc<crate::http::limiter::UploadLimiter>,
    locks: Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>,
}

impl AppState {
    pub fn new(
        raw: Arc<dyn BlobStore>,
        processed: Arc<dyn BlobStore>,
        meta: Arc<dyn MetaStore>,
        config: Arc<Config>,
    ) -> Self {
        let cores = crate::cpu::cores();
        AppState {
            raw,
            processed,
            meta,
            engine: Engine::new(config.limits),
            cpu: CpuPool::new(cores, config.max_queued_renders, config.max_queued_renders_per_client),
            uploads: Arc::new(crate::http::limiter::UploadLimiter::new(
                config.uploads_per_minute,
                config.max_pending_uploads,
                config.upload_ttl,
            )),
            config,
            upload_signer: None,
            jobs: None,
            cdn: None,
            locks: Arc::default(),
        }
    }

    /// A lock per key, alive while someone holds it: single flight for
    /// renders and one-upload-per-id.
    pub fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().expect("lock map");
        if let Some(lock) = map.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() > 4096 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key.to_string(), Arc::downgrade(&lock));
        lock
    }
}

async fn no_route() -> ApiError {
    ApiError::new(Code::NoRoute, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "method not allowed on this route")
}

async fn security_headers(mut res: Response) -> Response {
    res.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// The API contract, served as written.
pub const OPENAPI: &str = include_str!("../openapi.yaml");

async fn openapi() -> Response {
    let mut res = Response::new(axum::body::Body::from(OPENAPI));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// Every route: its axum path and the OpenAPI paths it serves. The router
/// is built from this table and a test holds `openapi.yaml` to it.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/", &["/"]),
    ("/ui/{file}", &["/ui/{file}"]),
    ("/uploads", &["/uploads"]),
    ("/_upload/{id}", &["/_upload/{id}"]),
    // One handler parses every image path form (and the query form).
    (
        "/img/{*rest}",
        &[
            "/img/{id}/{variant}",
            "/img/{id}/png",
            "/img/{id}/jpeg-low",
            "/img/{id}/thumb",
            "/img/{id}/{recipe}/{variant}",
            "/img/{id}/{recipe}/png",
            "/img/{id}/{recipe}/jpeg-low",
            "/img/{id}/{recipe}/thumb",
            "/img/{id}/{recipe}/{format}/{opts}",
            "/img/{id}/{recipe}/png/{opts}",
        ],
    ),
    ("/meta", &["/meta"]),
    ("/meta/{id}", &["/meta/{id}"]),
    ("/images/{id}", &["/images/{id}"]),
    ("/health", &["/health"]),
    ("/openapi.yaml", &["/openapi.yaml"]),
];

fn endpoint(path: &str) -> MethodRouter<AppState> {
    match path {
        "/" => get(http::page::index),
        "/ui/{file}" => get(http::page::asset),
        "/uploads" => post(http::uploads::create_upload),
        "/_upload/{id}" => put(http::presigned_put::put_upload),
        "/img/{*rest}" => get(http::images::get_image),
        "/meta" => get(http::meta::lookup),
        "/meta/{id}" => get(http::meta::get_meta),
        "/images/{id}" => delete(http::delete::delete_image),
        "/health" => get(http::health::health),
        "/openapi.yaml" => get(openapi),
        other => unreachable!("ROUTES names {other} but no handler serves it"),
    }
}

pub fn router(state: AppState) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |r, (path, _)| r.route(path, endpoint(path)))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(http::trace::trace))
        .layer(axum::middleware::from_fn_with_state(state.clone(), http::cors::cors))
        .with_state(state)
}
