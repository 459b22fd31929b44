//! Metadata: one item per id (DESIGN "Metadata"), behind one trait:
//! SQLite locally (`SqliteMeta`), DynamoDB in AWS. `put` is an idempotent
//! upsert that never moves an item from `ready`/`failed` back to `pending`.

pub mod dynamo;
#[cfg(feature = "local")]
pub mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::keys::ImageId;
use crate::recipe::Recipe;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store is throttled or unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("metadata store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("stored metadata is damaged: {0}")]
    Corrupt(String),
}

impl MetaError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, MetaError::Unavailable(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Ready,
    Failed,
    /// Removed by `DELETE /images/<id>`: a tombstone that no later write
    /// replaces, so a late event or render cannot bring the image back.
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Deleted => "deleted",
        }
    }

    pub fn is_terminal(self) -> bool {
        self != Status::Pending
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Original {
    pub key: String,
    pub bytes: u64,
    pub content_type: String,
    pub format: String,
    /// After EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub animated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantMeta {
    pub key: String,
    pub url: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

/// What the client declared at `POST /uploads` (and what was signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    pub content_type: String,
    pub content_length: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub id: ImageId,
    pub status: Status,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<Declared>,
    /// A drop-in's name: its key in the raw bucket, or its path under the
    /// local `inbox/`. `None` for an upload through `POST /uploads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key: Option<String>,
    /// The dropped object's ETag (S3's; the quoted MD5 locally): the same
    /// key with the same bytes is the same image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Original>,
    /// The recipe version the variants were made with; it is in their keys
    /// and URLs. `None` for an item from before recipe versions, and for
    /// one that has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, VariantMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// The SHA-256 (hex) of the delete token `POST /uploads` handed out
    /// for this image; never shown in `/meta`. `None` for drop-ins,
    /// imports and items from before delete tokens: only an admin token
    /// deletes those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_token_sha256: Option<String>,
    /// On a tombstone: every object of the image and the CDN's copies are
    /// gone, so a DELETE again has nothing left to do (no storage call, no
    /// second CDN invalidation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purged: bool,
}

impl Metadata {
    pub fn pending(id: ImageId, declared: Declared) -> Self {
        let now = now_rfc3339();
        Metadata {
            id,
            status: Status::Pending,
            created_at: now.clone(),
            updated_at: now,
            declared: Some(declared),
            source_key: None,
            source_etag: None,
            original: None,
            recipe: None,
            variants: BTreeMap::new(),
            error: None,
            delete_token_sha256: None,
            purged: false,
        }
    }

    /// A pending item for an object dropped at `source_key`.
    pub fn dropped(id: ImageId, source_key: &str, etag: &str, bytes: u64) -> Self {
        let declared = Declared { content_type: "application/octet-stream".into(), content_length: bytes };
        Metadata {
            source_key: Some(source_key.into()),
            source_etag: Some(etag.into()),
            ..Metadata::pending(id, declared)
        }
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What a [`MetaStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Written,
    /// The stored item was kept: it is final and this one is pending, it
    /// is newer, or it is a tombstone.
    Kept,
}

/// One item per id: DynamoDB or SQLite.
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn get(&self, id: &ImageId) -> Result<Option<Metadata>, MetaError>;
    /// Upsert; a `pending` item never replaces a `ready` or `failed` one,
    /// and nothing but a newer tombstone (the same one, `purged`) replaces
    /// a `deleted` one (that put is a no-op, not an error, and answers
    /// `Kept`).
    async fn put(&self, meta: &Metadata) -> Result<Stored, MetaError>;
    /// Ids still `pending`, oldest first; with `created_before` (RFC 3339),
    /// only those created before it.
    async fn pending(&self, created_before: Option<&str>) -> Result<Vec<ImageId>, MetaError>;
    /// Ids of `ready` images whose variants were made with a recipe other
    /// than `recipe` (or before recipe versions), oldest first: what
    /// `imgpipe reprocess --all` runs.
    async fn outdated(&self, recipe: Recipe) -> Result<Vec<ImageId>, MetaError>;
    /// Remove the item of `id` if it is still `pending` (an upload that
    /// never came); `false` when it was not there or not pending.
    async fn delete_pending(&self, id: &ImageId) -> Result<bool, MetaError>;
    /// The id for the object now at `dropped.source_key` with ETag
    /// `dropped.source_etag`. When the newest image from that key has that
    /// ETag, its id (a duplicate event, a restart); otherwise `dropped` is
    /// stored, becomes the newest from its key, and its id is returned.
    /// Atomic: two claims of the same object get the same id.
    async fn claim_source(&self, dropped: &Metadata) -> Result<ImageId, MetaError>;
    /// The newest image dropped at `source_key`.
    async fn by_source(&self, source_key: &str) -> Result<Option<ImageId>, MetaError>;
    async fn ping(&self) -> Result<(), MetaError>;
}
