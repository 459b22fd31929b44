//! Ingest one upload: raw object → sniff, limits, decode once → the five
//! standard variants → processed store → metadata `ready`, written LAST.
//! A bad image becomes `failed` with the engine's code and no variant
//! objects; our own faults and storage failures are errors, retried, and
//! never stored against the image. Running it twice changes nothing: a final item is left alone.
//! `reprocess` runs the same steps again for a `ready` image made with an
//! older recipe: the new variants get new keys, and the old ones are left
//! as they are.

use std::collections::BTreeMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::engine::{EngineError, Variant};
use crate::keys::{ImageId, Key};
use crate::meta::{now_rfc3339, ErrorInfo, MetaError, Metadata, Original, Status, Stored, VariantMeta};
use crate::store::{StoreError, IMMUTABLE};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Our own fault (a panic in resize or encode, an encoder error): the
    /// image is not blamed, nothing is stored, and the event is retried.
    #[error("internal fault: {0}")]
    Internal(String),
}

impl IngestError {
    /// Throttling, timeouts, a full disk and our own faults: try the same
    /// event again later. Only an image's fault is final, and that is an
    /// `Outcome`, not an error.
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Store(e) => e.is_retryable(),
            IngestError::Meta(e) => e.is_retryable(),
            IngestError::Internal(_) => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ready,
    Failed(String),
    /// Already `ready` or `failed`: a duplicate event.
    AlreadyDone,
    /// No raw object (yet): nothing to do.
    NoUpload,
    /// A drop-in stored as its id's upload, to be ingested by that
    /// object's own event (see `events::take_dropped`).
    Taken,
}

pub async fn ingest(state: &AppState, id: ImageId) -> Result<Outcome, IngestError> {
    let existing = state.meta.get(&id).await?;
    if existing.as_ref().is_some_and(|m| m.status.is_terminal()) {
        return Ok(Outcome::AlreadyDone);
    }
    run(state, id, existing).await
}

/// The standard variants of `id` again, for the current recipe. Only a
/// `ready` image with another recipe, or a `failed` one (a limit may have
/// been raised), is run; a pending one is still on its way, a deleted one
/// stays deleted. A ready image that the current settings refuse stays
/// ready with the variants it has, and the refusal is the outcome.
pub async fn reprocess(state: &AppState, id: ImageId) -> Result<Outcome, IngestError> {
    let Some(existing) = state.meta.get(&id).await? else { return Ok(Outcome::NoUpload) };
    let current = state.engine.recipe();
    match existing.status {
        Status::Ready if existing.recipe != Some(current) => run(state, id, Some(existing)).await,
        Status::Failed => run(state, id, Some(existing)).await,
        Status::Ready | Status::Pending | Status::Deleted => Ok(Outcome::AlreadyDone),
    }
}

async fn run(state: &AppState, id: ImageId, existing: Option<Metadata>) -> Result<Outcome, IngestError> {
    let was_ready = existing.as_ref().is_some_and(|m| m.status == Status::Ready);
    let raw_key = Key::raw(&id);
    let Some(raw) = state.raw.get(&raw_key).await? else { return Ok(Outcome::NoUpload) };
    let created_at = existing.as_ref().map_or_else(now_rfc3339, |m| m.created_at.clone());
    let (declared, source_key, source_etag, delete_token_sha256) =
        existing.map_or((None, None, None, None), |m| (m.declared, m.source_key, m.source_etag, m.delete_token_sha256));

    let engine = state.engine.clone();
    let body = raw.body.clone();
    let permit = state.cpu.wait().await.map_err(|e| IngestError::Internal(e.to_string()))?;
    let work = permit
        .run(move || {
            let decoded = engine.decode(&body)?;
            let rendered = engine.standard(&decoded, &Variant::ALL)?;
            let sha256 = hex::encode(Sha256::digest(&body));
            Ok::<_, EngineError>((decoded.info, rendered, sha256))
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))?;

    let mut meta = Metadata {
        id,
        status: Status::Failed,
        created_at,
        updated_at: now_rfc3339(),
        declared,
        source_key,
        source_etag,
        original: None,
        recipe: None,
        variants: BTreeMap::new(),
        error: None,
        delete_token_sha256,
        purged: false,
    };
    let (info, rendered, sha256) = match work {
        Ok(ok) => ok,
        Err(e) if !e.is_image_fault() => return Err(IngestError::Internal(e.to_string())),
        Err(e) if was_ready => {
            tracing::warn!(%id, code = e.code(), error = %e, "the current settings refuse this image; it keeps its variants");
            return Ok(Outcome::Failed(e.code().to_string()));
        }
        Err(e) => {
            tracing::info!(%id, code = e.code(), error = %e, "upload refused");
            meta.error = Some(ErrorInfo { code: e.code().to_string(), message: e.to_string() });
            state.meta.put(&meta).await?;
            return Ok(Outcome::Failed(e.code().to_string()));
        }
    };

    let base = &state.config.public_base_url;
    let recipe = state.engine.recipe();
    meta.recipe = Some(recipe);
    for (variant, r) in rendered {
        let key = Key::variant(&id, Some(recipe), variant.name());
        let content_type = r.format.content_type();
        let bytes = r.bytes.len() as u64;
        state.processed.put(&key, Bytes::from(r.bytes), content_type, IMMUTABLE).await?;
        meta.variants.insert(
            variant.name().to_string(),
            VariantMeta {
                url: format!("{base}/{key}"),
                key: key.to_string(),
                content_type: content_type.to_string(),
                width: r.width,
                height: r.height,
                bytes,
            },
        );
    }
    meta.original = Some(Original {
        key: raw_key.to_string(),
        bytes: raw.body.len() as u64,
        content_type: info.format.content_type().to_string(),
        format: info.format.name().to_string(),
        width: info.width,
        height: info.height,
        orientation: info.orientation,
        sha256,
        animated: info.animated,
        frames: info.animated.then_some(info.frames),
    });
    meta.status = Status::Ready;
    // Kept: deleted while this ran (or made newer by another run). Only
    // then is the item read again: after a delete, the variants written
    // since it removed the others are taken back.
    let kept = state.meta.put(&meta).await? == Stored::Kept;
    if kept && state.meta.get(&id).await?.is_some_and(|m| m.status == Status::Deleted) {
        state.processed.delete_variants(&id).await?;
        return Ok(Outcome::AlreadyDone);
    }
    Ok(Outcome::Ready)
}
