//! The local event source: a bounded queue of ids with one worker per core.
//! Nothing uploaded is lost: a full queue only delays work, because a resume
//! scan (at start-up and then periodically) queues every pending id whose
//! raw object exists; on shutdown, running jobs finish and queued ones stay
//! pending for the next start.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::app::AppState;
use crate::ingest::{ingest, Outcome};
use crate::keys::{ImageId, Key};

#[derive(Clone)]
pub struct JobQueue {
    tx: mpsc::Sender<ImageId>,
    /// Queued or running: never queued twice.
    queued: Arc<Mutex<HashSet<ImageId>>>,
    closing: Arc<AtomicBool>,
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
                tracing::warn!(%id, "work queue full; the resume scan will pick this upload up");
                false
            }
        }
    }
}

/// Running workers; `shutdown` lets running jobs finish.
pub struct Workers {
    queue: JobQueue,
    tasks: JoinSet<()>,
}

impl Workers {
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

/// Make the queue (put it in `AppState::jobs` before starting workers).
pub fn channel(capacity: usize) -> (JobQueue, mpsc::Receiver<ImageId>) {
    let (tx, rx) = mpsc::channel(capacity);
    (JobQueue { tx, queued: Arc::default(), closing: Arc::default() }, rx)
}

/// Start `workers` ingest workers and the resume scan.
pub fn start(state: AppState, rx: mpsc::Receiver<ImageId>, workers: usize, scan_every: Duration) -> Workers {
    let queue = state.jobs.clone().expect("state carries the job queue");
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut tasks = JoinSet::new();
    for _ in 0..workers.max(1) {
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
                    Ok(Outcome::Ready) => tracing::info!(%id, "ready"),
                    Ok(Outcome::Failed(code)) => tracing::info!(%id, %code, "failed"),
                    Ok(other) => tracing::debug!(%id, ?other, "nothing to do"),
                    Err(e) => tracing::warn!(%id, error = %e, "ingest error; will retry on the next scan"),
                }
                queue.queued.lock().expect("queue set").remove(&id);
            }
        });
    }
    let (scan_state, scan_queue) = (state.clone(), queue.clone());
    tasks.spawn(async move {
        loop {
            if scan_queue.closing.load(Ordering::Relaxed) {
                break;
            }
            resume_pending(&scan_state, &scan_queue).await;
            // Sleep in short steps so shutdown is prompt.
            let mut slept = Duration::ZERO;
            while slept < scan_every && !scan_queue.closing.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                slept += Duration::from_millis(100);
            }
        }
    });
    Workers { queue, tasks }
}

/// Queue every pending id whose raw object exists.
pub async fn resume_pending(state: &AppState, queue: &JobQueue) {
    let ids = match state.meta.pending().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "resume scan could not list pending uploads");
            return;
        }
    };
    for id in ids {
        if queue.queued.lock().expect("queue set").contains(&id) {
            continue;
        }
        if let Ok(Some(_)) = state.raw.head(&Key::raw(&id)).await {
            queue.submit(id);
        }
    }
}
