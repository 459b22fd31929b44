//! `TestApp`: the local service in a tempdir, on a real TCP port (the same
//! connection loop as `serve`), with a counting wrapper around the (real)
//! folder store so tests can prove what was or was not read or written, and
//! can make its writes fail as a full disk does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use imgpipe::app::{router, AppState};
use imgpipe::config::Config;
use imgpipe::keys::{ImageId, Key};
use imgpipe::meta::{MetaError, MetaStore, Metadata, Status, Stored};
use imgpipe::recipe::Recipe;
use imgpipe::store::{BlobStore, ByteStream, Object, ObjectInfo, PresignedPut, StoreError};
use tower::ServiceExt;

/// Delegates to a real store and counts calls per kind and per key.
pub struct Counting {
    inner: Arc<dyn BlobStore>,
    pub reads: AtomicUsize,
    pub puts: Mutex<HashMap<String, usize>>,
    /// Writes to keys under this prefix fail with ENOSPC (a full disk).
    pub full_under: Mutex<Option<String>>,
    /// The next write under a prefix stops here until the test says how
    /// it ends.
    pub put_gate: Mutex<Option<PutGate>>,
}

/// Holds one write: `arrived` fires when it gets here; the answer on
/// `release` is the error it fails with, or `None` to write.
pub struct PutGate {
    pub prefix: String,
    pub arrived: tokio::sync::oneshot::Sender<()>,
    pub release: tokio::sync::oneshot::Receiver<Option<StoreError>>,
}

impl Counting {
    fn check_space(&self, key: &Key) -> Result<(), StoreError> {
        match &*self.full_under.lock().unwrap() {
            Some(prefix) if key.as_str().starts_with(prefix.as_str()) => {
                Err(StoreError::Io(std::io::Error::from_raw_os_error(28)))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl BlobStore for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn open(&self, key: &Key) -> Result<Option<(ObjectInfo, ByteStream)>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.open(key).await
    }
    async fn head(&self, key: &Key) -> Result<Option<ObjectInfo>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.head(key).await
    }
    async fn put(&self, key: &Key, body: Bytes, ct: &str, cc: &str) -> Result<ObjectInfo, StoreError> {
        *self.puts.lock().unwrap().entry(key.to_string()).or_default() += 1;
        self.check_space(key)?;
        let gate = {
            let mut gate = self.put_gate.lock().unwrap();
            if gate.as_ref().is_some_and(|g| key.as_str().starts_with(&g.prefix)) {
                gate.take()
            } else {
                None
            }
        };
        if let Some(gate) = gate {
            let _ = gate.arrived.send(());
            if let Ok(Some(e)) = gate.release.await {
                return Err(e);
            }
        }
        self.inner.put(key, body, ct, cc).await
    }
    async fn put_stream(
        &self,
        key: &Key,
        body: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
        len: u64,
        ct: &str,
        cc: &str,
    ) -> Result<(), StoreError> {
        *self.puts.lock().unwrap().entry(key.to_string()).or_default() += 1;
        self.check_space(key)?;
        self.inner.put_stream(key, body, len, ct, cc).await
    }
    async fn presign_put(&self, key: &Key, ct: &str, len: u64, ttl: Duration) -> Result<PresignedPut, StoreError> {
        self.inner.presign_put(key, ct, len, ttl).await
    }
    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn delete_variants(&self, id: &ImageId) -> Result<usize, StoreError> {
        self.inner.delete_variants(id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// Delegates to the real metadata store and counts every call.
pub struct CountingMeta {
    inner: Arc<dyn MetaStore>,
    pub calls: AtomicUsize,
}

impl CountingMeta {
    fn count(&self) -> &dyn MetaStore {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_ref()
    }
}

#[async_trait]
impl MetaStore for CountingMeta {
    async fn get(&self, id: &ImageId) -> Result<Option<Metadata>, MetaError> {
        self.count().get(id).await
    }
    async fn put(&self, meta: &Metadata) -> Result<Stored, MetaError> {
        self.count().put(meta).await
    }
    async fn pending(&self, created_before: Option<&str>) -> Result<Vec<ImageId>, MetaError> {
        self.count().pending(created_before).await
    }
    async fn outdated(&self, recipe: Recipe) -> Result<Vec<ImageId>, MetaError> {
        self.count().outdated(recipe).await
    }
    async fn delete_pending(&self, id: &ImageId) -> Result<bool, MetaError> {
        self.count().delete_pending(id).await
    }
    async fn claim_source(&self, dropped: &Metadata) -> Result<ImageId, MetaError> {
        self.count().claim_source(dropped).await
    }
    async fn by_source(&self, source_key: &str) -> Result<Option<ImageId>, MetaError> {
        self.count().by_source(source_key).await
    }
    async fn ping(&self) -> Result<(), MetaError> {
        self.count().ping().await
    }
}

pub struct TestApp {
    pub state: AppState,
    pub store: Arc<Counting>,
    pub meta: Arc<CountingMeta>,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
        Self::spawn_in(tempfile::tempdir().unwrap(), vars).await
    }

    /// A server on the data dir `dir` (another app's, to see what a
    /// restart with other settings finds).
    pub async fn spawn_in(dir: tempfile::TempDir, vars: &[(&str, &str)]) -> TestApp {
        Self::spawn_as(dir, vars, true).await
    }

    /// A server as `serve` on an address other machines reach (0.0.0.0):
    /// DELETE needs a token there.
    pub async fn spawn_exposed(vars: &[(&str, &str)]) -> TestApp {
        Self::spawn_as(tempfile::tempdir().unwrap(), vars, false).await
    }

    async fn spawn_as(dir: tempfile::TempDir, vars: &[(&str, &str)], loopback_only: bool) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("IMGPIPE_PUBLIC_BASE_URL".into(), base.clone());
        let mut config = Config::from_lookup(|k| map.get(k).cloned()).unwrap();
        // What `serve` sets from the address it listens on.
        config.loopback_only = loopback_only;
        let (mut state, rx) = imgpipe::serve::local_state(config, dir.path()).unwrap();
        let store = Arc::new(Counting {
            inner: state.processed.clone(),
            reads: AtomicUsize::new(0),
            puts: Mutex::default(),
            full_under: Mutex::default(),
            put_gate: Mutex::default(),
        });
        state.raw = store.clone();
        state.processed = store.clone();
        let meta = Arc::new(CountingMeta { inner: state.meta.clone(), calls: AtomicUsize::new(0) });
        state.meta = meta.clone();
        let consumers = imgpipe::queue::start(state.clone(), rx, 2, Duration::from_millis(300));
        std::mem::forget(consumers); // live as long as the test process
        let app = router(state.clone());
        let max = state.config.max_connections;
        tokio::spawn(imgpipe::http::server::run(listener, app, std::future::pending(), Duration::ZERO, max));
        TestApp { state, store, meta, base, dir }
    }

    pub async fn call(&self, req: Request<Body>) -> Response<Body> {
        router(self.state.clone()).oneshot(req).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response<Body> {
        self.call(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// POST /uploads; returns the JSON answer.
    pub async fn create(&self, content_type: &str, len: usize) -> serde_json::Value {
        let body = serde_json::json!({"content_type": content_type, "content_length": len}).to_string();
        let res = self
            .call(Request::post("/uploads").header("content-type", "application/json").body(Body::from(body)).unwrap())
            .await;
        assert_eq!(res.status(), 201);
        json(res).await
    }

    /// The presigned URL as a path on this app.
    pub fn local_path(&self, url: &str) -> String {
        url.strip_prefix(&self.base).expect("upload url on this app").to_string()
    }

    pub async fn put_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response<Body> {
        let len = body.len();
        self.call(
            Request::put(path)
                .header("content-type", content_type)
                .header("content-length", len)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Create + PUT; returns the id.
    pub async fn upload(&self, bytes: Vec<u8>, content_type: &str) -> ImageId {
        let created = self.create(content_type, bytes.len()).await;
        let path = self.local_path(created["upload"]["url"].as_str().unwrap());
        let res = self.put_raw(&path, content_type, bytes).await;
        assert_eq!(res.status(), 200);
        ImageId::parse(created["id"].as_str().unwrap()).unwrap()
    }

    pub async fn wait_final(&self, id: &ImageId) -> Metadata {
        for _ in 0..600 {
            let m = self.state.meta.get(id).await.unwrap().unwrap();
            if m.status != Status::Pending {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{id} still pending after 60 s");
    }
}

/// `imgpipe serve` as a process on `port` and `data`, with `env` added.
pub fn start(port: u16, data: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data)
        .env_remove("IMGPIPE_PUBLIC_BASE_URL")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Until `base` answers `/health` with 200 (10 s at most).
pub async fn wait_up(http: &reqwest::Client, base: &str) {
    for _ in 0..100 {
        if http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not come up");
}

/// `/img/<id>/<recipe>/<rest>` (`rest`: `webp`, `webp/w=10`, `webp?w=10`)
/// for the recipe of the default settings, which every test server has.
pub fn img(id: impl std::fmt::Display, rest: &str) -> String {
    format!("/img/{id}/{}/{rest}", imgpipe::engine::Engine::default().recipe())
}

pub async fn body_bytes(res: Response<Body>) -> Bytes {
    res.into_body().collect().await.unwrap().to_bytes()
}

pub async fn json(res: Response<Body>) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(res).await).unwrap()
}

pub fn photo(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img).write_to(&mut out, ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// `POST /uploads` over real HTTP; returns the JSON answer.
pub async fn create_over_http(http: &reqwest::Client, base: &str, content_type: &str, len: usize) -> serde_json::Value {
    http.post(format!("{base}/uploads"))
        .json(&serde_json::json!({"content_type": content_type, "content_length": len}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[path = "../common/util.rs"]
mod util;
pub use util::{free_port, noise_png};
