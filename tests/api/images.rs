//! `/img`: validation before I/O, conditional requests, HEAD, single
//! flight, unknown and failed ids, signatures.

use axum::body::Body;
use axum::http::Request;
use std::sync::atomic::Ordering;

use crate::helpers::{body_bytes, img, json, photo, TestApp};

#[tokio::test]
async fn bad_ids_variants_and_options_are_400_before_any_io() {
    let app = TestApp::spawn().await;
    let id = imgpipe::keys::ImageId::new();
    let long = "a".repeat(10_000);
    let cases = [
        "/img/../webp".to_string(),
        "/img/%2e%2e/webp".to_string(),
        format!("/img/{id}/..%2F..%2Fetc"),
        format!("/img/{id}/%2e%2e"),
        format!("/img/{id}%2Fx/webp"),
        format!("/img/{id}/webp%00"),
        format!("/img/{id}/webp/w=1%00"),
        format!("/img/{long}/webp"),
        format!("/img/{id}/{long}"),
        format!("/img/{id}/webp?w={long}"),
        format!("/img/{id}/webp?w=0"),
        format!("/img/{id}/gif"),
        "/meta/..".to_string(),
        format!("/meta/{long}"),
        "/meta/%2e%2e%2fetc".to_string(),
    ];
    let meta_calls = app.meta.calls.load(Ordering::SeqCst);
    for path in &cases {
        let res = app.get(path).await;
        assert_eq!(res.status(), 400, "{}", &path[..path.len().min(80)]);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let code = json(res).await["code"].as_str().unwrap().to_string();
        assert!(["bad_id", "bad_variant", "bad_options"].contains(&code.as_str()), "{code}");
    }
    assert_eq!(app.store.reads.load(Ordering::SeqCst), 0, "no store read for a bad request");
    assert_eq!(app.meta.calls.load(Ordering::SeqCst), meta_calls, "no metadata call for a bad request");
}

#[tokio::test]
async fn conditional_get_head_and_unknown_ids() {
    let app = TestApp::spawn().await;
    let id = app.upload(photo(400, 300), "image/jpeg").await;
    assert_eq!(app.wait_final(&id).await.status, imgpipe::meta::Status::Ready);
    let res = app.get(&img(id, "thumb")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["content-security-policy"], "default-src 'none'; sandbox");
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let body = body_bytes(res).await;
    use md5::Digest;
    assert_eq!(etag, format!("\"{}\"", hex::encode(md5::Md5::digest(&body))));

    let res =
        app.call(Request::get(img(id, "thumb")).header("if-none-match", &etag).body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), 304);
    assert!(body_bytes(res).await.is_empty());
    let res = app.call(Request::head(img(id, "thumb")).body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert!(body_bytes(res).await.is_empty(), "HEAD has no body");

    // Unknown id: 404, cached briefly.
    let res = app.get(&img(imgpipe::keys::ImageId::new(), "webp")).await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["cache-control"], "public, max-age=10");
    let res = app.get(&format!("/meta/{}", imgpipe::keys::ImageId::new())).await;
    assert_eq!(res.status(), 404);

    // auto negotiates and says so.
    let res =
        app.call(Request::get(img(id, "auto")).header("accept", "image/webp,*/*").body(Body::empty()).unwrap()).await;
    assert_eq!(res.headers()["content-type"], "image/webp");
    assert_eq!(res.headers()["vary"], "Accept");
}

#[tokio::test]
async fn concurrent_misses_render_once() {
    let app = TestApp::spawn().await;
    let id = app.upload(photo(800, 600), "image/jpeg").await;
    app.wait_final(&id).await;
    let path = img(id, "png/w=123,h=45,fit=cover");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let state = app.state.clone();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let res =
                imgpipe::app::router(state).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
            (res.status(), res.headers()["etag"].to_str().unwrap().to_string())
        }));
    }
    let mut etags = Vec::new();
    for t in tasks {
        let (status, etag) = t.await.unwrap();
        assert_eq!(status, 200);
        etags.push(etag);
    }
    etags.dedup();
    assert_eq!(etags.len(), 1);
    let puts = app.store.puts.lock().unwrap().get(&img(id, "png/w=123,h=45,fit=cover")[1..]).copied();
    assert_eq!(puts, Some(1), "rendered and written once");
}

#[tokio::test]
async fn failed_uploads_answer_with_their_code_and_have_no_variants() {
    let app = TestApp::spawn().await;
    let mut truncated = photo(300, 200);
    truncated.truncate(truncated.len() / 2);
    let id = app.upload(truncated, "image/jpeg").await;
    let meta = app.wait_final(&id).await;
    assert_eq!(meta.status, imgpipe::meta::Status::Failed);
    assert_eq!(meta.error.unwrap().code, "undecodable");
    assert!(meta.variants.is_empty());
    let res = app.get(&img(id, "webp/w=10")).await;
    assert_eq!(res.status(), 422);
    assert_eq!(json(res).await["code"], "undecodable");
    let svg = app.upload(b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec(), "image/png").await;
    let meta = app.wait_final(&svg).await;
    assert_eq!(meta.error.unwrap().code, "unsupported_format");
    assert_eq!(app.get(&img(svg, "jpeg")).await.status(), 415);
}

#[tokio::test]
async fn signed_transforms_when_a_signing_key_is_set() {
    let app = TestApp::spawn_with(&[("IMGPIPE_SIGNING_KEY", "sign-me")]).await;
    let id = app.upload(photo(200, 100), "image/jpeg").await;
    app.wait_final(&id).await;
    assert_eq!(app.get(&img(id, "webp")).await.status(), 200, "standard variants need no signature");
    let res = app.get(&img(id, "webp/w=50")).await;
    assert_eq!(res.status(), 401);
    assert_eq!(app.get(&img(id, "webp/w=50,s=AAAA")).await.status(), 403);
    let s = imgpipe::signing::sign_path(b"sign-me", &format!("/img/{id}/webp/w=50"));
    assert_eq!(app.get(&img(id, &format!("webp?w=50&s={s}"))).await.status(), 200);
}

/// Every answer names its request: the client's sane `X-Request-Id`, or a
/// fresh one.
#[tokio::test]
async fn answers_carry_a_request_id() {
    let app = TestApp::spawn().await;
    let sent = app.call(Request::get("/health").header("x-request-id", "trace-42").body(Body::empty()).unwrap()).await;
    assert_eq!(sent.headers()["x-request-id"], "trace-42");
    let first = app.get("/meta/not-an-id").await;
    let second = app.get("/meta/not-an-id").await;
    let (a, b) = (&first.headers()["x-request-id"], &second.headers()["x-request-id"]);
    assert!(imgpipe::keys::ImageId::parse(a.to_str().unwrap()).is_ok(), "a ULID: {a:?}");
    assert_ne!(a, b, "one id per request");
    let bad = "x".repeat(65);
    let res = app.call(Request::get("/health").header("x-request-id", bad.as_str()).body(Body::empty()).unwrap()).await;
    assert_ne!(res.headers()["x-request-id"], bad.as_str(), "an unusable id is replaced");
}

/// `inside` never enlarges: `w=8191` and `w=8192` of a 1920-wide photo are
/// its `w=1920` render, so they redirect there, and equal bytes are stored
/// once.
#[tokio::test]
async fn a_box_past_the_original_redirects_to_the_capped_render() {
    let app = TestApp::spawn().await;
    let id = app.upload(photo(1920, 1280), "image/jpeg").await;
    app.wait_final(&id).await;
    assert_eq!(app.get(&img(id, "webp?w=1920")).await.status(), 200);
    for (asked, to) in [
        ("webp?w=8191", "webp/w=1920"),
        ("webp/w=8192", "webp/w=1920"),
        ("webp?h=5000", "webp/w=1920"),
        ("webp?w=4000&h=5000", "webp/w=1920"),
        ("webp?w=3000&h=640", "webp/w=1920,h=640"),
        ("jpeg?w=1921&q=70", "jpeg/w=1920,q=70"),
    ] {
        let res = app.get(&img(id, asked)).await;
        assert_eq!(res.status(), 302, "{asked}");
        assert_eq!(res.headers()["location"], img(id, to).as_str(), "{asked}");
    }
    // A box inside the original, and cover (which may enlarge), are rendered.
    assert_eq!(app.get(&img(id, "webp?w=800")).await.status(), 200);
    assert_eq!(app.get(&img(id, "webp?w=400&h=400&fit=cover")).await.status(), 200);
    let renders: Vec<String> =
        app.store.puts.lock().unwrap().keys().filter(|k| k.contains("/webp/")).cloned().collect();
    assert_eq!(renders.len(), 3, "{renders:?}");
}

/// With signing on, the redirect to the capped render carries a signature
/// of its own, so the client that had a valid URL is sent to a valid one.
#[tokio::test]
async fn the_capped_redirect_is_signed_when_signing_is_on() {
    let key = "signing-secret";
    let app = TestApp::spawn_with(&[("IMGPIPE_SIGNING_KEY", key)]).await;
    let id = app.upload(photo(640, 480), "image/jpeg").await;
    app.wait_final(&id).await;
    let sign = |path: &str| imgpipe::signing::sign_path(key.as_bytes(), path);
    let asked = format!("webp/w=5000,s={}", sign(&format!("/img/{id}/webp/w=5000")));
    let res = app.get(&img(id, &asked)).await;
    assert_eq!(res.status(), 302);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, img(id, &format!("webp/w=640,s={}", sign(&format!("/img/{id}/webp/w=640")))));
    assert_eq!(app.get(&to).await.status(), 200);
}
