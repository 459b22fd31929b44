//! Raw and processed objects behind one trait: a folder locally (`FsStore`),
//! S3 in AWS. Absence is `None`, never an error string. Objects keep their
//! `Content-Type` and `Cache-Control`, so whoever serves them sends the same
//! headers as the app.

pub mod fs;
pub mod s3;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::keys::{ImageId, Key};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage is throttled or unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("storage i/o failed")]
    Io(#[from] std::io::Error),
    #[error("storage failed: {0}")]
    Backend(String),
    #[error("stored object is damaged: {0}")]
    Corrupt(String),
    #[error("body is {} than the expected {expected} bytes", if *longer { "longer" } else { "shorter" })]
    Length { expected: u64, longer: bool },
}

impl StoreError {
    /// Worth retrying later rather than a real fault: throttling, timeouts,
    /// and local I/O failures such as a full disk (the image is not to
    /// blame, and the operator can fix the disk).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Io(_))
    }
}

/// A body read in chunks, for objects served without holding them whole.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Headers kept with an object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectInfo {
    pub content_type: String,
    pub cache_control: String,
    /// Quoted MD5 of the body, as S3 returns for single-part objects.
    pub etag: String,
    pub len: u64,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub info: ObjectInfo,
    pub body: Bytes,
}

/// Where and how a client uploads the raw bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PresignedPut {
    pub method: &'static str,
    pub url: String,
    /// Headers the client must send exactly.
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

/// What every stored variant carries: it never changes once written.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Raw and processed objects: S3 in AWS, a folder locally.
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StoreError>;
    async fn head(&self, key: &Key) -> Result<Option<ObjectInfo>, StoreError>;
    /// The object as a stream with its headers, for serving: a store that
    /// can read as the client reads overrides it, so a slow reader holds a
    /// buffer rather than the whole object. An object whose length differs
    /// from the recorded one is `Corrupt`, never served.
    async fn open(&self, key: &Key) -> Result<Option<(ObjectInfo, ByteStream)>, StoreError> {
        Ok(self.get(key).await?.map(|o| (o.info, futures_util::stream::once(async move { Ok(o.body) }).boxed())))
    }
    /// Store `body` whole; returns the headers a later `get` or `head`
    /// of `key` gives, ETag included, so a caller serving what it just
    /// wrote hashes nothing again.
    async fn put(
        &self,
        key: &Key,
        body: Bytes,
        content_type: &str,
        cache_control: &str,
    ) -> Result<ObjectInfo, StoreError>;
    /// A URL the client can PUT exactly `content_length` bytes of
    /// `content_type` to, until `ttl` has passed.
    async fn presign_put(
        &self,
        key: &Key,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedPut, StoreError>;
    /// Store a body that arrives in chunks, exactly `len` bytes: more or
    /// fewer is `StoreError::Length` and nothing is stored. The default
    /// collects the chunks (bounded by `len`) and calls `put`; a store that
    /// can write as the bytes arrive overrides it.
    async fn put_stream(
        &self,
        key: &Key,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
        len: u64,
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StoreError> {
        let body = read_exactly(body, len).await?;
        self.put(key, body, content_type, cache_control).await.map(drop)
    }
    /// Remove the object at `key`; one that is not there is no error.
    async fn delete(&self, key: &Key) -> Result<(), StoreError>;
    /// Remove every variant and render of `id` (`img/<id>/…`); returns
    /// how many objects were removed.
    async fn delete_variants(&self, id: &ImageId) -> Result<usize, StoreError>;
    /// Whether the store answers at all (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A body that must be exactly `len` bytes, collected; it is cut off as
/// soon as it runs longer. More or fewer is `StoreError::Length`.
pub async fn read_exactly(mut body: ByteStream, len: u64) -> Result<Bytes, StoreError> {
    let mut buf = bytes::BytesMut::with_capacity(usize::try_from(len).unwrap_or(0).min(64 << 20));
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if buf.len() as u64 + chunk.len() as u64 > len {
            return Err(StoreError::Length { expected: len, longer: true });
        }
        buf.extend_from_slice(&chunk);
    }
    if (buf.len() as u64) < len {
        return Err(StoreError::Length { expected: len, longer: false });
    }
    Ok(buf.freeze())
}

/// Quoted hex MD5: the ETag of a single-part S3 object.
pub fn etag_of(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    etag_of_md5(&Md5::digest(body))
}

/// The ETag spelling of an MD5 already computed (streamed, or needed for
/// Content-MD5 too).
pub(crate) fn etag_of_md5(md5: &[u8]) -> String {
    format!("\"{}\"", hex::encode(md5))
}

/// `etag_of` on the blocking pool. MD5 runs at well under 1 GB/s, so a
/// whole upload would hold a runtime thread for tens of milliseconds.
pub async fn etag_of_owned(body: Bytes) -> Result<String, StoreError> {
    blocking(move || Ok(etag_of(&body))).await
}

/// Blocking work (file system calls, hashing a whole object) off the
/// runtime's threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Io(std::io::Error::other(e)))?
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
