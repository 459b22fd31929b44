//! Crash safety: SIGKILL the real server while jobs are queued, start it
//! again on the same data dir, and every upload ends `ready`.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{create_over_http, free_port, noise_png, start, wait_up};

/// POST /uploads and the PUT of a PNG; returns its id.
async fn put_png(http: &reqwest::Client, base: &str, bytes: Vec<u8>) -> String {
    let created = create_over_http(http, base, "image/png", bytes.len()).await;
    let url = created["upload"]["url"].as_str().unwrap();
    let put = http.put(url).header("content-type", "image/png").body(bytes).send().await.unwrap();
    assert_eq!(put.status(), 200);
    created["id"].as_str().unwrap().to_string()
}

/// The status once it is no longer pending (two minutes at most).
async fn final_status(http: &reqwest::Client, base: &str, id: &str) -> String {
    let mut status = String::new();
    for _ in 0..1200 {
        let m: serde_json::Value = http.get(format!("{base}/meta/{id}")).send().await.unwrap().json().await.unwrap();
        status = m["status"].as_str().unwrap().to_string();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    status
}

#[tokio::test]
async fn sigkill_with_queued_jobs_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = start(port, data.path(), &[]);
    wait_up(&http, &base).await;

    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(put_png(&http, &base, noise_png(1600, 1200, i + 1)).await);
    }
    let mut pending_at_kill = 0;
    for id in &ids {
        let m: serde_json::Value = http.get(format!("{base}/meta/{id}")).send().await.unwrap().json().await.unwrap();
        pending_at_kill += usize::from(m["status"] == "pending");
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    assert!(pending_at_kill > 0, "the test needs work still queued when the server dies");

    let mut server = start(port, data.path(), &[]);
    wait_up(&http, &base).await;
    for id in &ids {
        assert_eq!(final_status(&http, &base, id).await, "ready", "{id} after restart");
    }
    // SIGTERM: graceful shutdown exits cleanly.
    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let code = server.wait().unwrap();
    assert!(code.success(), "graceful shutdown should exit 0, got {code:?}");
}

#[tokio::test]
async fn sigterm_with_a_client_that_stopped_reading_exits_by_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = start(port, data.path(), &[]);
    wait_up(&http, &base).await;
    // A PNG variant far larger than the socket buffers.
    let id = put_png(&http, &base, noise_png(3000, 2000, 9)).await;
    assert_eq!(final_status(&http, &base, &id).await, "ready");
    let mut reader = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    reader
        .write_all(format!("GET {} HTTP/1.1\r\nhost: x\r\n\r\n", crate::helpers::img(id, "png")).as_bytes())
        .await
        .unwrap();
    let mut first = [0u8; 1024];
    let n = reader.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // The client reads no more; the server is asked to stop. It waits for
    // the response up to its deadline, not for the idle timeout, nor for ever.
    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    let limit = imgpipe::http::server::SHUTDOWN_DEADLINE + Duration::from_secs(15);
    assert!(limit < imgpipe::http::server::IDLE_TIMEOUT, "the test must tell the deadline from the idle timeout");
    let exited = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(code) = server.try_wait().unwrap() {
                return Some(code);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        server.kill().unwrap();
        server.wait().unwrap();
        None
    })
    .await
    .unwrap();
    let code = exited.expect("the server was still running past its shutdown deadline");
    assert!(code.success(), "{code:?}");
    drop(reader);
}
