//! `FsStore`: objects as files under one folder, for `imgpipe serve`.
//! A write goes to a temporary file and is renamed into place, so a reader
//! sees the whole object or none. Headers live in a `.meta.json` sidecar
//! written before the body; the body's rename is the commit point.
//!
//! Keys map to paths under `<root>/objects/`; the segments after
//! `img/<id>/` are joined with `~` so `img/<id>/webp` (a file) and
//! `img/<id>/webp/w=640` can both exist. Keys come from `Key`, whose
//! alphabet has no `.`, `~` or `\`, so no key can leave the folder.
//!
//! Presigned PUTs point at the app's own `/_upload/<id>` route, signed by
//! `signing::UploadSigner`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{blocking, etag_of, etag_of_md5, BlobStore, ByteStream, Object, ObjectInfo, PresignedPut, StoreError};
use crate::keys::{ImageId, Key};
use crate::signing::UploadSigner;

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    signer: UploadSigner,
}

impl FsStore {
    /// Objects live under `<data_dir>/objects`.
    pub fn new(data_dir: &Path, signer: UploadSigner) -> std::io::Result<Self> {
        let root = data_dir.join("objects");
        std::fs::create_dir_all(&root)?;
        Ok(FsStore { root, signer })
    }

    fn path_of(&self, key: &Key) -> PathBuf {
        let mut parts = key.as_str().splitn(3, '/');
        let mut path = self.root.clone();
        if let Some(a) = parts.next() {
            path.push(a);
        }
        if let Some(b) = parts.next() {
            path.push(b);
        }
        if let Some(rest) = parts.next() {
            path.push(rest.replace('/', "~"));
        }
        path
    }

    /// Remove the temporary files a killed process left behind (a write
    /// is a temp file renamed into place, so any left over is garbage).
    /// Returns how many were removed.
    pub fn remove_temp_files(&self) -> std::io::Result<usize> {
        fn walk(dir: &Path, removed: &mut usize) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    walk(&entry.path(), removed)?;
                } else if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                    std::fs::remove_file(entry.path())?;
                    *removed += 1;
                }
            }
            Ok(())
        }
        let mut removed = 0;
        walk(&self.root, &mut removed)?;
        Ok(removed)
    }

    fn sidecar(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".meta.json");
        path.with_file_name(name)
    }
}

/// `bytes` at `path` whole or not at all: a temporary file beside it,
/// synced, then renamed into place (its folder is created if missing).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("the path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A render's modification time is when it was last read, to the day:
/// `sweep_renders` removes the ones not read for longest. Touched at most
/// once a day per file, so a hot render costs no write per hit.
fn mark_read(path: &Path) {
    let stale = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > READ_MARK_EVERY));
    if stale {
        if let Ok(f) = std::fs::File::options().write(true).open(path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }
}

/// How often a render's last-read time is brought up to date.
pub const READ_MARK_EVERY: Duration = Duration::from_secs(24 * 3600);

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub removed: usize,
    pub bytes: u64,
}

/// Remove the on-demand renders of the store on `data_dir` (never
/// originals or standard variants, and never one still being written):
/// those not read for `max_age`, then, while all renders together are over
/// `max_bytes`, the least recently read. A removed render is simply a miss
/// next time, rendered again, as S3's lifecycle rule does in AWS.
pub fn sweep_renders(data_dir: &Path, max_age: Option<Duration>, max_bytes: Option<u64>) -> std::io::Result<Swept> {
    {
        let mut renders = Vec::new();
        let img = data_dir.join("objects").join("img");
        for id in std::fs::read_dir(&img).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(id.path()).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                // A render's last segment holds options (`=`); not a sidecar
                // or a temporary file.
                let is_render = name.rsplit('~').next().is_some_and(|last| last.contains('='));
                if !is_render || name.ends_with(".meta.json") || name.starts_with(".tmp-") {
                    continue;
                }
                let Ok(meta) = f.metadata() else { continue };
                let read = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
                renders.push((read, meta.len(), f.path()));
            }
        }
        renders.sort();
        let mut swept = Swept::default();
        let mut total: u64 = renders.iter().map(|(_, len, _)| len).sum();
        let now = std::time::SystemTime::now();
        for (read, len, path) in renders {
            let expired = max_age.is_some_and(|age| now.duration_since(read).is_ok_and(|a| a > age));
            let over = max_bytes.is_some_and(|cap| total > cap);
            if !expired && !over {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(FsStore::sidecar(&path));
                    swept.removed += 1;
                    swept.bytes += len;
                    total -= len;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => return Err(e),
            }
        }
        Ok(swept)
    }
}

/// Below this much free space the store reports itself unavailable.
pub const MIN_FREE_BYTES: u64 = 128 * 1024 * 1024;

/// Bytes free to unprivileged writers on the disk holding `path`.
#[cfg(unix)]
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a valid out pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_bytes(_: &Path) -> Option<u64> {
    None
}

/// A body whose length is not the recorded one was cut short (or replaced)
/// outside this store: never serve it.
fn check_len(actual: u64, info: &ObjectInfo) -> Result<(), StoreError> {
    if actual == info.len {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!("{actual} bytes stored, {} recorded", info.len)))
    }
}

fn read_info(path: &Path) -> Result<Option<ObjectInfo>, StoreError> {
    match std::fs::read(FsStore::sidecar(path)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl BlobStore for FsStore {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StoreError> {
        let path = self.path_of(key);
        blocking(move || {
            let body = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let info = read_info(&path)?.ok_or_else(|| StoreError::Corrupt("object without headers".into()))?;
            check_len(body.len() as u64, &info)?;
            Ok(Some(Object { info, body: Bytes::from(body) }))
        })
        .await
    }

    /// The file itself, read 64 KiB at a time as the client takes it.
    async fn open(&self, key: &Key) -> Result<Option<(ObjectInfo, ByteStream)>, StoreError> {
        use futures_util::StreamExt;
        let path = self.path_of(key);
        let render = key.is_render();
        let opened = blocking(move || {
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if render {
                mark_read(&path);
            }
            let info = read_info(&path)?.ok_or_else(|| StoreError::Corrupt("object without headers".into()))?;
            check_len(file.metadata()?.len(), &info)?;
            Ok(Some((file, info)))
        })
        .await?;
        Ok(opened.map(|(file, info)| {
            let reader = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 64 * 1024);
            (info, reader.boxed())
        }))
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectInfo>, StoreError> {
        let path = self.path_of(key);
        blocking(move || if path.is_file() { read_info(&path) } else { Ok(None) }).await
    }

    async fn put(
        &self,
        key: &Key,
        body: Bytes,
        content_type: &str,
        cache_control: &str,
    ) -> Result<ObjectInfo, StoreError> {
        let path = self.path_of(key);
        let (content_type, cache_control) = (content_type.to_string(), cache_control.to_string());
        blocking(move || {
            // Hashing a whole object is CPU work: here, not on the runtime.
            let info = ObjectInfo { content_type, cache_control, etag: etag_of(&body), len: body.len() as u64 };
            let sidecar = serde_json::to_vec(&info).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            write_atomic(&FsStore::sidecar(&path), &sidecar)?;
            write_atomic(&path, &body)?;
            Ok(info)
        })
        .await
    }

    /// Chunks go straight into a temporary file beside the target (MD5
    /// computed on the way); the rename happens only once exactly `len`
    /// bytes have arrived, so a cut-off or over-long body leaves nothing.
    async fn put_stream(
        &self,
        key: &Key,
        mut body: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
        len: u64,
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        use md5::{Digest, Md5};
        use tokio::io::AsyncWriteExt;
        let path = self.path_of(key);
        let dir = path.parent().ok_or_else(|| StoreError::Corrupt("key has no parent".into()))?.to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let mut md5 = Md5::new();
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            if written > len {
                return Err(StoreError::Length { expected: len, longer: true });
            }
            md5.update(&chunk);
            file.write_all(&chunk).await?;
        }
        if written < len {
            return Err(StoreError::Length { expected: len, longer: false });
        }
        file.sync_data().await?;
        drop(file);
        let info = ObjectInfo {
            content_type: content_type.to_string(),
            cache_control: cache_control.to_string(),
            etag: etag_of_md5(&md5.finalize()),
            len,
        };
        blocking(move || {
            let sidecar = serde_json::to_vec(&info).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            write_atomic(&FsStore::sidecar(&path), &sidecar)?;
            tmp_path.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await
    }

    async fn presign_put(
        &self,
        key: &Key,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedPut, StoreError> {
        Ok(self.signer.presign(key, content_type, content_length, ttl))
    }

    /// The folder is there and its disk has room for an upload and its
    /// variants: a nearly full disk makes `/health` answer 503 before
    /// writes start failing.
    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        let path = self.path_of(key);
        blocking(move || {
            for p in [path.clone(), FsStore::sidecar(&path)] {
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
            Ok(())
        })
        .await
    }

    /// Every variant of an id is a file in one folder, `img/<id>/`.
    async fn delete_variants(&self, id: &ImageId) -> Result<usize, StoreError> {
        let dir = self.root.join("img").join(id.to_string());
        blocking(move || {
            let n = match std::fs::read_dir(&dir) {
                Ok(entries) => {
                    entries.flatten().filter(|e| !e.file_name().to_string_lossy().ends_with(".meta.json")).count()
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e.into()),
            };
            // A render writing into the folder meanwhile makes the last
            // rmdir fail: go again (that render finds the tombstone after
            // its write and removes what it wrote).
            for attempt in 0.. {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 20 => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(n)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        blocking(move || {
            // A small write, as every upload and render makes: a folder
            // that cannot be written (read-only, immutable, out of inodes)
            // shows here, not at the next user's request.
            let probe = root.join(".health-probe");
            write_atomic(&probe, b"ok")?;
            std::fs::remove_file(&probe)?;
            match free_bytes(&root) {
                Some(free) if free < MIN_FREE_BYTES => Err(StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!("{free} bytes free on the data dir's disk, under {MIN_FREE_BYTES}"),
                ))),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> FsStore {
        FsStore::new(dir, UploadSigner::new(b"k".to_vec(), "http://x")).unwrap()
    }

    #[tokio::test]
    async fn leftover_temp_files_go_and_a_cut_short_object_is_never_served() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let id = crate::keys::ImageId::new();
        let key = Key::variant(&id, Some(crate::recipe::Recipe::parse("r0a1b2c3d").unwrap()), "webp");
        s.put(&key, Bytes::from_static(b"0123456789"), "image/webp", "x").await.unwrap();
        let file = s.path_of(&key);
        let leftover = file.with_file_name(".tmp-killed");
        std::fs::write(&leftover, b"half").unwrap();
        assert_eq!(s.remove_temp_files().unwrap(), 1);
        assert!(!leftover.exists() && file.exists());

        std::fs::write(&file, b"01234").unwrap();
        assert!(matches!(s.open(&key).await, Err(StoreError::Corrupt(_))));
        assert!(matches!(s.get(&key).await, Err(StoreError::Corrupt(_))));
        s.ping().await.unwrap();
    }
}
