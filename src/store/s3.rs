//! `S3Store`: a bucket as a `BlobStore`. `Content-Type` and `Cache-Control`
//! are stored as the object's own headers, so CloudFront serving straight
//! from the bucket sends what the app sends. Presigned PUTs sign the content
//! type and length, so S3 refuses any other body.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{blocking, etag_of_md5, etag_of_owned, BlobStore, Object, ObjectInfo, PresignedPut, StoreError};
use crate::aws::{is_transient, status_of};
use crate::keys::{ImageId, Key};

/// The object tag on on-demand renders (`infra/` may expire them by it).
pub const RENDER_TAG: &str = "imgpipe=render";

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        S3Store { client, bucket: bucket.to_string() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// S3 answers 404 for a missing key to a caller that may list the bucket,
/// which every role in `infra/` may (`s3:ListBucket`). A 403 is never read
/// as "not there": it is a denied key, an expired credential or a KMS
/// grant, and taking it for a missing upload would drop the event and
/// leave the item pending for ever.
fn is_missing(status: Option<u16>) -> bool {
    status == Some(404)
}

/// A failed call. Throttling, timeouts and 5xx are worth retrying, and so
/// is a 403: the operator fixes a policy or a credential and the retried
/// event goes through (or reaches the dead-letter queue), where blaming the
/// image would be final.
fn failure<E>(e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = is_transient(&e) || status_of(&e) == Some(403);
    let message = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
    if transient {
        StoreError::Unavailable(message.into())
    } else {
        StoreError::Backend(message)
    }
}

fn info(content_type: Option<&str>, cache_control: Option<&str>, etag: Option<&str>, len: Option<i64>) -> ObjectInfo {
    ObjectInfo {
        content_type: content_type.unwrap_or("application/octet-stream").to_string(),
        cache_control: cache_control.unwrap_or_default().to_string(),
        etag: etag.unwrap_or_default().to_string(),
        len: len.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
    }
}

#[async_trait]
impl BlobStore for S3Store {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StoreError> {
        let res = match self.client.get_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(res) => res,
            Err(e) if is_missing(status_of(&e)) => return Ok(None),
            Err(e) => return Err(failure(e)),
        };
        let mut info = info(res.content_type(), res.cache_control(), res.e_tag(), res.content_length());
        let body = res.body.collect().await.map_err(|e| StoreError::Unavailable(e.to_string().into()))?.into_bytes();
        if info.etag.is_empty() {
            info.etag = etag_of_owned(body.clone()).await?;
        }
        info.len = body.len() as u64;
        Ok(Some(Object { info, body }))
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectInfo>, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(res) => Ok(Some(info(res.content_type(), res.cache_control(), res.e_tag(), res.content_length()))),
            Err(e) if is_missing(status_of(&e)) => Ok(None),
            Err(e) => Err(failure(e)),
        }
    }

    async fn put(
        &self,
        key: &Key,
        body: Bytes,
        content_type: &str,
        cache_control: &str,
    ) -> Result<ObjectInfo, StoreError> {
        use md5::{Digest, Md5};
        // Content-MD5 makes S3 refuse a body damaged on the way. Hashed on
        // the blocking pool, like every whole-object hash.
        let hashed = body.clone();
        let md5 = blocking(move || Ok(Md5::digest(&hashed))).await?;
        let len = body.len() as u64;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .cache_control(cache_control)
            .content_md5(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, md5))
            .body(ByteStream::from(body));
        if key.is_render() {
            // Lets a lifecycle rule expire renders and keep standard variants.
            req = req.tagging(RENDER_TAG);
        }
        if key.is_raw() {
            // The raw bucket refuses PutObject under uploads/ without it
            // (an id's bytes never change); already there is done.
            req = req.if_none_match("*");
        }
        // S3's ETag is the MD5 unless the bucket encrypts with KMS: the one
        // it answers with is the one a later GET gives.
        let ours = etag_of_md5(&md5);
        let etag = match req.send().await {
            Ok(res) => res.e_tag().map_or(ours, String::from),
            // Already there: the headers are those of the object that is.
            Err(e) if key.is_raw() && status_of(&e) == Some(412) => {
                return self.head(key).await?.ok_or_else(|| StoreError::Backend("412 for an object not there".into()))
            }
            Err(e) => return Err(failure(e)),
        };
        Ok(ObjectInfo { content_type: content_type.to_string(), cache_control: cache_control.to_string(), etag, len })
    }

    async fn presign_put(
        &self,
        key: &Key,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedPut, StoreError> {
        let presigning = PresigningConfig::expires_in(ttl).map_err(|e| StoreError::Backend(e.to_string()))?;
        let len = i64::try_from(content_length).map_err(|_| StoreError::Backend("content length too big".into()))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .content_length(len)
            // Create-only: a replay of this URL, or a second URL for the
            // same key, cannot swap an original whose variants exist. The
            // header is signed, so it cannot be dropped either.
            .if_none_match("*")
            .presigned(presigning)
            .await
            .map_err(failure)?;
        let mut headers: BTreeMap<String, String> =
            req.headers().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
        headers.insert("content-type".into(), content_type.to_string());
        headers.insert("content-length".into(), content_length.to_string());
        headers.insert("if-none-match".into(), "*".into());
        let expires_at = time::OffsetDateTime::now_utc() + ttl;
        Ok(PresignedPut {
            method: "PUT",
            url: req.uri().to_string(),
            headers,
            expires_at: expires_at.replace_nanosecond(0).unwrap_or(expires_at),
        })
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.client.delete_object().bucket(&self.bucket).key(key.as_str()).send().await.map_err(failure)?;
        Ok(())
    }

    async fn delete_variants(&self, id: &ImageId) -> Result<usize, StoreError> {
        let prefix = Key::variant_prefix(id);
        let mut removed = 0;
        // Listed and removed one page at a time; a second call finishes
        // what a failed one left.
        loop {
            let page =
                self.client.list_objects_v2().bucket(&self.bucket).prefix(&prefix).send().await.map_err(failure)?;
            let keys: Vec<String> = page.contents().iter().filter_map(|o| o.key().map(String::from)).collect();
            if keys.is_empty() {
                return Ok(removed);
            }
            for key in keys {
                self.client.delete_object().bucket(&self.bucket).key(&key).send().await.map_err(failure)?;
                removed += 1;
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(failure)?;
        Ok(())
    }
}
