//! The CDN in front of the processed bucket, as far as the app needs it:
//! dropping its copies of a deleted image. CloudFront in AWS
//! (`aws::CloudFront`, when `IMGPIPE_DISTRIBUTION_ID` is set); nothing
//! locally, where the app serves every byte itself.

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
#[error("CDN invalidation failed: {0}")]
pub struct CdnError(pub String);

#[async_trait]
pub trait Cdn: Send + Sync {
    /// Ask the CDN to drop what it holds under `paths` (`/img/<id>/*`).
    async fn invalidate(&self, paths: &[String]) -> Result<(), CdnError>;
}
