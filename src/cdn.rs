//! The CDN in front of the processed bucket, as far as the app needs it:
//! dropping its copies of a deleted image. CloudFront in AWS
//! (`aws::CloudFront`, when `IMGPIPE_DISTRIBUTION_ID` is set, behind
//! `Batched`); nothing locally, where the app serves every byte itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

#[derive(Debug, Clone, thiserror::Error)]
#[error("CDN invalidation failed: {0}")]
pub struct CdnError(pub String);

#[async_trait]
pub trait Cdn: Send + Sync {
    /// Ask the CDN to drop what it holds under `paths` (`/img/<id>/*`).
    async fn invalidate(&self, paths: &[String]) -> Result<(), CdnError>;
}

/// Wildcard paths CloudFront takes in one invalidation (and has in progress
/// at once): a batch never holds more.
pub const MAX_BATCH_PATHS: usize = 15;

/// How long the first path of a batch waits for others to join it.
pub const BATCH_LINGER: Duration = Duration::from_millis(200);

type Waiter = (Vec<String>, oneshot::Sender<Result<(), CdnError>>);

/// Invalidations of many deletes sent as one request: the paths that
/// arrive within `BATCH_LINGER` of the first, up to `MAX_BATCH_PATHS`, go
/// in one call, and each caller gets that call's answer. CloudFront
/// charges per path past the free 1,000 a month and allows 15 wildcard
/// paths in progress, so one request of 15 is what it is built for, where
/// 15 requests of one each would be refused.
pub struct Batched {
    inner: Arc<dyn Cdn>,
    waiting: Arc<Mutex<Vec<Waiter>>>,
    linger: Duration,
}

impl Batched {
    pub fn new(inner: Arc<dyn Cdn>, linger: Duration) -> Self {
        Batched { inner, waiting: Arc::default(), linger }
    }
}

#[async_trait]
impl Cdn for Batched {
    async fn invalidate(&self, paths: &[String]) -> Result<(), CdnError> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.push((paths.to_vec(), tx));
            waiting.len() == 1
        };
        if first {
            // A task of its own sends the batch, so a caller that goes
            // away (a client hanging up) never strands the others.
            let (inner, waiting, linger) = (self.inner.clone(), self.waiting.clone(), self.linger);
            tokio::spawn(async move {
                tokio::time::sleep(linger).await;
                send_all(&*inner, &waiting).await;
            });
        }
        rx.await.unwrap_or_else(|_| Err(CdnError("the batch was dropped".into())))
    }
}

/// Send what is waiting, `MAX_BATCH_PATHS` at a time, until none is left.
async fn send_all(inner: &dyn Cdn, waiting: &Mutex<Vec<Waiter>>) {
    loop {
        let batch: Vec<Waiter> = {
            let mut waiting = waiting.lock().unwrap_or_else(|e| e.into_inner());
            let (mut paths, mut take) = (0, 0);
            while take < waiting.len() && (take == 0 || paths + waiting[take].0.len() <= MAX_BATCH_PATHS) {
                paths += waiting[take].0.len();
                take += 1;
            }
            waiting.drain(..take).collect()
        };
        if batch.is_empty() {
            return;
        }
        let mut paths: Vec<String> = batch.iter().flat_map(|(p, _)| p.iter().cloned()).collect();
        paths.sort();
        paths.dedup();
        let answer = inner.invalidate(&paths).await;
        for (_, tx) in batch {
            let _ = tx.send(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Vec<String>>>);

    #[async_trait]
    impl Cdn for Recorder {
        async fn invalidate(&self, paths: &[String]) -> Result<(), CdnError> {
            self.0.lock().unwrap().push(paths.to_vec());
            Ok(())
        }
    }

    #[tokio::test]
    async fn concurrent_invalidations_go_out_in_batches_of_at_most_fifteen() {
        let recorder = Arc::new(Recorder::default());
        let batched = Arc::new(Batched::new(recorder.clone(), Duration::from_millis(50)));
        let calls = (0..40).map(|i| {
            let batched = batched.clone();
            tokio::spawn(async move { batched.invalidate(&[format!("/img/{i:02}/*")]).await })
        });
        for call in calls.collect::<Vec<_>>() {
            call.await.unwrap().unwrap();
        }
        let sent = recorder.0.lock().unwrap().clone();
        assert_eq!(sent.iter().map(Vec::len).collect::<Vec<_>>(), [15, 15, 10], "{sent:?}");
        let mut all: Vec<String> = sent.concat();
        all.sort();
        assert_eq!(all, (0..40).map(|i| format!("/img/{i:02}/*")).collect::<Vec<_>>());
        // One alone still goes out, after the linger.
        batched.invalidate(&["/img/zz/*".into()]).await.unwrap();
        assert_eq!(recorder.0.lock().unwrap().last().unwrap(), &["/img/zz/*".to_string()]);
    }
}
