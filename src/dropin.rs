//! Drop-ins: images that arrive under a name of their own instead of
//! through `POST /uploads`. Any object created in the raw bucket (AWS) or
//! any file put under `<data dir>/inbox/` (local, see `inbox`) is one, as
//! in the seeds: `aws s3 cp cat.jpg s3://<raw bucket>/holiday/cat.jpg`.
//!
//! The name becomes the item's `source_key`, and the bytes are copied to
//! `uploads/<id>`, so an id's original never changes even when a new
//! object is written at the same name later: that one is a new image, and
//! the old id keeps serving what it served. The same name with the same
//! ETag is the same image (a duplicate event, a restart), through
//! `MetaStore::claim_source`.

use bytes::Bytes;

use crate::app::AppState;
use crate::engine::EngineError;
use crate::ingest::{IngestError, Outcome};
use crate::keys::{ImageId, Key};
use crate::meta::{now_rfc3339, ErrorInfo, Metadata, Status};

/// Give the object now at `source_key` (with `etag`) an id, and store its
/// bytes as that id's upload. Ingest is the caller's next step. Taking the
/// same object again writes nothing new: S3 refuses a second object at
/// `uploads/<id>` (create-only), and the folder store replaces the file
/// with the same bytes in one rename.
pub async fn take(state: &AppState, source_key: &str, etag: &str, body: Bytes) -> Result<ImageId, IngestError> {
    let claim = Metadata::dropped(ImageId::new(), source_key, etag, body.len() as u64);
    let id = state.meta.claim_source(&claim).await?;
    state.raw.put(&Key::raw(&id), body, "application/octet-stream", "").await?;
    Ok(id)
}

/// An object over `IMGPIPE_MAX_UPLOAD_BYTES`: an item `failed` with
/// `too_large`, without reading or copying the bytes. `AlreadyDone` when
/// its id was already final (a duplicate event).
pub async fn refuse_too_large(
    state: &AppState,
    source_key: &str,
    etag: &str,
    len: u64,
) -> Result<(ImageId, Outcome), IngestError> {
    let claim = Metadata::dropped(ImageId::new(), source_key, etag, len);
    let id = state.meta.claim_source(&claim).await?;
    let Some(mut item) = state.meta.get(&id).await? else { return Ok((id, Outcome::AlreadyDone)) };
    if item.status.is_terminal() {
        return Ok((id, Outcome::AlreadyDone));
    }
    let e = EngineError::TooLarge { bytes: len, limit: state.config.limits.max_upload_bytes };
    item.status = Status::Failed;
    item.updated_at = now_rfc3339();
    item.error = Some(ErrorInfo { code: e.code().to_string(), message: e.to_string() });
    state.meta.put(&item).await?;
    tracing::info!(%id, source_key, len, "drop-in refused: too large");
    Ok((id, Outcome::Failed(e.code().to_string())))
}
