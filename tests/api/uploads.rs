//! `POST /uploads` and the presigned `PUT /_upload/<id>`: auth, declared
//! type and length, tampering, expiry, mismatches, replay.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use imgpipe::keys::{ImageId, Key};

use crate::helpers::{json, photo, TestApp};

async fn post(app: &TestApp, auth: Option<&str>, body: serde_json::Value) -> (u16, serde_json::Value) {
    let mut req = Request::post("/uploads").header("content-type", "application/json");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = app.call(req.body(Body::from(body.to_string())).unwrap()).await;
    let status = res.status().as_u16();
    if status != 201 {
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    (status, json(res).await)
}

#[tokio::test]
async fn create_upload_checks_token_type_and_length() {
    let app = TestApp::spawn_with(&[("IMGPIPE_UPLOAD_TOKENS", "s3cret,other")]).await;
    let ok = serde_json::json!({"content_type": "image/png", "content_length": 10});
    assert_eq!(post(&app, None, ok.clone()).await.0, 401);
    let (status, body) = post(&app, Some("Bearer nope"), ok.clone()).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = post(&app, Some("Bearer other"), ok.clone()).await;
    assert_eq!(status, 201);
    let id = ImageId::parse(body["id"].as_str().unwrap()).unwrap();
    assert_eq!(app.state.meta.get(&id).await.unwrap().unwrap().status, imgpipe::meta::Status::Pending);
    assert_eq!(body["upload"]["method"], "PUT");
    assert_eq!(body["urls"]["thumb"], format!("{}{}", app.base, crate::helpers::img(id, "thumb")));

    let auth = Some("Bearer s3cret");
    for (ct, len, status, code) in [
        ("image/svg+xml", 10, 415, "unsupported_format"),
        ("text/html", 10, 415, "unsupported_format"),
        ("image/jpeg", 0, 400, "bad_request"),
        ("image/jpeg", 50 * 1024 * 1024 + 1, 413, "too_large"),
    ] {
        let (got, body) = post(&app, auth, serde_json::json!({"content_type": ct, "content_length": len})).await;
        assert_eq!((got, body["code"].as_str().unwrap()), (status, code), "{ct} {len}");
    }
    let (got, body) = post(&app, auth, serde_json::json!({"content_length": 5})).await;
    assert_eq!((got, body["code"].as_str().unwrap()), (400, "bad_request"));
    // JSON has one number type: 4096.0 is the integer 4096; 4096.5 is no size.
    let (got, body) =
        post(&app, auth, serde_json::json!({"content_type": "image/png", "content_length": 4096.0})).await;
    assert_eq!(got, 201, "{body}");
    assert!(body["upload"]["url"].as_str().unwrap().contains("&len=4096&"), "{body}");
    for len in [serde_json::json!(4096.5), serde_json::json!(-1), serde_json::json!("4096")] {
        let (got, body) =
            post(&app, auth, serde_json::json!({"content_type": "image/png", "content_length": len})).await;
        assert_eq!((got, body["code"].as_str().unwrap()), (400, "bad_request"), "{len}");
    }
}

#[tokio::test]
async fn presigned_put_refuses_tampering_expiry_mismatch_and_replay() {
    let app = TestApp::spawn().await;
    let bytes = photo(64, 48);
    let created = app.create("image/jpeg", bytes.len()).await;
    let path = app.local_path(created["upload"]["url"].as_str().unwrap());
    let id = ImageId::parse(created["id"].as_str().unwrap()).unwrap();

    let status = |r: axum::http::Response<Body>| r.status().as_u16();
    // Tampered signature, length, type or id in the URL.
    let flipped = {
        let (head, sig) = path.rsplit_once("sig=").unwrap();
        let mut s = sig.to_string();
        let c = if s.ends_with('0') { '1' } else { '0' };
        s.pop();
        s.push(c);
        format!("{head}sig={s}")
    };
    assert_eq!(status(app.put_raw(&flipped, "image/jpeg", bytes.clone()).await), 403);
    let longer = path.replace(&format!("len={}", bytes.len()), &format!("len={}", bytes.len() + 1));
    assert_eq!(status(app.put_raw(&longer, "image/jpeg", bytes.clone()).await), 403);
    let png = path.replace("ct=image%2Fjpeg", "ct=image%2Fpng");
    assert_eq!(status(app.put_raw(&png, "image/png", bytes.clone()).await), 403);
    let other = path.replace(&id.to_string(), &ImageId::new().to_string());
    assert_eq!(status(app.put_raw(&other, "image/jpeg", bytes.clone()).await), 403);
    let unsigned = path.split("&sig=").next().unwrap().to_string();
    assert_eq!(status(app.put_raw(&unsigned, "image/jpeg", bytes.clone()).await), 403);

    // The request itself differs from what was signed.
    assert_eq!(status(app.put_raw(&path, "image/png", bytes.clone()).await), 400);
    let mut more = bytes.clone();
    more.push(0);
    assert_eq!(status(app.put_raw(&path, "image/jpeg", more).await), 413);
    assert_eq!(status(app.put_raw(&path, "image/jpeg", bytes[..bytes.len() - 1].to_vec()).await), 400);
    // A body longer than signed, without a Content-Length, is cut off.
    let res = app
        .call(
            Request::put(&path)
                .header("content-type", "image/jpeg")
                .body(Body::from([bytes.clone(), vec![1; 100]].concat()))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 413);
    assert!(app.state.raw.get(&Key::raw(&id)).await.unwrap().is_none(), "nothing partial is stored");

    // The real thing, then a replay.
    assert_eq!(status(app.put_raw(&path, "image/jpeg", bytes.clone()).await), 200);
    let replay = app.put_raw(&path, "image/jpeg", bytes.clone()).await;
    assert_eq!(replay.status(), 409);
    assert_eq!(json(replay).await["code"], "already_uploaded");

    // Expiry: a URL signed with no time to live fails once its second is over.
    let signer = app.state.upload_signer.clone().unwrap();
    let created = app.create("image/jpeg", bytes.len()).await;
    let fresh = ImageId::parse(created["id"].as_str().unwrap()).unwrap();
    let expired = signer.presign(&Key::raw(&fresh), "image/jpeg", bytes.len() as u64, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = app.put_raw(&app.local_path(&expired.url), "image/jpeg", bytes.clone()).await;
    assert_eq!(res.status(), 403);
    assert_eq!(json(res).await["code"], "expired");
}

/// A flood of `POST /uploads` from one address: past its rate or its cap
/// on pending items it gets 429 with `Retry-After` and nothing is written;
/// another address is not refused, and an upload that arrives frees its
/// place.
#[tokio::test]
async fn a_post_flood_from_one_client_is_429() {
    let app = crate::helpers::TestApp::spawn_with(&[
        ("IMGPIPE_UPLOADS_PER_MINUTE", "100"),
        ("IMGPIPE_MAX_PENDING_UPLOADS", "3"),
    ])
    .await;
    let from =
        |last: u8| reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, last])).build().unwrap();
    let bytes = crate::helpers::photo(32, 24);
    let len = bytes.len();
    let post = |http: reqwest::Client| {
        let url = format!("{}/uploads", app.base);
        async move {
            let body = serde_json::json!({"content_type": "image/jpeg", "content_length": len});
            http.post(url).json(&body).send().await.unwrap()
        }
    };
    let mut created = Vec::new();
    for _ in 0..3 {
        let res = post(from(1)).await;
        assert_eq!(res.status(), 201);
        created.push(res.json::<serde_json::Value>().await.unwrap());
    }
    let calls = app.meta.calls.load(std::sync::atomic::Ordering::SeqCst);
    let refused = post(from(1)).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "too_many_requests");
    assert_eq!(app.meta.calls.load(std::sync::atomic::Ordering::SeqCst), calls, "a refused POST wrote nothing");
    assert_eq!(post(from(2)).await.status(), 201, "another client");
    // Its bytes arrive: the place is free again.
    let upload = &created[0]["upload"];
    let put = reqwest::Client::new()
        .put(upload["url"].as_str().unwrap())
        .header("content-type", "image/jpeg")
        .header("content-length", bytes.len())
        .body(bytes.clone());
    assert_eq!(put.send().await.unwrap().status(), 200);
    assert_eq!(post(from(1)).await.status(), 201);
}
