//! `GET /health` says what a request would find: a store that cannot be
//! written and a database file damaged under the running server are 503.

use axum::body::Body;
use axum::http::Request;

use crate::helpers::TestApp;

async fn health(app: &TestApp) -> (u16, Option<String>) {
    let res = app.call(Request::get("/health").body(Body::empty()).unwrap()).await;
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), retry)
}

fn chattr(flag: &str, path: &std::path::Path) {
    let ok = std::process::Command::new("chattr").args(["-R", flag]).arg(path).status().unwrap().success();
    assert!(ok, "chattr {flag} {} (run as root on a file system with attributes)", path.display());
}

#[tokio::test]
async fn health_is_503_while_the_data_dir_cannot_be_written() {
    let app = TestApp::spawn().await;
    assert_eq!(health(&app).await.0, 200);
    chattr("+i", app.dir.path());
    let during = health(&app).await;
    chattr("-i", app.dir.path());
    assert_eq!(during, (503, Some("2".into())), "an immutable data dir");
    assert_eq!(health(&app).await.0, 200, "writable again");
}

#[tokio::test]
async fn health_is_503_when_the_database_file_is_damaged_under_the_server() {
    let app = TestApp::spawn().await;
    app.upload(crate::helpers::photo(64, 48), "image/jpeg").await;
    assert_eq!(health(&app).await.0, 200);
    // Its pages overwritten in place, as a bad disk or a stray `dd` does,
    // once they are in the file itself (after a checkpoint, as SQLite makes
    // one whenever the write-ahead log grows or the last reader closes).
    let path = app.dir.path().join("meta.sqlite3");
    let other = rusqlite::Connection::open(&path).unwrap();
    other.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    drop(other);
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, &[0x5a; 8192]).unwrap();
    file.sync_all().unwrap();
    assert_eq!(health(&app).await.0, 503);
}
