//! CloudFront as the app's `Cdn`: one invalidation per batch of deleted
//! images (see `cdn::Batched`).

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use sha2::Digest;

use crate::cdn::{Cdn, CdnError};

pub struct CloudFront {
    client: aws_sdk_cloudfront::Client,
    distribution_id: String,
}

impl CloudFront {
    pub fn new(client: aws_sdk_cloudfront::Client, distribution_id: &str) -> Self {
        CloudFront { client, distribution_id: distribution_id.to_string() }
    }
}

#[async_trait]
impl Cdn for CloudFront {
    async fn invalidate(&self, paths: &[String]) -> Result<(), CdnError> {
        let err = |e: String| CdnError(e);
        let items = Paths::builder()
            .quantity(paths.len() as i32)
            .set_items(Some(paths.to_vec()))
            .build()
            .map_err(|e| err(e.to_string()))?;
        // The caller reference makes a retried request the same invalidation
        // (a hash: a batch of paths would make it long).
        let reference = format!("imgpipe-{}", hex::encode(&sha2::Sha256::digest(paths.join(",").as_bytes())[..16]));
        let batch = InvalidationBatch::builder()
            .paths(items)
            .caller_reference(reference)
            .build()
            .map_err(|e| err(e.to_string()))?;
        self.client
            .create_invalidation()
            .distribution_id(&self.distribution_id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| err(aws_sdk_cloudfront::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
