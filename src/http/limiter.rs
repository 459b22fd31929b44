//! What one client may create: `POST /uploads` at most
//! `IMGPIPE_UPLOADS_PER_MINUTE` a minute (a token bucket that holds a
//! minute's worth), and at most `IMGPIPE_MAX_PENDING_UPLOADS` items still
//! waiting for their bytes. Past either the answer is 429 with
//! `Retry-After`, and nothing is written. An item stops counting as
//! pending when its bytes arrive or when its upload URL expires.
//!
//! The counts live in this process: `serve` on one machine. On Lambda each
//! execution environment counts for itself, which bounds nothing; a
//! CloudFront WAF rate rule does this there (infra/README.md).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::keys::ImageId;

pub struct UploadLimiter {
    per_minute: u32,
    max_pending: usize,
    /// How long an upload URL lives: a pending item older than this can no
    /// longer be completed, and stops counting.
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    clients: HashMap<IpAddr, Client>,
    owners: HashMap<ImageId, IpAddr>,
}

struct Client {
    tokens: f64,
    at: Instant,
    pending: VecDeque<(ImageId, Instant)>,
}

/// Refused: retry after this long (at least a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
    pub pending: bool,
}

impl UploadLimiter {
    pub fn new(per_minute: u32, max_pending: usize, ttl: Duration) -> Self {
        UploadLimiter { per_minute: per_minute.max(1), max_pending: max_pending.max(1), ttl, state: Mutex::default() }
    }

    /// Count `id` against `who`, or refuse. A request with no address (a
    /// test calling the router directly) is not limited.
    pub fn admit(&self, who: Option<IpAddr>, id: ImageId) -> Result<(), Refused> {
        let Some(ip) = who else { return Ok(()) };
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State { clients, owners } = &mut *state;
        if clients.len() > 100_000 {
            // Forget the clients with nothing to remember.
            let full = f64::from(self.per_minute);
            clients
                .retain(|_, c| !c.pending.is_empty() || c.tokens + c.at.elapsed().as_secs_f64() / 60.0 * full < full);
        }
        let c = clients.entry(ip).or_insert(Client {
            tokens: f64::from(self.per_minute),
            at: now,
            pending: VecDeque::new(),
        });
        while c.pending.front().is_some_and(|(_, t)| now.duration_since(*t) >= self.ttl) {
            if let Some((old, _)) = c.pending.pop_front() {
                owners.remove(&old);
            }
        }
        if c.pending.len() >= self.max_pending {
            let oldest = c.pending.front().map_or(now, |(_, t)| *t);
            let retry_after = (oldest + self.ttl).saturating_duration_since(now).max(Duration::from_secs(1));
            return Err(Refused { retry_after, pending: true });
        }
        let rate = f64::from(self.per_minute) / 60.0;
        c.tokens = (c.tokens + now.duration_since(c.at).as_secs_f64() * rate).min(f64::from(self.per_minute));
        c.at = now;
        if c.tokens < 1.0 {
            let retry_after = Duration::from_secs_f64((1.0 - c.tokens) / rate).max(Duration::from_secs(1));
            return Err(Refused { retry_after, pending: false });
        }
        c.tokens -= 1.0;
        c.pending.push_back((id, now));
        owners.insert(id, ip);
        Ok(())
    }

    /// `id`'s bytes arrived: it no longer counts as pending.
    pub fn uploaded(&self, id: &ImageId) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State { clients, owners } = &mut *state;
        if let Some(ip) = owners.remove(id) {
            if let Some(c) = clients.get_mut(&ip) {
                c.pending.retain(|(p, _)| p != id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_cap_per_client() {
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let b = Some(IpAddr::from([127, 0, 0, 2]));
        let limits = UploadLimiter::new(100, 3, Duration::from_secs(900));
        let ids: Vec<ImageId> = (0..4).map(|_| ImageId::new()).collect();
        for id in &ids[..3] {
            limits.admit(a, *id).unwrap();
        }
        let refused = limits.admit(a, ids[3]).unwrap_err();
        assert!(refused.pending && refused.retry_after > Duration::from_secs(800), "{refused:?}");
        limits.admit(b, ImageId::new()).expect("another client is not refused");
        limits.uploaded(&ids[0]);
        limits.admit(a, ids[3]).expect("an upload that arrived frees its place");
        assert!(limits.admit(None, ImageId::new()).is_ok());
        // An upload URL that expired no longer holds a place.
        let short = UploadLimiter::new(100, 1, Duration::from_millis(50));
        short.admit(a, ImageId::new()).unwrap();
        assert!(short.admit(a, ImageId::new()).is_err());
        std::thread::sleep(Duration::from_millis(60));
        short.admit(a, ImageId::new()).unwrap();
    }

    #[test]
    fn a_rate_per_client() {
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let limits = UploadLimiter::new(5, 100, Duration::from_secs(900));
        for _ in 0..5 {
            limits.admit(a, ImageId::new()).unwrap();
        }
        let refused = limits.admit(a, ImageId::new()).unwrap_err();
        assert!(!refused.pending && refused.retry_after >= Duration::from_secs(1), "{refused:?}");
        assert!(limits.admit(Some(IpAddr::from([127, 0, 0, 9])), ImageId::new()).is_ok());
    }
}
