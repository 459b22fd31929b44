//! The local drop-in folder: files copied under `<data dir>/inbox/` become
//! images named by their path, through the real `imgpipe serve`, and
//! nothing is lost when the server is killed in the middle.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::noisy_png;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(port: u16, data: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data)
        .env_remove("IMGPIPE_PUBLIC_BASE_URL")
        .env("IMGPIPE_MAX_UPLOAD_BYTES", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_up(http: &reqwest::Client, base: &str) {
    for _ in 0..100 {
        if http.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not come up");
}

/// The newest image from `key` once final and not `other` (60 s at most).
async fn dropped(http: &reqwest::Client, base: &str, key: &str, other: Option<&str>) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let res = http.get(format!("{base}/meta")).query(&[("source_key", key)]).send().await.unwrap();
        if res.status() == 200 {
            let meta: serde_json::Value = res.json().await.unwrap();
            if meta["status"] != "pending" && meta["id"].as_str() != other {
                return meta;
            }
        } else {
            assert_eq!(res.status(), 404, "{key}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{key} was not taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn put(inbox: &Path, key: &str, bytes: &[u8]) {
    let path = inbox.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if e.path().is_dir() {
            out.extend(files(&e.path()).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn files_in_the_inbox_become_images_and_survive_a_kill() {
    let data = tempfile::tempdir().unwrap();
    let inbox = data.path().join("inbox");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = start(port, data.path());
    wait_up(&http, &base).await;
    assert!(inbox.is_dir(), "serve makes the inbox");

    // Several at once, then SIGKILL while some are still in the folder.
    let photos: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("holiday/day {i}/cat.png"), noisy_png(360, 240, i + 1))).collect();
    for (key, bytes) in &photos {
        put(&inbox, key, bytes);
    }
    put(&inbox, "notes.txt", b"not an image at all");
    put(&inbox, "big.png", &noisy_png(600, 600, 99));
    put(&inbox, ".partial.png", b"a file still being copied, hidden");
    let started = Instant::now();
    while files(&inbox).len() == 9 {
        assert!(started.elapsed() < Duration::from_secs(30), "nothing taken from the inbox");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();

    let mut server = start(port, data.path());
    wait_up(&http, &base).await;
    let mut ids = Vec::new();
    for (key, bytes) in &photos {
        let meta = dropped(&http, &base, key, None).await;
        assert_eq!(meta["status"], "ready", "{key}: {meta}");
        assert_eq!(meta["source_key"], key.as_str());
        assert_eq!(meta["original"]["bytes"], bytes.len());
        let id = meta["id"].as_str().unwrap().to_string();
        assert_eq!(http.get(format!("{base}/img/{id}/thumb")).send().await.unwrap().status(), 200);
        ids.push(id);
    }
    let notes = dropped(&http, &base, "notes.txt", None).await;
    assert_eq!(
        (notes["status"].as_str(), notes["error"]["code"].as_str()),
        (Some("failed"), Some("unsupported_format"))
    );
    let big = dropped(&http, &base, "big.png", None).await;
    assert_eq!((big["status"].as_str(), big["error"]["code"].as_str()), (Some("failed"), Some("too_large")));
    // Taken files are gone; a refused one is kept aside; hidden ones stay.
    let left = files(&inbox);
    assert_eq!(left, vec![".partial.png", ".refused/big.png"], "{left:?}");

    // The same name with the same bytes is the same image; new bytes are a
    // new image, and the old one is kept as it was.
    let (key, bytes) = &photos[0];
    put(&inbox, key, bytes);
    let started = Instant::now();
    while inbox.join(key).exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "not taken again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dropped(&http, &base, key, None).await["id"], ids[0].as_str());
    put(&inbox, key, &noisy_png(240, 400, 7));
    let newer = dropped(&http, &base, key, Some(&ids[0])).await;
    assert_eq!((newer["original"]["width"].as_u64(), newer["original"]["height"].as_u64()), (Some(240), Some(400)));
    let old: serde_json::Value =
        http.get(format!("{base}/meta/{}", ids[0])).send().await.unwrap().json().await.unwrap();
    assert_eq!(old["original"]["width"], 360);

    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(server.wait().unwrap().success());
}
