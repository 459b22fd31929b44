//! `CpuPool`: the budget for CPU-bound work (decode, resize, encode), one
//! job per core. A permit is held by the blocking job itself, so a client
//! that hangs up does not free a core its render is still using; requests
//! queue for a permit only up to a bound and are refused past it, so a
//! burst is shed instead of piling up memory and latency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The cores this process may use (1 when the platform cannot say): the
/// one count behind the pool, the default job counts and the render queue.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// The wait queue is full: shed the request (503 with Retry-After).
    #[error("{waiting} jobs are already waiting for a core")]
    Busy { waiting: usize },
    /// The job panicked: a bug in our code, not the caller's input.
    #[error("a CPU job panicked: {0}")]
    Panicked(String),
    /// The runtime is shutting down.
    #[error("the CPU pool is shutting down")]
    Closed,
}

#[derive(Debug, Clone)]
pub struct CpuPool {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// A core, held until the job given to [`CpuPermit::run`] returns.
#[derive(Debug)]
pub struct CpuPermit(OwnedSemaphorePermit);

/// Counts one waiter while alive.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CpuPool {
    /// `cores` jobs at once; at most `max_waiting` requests wait in `admit`.
    pub fn new(cores: usize, max_waiting: usize) -> Self {
        CpuPool { slots: Arc::new(Semaphore::new(cores.max(1))), waiting: Arc::default(), max_waiting }
    }

    /// A permit for a request: at once when a core is free, after a wait
    /// when fewer than `max_waiting` others wait, else `Busy`.
    pub async fn admit(&self) -> Result<CpuPermit, CpuError> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(CpuPermit(p));
        }
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        if before >= self.max_waiting {
            return Err(CpuError::Busy { waiting: before });
        }
        self.slots.clone().acquire_owned().await.map(CpuPermit).map_err(|_| CpuError::Closed)
    }

    /// A permit for background work whose own concurrency is bounded (the
    /// the queue's consumers): waits as long as it takes.
    pub async fn wait(&self) -> Result<CpuPermit, CpuError> {
        self.slots.clone().acquire_owned().await.map(CpuPermit).map_err(|_| CpuError::Closed)
    }

    /// Jobs waiting in `admit` now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

impl CpuPermit {
    /// Run `f` on the blocking pool. The permit goes with it and is released
    /// when `f` returns, even if the caller stopped waiting. A panic in `f`
    /// is `Panicked`, with its text for the log.
    pub async fn run<T: Send + 'static>(self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, CpuError> {
        let permit = self.0;
        tokio::task::spawn_blocking(move || {
            let out = f();
            release_free_memory();
            drop(permit);
            out
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => CpuError::Panicked(crate::engine::panic_text(&*panic)),
            Err(_) => CpuError::Closed,
        })
    }
}

/// Give the pages a finished job freed back to the system. A job holds
/// tens of MB (a decoded original, its resized copies, the encodes); glibc
/// keeps what one thread freed in that thread's arena, and the blocking
/// pool's threads each get one, so without this the process keeps the
/// peak of every arena it has used (a 30-minute soak climbed past 600 MB).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is
    // safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_queue_is_refused_and_a_dropped_caller_keeps_its_core() {
        let pool = CpuPool::new(1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // The caller of a running job goes away; the job keeps the core.
        let running = pool.admit().await.unwrap();
        let job = tokio::spawn(running.run(move || rx.recv().unwrap()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        job.abort();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // One may wait; the next is refused.
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.admit().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.waiting(), 1);
        assert!(matches!(pool.admit().await, Err(CpuError::Busy { waiting: 1 })));
        // When the job ends, its core goes to the one waiting.
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), queued).await.unwrap().unwrap().unwrap();
        assert_eq!(pool.waiting(), 0);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_frees_its_core() {
        let pool = CpuPool::new(1, 0);
        let err = pool.admit().await.unwrap().run(|| panic!("resize bug")).await.unwrap_err();
        assert!(matches!(&err, CpuError::Panicked(text) if text == "resize bug"), "{err:?}");
        pool.admit().await.unwrap();
    }
}
