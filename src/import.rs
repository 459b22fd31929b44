//! `imgpipe import <dir | s3://bucket/prefix>`: bring the images you
//! already have, each named by its path under the source (`source_key`),
//! exactly as if it had been dropped in (see `dropin`): claimed per name
//! and ETag, its bytes stored as the id's upload, then ingested here,
//! within the CPU budget. A second run finds every claim already made and
//! every item final, so it changes nothing; a run cut short is finished by
//! the next one.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;

use crate::app::AppState;
use crate::dropin;
use crate::ingest::{ingest, IngestError, Outcome};
use crate::keys::{ImageId, Key};
use crate::meta::Status;
use crate::store::s3::S3Store;
use crate::store::{etag_of_owned, BlobStore};

/// Where the images are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Source {
    /// `s3://bucket/prefix` or a folder.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(format!("{s}: no bucket name (s3://bucket/prefix)"));
                }
                // A prefix is a folder: `s3://b/2024` is `2024/…`, never `2024x/…`.
                let prefix = match prefix {
                    "" => String::new(),
                    p if p.ends_with('/') => p.to_string(),
                    p => format!("{p}/"),
                };
                Ok(Source::S3 { bucket: bucket.into(), prefix })
            }
            None if Path::new(s).is_dir() => Ok(Source::Dir(PathBuf::from(s))),
            None => Err(format!("{s}: not a folder (or an s3://bucket/prefix)")),
        }
    }
}

/// One image to import: its name and where to read it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source_key: String,
    pub len: u64,
    at: At,
}

#[derive(Debug, Clone)]
enum At {
    File(PathBuf),
    Object(String),
}

/// A regular file found under a folder.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its path relative to the folder, with `/` separators.
    pub source_key: String,
    pub path: PathBuf,
    pub len: u64,
    pub modified: SystemTime,
    /// Its inode changed after its content last did (a rename or a chmod
    /// after the last write): what `rsync` and `cp` to a dot-file then
    /// `mv` leave, a file that arrived complete.
    pub renamed_in: bool,
}

/// Whether `meta`'s inode changed after its content did (see
/// `Found::renamed_in`); `false` where the system cannot say.
fn changed_after_written(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.ctime(), meta.ctime_nsec()) > (meta.mtime(), meta.mtime_nsec())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// What reading a file found under a folder gave.
#[derive(Debug)]
pub enum Read {
    /// The whole file, at most the limit.
    Whole(Bytes),
    /// Longer than the limit: refused having read at most one byte past it.
    TooLarge(u64),
    /// Another process has it open (a copy still being written): not now.
    Busy,
}

/// Read `path`, at most `limit` + 1 bytes of it, so a file that grew since
/// it was listed (or is a device that never ends) is refused without being
/// read whole, and nothing at all while another process has it open, where
/// the system can tell (`open_elsewhere`).
pub fn read_file(path: &Path, limit: u64) -> std::io::Result<Read> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    if open_elsewhere(&file) == Some(true) {
        return Ok(Read::Busy);
    }
    let mut body = Vec::new();
    file.take(limit + 1).read_to_end(&mut body)?;
    if body.len() as u64 > limit {
        return Ok(Read::TooLarge(body.len() as u64));
    }
    Ok(Read::Whole(Bytes::from(body)))
}

/// Whether any other open file description has `file` open (a writer still
/// copying it in), where the system can say: on Linux a write lease is
/// granted only when nobody else has the file open. `None` where it cannot
/// tell (another system, a file system without leases).
pub fn open_elsewhere(file: &std::fs::File) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: `fd` is an open descriptor owned by `file` for the whole
        // call; F_SETLEASE only takes or drops a lease on it.
        let taken = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_WRLCK) };
        if taken == 0 {
            // SAFETY: as above; the lease taken just now is dropped.
            unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
            return Some(false);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) => Some(true),
            _ => None,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// An entry of the source that is not imported: its name (quoted, so
/// that no character of it can forge a line of output) and why.
pub type Skipped = (String, String);

/// What `walk` saw.
#[derive(Debug, Default)]
pub struct Walk {
    /// Sorted by `source_key`.
    pub files: Vec<Found>,
    /// Entries that are not taken, each with the reason, for a person:
    /// names that are not UTF-8 or cannot be a key, links that lead out of
    /// the folder or nowhere, and anything that is not a regular file.
    pub skipped: Vec<(PathBuf, String)>,
    /// Folders or entries that could not be read.
    pub unreadable: Vec<(PathBuf, std::io::Error)>,
}

/// Every regular file under `dir`, hidden files and folders (`.name`, as
/// `rsync` and editors write while copying) skipped: the one folder walk of
/// `import` and of the local inbox. A link to a file inside `dir` is taken
/// under its own name; any other link, and whatever is not a regular file
/// or a folder (a FIFO, a socket, a device), is in `skipped` with the
/// reason, as is a name no key can carry.
pub fn walk(dir: &Path) -> Walk {
    let mut out = Walk::default();
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) => {
                out.unreadable.push((d, e));
                continue;
            }
        };
        for e in entries {
            let (path, meta) = match e.and_then(|e| Ok((e.path(), e.metadata()?))) {
                Ok(found) => found,
                Err(e) => {
                    out.unreadable.push((d.clone(), e));
                    continue;
                }
            };
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            let meta = if meta.file_type().is_symlink() {
                match followed(&path, &root) {
                    Ok(target) => target,
                    Err(why) => {
                        out.skipped.push((path, why.into()));
                        continue;
                    }
                }
            } else {
                meta
            };
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            if !meta.is_file() {
                out.skipped.push((path, "not a regular file (a FIFO, a socket or a device)".into()));
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
            let Some(source_key) = parts.map(|p| p.join("/")) else {
                out.skipped.push((path, "the name is not UTF-8; rename it".into()));
                continue;
            };
            if let Some(why) = Key::why_not_dropped(&source_key) {
                out.skipped.push((path, format!("{why}; rename it")));
                continue;
            }
            out.files.push(Found {
                source_key,
                len: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                renamed_in: changed_after_written(&meta),
                path,
            });
        }
    }
    out.files.sort_by(|a, b| a.source_key.cmp(&b.source_key));
    out.skipped.sort();
    out
}

/// What the link at `path` leads to, when that is a file inside `root`.
/// A link to a folder is not followed: its files are found where they are,
/// and a loop of links could never end.
fn followed(path: &Path, root: &Path) -> Result<std::fs::Metadata, &'static str> {
    let target = std::fs::canonicalize(path).map_err(|_| "a link that leads nowhere")?;
    if !target.starts_with(root) {
        return Err("a link to something outside the folder; copy the file in, or import the folder it is in");
    }
    let meta = std::fs::metadata(&target).map_err(|_| "a link that leads nowhere")?;
    if meta.is_dir() {
        return Err("a link to a folder; its files are imported where they are");
    }
    Ok(meta)
}

/// Every file under `dir` (see `walk`), named by its path relative to
/// `dir`, and the entries skipped with their reasons; anything unreadable
/// is an error, so an import never silently leaves part of a folder
/// behind.
pub fn list_dir(dir: &Path) -> std::io::Result<(Vec<Entry>, Vec<Skipped>)> {
    let walked = walk(dir);
    if let Some((path, e)) = walked.unreadable.into_iter().next() {
        return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())));
    }
    let entries = walked
        .files
        .into_iter()
        .map(|f| Entry { source_key: f.source_key, len: f.len, at: At::File(f.path) })
        .collect();
    let skipped = walked.skipped.into_iter().map(|(p, why)| (format!("{:?}", p.display().to_string()), why)).collect();
    Ok((entries, skipped))
}

/// Every object under `prefix` in `bucket` (folder markers skipped), named
/// by its key relative to the prefix, exactly as S3 spells it
/// (`2024//a.jpg` under `2024/` is `/a.jpg`, never the same name as
/// `2024/a.jpg`). A key no drop-in can have is returned with the reason.
pub async fn list_bucket(
    clients: &crate::aws::Clients,
    bucket: &str,
    prefix: &str,
) -> Result<(Vec<Entry>, Vec<Skipped>), IngestError> {
    let (mut entries, mut skipped) = (Vec::new(), Vec::new());
    let mut pages = clients.s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| crate::store::StoreError::Backend(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            let name = &key[prefix.len()..];
            if name.is_empty() || key.ends_with('/') {
                continue;
            }
            if let Some(why) = Key::why_not_dropped(key) {
                skipped.push((format!("{key:?}"), format!("{why}; rename the object")));
                continue;
            }
            let len = o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
            entries.push(Entry { source_key: name.to_string(), len, at: At::Object(key.to_string()) });
        }
    }
    Ok((entries, skipped))
}

/// What became of one entry.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<ImageId>,
    /// `ready`, `failed`, `skipped` (not an entry an image can come from,
    /// with the reason), or `error` (not imported this time: run again).
    pub status: &'static str,
    /// Final already before this run: nothing was done.
    pub unchanged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Totals for the closing line.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub ready: usize,
    pub failed: usize,
    pub errors: usize,
    /// Entries of the source that were not imported, each reported with
    /// its reason (see `Walk::skipped`).
    pub skipped: usize,
    /// Of ready and failed: those already final before this run.
    pub unchanged: usize,
}

impl Summary {
    pub fn add(&mut self, r: &Report) {
        match r.status {
            "ready" => self.ready += 1,
            "failed" => self.failed += 1,
            "skipped" => self.skipped += 1,
            _ => self.errors += 1,
        }
        self.unchanged += usize::from(r.unchanged);
    }
}

/// The report of an entry the source holds but the import does not take.
pub fn skipped(name: String, why: String) -> Report {
    Report { source_key: name, id: None, status: "skipped", unchanged: false, code: None, message: Some(why) }
}

/// Import `entries`, `jobs` at a time (each ingest takes a core of the CPU
/// pool for its CPU work), calling `each` as each one ends.
pub async fn run(
    state: &AppState,
    bucket: Option<S3Store>,
    entries: Vec<Entry>,
    jobs: usize,
    mut each: impl FnMut(&Report),
) -> Summary {
    let mut summary = Summary::default();
    let bucket = bucket.as_ref();
    let mut done = futures_util::stream::iter(entries)
        .map(|entry| async move {
            match one(state, bucket, &entry).await {
                Ok(r) => r,
                Err(e) => Report {
                    source_key: entry.source_key,
                    id: None,
                    status: "error",
                    unchanged: false,
                    code: None,
                    message: Some(e.to_string()),
                },
            }
        })
        .buffer_unordered(jobs.max(1));
    while let Some(report) = done.next().await {
        summary.add(&report);
        each(&report);
    }
    summary
}

#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} is gone from the bucket")]
    Gone(String),
    #[error("{0} is open in another program (still being copied?); run again once it is written")]
    Busy(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

async fn one(state: &AppState, bucket: Option<&S3Store>, entry: &Entry) -> Result<Report, ImportError> {
    let key = &entry.source_key;
    let (id, outcome) = if entry.len > state.config.limits.max_upload_bytes {
        // Refused here and now, or already before (`AlreadyDone`).
        dropin::refuse_too_large(state, key, &format!("\"len-{}\"", entry.len), entry.len).await?
    } else {
        let (etag, body) = match (&entry.at, bucket) {
            (At::File(path), _) => {
                let (path, limit) = (path.clone(), state.config.limits.max_upload_bytes);
                let read = tokio::task::spawn_blocking(move || read_file(&path, limit))
                    .await
                    .map_err(|e| ImportError::Read(key.clone(), std::io::Error::other(e)))?
                    .map_err(|e| ImportError::Read(key.clone(), e))?;
                let body = match read {
                    Read::Whole(body) => body,
                    Read::Busy => return Err(ImportError::Busy(key.clone())),
                    Read::TooLarge(seen) => {
                        let (id, outcome) =
                            dropin::refuse_too_large(state, key, &format!("\"len-{seen}\""), seen).await?;
                        return report(state, key, id, outcome).await;
                    }
                };
                (etag_of_owned(body.clone()).await?, body)
            }
            (At::Object(k), Some(bucket)) => {
                // `list_bucket` listed only keys a drop-in can have.
                let at = Key::dropped(k).ok_or_else(|| ImportError::Gone(k.clone()))?;
                let o = bucket.get(&at).await?.ok_or_else(|| ImportError::Gone(k.clone()))?;
                (o.info.etag, o.body)
            }
            (At::Object(k), None) => return Err(ImportError::Gone(k.clone())),
        };
        let id = dropin::take(state, key, &etag, body).await?;
        (id, ingest(state, id).await?)
    };
    report(state, key, id, outcome).await
}

/// The report of `key`, now `id` after `outcome`, as its item says.
async fn report(state: &AppState, key: &str, id: ImageId, outcome: Outcome) -> Result<Report, ImportError> {
    let item = state.meta.get(&id).await.map_err(IngestError::from)?;
    let status = match item.as_ref().map(|m| m.status) {
        Some(Status::Ready) => "ready",
        Some(Status::Failed) => "failed",
        _ => "error",
    };
    let error = item.and_then(|m| m.error);
    Ok(Report {
        source_key: key.to_string(),
        id: Some(id),
        status,
        unchanged: outcome == Outcome::AlreadyDone,
        code: error.as_ref().map(|e| e.code.clone()),
        message: error.map(|e| e.message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            Source::parse("s3://photos/2024/").unwrap(),
            Source::S3 { bucket: "photos".into(), prefix: "2024/".into() }
        );
        assert_eq!(Source::parse("s3://photos").unwrap(), Source::S3 { bucket: "photos".into(), prefix: "".into() });
        assert_eq!(
            Source::parse("s3://photos/2024").unwrap(),
            Source::S3 { bucket: "photos".into(), prefix: "2024/".into() },
            "a prefix is a folder"
        );
        assert!(Source::parse("s3:///x").is_err());
        assert!(Source::parse("/no/such/folder/here").unwrap_err().contains("not a folder"));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Source::parse(dir.path().to_str().unwrap()).unwrap(), Source::Dir(dir.path().to_path_buf()));
    }

    #[test]
    fn a_folder_is_listed_by_relative_name_without_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.jpg", "holiday/b c.png", ".hidden.jpg", ".git/x.jpg", "holiday/deeper/d.gif"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let (entries, bad) = list_dir(dir.path()).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.source_key.as_str()).collect();
        assert_eq!(names, ["a.jpg", "holiday/b c.png", "holiday/deeper/d.gif"]);
        assert!(bad.is_empty());
    }

    /// At most the limit and one byte are read, and nothing while another
    /// open file description (a copy still being written) holds the file.
    #[test]
    fn a_file_is_read_up_to_the_limit_and_not_while_open_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        assert!(matches!(read_file(&path, 10_000).unwrap(), Read::Whole(b) if b.len() == 10_000));
        assert!(matches!(read_file(&path, 4_000).unwrap(), Read::TooLarge(4_001)));
        let writer = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        #[cfg(target_os = "linux")]
        assert!(matches!(read_file(&path, 10_000).unwrap(), Read::Busy), "open for writing elsewhere");
        drop(writer);
        assert!(matches!(read_file(&path, 10_000).unwrap(), Read::Whole(_)));
    }

    /// Links to files inside the folder are taken under their own name;
    /// every other entry that is not taken is named with the reason.
    #[cfg(unix)]
    #[test]
    fn links_inside_are_followed_and_everything_skipped_is_said() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("far.jpg"), b"x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/a.jpg"), b"x").unwrap();
        symlink(d.join("real/a.jpg"), d.join("inside.jpg")).unwrap();
        symlink("real/a.jpg", d.join("relative.jpg")).unwrap();
        symlink(outside.path().join("far.jpg"), d.join("outside.jpg")).unwrap();
        symlink(d.join("nowhere.jpg"), d.join("broken.jpg")).unwrap();
        symlink(d.join("real"), d.join("folder-link")).unwrap();
        std::fs::write(d.join("line\nbreak.jpg"), b"x").unwrap();
        let fifo = std::ffi::CString::new(d.join("pipe.jpg").to_str().unwrap()).unwrap();
        // SAFETY: `fifo` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);

        let walked = walk(d);
        let names: Vec<&str> = walked.files.iter().map(|f| f.source_key.as_str()).collect();
        assert_eq!(names, ["inside.jpg", "real/a.jpg", "relative.jpg"]);
        let skipped: Vec<(String, &str)> = walked
            .skipped
            .iter()
            .map(|(p, why)| (p.file_name().unwrap().to_string_lossy().to_string(), why.as_str()))
            .collect();
        let why = |name: &str| skipped.iter().find(|(n, _)| n == name).map(|(_, w)| *w).unwrap_or("not skipped");
        assert!(why("outside.jpg").contains("outside the folder"), "{skipped:?}");
        assert!(why("broken.jpg").contains("leads nowhere"), "{skipped:?}");
        assert!(why("folder-link").contains("a link to a folder"), "{skipped:?}");
        assert!(why("line\nbreak.jpg").contains("control character"), "{skipped:?}");
        assert!(why("pipe.jpg").contains("not a regular file"), "{skipped:?}");
        assert_eq!(skipped.len(), 5, "{skipped:?}");
    }
}
