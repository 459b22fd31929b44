//! Crash safety: SIGKILL the real server while jobs are queued, start it
//! again on the same data dir, and every upload ends `ready`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{create_over_http, noisy_png};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(port: u16, data: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data)
        .env_remove("IMGPIPE_PUBLIC_BASE_URL")
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

#[tokio::test]
async fn sigkill_with_queued_jobs_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = start(port, data.path());
    wait_up(&http, &base).await;

    let mut ids = Vec::new();
    for i in 0..6 {
        let bytes = noisy_png(1600, 1200, i + 1);
        let created = create_over_http(&http, &base, "image/png", bytes.len()).await;
        let put = http
            .put(created["upload"]["url"].as_str().unwrap())
            .header("content-type", "image/png")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let mut pending_at_kill = 0;
    for id in &ids {
        let m: serde_json::Value = http.get(format!("{base}/meta/{id}")).send().await.unwrap().json().await.unwrap();
        pending_at_kill += usize::from(m["status"] == "pending");
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    assert!(pending_at_kill > 0, "the test needs work still queued when the server dies");

    let mut server = start(port, data.path());
    wait_up(&http, &base).await;
    for id in &ids {
        let mut status = String::new();
        for _ in 0..1200 {
            let m: serde_json::Value =
                http.get(format!("{base}/meta/{id}")).send().await.unwrap().json().await.unwrap();
            status = m["status"].as_str().unwrap().to_string();
            if status != "pending" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, "ready", "{id} after restart");
    }
    // SIGTERM: graceful shutdown exits cleanly.
    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let code = server.wait().unwrap();
    assert!(code.success(), "graceful shutdown should exit 0, got {code:?}");
}
