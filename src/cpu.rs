//! `CpuPool`: the budget for CPU-bound work (decode, resize, encode), one
//! job per core. A permit is held by the blocking job itself, so a client
//! that hangs up does not free a core its render is still using; requests
//! queue for a permit only up to a bound and are refused past it, so a
//! burst is shed instead of piling up memory and latency.
//!
//! The queue is fair between clients. Each client (an address; background
//! work such as ingest is one more) has a queue of its own, at most
//! `max_waiting_per_client` long, and a core that comes free goes to the
//! next client in turn, not to the oldest request: one client asking for
//! renders as fast as it can holds at most its turn of the cores and its
//! share of the queue, and everyone else is still served.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The cores this process may use (1 when the platform cannot say): the
/// one count behind the pool, the default job counts and the render queue.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whose work a permit is for: a client's address, or `None` for the
/// server's own background work (ingest), which takes its turn like a
/// client.
pub type Client = Option<IpAddr>;

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// The wait queue is full, or this client's part of it: shed the
    /// request (503 with Retry-After).
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
    inner: Arc<Mutex<Slots>>,
    max_waiting: usize,
    max_waiting_per_client: usize,
}

/// The pool's state: free cores, and who waits for one, in turn.
#[derive(Debug, Default)]
struct Slots {
    free: usize,
    /// Each waiting client's requests, oldest first.
    queues: HashMap<Client, VecDeque<oneshot::Sender<CpuPermit>>>,
    /// The clients with a queue, in the order they get the next core.
    turn: VecDeque<Client>,
    waiting: usize,
}

/// A core, held until the job given to [`CpuPermit::run`] returns (or the
/// permit is dropped), then handed to the next client in turn.
#[derive(Debug)]
pub struct CpuPermit {
    pool: Arc<Mutex<Slots>>,
}

impl Drop for CpuPermit {
    fn drop(&mut self) {
        release(&self.pool);
    }
}

/// A core came free: to the next waiting client in turn (each client's
/// oldest request first), or back to the free count when nobody waits.
fn release(pool: &Arc<Mutex<Slots>>) {
    let mut slots = pool.lock().unwrap_or_else(|e| e.into_inner());
    while let Some(client) = slots.turn.pop_front() {
        let Some(queue) = slots.queues.get_mut(&client) else { continue };
        let next = queue.pop_front();
        let more = !queue.is_empty();
        if more {
            slots.turn.push_back(client);
        } else {
            slots.queues.remove(&client);
        }
        let Some(waiter) = next else { continue };
        slots.waiting -= 1;
        // Sent with the lock released: a permit that finds its waiter gone
        // comes back through its own drop, which releases it to the next.
        drop(slots);
        let _ = waiter.send(CpuPermit { pool: pool.clone() });
        return;
    }
    slots.free += 1;
}

/// Takes a waiter out of the count when its request goes away before a
/// core came (the sender it left is skipped on release).
struct Waiting {
    pool: Arc<Mutex<Slots>>,
    rx: Option<oneshot::Receiver<CpuPermit>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            // A permit sent just before the close is released by dropping it.
            if rx.try_recv().is_err() {
                let mut slots = self.pool.lock().unwrap_or_else(|e| e.into_inner());
                let Slots { queues, turn, waiting, .. } = &mut *slots;
                for queue in queues.values_mut() {
                    queue.retain(|tx| !tx.is_closed());
                }
                queues.retain(|_, q| !q.is_empty());
                turn.retain(|c| queues.contains_key(c));
                *waiting = queues.values().map(VecDeque::len).sum();
            }
        }
    }
}

impl CpuPool {
    /// `cores` jobs at once; at most `max_waiting` requests wait in `admit`,
    /// and at most `max_waiting_per_client` of them from one client.
    pub fn new(cores: usize, max_waiting: usize, max_waiting_per_client: usize) -> Self {
        let slots = Slots { free: cores.max(1), ..Slots::default() };
        CpuPool {
            inner: Arc::new(Mutex::new(slots)),
            max_waiting,
            max_waiting_per_client: max_waiting_per_client.max(1),
        }
    }

    /// A permit for `client`'s request: at once when a core is free, after
    /// its turn when the queue (and the client's part of it) has room,
    /// else `Busy`.
    pub async fn admit(&self, client: Client) -> Result<CpuPermit, CpuError> {
        self.take(client, true).await
    }

    /// A permit for background work whose own concurrency is bounded (the
    /// queue's consumers): waits its turn as long as it takes.
    pub async fn wait(&self) -> Result<CpuPermit, CpuError> {
        self.take(None, false).await
    }

    async fn take(&self, client: Client, bounded: bool) -> Result<CpuPermit, CpuError> {
        let rx = {
            let mut slots = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if slots.free > 0 && slots.waiting == 0 {
                slots.free -= 1;
                return Ok(CpuPermit { pool: self.inner.clone() });
            }
            let mine = slots.queues.get(&client).map_or(0, VecDeque::len);
            if bounded && (slots.waiting >= self.max_waiting || mine >= self.max_waiting_per_client) {
                return Err(CpuError::Busy { waiting: slots.waiting });
            }
            let (tx, rx) = oneshot::channel();
            if mine == 0 {
                slots.turn.push_back(client);
            }
            slots.queues.entry(client).or_default().push_back(tx);
            slots.waiting += 1;
            rx
        };
        let mut waiting = Waiting { pool: self.inner.clone(), rx: Some(rx) };
        let rx = waiting.rx.as_mut().ok_or(CpuError::Closed)?;
        let permit = rx.await.map_err(|_| CpuError::Closed)?;
        waiting.rx = None;
        Ok(permit)
    }

    /// Jobs waiting for a core now.
    pub fn waiting(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).waiting
    }
}

impl CpuPermit {
    /// Run `f` on the blocking pool. The permit goes with it and is released
    /// when `f` returns, even if the caller stopped waiting. A panic in `f`
    /// is `Panicked`, with its text for the log.
    pub async fn run<T: Send + 'static>(self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, CpuError> {
        let permit = self;
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

    fn client(last: u8) -> Client {
        Some(IpAddr::from([127, 0, 0, last]))
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_and_a_dropped_caller_keeps_its_core() {
        let pool = CpuPool::new(1, 1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // The caller of a running job goes away; the job keeps the core.
        let running = pool.admit(client(1)).await.unwrap();
        let job = tokio::spawn(running.run(move || rx.recv().unwrap()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        job.abort();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // One may wait; the next is refused.
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.admit(client(2)).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.waiting(), 1);
        assert!(matches!(pool.admit(client(3)).await, Err(CpuError::Busy { waiting: 1 })));
        // When the job ends, its core goes to the one waiting.
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), queued).await.unwrap().unwrap().unwrap();
        assert_eq!(pool.waiting(), 0);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_frees_its_core() {
        let pool = CpuPool::new(1, 0, 1);
        let err = pool.admit(client(1)).await.unwrap().run(|| panic!("resize bug")).await.unwrap_err();
        assert!(matches!(&err, CpuError::Panicked(text) if text == "resize bug"), "{err:?}");
        pool.admit(client(1)).await.unwrap();
    }

    /// One client fills its part of the queue; another still gets a place,
    /// and the next free core, ahead of the first one's older requests.
    #[tokio::test]
    async fn a_greedy_client_gets_its_share_and_the_next_core_goes_to_another() {
        let pool = CpuPool::new(1, 8, 3);
        let running = pool.admit(client(1)).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut queued = Vec::new();
        for who in [1, 1, 1] {
            let (p, order) = (pool.clone(), order.clone());
            queued.push(tokio::spawn(async move {
                let permit = p.admit(client(who)).await.unwrap();
                order.lock().unwrap().push(who);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(permit);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(matches!(pool.admit(client(1)).await, Err(CpuError::Busy { .. })), "its share is full");
        let (p, o) = (pool.clone(), order.clone());
        queued.push(tokio::spawn(async move {
            let permit = p.admit(client(2)).await.unwrap();
            o.lock().unwrap().push(2);
            drop(permit);
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(pool.waiting(), 4);
        drop(running);
        for q in queued {
            tokio::time::timeout(Duration::from_secs(5), q).await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [1, 2, 1, 1], "turns alternate between the clients");
        assert_eq!(pool.waiting(), 0);
    }

    /// A request that gives up while waiting leaves no place taken and no
    /// core lost.
    #[tokio::test]
    async fn a_waiter_that_goes_away_takes_nothing_with_it() {
        let pool = CpuPool::new(1, 2, 2);
        let running = pool.admit(client(1)).await.unwrap();
        let p = pool.clone();
        let gone = tokio::spawn(async move { p.admit(client(2)).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(pool.waiting(), 1);
        gone.abort();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(pool.waiting(), 0);
        drop(running);
        let again = tokio::time::timeout(Duration::from_secs(1), pool.admit(client(3))).await;
        assert!(again.unwrap().is_ok(), "the core came back");
    }
}
