//! The local drop-in folder, `<data dir>/inbox/`: a file copied there
//! (`inbox/holiday/cat.jpg`) becomes an image with `source_key =
//! holiday/cat.jpg`, as an object written to the raw bucket does in AWS.
//!
//! A pass lists the folder; a file is taken once it has looked the same
//! (length and modification time) on two passes, so one still being
//! copied is left alone. Its bytes are stored as the id's upload, and only
//! then is the file removed: a restart in between finds the file again,
//! and the claim (same name, same MD5) gives the same id. Hidden files
//! (`.name`, which editors and `rsync` write while copying) are ignored;
//! a file over the upload limit is `failed` (`too_large`) and moved to
//! `inbox/.refused/`, so it is neither lost nor read again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::app::AppState;
use crate::dropin;
use crate::import::{read_file, walk, Found, Read};
use crate::keys::ImageId;
use crate::store::etag_of_owned;

/// How often the folder is listed.
pub const EVERY: Duration = Duration::from_secs(1);

/// Where refused files go, inside the inbox (hidden, so never listed).
const REFUSED: &str = ".refused";

/// What a file looked like on the last pass (length, modified), and since
/// when it has looked so.
type Seen = HashMap<PathBuf, ((u64, SystemTime), Instant)>;

pub struct Inbox {
    dir: PathBuf,
    seen: Seen,
}

impl Inbox {
    pub fn new(data_dir: &Path) -> std::io::Result<Self> {
        let dir = data_dir.join("inbox");
        std::fs::create_dir_all(&dir)?;
        Ok(Inbox { dir, seen: Seen::new() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One pass: take every file that has settled. Returns the ids taken
    /// (for the work queue); errors are logged and the file stays for the
    /// next pass.
    pub async fn pass(&mut self, state: &AppState) -> Vec<ImageId> {
        let dir = self.dir.clone();
        let walked = tokio::task::spawn_blocking(move || walk(&dir)).await.unwrap_or_default();
        let mut taken = Vec::new();
        let mut now_seen = Seen::new();
        // Said once per entry (not every pass), the name escaped: a line
        // break in a file name never starts a log line of its own.
        let now = Instant::now();
        for (path, why) in walked.skipped {
            if !self.seen.contains_key(&path) {
                tracing::warn!(path = ?path.display().to_string(), %why, "inbox entry not taken");
            }
            now_seen.insert(path, ((0, SystemTime::UNIX_EPOCH), now));
        }
        for (path, e) in walked.unreadable {
            tracing::warn!(path = %path.display(), error = %e, "cannot read this part of the inbox");
        }
        let settle = state.config.inbox_settle;
        for Found { source_key: key, path, len, modified, renamed_in } in walked.files {
            let since = match self.seen.get(&path) {
                Some((looked, since)) if *looked == (len, modified) => *since,
                _ => now,
            };
            now_seen.insert(path.clone(), ((len, modified), since));
            // Unchanged for the settle time, or renamed in complete; and in
            // either case no other program may have it open (`read_file`).
            if !renamed_in && now.duration_since(since) < settle {
                continue;
            }
            match take_file(state, &self.dir, &path, &key, len).await {
                Ok(Some(id)) => {
                    now_seen.remove(&path);
                    tracing::info!(%id, source_key = %key, "took a file from the inbox");
                    taken.push(id);
                }
                Ok(None) => tracing::debug!(source_key = %key, "inbox file still open elsewhere; not taken yet"),
                Err(e) => tracing::warn!(source_key = %key, error = %e, "inbox file not taken; will try again"),
            }
        }
        self.seen = now_seen;
        taken
    }
}

#[derive(Debug, thiserror::Error)]
enum TakeError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Take one file: its id, or `None` while another program has it open.
async fn take_file(
    state: &AppState,
    dir: &Path,
    path: &Path,
    key: &str,
    listed: u64,
) -> Result<Option<ImageId>, TakeError> {
    let limit = state.config.limits.max_upload_bytes;
    let read = match listed > limit {
        true => Read::TooLarge(listed),
        false => {
            let owned = path.to_path_buf();
            tokio::task::spawn_blocking(move || read_file(&owned, limit)).await.map_err(std::io::Error::other)??
        }
    };
    let body = match read {
        Read::Busy => return Ok(None),
        Read::Whole(body) => body,
        Read::TooLarge(len) => return refuse(state, dir, path, key, len).await.map(Some),
    };
    let etag = etag_of_owned(body.clone()).await?;
    let id = dropin::take(state, key, &etag, body).await?;
    // Stored: the file can go.
    tokio::fs::remove_file(path).await?;
    Ok(Some(id))
}

/// Over the upload limit: `failed` (`too_large`) without reading it, and
/// moved aside to `.refused/`, so it is neither lost nor read again.
async fn refuse(state: &AppState, dir: &Path, path: &Path, key: &str, len: u64) -> Result<ImageId, TakeError> {
    {
        let etag = format!("\"len-{len}\"");
        let (id, _) = dropin::refuse_too_large(state, key, &etag, len).await?;
        let to = free_name(&dir.join(REFUSED).join(key)).await;
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(path, &to).await?;
        Ok(id)
    }
}

/// `wanted`, or `wanted~1`, `wanted~2`, … when something (an earlier
/// refused file, a folder) already has that name: a refused file is always
/// moved out of the inbox, never left there to be refused every pass.
async fn free_name(wanted: &Path) -> PathBuf {
    let mut candidate = wanted.to_path_buf();
    for n in 1.. {
        if tokio::fs::symlink_metadata(&candidate).await.is_err() {
            break;
        }
        let mut name = wanted.as_os_str().to_os_string();
        name.push(format!("~{n}"));
        candidate = PathBuf::from(name);
    }
    candidate
}

/// Watch the inbox for ever (abort the task to stop: every step is safe
/// to cut short), a pass every `EVERY`, each taken id queued for ingest.
pub async fn watch(state: AppState, mut inbox: Inbox) {
    let Some(jobs) = state.jobs.clone() else { return };
    loop {
        for id in inbox.pass(&state).await {
            jobs.submit(id);
        }
        tokio::time::sleep(EVERY).await;
    }
}
