//! One contract suite per port, run against every adapter. The AWS adapters
//! are held to these same functions.

mod blob;
mod meta;

use imgpipe::meta::sqlite::SqliteMeta;
use imgpipe::store::fs::{FsStore, UploadSigner};

#[tokio::test]
async fn fs_store_meets_the_blob_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path(), UploadSigner::new(b"k".repeat(32), "http://127.0.0.1:1")).unwrap();
    blob::contract(&store).await;
    // Folder-specific: no stray temporary files are left behind.
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn sqlite_meta_meets_the_meta_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMeta::open(dir.path()).unwrap();
    meta::contract(&meta).await;
    // Durable: a second handle on the same file sees the items.
    drop(meta);
    let again = SqliteMeta::open(dir.path()).unwrap();
    assert!(!again.pending().await.unwrap().is_empty(), "pending items survive a reopen");
}

use imgpipe::meta::MetaStore;

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
