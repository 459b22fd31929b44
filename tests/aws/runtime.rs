//! A Lambda Runtime API on loopback (the documented `2018-06-01` routes),
//! so the real `imgpipe` binary runs as it would on Lambda: it polls
//! `/invocation/next`, answers `/response` or `/error`. Like Lambda, a
//! response over 6 MB is refused (413) and the invocation fails.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot};

/// Lambda's limit on a synchronous response payload.
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024;

type Outcome = Result<serde_json::Value, String>;

struct Invocation {
    id: String,
    payload: serde_json::Value,
    done: oneshot::Sender<Outcome>,
}

#[derive(Clone)]
struct Shared {
    next: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    init_error: Arc<Mutex<Option<String>>>,
}

pub struct Runtime {
    tx: mpsc::Sender<Invocation>,
    shared: Shared,
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn next(State(s): State<Shared>) -> impl IntoResponse {
    let inv = s.next.lock().await.recv().await;
    let Some(inv) = inv else { return (StatusCode::GONE, HeaderMap::new(), String::new()) };
    s.waiting.lock().unwrap().insert(inv.id.clone(), inv.done);
    let mut h = HeaderMap::new();
    let deadline =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + Duration::from_secs(900);
    h.insert("lambda-runtime-aws-request-id", inv.id.parse().unwrap());
    h.insert("lambda-runtime-deadline-ms", deadline.as_millis().to_string().parse().unwrap());
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:imgpipe".parse().unwrap(),
    );
    h.insert("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    (StatusCode::OK, h, inv.payload.to_string())
}

async fn response(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let Some(done) = s.waiting.lock().unwrap().remove(&id) else { return StatusCode::BAD_REQUEST };
    if body.len() > MAX_RESPONSE {
        let _ = done.send(Err(format!("Function.ResponseSizeTooLarge: {} bytes", body.len())));
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let _ = done.send(serde_json::from_slice(&body).map_err(|e| format!("response is not JSON: {e}")));
    StatusCode::ACCEPTED
}

async fn error(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    if let Some(done) = s.waiting.lock().unwrap().remove(&id) {
        let _ = done.send(Err(String::from_utf8_lossy(&body).into_owned()));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(s): State<Shared>, body: Bytes) -> StatusCode {
    *s.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

impl Runtime {
    /// Start the Runtime API and `imgpipe` under it with `env`.
    pub async fn start(env: &[(String, String)]) -> Runtime {
        let (tx, rx) = mpsc::channel(16);
        let shared =
            Shared { next: Arc::new(tokio::sync::Mutex::new(rx)), waiting: Arc::default(), init_error: Arc::default() };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("lambda.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "imgpipe")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("lambda.err")).unwrap())
            .spawn()
            .unwrap();
        Runtime { tx, shared, child, log, _dir: dir }
    }

    fn logs(&self) -> String {
        let err = self.log.with_file_name("lambda.err");
        format!(
            "stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        )
    }

    /// One synchronous invocation: the handler's JSON answer, or the error
    /// Lambda would report.
    pub async fn invoke(&mut self, payload: serde_json::Value) -> Outcome {
        let (done, answer) = oneshot::channel();
        let id = imgpipe::keys::ImageId::new().to_string();
        self.tx.send(Invocation { id, payload, done }).await.unwrap();
        tokio::pin!(answer);
        let started = std::time::Instant::now();
        loop {
            tokio::select! {
                a = &mut answer => return a.unwrap_or_else(|_| Err("runtime dropped the invocation".into())),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!("imgpipe exited ({status:?}) during an invocation\n{}", self.logs());
                    }
                    assert!(started.elapsed() < Duration::from_secs(180), "invocation timed out\n{}", self.logs());
                }
            }
        }
    }

    pub fn init_error(&self) -> Option<String> {
        let _ = &self.child;
        self.shared.init_error.lock().unwrap().clone()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Function URL (payload format 2.0) request, from the recorded fixture.
pub fn function_url(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> serde_json::Value {
    let mut req: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/lambda/function-url-request.json")).unwrap();
    req["rawPath"] = path.into();
    req["rawQueryString"] = query.into();
    req["requestContext"]["http"]["method"] = method.into();
    req["requestContext"]["http"]["path"] = path.into();
    for (k, v) in headers {
        req["headers"][k.to_ascii_lowercase()] = (*v).into();
    }
    match body {
        None => {
            req["body"] = serde_json::Value::Null;
            req["isBase64Encoded"] = false.into();
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => {
                req["body"] = text.into();
                req["isBase64Encoded"] = false.into();
            }
            Err(_) => {
                req["body"] = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b).into();
                req["isBase64Encoded"] = true.into();
            }
        },
    }
    req
}

/// What a Function URL would send to the client.
#[derive(Debug)]
pub struct FnResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl FnResponse {
    pub fn parse(v: &serde_json::Value) -> FnResponse {
        let status = v["statusCode"].as_u64().expect("statusCode") as u16;
        let headers = v["headers"]
            .as_object()
            .map(|m| {
                m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_string())).collect()
            })
            .unwrap_or_default();
        let text = v["body"].as_str().unwrap_or_default();
        let body = if v["isBase64Encoded"].as_bool().unwrap_or(false) {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).expect("base64 body")
        } else {
            text.as_bytes().to_vec()
        };
        FnResponse { status, headers, body }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}
