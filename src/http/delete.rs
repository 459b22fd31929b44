//! `DELETE /images/<id>`: the upload token (when tokens are configured),
//! then a tombstone first (`status: deleted`, which no later write
//! replaces), then the variants and renders, the original, and the CDN's
//! copies. Every step is safe to repeat, so a DELETE that failed half way
//! is finished by the next one, and a second DELETE answers 204 again.
//! Afterwards `/meta/<id>` and `/img/<id>/…` answer 410 `deleted`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::http::parse_id;
use crate::http::problem::{ApiError, Code};
use crate::http::uploads::check_token;
use crate::keys::{ImageId, Key};
use crate::meta::{now_rfc3339, Metadata, Status};

pub async fn delete_image(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    check_token(&state, &headers)?;
    let id = parse_id(raw_id)?;
    let meta = state.meta.get(&id).await?.ok_or_else(|| ApiError::new(Code::NotFound, "no image with this id"))?;
    remove(&state, meta).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Tombstone, objects, CDN; see the module doc.
pub async fn remove(state: &AppState, meta: Metadata) -> Result<(), ApiError> {
    let id: ImageId = meta.id;
    if meta.status != Status::Deleted {
        let tombstone = Metadata {
            status: Status::Deleted,
            updated_at: now_rfc3339(),
            original: None,
            recipe: None,
            variants: Default::default(),
            error: None,
            ..meta
        };
        state.meta.put(&tombstone).await?;
    }
    let removed = state.processed.delete_variants(&id).await?;
    state.raw.delete(&Key::raw(&id)).await?;
    if let Some(cdn) = &state.cdn {
        cdn.invalidate(&[format!("/img/{id}/*")]).await.map_err(|e| {
            tracing::warn!(%id, error = %e, "CDN invalidation failed; DELETE again to retry");
            ApiError::new(Code::StorageUnavailable, "the CDN did not take the invalidation; try again")
        })?;
    }
    tracing::info!(%id, removed, "image deleted");
    Ok(())
}
