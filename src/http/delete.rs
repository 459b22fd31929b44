//! `DELETE /images/<id>`: the image's delete token or an admin token (see
//! `uploads::check_delete`), then a tombstone first (`status: deleted`, which no later write
//! replaces), then the variants and renders, the original (and a
//! drop-in's own object), and the CDN's copies, and last the tombstone
//! marked `purged`. Every step is safe to repeat, so a DELETE that failed
//! half way is finished by the next one; a DELETE of a purged tombstone
//! answers 204 again and does nothing.
//! Afterwards `/meta/<id>` and `/img/<id>/…` answer 410 `deleted`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::http::parse_id;
use crate::http::problem::{ApiError, Code};
use crate::http::uploads::check_delete;
use crate::keys::{ImageId, Key};
use crate::meta::{now_rfc3339, Metadata, Status};

pub async fn delete_image(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(raw_id)?;
    let meta = state.meta.get(&id).await?.ok_or_else(|| ApiError::new(Code::NotFound, "no image with this id"))?;
    check_delete(&state, &headers, &meta)?;
    remove(&state, meta).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Tombstone, objects, CDN; see the module doc. A tombstone already
/// `purged` has nothing left: no storage call and no second invalidation.
pub async fn remove(state: &AppState, meta: Metadata) -> Result<(), ApiError> {
    let id: ImageId = meta.id;
    if meta.status == Status::Deleted && meta.purged {
        return Ok(());
    }
    let was_deleted = meta.status == Status::Deleted;
    let tombstone = Metadata {
        status: Status::Deleted,
        updated_at: now_rfc3339(),
        original: None,
        recipe: None,
        variants: Default::default(),
        error: None,
        ..meta
    };
    if !was_deleted {
        state.meta.put(&tombstone).await?;
    }
    let removed = state.processed.delete_variants(&id).await?;
    state.raw.delete(&Key::raw(&id)).await?;
    remove_dropped_source(state, &tombstone).await?;
    if let Some(cdn) = &state.cdn {
        cdn.invalidate(&[format!("/img/{id}/*")]).await.map_err(|e| {
            tracing::warn!(%id, error = %e, "CDN invalidation failed; DELETE again to retry");
            ApiError::new(Code::StorageUnavailable, "the CDN did not take the invalidation; try again")
        })?;
    }
    state.meta.put(&Metadata { purged: true, updated_at: now_rfc3339(), ..tombstone }).await?;
    tracing::info!(%id, removed, "image deleted");
    Ok(())
}

/// A drop-in's own object in the raw bucket goes too, or the next `import`
/// of that bucket would bring the image back. Only while it is still the
/// object that was taken (same ETag): new bytes dropped at the same name
/// since are another image.
async fn remove_dropped_source(state: &AppState, tombstone: &Metadata) -> Result<(), ApiError> {
    let (Some(name), Some(etag)) = (&tombstone.source_key, &tombstone.source_etag) else { return Ok(()) };
    let Some(at) = Key::dropped(name) else { return Ok(()) };
    if state.raw.head(&at).await?.is_some_and(|info| &info.etag == etag) {
        state.raw.delete(&at).await?;
    }
    Ok(())
}
