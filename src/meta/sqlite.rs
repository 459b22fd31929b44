//! `SqliteMeta`: the metadata table in one SQLite file (WAL), for
//! `imgpipe serve`. rusqlite is synchronous, so calls run on the blocking
//! pool behind one connection mutex; the rule that a terminal item is never
//! replaced by a pending one is enforced in SQL, in one statement.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{MetaError, MetaStore, Metadata, Stored};
use crate::keys::ImageId;
use crate::recipe::Recipe;

#[derive(Clone)]
pub struct SqliteMeta {
    conn: Arc<Mutex<Connection>>,
    path: Arc<std::path::PathBuf>,
}

/// A failure of the database under us. A full disk, an I/O error, a file
/// or folder that cannot be written, or a lock held too long are the
/// machine's state, not the request's: `Unavailable` (503 with
/// `Retry-After`, and an ingest retried). The rest (a damaged file, a bad
/// statement) is `Backend`.
/// `PRAGMA auto_vacuum`'s value for INCREMENTAL.
const INCREMENTAL: i64 = 2;

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> MetaError {
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    if is_transient(&*e) {
        MetaError::Unavailable(e)
    } else {
        MetaError::Backend(e)
    }
}

fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    use rusqlite::ErrorCode::*;
    match e.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(f, _)) => matches!(
            f.code,
            DiskFull | SystemIoFailure | ReadOnly | CannotOpen | DatabaseBusy | DatabaseLocked | OutOfMemory
        ),
        Some(_) => false,
        None => e.downcast_ref::<std::io::Error>().is_some(),
    }
}

impl SqliteMeta {
    /// The ids a one-parameter `SELECT id …` answers, in its order.
    async fn ids(&self, sql: &'static str, param: String) -> Result<Vec<ImageId>, MetaError> {
        self.with(move |c| {
            let mut stmt = c.prepare(sql).map_err(backend)?;
            let ids = stmt
                .query_map(params![param], |r| r.get::<_, String>(0))
                .map_err(backend)?
                .filter_map(|r| r.ok())
                .filter_map(|s| ImageId::parse(&s).ok())
                .collect();
            Ok(ids)
        })
        .await
    }

    /// Open (or create) `<data_dir>/meta.sqlite3`. A file that is there
    /// but empty or damaged is an error, never silently a new database:
    /// the metadata of every image would be lost.
    pub fn open(data_dir: &Path) -> Result<Self, MetaError> {
        std::fs::create_dir_all(data_dir).map_err(backend)?;
        let path = data_dir.join("meta.sqlite3");
        let damaged = |why: String| {
            MetaError::Corrupt(format!(
                "{}: {why}; restore it from a backup, or move it away to start an empty metadata store",
                path.display()
            ))
        };
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
            return Err(damaged("the file is empty".into()));
        }
        let conn = Connection::open(&path).map_err(backend)?;
        let check: String =
            conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| damaged(e.to_string()))?;
        if check != "ok" {
            return Err(damaged(check));
        }
        // Pages freed by deletes (abandoned uploads expire in bulk after a
        // flood) go back to the file system a few at a time, so the file
        // shrinks again. An older file switches over once, with a VACUUM.
        let vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).map_err(backend)?;
        if vacuum != INCREMENTAL {
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(backend)?;
            conn.execute_batch("VACUUM").map_err(backend)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS images (
                 id         TEXT PRIMARY KEY,
                 status     TEXT NOT NULL,
                 created_at TEXT NOT NULL,
                 item       TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS images_pending ON images (status, created_at);",
        )
        .map_err(backend)?;
        // Drop-ins (added after the first release: older files gain the
        // columns in place). Lookup by name is the index on source_key;
        // the newest claim is the highest rowid (ids minted in the same
        // millisecond do not sort by time).
        let has_source = conn
            .prepare("SELECT 1 FROM pragma_table_info('images') WHERE name = 'source_key'")
            .and_then(|mut q| q.exists([]))
            .map_err(backend)?;
        if !has_source {
            conn.execute_batch(
                "ALTER TABLE images ADD COLUMN source_key TEXT;
                 ALTER TABLE images ADD COLUMN source_etag TEXT;",
            )
            .map_err(backend)?;
        }
        conn.execute_batch("CREATE INDEX IF NOT EXISTS images_source ON images (source_key);").map_err(backend)?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, at TEXT NOT NULL);")
            .map_err(backend)?;
        Ok(SqliteMeta { conn: Arc::new(Mutex::new(conn)), path: Arc::new(path) })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| MetaError::Corrupt("connection lock poisoned".into()))?;
            f(&guard)
        })
        .await
        .map_err(backend)?
    }
}

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn get(&self, id: &ImageId) -> Result<Option<Metadata>, MetaError> {
        let id = id.to_string();
        self.with(move |c| {
            let item: Option<String> = c
                .query_row("SELECT item FROM images WHERE id = ?1", params![id], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            item.map(|s| serde_json::from_str(&s).map_err(|e| MetaError::Corrupt(e.to_string()))).transpose()
        })
        .await
    }

    async fn put(&self, meta: &Metadata) -> Result<Stored, MetaError> {
        let id = meta.id.to_string();
        let status = meta.status.as_str();
        let created = meta.created_at.clone();
        let item = serde_json::to_string(meta).map_err(|e| MetaError::Corrupt(e.to_string()))?;
        self.with(move |c| {
            // A pending write never replaces a ready or failed item, nor an
            // older final write a newer one; nothing but a tombstone
            // replaces a tombstone.
            let changed = c.execute(
                "INSERT INTO images (id, status, created_at, item) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, item = excluded.item
                 WHERE (images.status != 'deleted' OR excluded.status = 'deleted')
                   AND (images.status = 'pending'
                        OR (excluded.status != 'pending'
                            AND json_extract(images.item, '$.updated_at') <= json_extract(excluded.item, '$.updated_at')))",
                params![id, status, created, item],
            )
            .map_err(backend)?;
            Ok(if changed > 0 { Stored::Written } else { Stored::Kept })
        })
        .await
    }

    async fn pending(&self, created_before: Option<&str>) -> Result<Vec<ImageId>, MetaError> {
        // Every RFC 3339 time we write sorts after "", and none after "~".
        let before = created_before.unwrap_or("~").to_string();
        self.ids("SELECT id FROM images WHERE status = 'pending' AND created_at < ?1 ORDER BY created_at, id", before)
            .await
    }

    async fn outdated(&self, recipe: Recipe) -> Result<Vec<ImageId>, MetaError> {
        let sql = "SELECT id FROM images WHERE status = 'ready'
                     AND coalesce(json_extract(item, '$.recipe'), '') != ?1 ORDER BY created_at, id";
        self.ids(sql, recipe.to_string()).await
    }

    async fn delete_pending(&self, id: &ImageId) -> Result<bool, MetaError> {
        let id = id.to_string();
        self.with(move |c| {
            let n =
                c.execute("DELETE FROM images WHERE id = ?1 AND status = 'pending'", params![id]).map_err(backend)?;
            if n > 0 {
                c.query_row("PRAGMA incremental_vacuum(64)", [], |_| Ok(())).optional().map_err(backend)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn claim_source(&self, dropped: &Metadata) -> Result<ImageId, MetaError> {
        let (Some(key), Some(etag)) = (dropped.source_key.clone(), dropped.source_etag.clone()) else {
            return Err(MetaError::Corrupt("a drop-in claim without a source key and ETag".into()));
        };
        let id = dropped.id.to_string();
        let created = dropped.created_at.clone();
        let item = serde_json::to_string(dropped).map_err(|e| MetaError::Corrupt(e.to_string()))?;
        // One connection behind a mutex: the read and the insert are one step.
        self.with(move |c| {
            let newest: Option<(String, Option<String>, String)> = c
                .query_row(
                    "SELECT id, source_etag, status FROM images WHERE source_key = ?1 ORDER BY rowid DESC LIMIT 1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(backend)?;
            if let Some((known, Some(known_etag), status)) = newest {
                // A deleted image is not brought back: the same bytes
                // dropped again are a new image.
                if known_etag == etag && status != "deleted" {
                    return ImageId::parse(&known).map_err(|_| MetaError::Corrupt(format!("stored id {known:?}")));
                }
            }
            c.execute(
                "INSERT INTO images (id, status, created_at, item, source_key, source_etag)
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5)",
                params![id, created, item, key, etag],
            )
            .map_err(backend)?;
            ImageId::parse(&id).map_err(|_| MetaError::Corrupt(format!("id {id:?}")))
        })
        .await
    }

    async fn by_source(&self, source_key: &str) -> Result<Option<ImageId>, MetaError> {
        let key = source_key.to_string();
        self.with(move |c| {
            let id: Option<String> = c
                .query_row(
                    "SELECT id FROM images WHERE source_key = ?1 ORDER BY rowid DESC LIMIT 1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            Ok(id.and_then(|s| ImageId::parse(&s).ok()))
        })
        .await
    }

    /// A write and a real read. The write (one row of `health`) fails on
    /// a full disk or a file that cannot be written. The read counts the
    /// table through a connection of its own, opened from the file: the
    /// serving connection answers from its page cache, so a file damaged
    /// under it since start-up would not show there.
    async fn ping(&self) -> Result<(), MetaError> {
        let path = self.path.clone();
        self.with(move |c| {
            c.execute("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?1)", params![super::now_rfc3339()])
                .map_err(backend)?;
            let fresh =
                Connection::open_with_flags(&*path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?;
            fresh.query_row("SELECT count(*) FROM images", [], |_| Ok(())).map_err(backend)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood of abandoned uploads, expired: the file gives the space back.
    #[tokio::test]
    async fn deleted_items_give_their_pages_back() {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMeta::open(dir.path()).unwrap();
        let pages = |m: &SqliteMeta| {
            let m = m.clone();
            async move { m.with(|c| c.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0)).map_err(backend)).await }
        };
        let mut ids = Vec::new();
        for _ in 0..3000 {
            let declared = super::super::Declared { content_type: "image/jpeg".repeat(20), content_length: 1 };
            let item = Metadata::pending(ImageId::new(), declared);
            meta.put(&item).await.unwrap();
            ids.push(item.id);
        }
        let full = pages(&meta).await.unwrap();
        for id in &ids {
            assert!(meta.delete_pending(id).await.unwrap());
        }
        let after = pages(&meta).await.unwrap();
        assert!(after * 4 < full, "{full} pages before, {after} after");
        // An older file without it switches on open.
        drop(meta);
        let c = Connection::open(dir.path().join("meta.sqlite3")).unwrap();
        assert_eq!(c.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0)).unwrap(), INCREMENTAL);
    }

    /// SQLite's own full-disk error (a page limit stands in for the disk)
    /// is a fault to retry, not a 500.
    #[test]
    fn a_full_disk_is_unavailable_and_a_bad_statement_is_not() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x TEXT)").unwrap();
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())).unwrap();
        let full = (0..1000)
            .find_map(|_| conn.execute("INSERT INTO t VALUES (?1)", params!["x".repeat(4000)]).err())
            .expect("the page limit is reached");
        let e = backend(full);
        assert!(matches!(e, MetaError::Unavailable(_)) && e.is_retryable(), "{e:?}");
        let bad = conn.execute("INSERT INTO nowhere VALUES (1)", []).unwrap_err();
        assert!(matches!(backend(bad), MetaError::Backend(_)));
    }

    #[test]
    fn an_empty_or_damaged_file_stops_the_start_instead_of_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite3");
        std::fs::write(&path, b"").unwrap();
        let e = SqliteMeta::open(dir.path()).err().expect("an empty file is refused").to_string();
        assert!(e.contains("empty") && e.contains("backup"), "{e}");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let e = SqliteMeta::open(dir.path()).err().expect("a damaged file is refused").to_string();
        assert!(e.contains("meta.sqlite3"), "{e}");
        std::fs::remove_file(&path).unwrap();
        SqliteMeta::open(dir.path()).expect("no file: a new database");
    }
}
