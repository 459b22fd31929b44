//! Hostile input and load on the real connection loop: the render queue's
//! bound, the output-pixel cap, a full disk, a damaged stored variant, a
//! stalled upload and a client that never finishes its headers.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{body_bytes, img, json, noise_png, photo, TestApp};

#[tokio::test]
async fn renders_past_the_queue_bound_are_503_with_retry_after() {
    let app = TestApp::spawn_with(&[("IMGPIPE_MAX_QUEUED_RENDERS", "1")]).await;
    let id = app.upload(noise_png(2400, 1800, 7), "image/png").await;
    assert_eq!(app.wait_final(&id).await.status, imgpipe::meta::Status::Ready);
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let url = format!("{}{}", app.base, img(id, &format!("png?w={}", 1000 + w)));
        let http = http.clone();
        tasks.push(tokio::spawn(async move { http.get(url).send().await.unwrap() }));
    }
    let (mut ok, mut shed) = (0, 0);
    for t in tasks {
        let res = t.await.unwrap();
        match res.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert!(res.headers().contains_key("retry-after"), "{:?}", res.headers());
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(body["code"], "busy");
                shed += 1;
            }
            other => panic!("a render answered {other}"),
        }
    }
    assert!(ok >= 1 && shed >= 1, "{ok} rendered, {shed} shed: the queue holds the cores plus one");
    assert_eq!(http.get(format!("{}/health", app.base)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn cover_and_fill_cannot_enlarge_past_the_output_cap() {
    let app = TestApp::spawn().await;
    let id = app.upload(photo(4, 4), "image/jpeg").await;
    app.wait_final(&id).await;
    // The cap is per side (IMGPIPE_MAX_DIMENSION, 4096 here); a path
    // without a recipe version is refused too, not redirected.
    for (fit, path) in [
        ("fill", img(id, "webp?w=8192&h=8192&fit=fill")),
        ("cover", img(id, "webp?w=4097&h=16&fit=cover")),
        ("cover", format!("/img/{id}/png/w=16,h=4097,fit=cover")),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 400, "{path}");
        let body = json(res).await;
        assert_eq!(body["code"], "bad_options");
        assert!(body["detail"].as_str().unwrap().contains(&format!("{fit} box is over the 4096")), "{body}");
    }
    assert!(
        !app.store.puts.lock().unwrap().keys().any(|k| k.contains("8192")),
        "nothing rendered or stored for a refused box"
    );
    // A box within the cap still enlarges as asked.
    let res = app.get(&img(id, "png?w=64&h=48&fit=fill")).await;
    assert_eq!(res.status(), 200);
    let img = image::load_from_memory(&body_bytes(res).await).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));
}

#[tokio::test]
async fn a_full_disk_is_503_and_ingest_retries_without_blaming_the_image() {
    let app = TestApp::spawn().await;
    // Uploads cannot be stored: 503 with Retry-After, and the id stays open.
    *app.store.full_under.lock().unwrap() = Some("uploads/".into());
    let bytes = photo(64, 48);
    let created = app.create("image/jpeg", bytes.len()).await;
    let path = app.local_path(created["upload"]["url"].as_str().unwrap());
    let res = app.put_raw(&path, "image/jpeg", bytes.clone()).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(json(res).await["code"], "storage_unavailable");

    // The disk has room for the upload but not for its variants: ingest
    // fails, the item stays pending (never `failed`), nothing is served.
    *app.store.full_under.lock().unwrap() = Some("img/".into());
    assert_eq!(app.put_raw(&path, "image/jpeg", bytes).await.status(), 200);
    let id = imgpipe::keys::ImageId::parse(created["id"].as_str().unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let meta = app.state.meta.get(&id).await.unwrap().unwrap();
    assert_eq!(meta.status, imgpipe::meta::Status::Pending, "{meta:?}");
    assert_eq!(app.get(&img(id, "webp")).await.status(), 404);

    // Room again: the retry (after its backoff) makes it ready.
    *app.store.full_under.lock().unwrap() = None;
    let meta = app.wait_final(&id).await;
    assert_eq!(meta.status, imgpipe::meta::Status::Ready);
    assert_eq!(meta.variants.len(), 5);
}

#[tokio::test]
async fn a_truncated_variant_is_rendered_again_not_served() {
    let app = TestApp::spawn().await;
    let id = app.upload(photo(320, 240), "image/jpeg").await;
    let meta = app.wait_final(&id).await;
    let want = meta.variants["webp"].bytes as usize;
    // The folder store keeps an id's variants flat: `img/<id>/<recipe>~webp`.
    let recipe = meta.recipe.expect("made under a recipe");
    let file = app.dir.path().join(format!("objects/img/{id}/{recipe}~webp"));
    let full = std::fs::read(&file).unwrap();
    assert_eq!(full.len(), want);
    std::fs::write(&file, &full[..want / 2]).unwrap();

    let res = app.get(&img(id, "webp")).await;
    assert_eq!(res.status(), 200);
    let body = body_bytes(res).await;
    assert_eq!(body.len(), want, "served whole, re-rendered from the original");
    image::load_from_memory(&body).unwrap();
    assert_eq!(std::fs::read(&file).unwrap().len(), want, "and stored whole again");
}

#[tokio::test]
async fn an_unsigned_server_ignores_s_in_the_key() {
    let app = TestApp::spawn().await;
    let id = app.upload(photo(200, 100), "image/jpeg").await;
    app.wait_final(&id).await;
    for s in ["a", "b", "c"] {
        assert_eq!(app.get(&img(id, &format!("webp?w=50&s={s}"))).await.status(), 200);
    }
    let puts = app.store.puts.lock().unwrap();
    let renders: Vec<_> = puts.keys().filter(|k| k.contains("w=50")).collect();
    assert_eq!(renders, [&img(id, "webp/w=50")[1..]], "one render, one key");
}

#[tokio::test]
async fn a_stalled_upload_times_out_and_frees_its_id() {
    let app = TestApp::spawn().await;
    let bytes = photo(64, 48);
    let created = app.create("image/jpeg", bytes.len()).await;
    let path = app.local_path(created["upload"]["url"].as_str().unwrap());
    // Half the body, then nothing: the PUT holds the id's lock meanwhile.
    let mut stalled = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\n\r\n",
        bytes.len()
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&bytes[..bytes.len() / 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A second, complete PUT of the same id waits for the lock, and gets
    // it once the stalled body times out: it is answered, not left hanging.
    let (base, put_bytes, put_path) = (app.base.clone(), bytes.clone(), path.clone());
    let second = tokio::spawn(async move {
        reqwest::Client::new()
            .put(format!("{base}{put_path}"))
            .header("content-type", "image/jpeg")
            .body(put_bytes)
            .send()
            .await
            .unwrap()
            .status()
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        imgpipe::http::presigned_put::BODY_IDLE_TIMEOUT + Duration::from_secs(15),
        stalled.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the stalled upload was never answered");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let status = tokio::time::timeout(Duration::from_secs(15), second).await.unwrap().unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = TestApp::spawn().await;
    let mut slow = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        imgpipe::http::server::HEADER_TIMEOUT + Duration::from_secs(10),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the connection stayed open");
    // The server still answers others.
    let res = app.call(Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), 200);
}

/// A body that trickles in (a byte now and then, never pausing long enough
/// to look stalled) is cut at its deadline, a base plus a second per
/// 64 KiB signed: 408, nothing kept, and the id free for the next PUT.
#[tokio::test]
async fn a_trickling_upload_body_is_cut_at_its_deadline() {
    let app = TestApp::spawn_with(&[("IMGPIPE_UPLOAD_BODY_TIMEOUT_SECS", "2")]).await;
    let bytes = photo(64, 48);
    let created = app.create("image/jpeg", bytes.len()).await;
    let path = app.local_path(created["upload"]["url"].as_str().unwrap());
    let mut slow = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\n\r\n",
        bytes.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 512];
    let mut sent = 0;
    let n = loop {
        tokio::select! {
            n = slow.read(&mut answer) => break n.unwrap(),
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                assert!(started.elapsed() < Duration::from_secs(20), "the trickle was never cut");
                if sent < bytes.len() - 1 {
                    let _ = slow.write_all(&bytes[sent..sent + 1]).await;
                    sent += 1;
                }
            }
        }
    };
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(sent < bytes.len() - 1, "cut before the body was complete");
    let res = app.put_raw(&path, "image/jpeg", bytes).await;
    assert_eq!(res.status(), 200, "the id's lock was released and nothing of the first PUT kept");
}

/// Connections past the cap: a few more may still ask `/health`; anything
/// else there is 503 with Retry-After, so a flood of half-sent requests
/// never leaves the health check or the process without descriptors.
#[tokio::test]
async fn past_the_connection_cap_only_health_answers() {
    let app = TestApp::spawn_with(&[("IMGPIPE_MAX_CONNECTIONS", "4")]).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ask = |path: &'static str| {
        let addr = addr.clone();
        async move {
            let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
            c.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await.unwrap().unwrap();
            String::from_utf8_lossy(&out).to_string()
        }
    };
    let health = ask("/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let other = ask("/openapi.yaml").await;
    assert!(other.starts_with("HTTP/1.1 503"), "{other}");
    assert!(other.to_ascii_lowercase().contains("retry-after: 1"), "{other}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(ask("/openapi.yaml").await.starts_with("HTTP/1.1 200"), "the cap frees as connections close");
}

/// Renders not read for the expiry are removed, and past a size cap the
/// least recently read go first; originals and standard variants stay, and
/// a removed render is rendered again on its next request. A read brings a
/// render's last-read time up to date.
#[tokio::test]
async fn renders_expire_unread_and_a_size_cap_evicts_the_least_recently_read() {
    use imgpipe::store::fs::sweep_renders;
    let app = TestApp::spawn().await;
    let id = app.upload(photo(640, 480), "image/jpeg").await;
    app.wait_final(&id).await;
    for w in [100, 200, 300] {
        assert_eq!(app.get(&img(id, &format!("webp?w={w}"))).await.status(), 200);
    }
    let dir = app.dir.path().join("objects").join("img").join(id.to_string());
    let file = |w: u32| {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(&format!("w={w}")))
            .unwrap()
    };
    let age = |w: u32, days: u64| {
        let f = std::fs::File::options().write(true).open(file(w)).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(days * 86_400)).unwrap();
    };
    age(100, 10);
    age(200, 3);
    // Reading the 200 one marks it read today.
    assert_eq!(app.get(&img(id, "webp/w=200")).await.status(), 200);
    let swept = sweep_renders(app.dir.path(), Some(Duration::from_secs(7 * 86_400)), None).unwrap();
    assert_eq!(swept.removed, 1);
    let left: Vec<String> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    assert!(!left.iter().any(|n| n.ends_with("w=100")), "{left:?}");
    assert!(left.iter().filter(|n| !n.contains('=')).count() >= 5, "standard variants stay: {left:?}");
    // A cap of one render's size keeps only the most recently read.
    age(300, 2);
    let one = std::fs::metadata(file(200)).unwrap().len();
    let swept = sweep_renders(app.dir.path(), None, Some(one)).unwrap();
    assert_eq!(swept.removed, 1);
    assert!(file_exists(&dir, "w=200") && !file_exists(&dir, "w=300"));
    // Removed is a miss: rendered again.
    assert_eq!(app.get(&img(id, "webp/w=100")).await.status(), 200);
    assert!(file_exists(&dir, "w=100"));
}

fn file_exists(dir: &std::path::Path, suffix: &str) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(suffix))
}
