//! `imgpipe serve` on the local backend: a folder for both buckets, SQLite
//! for metadata, the `/_upload` presigned-PUT target, the in-process work
//! queue and the drop-in folder `inbox/`; graceful shutdown on SIGTERM or
//! Ctrl-C.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::app::{router, AppState};
use crate::config::Config;
use crate::http::server;
use crate::inbox::{self, Inbox};
use crate::keys::ImageId;
use crate::meta::MetaStore;
use crate::queue;
use crate::signing::UploadSigner;
use crate::store::fs::FsStore;

/// Queue capacity: a full queue only delays work (see `queue`).
pub const QUEUE_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data dir {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("metadata store: {0}")]
    Meta(#[from] crate::meta::MetaError),
    #[error("listening on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Config(crate::config::ConfigError),
    #[error(transparent)]
    Parameters(#[from] crate::aws::ParametersError),
    #[error("this build has no local backend (it was built without the `local` feature); use --backend aws")]
    NoLocalBackend,
}

/// The local metadata store: SQLite in the data dir.
#[cfg(feature = "local")]
fn local_meta(data_dir: &Path) -> Result<Arc<dyn MetaStore>, ServeError> {
    Ok(Arc::new(crate::meta::sqlite::SqliteMeta::open(data_dir)?))
}

/// The Lambda build leaves SQLite out (`--no-default-features`).
#[cfg(not(feature = "local"))]
fn local_meta(_: &Path) -> Result<Arc<dyn MetaStore>, ServeError> {
    Err(ServeError::NoLocalBackend)
}

/// Where `serve` records the public base URL it writes into metadata, so
/// that the commands run by hand on the same data dir (`import`,
/// `reprocess`) write the same URLs: the local backend's own setting.
const PUBLIC_BASE_FILE: &str = "public-base-url";

/// The public base URL `serve` last ran with on `data_dir`, if it ran.
pub fn recorded_public_base(data_dir: &Path) -> Option<String> {
    let url = std::fs::read_to_string(data_dir.join(PUBLIC_BASE_FILE)).ok()?;
    Some(url.trim().to_string()).filter(|u| !u.is_empty())
}

/// The local `AppState` on `data_dir`, with its queue's receiving end.
pub fn local_state(config: Config, data_dir: &Path) -> Result<(AppState, mpsc::Receiver<ImageId>), ServeError> {
    let dir_err = |source| ServeError::DataDir { path: data_dir.display().to_string(), source };
    std::fs::create_dir_all(data_dir).map_err(dir_err)?;
    let meta = local_meta(data_dir)?;
    let secret = UploadSigner::secret_from(data_dir, config.upload_secret.clone()).map_err(dir_err)?;
    let signer = UploadSigner::new(secret, &config.public_base_url);
    let blobs = Arc::new(FsStore::new(data_dir, signer.clone()).map_err(dir_err)?);
    match blobs.remove_temp_files() {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed temporary files left by an earlier run"),
        Err(e) => return Err(dir_err(e)),
    }
    let mut state = AppState::new(blobs.clone(), blobs, meta, Arc::new(config));
    state.upload_signer = Some(signer);
    let (jobs, rx) = queue::channel(QUEUE_CAPACITY);
    state.jobs = Some(jobs);
    Ok((state, rx))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: no new requests; finishing running jobs");
}

/// `serve --backend aws`: the router on a port against S3 and DynamoDB
/// (AWS, MinIO, R2 or an emulator through `AWS_ENDPOINT_URL`). Processing
/// is the events handler's (Lambda or `imgpipe worker`).
pub async fn run_aws(config: Config, addr: SocketAddr) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
    let clients = crate::aws::Clients::from_env(&config).await;
    let config = crate::aws::with_parameters(config, &clients).await?;
    let state = crate::aws::state(config, &clients).map_err(ServeError::Config)?;
    tracing::info!(%addr, "imgpipe serving on AWS storage");
    let max = connection_cap(&state.config);
    server::run(listener, router(state), shutdown_signal(), server::SHUTDOWN_DEADLINE, max).await;
    Ok(())
}

/// `IMGPIPE_MAX_CONNECTIONS`, kept below the open-file limit (raised to its
/// hard limit first) with room for the store's files, the database and the
/// health reserve: a flood of connections is refused by the cap, never by
/// running out of descriptors.
fn connection_cap(config: &Config) -> usize {
    let limit = server::raise_open_file_limit();
    let room = limit.map_or(usize::MAX, |l| (l as usize).saturating_sub(128 + server::HEALTH_RESERVE).max(16));
    let cap = config.max_connections.min(room);
    if cap < config.max_connections {
        tracing::warn!(cap, open_file_limit = ?limit, "IMGPIPE_MAX_CONNECTIONS lowered to fit the open-file limit");
    }
    cap
}

/// How often renders are swept (when an expiry or a size cap is set).
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Remove renders not read for `max_age`, and the least recently read past
/// `max_bytes`, every `SWEEP_EVERY` (the first a minute after start).
async fn sweep(data_dir: std::path::PathBuf, max_age: Option<Duration>, max_bytes: Option<u64>) {
    if max_age.is_none() && max_bytes.is_none() {
        return;
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    loop {
        let dir = data_dir.clone();
        match tokio::task::spawn_blocking(move || crate::store::fs::sweep_renders(&dir, max_age, max_bytes)).await {
            Ok(Ok(s)) if s.removed > 0 => tracing::info!(removed = s.removed, bytes = s.bytes, "renders swept"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "sweeping renders failed; trying again later"),
            Err(e) => tracing::warn!(error = %e, "the render sweep stopped"),
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

/// Serve until SIGTERM/Ctrl-C, then let open requests finish
/// (`SHUTDOWN_DEADLINE` at most) and running jobs too (as long again).
pub async fn run(config: Config, addr: SocketAddr, data_dir: &Path) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
    let (state, rx) = local_state(config, data_dir)?;
    crate::store::fs::write_atomic(&data_dir.join(PUBLIC_BASE_FILE), state.config.public_base_url.as_bytes())
        .map_err(|source| ServeError::DataDir { path: data_dir.display().to_string(), source })?;
    let running = queue::start(state.clone(), rx, crate::cpu::cores(), Duration::from_secs(5));
    let inbox =
        Inbox::new(data_dir).map_err(|source| ServeError::DataDir { path: data_dir.display().to_string(), source })?;
    tracing::info!(%addr, data_dir = %data_dir.display(), inbox = %inbox.dir().display(), "imgpipe serving");
    let watcher = tokio::spawn(inbox::watch(state.clone(), inbox));
    let sweeper =
        tokio::spawn(sweep(data_dir.to_path_buf(), state.config.render_expiry, state.config.max_render_bytes));
    let max = connection_cap(&state.config);
    server::run(listener, router(state), shutdown_signal(), server::SHUTDOWN_DEADLINE, max).await;
    watcher.abort();
    sweeper.abort();
    running.shutdown(server::SHUTDOWN_DEADLINE).await;
    Ok(())
}
