//! The local drop-in folder: files copied under `<data dir>/inbox/` become
//! images named by their path, through the real `imgpipe serve`, and
//! nothing is lost when the server is killed in the middle.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, noise_png, start, wait_up};

/// The size limit these servers run with, so a file can be over it.
const LIMIT: &[(&str, &str)] = &[("IMGPIPE_MAX_UPLOAD_BYTES", "400000")];

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
    let mut server = start(port, data.path(), LIMIT);
    wait_up(&http, &base).await;
    assert!(inbox.is_dir(), "serve makes the inbox");

    // Several at once, then SIGKILL while some are still in the folder.
    let photos: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("holiday/day {i}/cat.png"), noise_png(360, 240, i + 1))).collect();
    for (key, bytes) in &photos {
        put(&inbox, key, bytes);
    }
    put(&inbox, "notes.txt", b"not an image at all");
    put(&inbox, "big.png", &noise_png(600, 600, 99));
    put(&inbox, ".partial.png", b"a file still being copied, hidden");
    let started = Instant::now();
    while files(&inbox).len() == 9 {
        assert!(started.elapsed() < Duration::from_secs(30), "nothing taken from the inbox");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();

    let mut server = start(port, data.path(), LIMIT);
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
    // A refused file whose place aside is taken (here by a folder) is moved
    // beside it, not left in the inbox to be refused every second.
    std::fs::create_dir_all(inbox.join(".refused/huge.png")).unwrap();
    put(&inbox, "huge.png", &noise_png(600, 600, 98));
    let started = Instant::now();
    while inbox.join("huge.png").exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "the refused file stayed in the inbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(inbox.join(".refused/huge.png~1").is_file());

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
    put(&inbox, key, &noise_png(240, 400, 7));
    let newer = dropped(&http, &base, key, Some(&ids[0])).await;
    assert_eq!((newer["original"]["width"].as_u64(), newer["original"]["height"].as_u64()), (Some(240), Some(400)));
    let old: serde_json::Value =
        http.get(format!("{base}/meta/{}", ids[0])).send().await.unwrap().json().await.unwrap();
    assert_eq!(old["original"]["width"], 360);

    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(server.wait().unwrap().success());
}

/// `imgpipe import` over stdout's JSON lines (no terminal here).
fn import(dir: &Path, data: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("import")
        .arg(dir)
        .arg("--data-dir")
        .arg(data)
        .args(["--jobs", "2"])
        .env_remove("IMGPIPE_PUBLIC_BASE_URL")
        .env_remove("IMGPIPE_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The JSON lines of a finished import, its summary and its exit code.
fn finish(child: Child) -> (Vec<serde_json::Value>, serde_json::Value, Option<i32>) {
    let out = child.wait_with_output().unwrap();
    let mut lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary = lines.pop().expect("a summary line")["summary"].clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ready"), "{}", String::from_utf8_lossy(&out.stderr));
    (lines, summary, out.status.code())
}

#[tokio::test]
async fn import_a_folder_resumes_after_a_kill_and_a_second_run_does_nothing() {
    use std::io::BufRead;
    let photos = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    for i in 0..10 {
        let key = format!("{}/photo {i}.png", if i % 2 == 0 { "2024/summer" } else { "misc" });
        put(photos.path(), &key, &noise_png(480, 320, i + 1));
        keys.push(key);
    }
    put(photos.path(), "notes.txt", b"not an image");
    put(photos.path(), ".DS_Store", b"hidden: skipped");

    // The variant URLs it writes are final: with no public base URL of the
    // backend's own, it refuses to start, and writes nothing.
    let refused = import(photos.path(), data.path()).wait_with_output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("IMGPIPE_PUBLIC_BASE_URL") && why.contains("imgpipe serve"), "{why}");
    assert!(!data.path().join("meta.sqlite3").exists(), "nothing written");
    // `serve` on the data dir records the base URL it writes; import takes it.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = start(port, data.path(), LIMIT);
    wait_up(&http, &base).await;
    server.kill().unwrap();
    server.wait().unwrap();

    // Killed after the first image is reported.
    let mut first = import(photos.path(), data.path());
    let mut line = String::new();
    std::io::BufReader::new(first.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("\"source_key\""), "{line}");
    first.kill().unwrap();
    first.wait().unwrap();

    // The second run finishes the job; the first run's work is kept.
    let (reports, summary, code) = finish(import(photos.path(), data.path()));
    assert_eq!(reports.len(), 11, "{reports:?}");
    assert_eq!(
        (summary["ready"].as_u64(), summary["failed"].as_u64(), summary["errors"].as_u64()),
        (Some(10), Some(1), Some(0))
    );
    assert!(summary["unchanged"].as_u64().unwrap() >= 1, "the killed run's first image is kept: {summary}");
    assert_eq!(code, Some(1), "a failed image makes the exit status 1");
    let notes = reports.iter().find(|r| r["source_key"] == "notes.txt").unwrap();
    assert_eq!((notes["status"].as_str(), notes["code"].as_str()), (Some("failed"), Some("unsupported_format")));
    let ids: std::collections::HashMap<String, String> = reports
        .iter()
        .map(|r| (r["source_key"].as_str().unwrap().to_string(), r["id"].as_str().unwrap().to_string()))
        .collect();

    // A third run changes nothing: same ids, all unchanged.
    let (again, summary, _) = finish(import(photos.path(), data.path()));
    assert_eq!(summary["unchanged"].as_u64(), Some(11), "{summary}");
    for r in &again {
        assert_eq!(ids[r["source_key"].as_str().unwrap()], r["id"].as_str().unwrap());
    }

    // What serve on that folder answers: every image by its name, with
    // serve's own URLs.
    let mut server = start(port, data.path(), LIMIT);
    wait_up(&http, &base).await;
    for key in &keys {
        let meta = dropped(&http, &base, key, None).await;
        assert_eq!((meta["status"].as_str(), meta["id"].as_str()), (Some("ready"), Some(ids[key].as_str())), "{key}");
        let url = meta["variants"]["thumb"]["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{base}/img/{}/", ids[key])), "{url}");
    }
    let thumb = http.get(format!("{base}/img/{}/thumb", ids[&keys[3]])).send().await.unwrap();
    assert_eq!(thumb.status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Every entry `import` does not take is a line with the reason and a
/// count, and makes the exit status 1; a file refused in this run is not
/// `unchanged`.
#[cfg(unix)]
#[test]
fn import_reports_every_entry_it_does_not_take() {
    let outside = tempfile::tempdir().unwrap();
    let photos = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    for i in 0..3 {
        let far = outside.path().join(format!("far{i}.png"));
        std::fs::write(&far, noise_png(32, 32, i + 1)).unwrap();
        std::os::unix::fs::symlink(&far, photos.path().join(format!("link{i}.png"))).unwrap();
    }
    put(photos.path(), "real.png", &noise_png(48, 32, 9));
    std::os::unix::fs::symlink(photos.path().join("real.png"), photos.path().join("alias.png")).unwrap();
    put(photos.path(), "big.png", &noise_png(600, 600, 7));
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .arg("import")
            .arg(photos.path())
            .arg("--data-dir")
            .arg(data.path())
            .env("IMGPIPE_PUBLIC_BASE_URL", "https://img.example.test")
            .env("IMGPIPE_MAX_UPLOAD_BYTES", "400000")
            .env_remove("IMGPIPE_BACKEND")
            .output()
            .unwrap();
        let mut lines: Vec<serde_json::Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let summary = lines.pop().unwrap()["summary"].clone();
        (lines, summary, out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (lines, summary, code, stderr) = run();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!((summary["ready"].as_u64(), summary["skipped"].as_u64()), (Some(2), Some(3)), "{summary}");
    assert!(stderr.contains("3 skipped"), "{stderr}");
    let skipped: Vec<&serde_json::Value> = lines.iter().filter(|l| l["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 3, "{lines:?}");
    for line in skipped {
        assert!(line["message"].as_str().unwrap().contains("outside the folder"), "{line}");
    }
    let big = lines.iter().find(|l| l["source_key"] == "big.png").unwrap();
    assert_eq!((big["status"].as_str(), big["code"].as_str()), (Some("failed"), Some("too_large")));
    assert_eq!(big["unchanged"], false, "refused in this very run");
    let (lines, _, _, _) = run();
    let big = lines.iter().find(|l| l["source_key"] == "big.png").unwrap();
    assert_eq!(big["unchanged"], true, "refused by the run before");
}

/// A copy that pauses (its writer still has the file open) is not taken,
/// however long it waits; once written and closed it is taken after the
/// settle time, and a file renamed in complete is taken at once.
#[tokio::test]
async fn a_paused_copy_is_not_taken_until_it_is_written() {
    use std::io::Write;
    let data = tempfile::tempdir().unwrap();
    let inbox = data.path().join("inbox");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = start(port, data.path(), &[("IMGPIPE_INBOX_SETTLE_SECS", "1")]);
    wait_up(&http, &base).await;
    let bytes = noise_png(200, 150, 5);
    let mut copy = std::fs::File::create(inbox.join("paused.png")).unwrap();
    copy.write_all(&bytes[..bytes.len() / 2]).unwrap();
    copy.flush().unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(inbox.join("paused.png").exists(), "a half-written file was taken");
    let none = http.get(format!("{base}/meta")).query(&[("source_key", "paused.png")]).send().await.unwrap();
    assert_eq!(none.status(), 404);
    copy.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(copy);
    let meta = dropped(&http, &base, "paused.png", None).await;
    assert_eq!(
        (meta["status"].as_str(), meta["original"]["bytes"].as_u64()),
        (Some("ready"), Some(bytes.len() as u64))
    );

    // rsync's way: written under a hidden name, then renamed in.
    std::fs::write(inbox.join(".whole.png.tmp"), noise_png(120, 80, 6)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::rename(inbox.join(".whole.png.tmp"), inbox.join("whole.png")).unwrap();
    let meta = dropped(&http, &base, "whole.png", None).await;
    assert_eq!(meta["status"], "ready");
    server.kill().unwrap();
    server.wait().unwrap();
}
