//! The local event source: a bounded queue of ids with one consumer per
//! core. (`imgpipe worker`, in `worker.rs`, is the SQS poller: the other
//! event source.)
//! Nothing uploaded is lost: a full queue only delays work, because a resume
//! scan queues every pending id whose raw object exists. It runs at start-up
//! and again only after the queue overflowed, so abandoned uploads cost
//! nothing while idle. A failed ingest is retried with exponential backoff;
//! a pending item whose upload never came is removed once its URL has long
//! expired. On shutdown, running jobs finish and queued ones stay pending
//! for the next start.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::app::AppState;
use crate::ingest::{ingest, Outcome};
use crate::keys::{ImageId, Key};

/// The first retry of a failed ingest; each next one waits twice as long.
pub const RETRY_FIRST: Duration = Duration::from_secs(5);
/// The longest wait between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(600);
/// How long after its upload URL expired a pending item with no upload is
/// kept before it is removed.
pub const PENDING_GRACE: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct JobQueue {
    tx: mpsc::Sender<ImageId>,
    /// Queued or running: never queued twice.
    queued: Arc<Mutex<HashSet<ImageId>>>,
    closing: Arc<AtomicBool>,
    /// Failed ingests: attempts so far and when to try again.
    retries: Arc<Mutex<HashMap<ImageId, (u32, Instant)>>>,
    /// Set when an id could not be queued: the next pass rescans.
    overflowed: Arc<AtomicBool>,
}

/// The wait before retry number `attempts` (1 for the first).
pub fn backoff(attempts: u32) -> Duration {
    RETRY_FIRST.saturating_mul(1 << attempts.saturating_sub(1).min(16)).min(RETRY_MAX)
}

impl JobQueue {
    /// Queue `id` unless it is already queued. A full queue is not an error:
    /// the resume scan picks the id up later.
    pub fn submit(&self, id: ImageId) -> bool {
        if self.closing.load(Ordering::Relaxed) || !self.queued.lock().expect("queue set").insert(id) {
            return false;
        }
        match self.tx.try_send(id) {
            Ok(()) => true,
            Err(_) => {
                self.queued.lock().expect("queue set").remove(&id);
                self.overflowed.store(true, Ordering::Relaxed);
                tracing::warn!(%id, "work queue full; the resume scan will pick this upload up");
                false
            }
        }
    }

    /// Record a failed attempt at `id`; returns the wait before the next.
    fn failed(&self, id: ImageId) -> (u32, Duration) {
        let mut retries = self.retries.lock().expect("retry map");
        let attempts = retries.get(&id).map_or(0, |r| r.0) + 1;
        let wait = backoff(attempts);
        retries.insert(id, (attempts, Instant::now() + wait));
        (attempts, wait)
    }

    /// Whether `id` waits for a later retry.
    fn backing_off(&self, id: &ImageId) -> bool {
        self.retries.lock().expect("retry map").get(id).is_some_and(|(_, due)| *due > Instant::now())
    }

    /// Ids whose retry is due.
    fn due(&self) -> Vec<ImageId> {
        let now = Instant::now();
        self.retries.lock().expect("retry map").iter().filter(|(_, (_, due))| *due <= now).map(|(id, _)| *id).collect()
    }
}

/// The running consumers; `shutdown` lets running jobs finish.
pub struct Consumers {
    queue: JobQueue,
    tasks: JoinSet<()>,
}

impl Consumers {
    /// Stop taking jobs; wait up to `grace` for running ones.
    pub async fn shutdown(mut self, grace: Duration) {
        self.queue.closing.store(true, Ordering::Relaxed);
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all_done).await.is_err() {
            tracing::warn!("shutdown grace period over; unfinished jobs stay pending for the next start");
            self.tasks.abort_all();
        }
    }
}

/// Make the queue (put it in `AppState::jobs` before starting the consumers).
pub fn channel(capacity: usize) -> (JobQueue, mpsc::Receiver<ImageId>) {
    let (tx, rx) = mpsc::channel(capacity);
    let queue = JobQueue {
        tx,
        queued: Arc::default(),
        closing: Arc::default(),
        retries: Arc::default(),
        overflowed: Arc::default(),
    };
    (queue, rx)
}

/// Start `consumers` ingest tasks and the resume scan.
pub fn start(state: AppState, rx: mpsc::Receiver<ImageId>, consumers: usize, scan_every: Duration) -> Consumers {
    let queue = state.jobs.clone().expect("state carries the job queue");
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut tasks = JoinSet::new();
    for _ in 0..consumers.max(1) {
        let (state, rx, queue) = (state.clone(), rx.clone(), queue.clone());
        tasks.spawn(async move {
            loop {
                if queue.closing.load(Ordering::Relaxed) {
                    break;
                }
                let next = {
                    let mut rx = rx.lock().await;
                    tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
                };
                let id = match next {
                    Ok(Some(id)) => id,
                    Ok(None) => break,
                    Err(_) => continue, // idle: look at `closing` again
                };
                match ingest(&state, id).await {
                    Ok(outcome) => {
                        queue.retries.lock().expect("retry map").remove(&id);
                        match outcome {
                            Outcome::Ready => tracing::info!(%id, "ready"),
                            Outcome::Failed(code) => tracing::info!(%id, %code, "failed"),
                            other => tracing::debug!(%id, ?other, "nothing to do"),
                        }
                    }
                    Err(e) => {
                        let (attempt, wait) = queue.failed(id);
                        tracing::warn!(%id, error = %e, attempt, retry_in_s = wait.as_secs(), "ingest error; will retry");
                    }
                }
                queue.queued.lock().expect("queue set").remove(&id);
            }
        });
    }
    let (scan_state, scan_queue) = (state.clone(), queue.clone());
    tasks.spawn(async move {
        let mut first = true;
        loop {
            if scan_queue.closing.load(Ordering::Relaxed) {
                break;
            }
            if std::mem::take(&mut first) || scan_queue.overflowed.swap(false, Ordering::Relaxed) {
                resume_pending(&scan_state, &scan_queue).await;
            }
            for id in scan_queue.due() {
                scan_queue.submit(id);
            }
            expire_abandoned(&scan_state).await;
            // Sleep in short steps so shutdown is prompt.
            let mut slept = Duration::ZERO;
            while slept < scan_every && !scan_queue.closing.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                slept += Duration::from_millis(100);
            }
        }
    });
    Consumers { queue, tasks }
}

/// Queue every pending id whose raw object exists (and whose retry is not
/// still waiting).
pub async fn resume_pending(state: &AppState, queue: &JobQueue) {
    let ids = match state.meta.pending(None).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "resume scan could not list pending uploads");
            return;
        }
    };
    for id in ids {
        if queue.queued.lock().expect("queue set").contains(&id) || queue.backing_off(&id) {
            continue;
        }
        if let Ok(Some(_)) = state.raw.head(&Key::raw(&id)).await {
            queue.submit(id);
        }
    }
}

/// Remove pending items created longer ago than the upload URL's life plus
/// `PENDING_GRACE` that never got their upload. Each is looked at once (it
/// is gone afterwards), so abandoned uploads cost nothing while idle; one
/// whose upload did arrive stays, for its retries.
pub async fn expire_abandoned(state: &AppState) {
    let cutoff = time::OffsetDateTime::now_utc() - state.config.upload_ttl - PENDING_GRACE;
    let Ok(cutoff) =
        cutoff.replace_nanosecond(0).unwrap_or(cutoff).format(&time::format_description::well_known::Rfc3339)
    else {
        return;
    };
    let ids = match state.meta.pending(Some(&cutoff)).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "could not list abandoned uploads");
            return;
        }
    };
    let mut removed = 0usize;
    for id in ids {
        if let Ok(None) = state.raw.head(&Key::raw(&id)).await {
            if let Ok(true) = state.meta.delete_pending(&id).await {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed pending items whose upload never came");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap() {
        assert_eq!(backoff(1), RETRY_FIRST);
        assert_eq!(backoff(2), RETRY_FIRST * 2);
        assert_eq!(backoff(4), RETRY_FIRST * 8);
        assert_eq!(backoff(30), RETRY_MAX);
        assert_eq!(backoff(u32::MAX), RETRY_MAX);
    }
}
