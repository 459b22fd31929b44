//! `DELETE /images/<id>`: everything of the image goes (original, variants,
//! renders), `/meta` and `/img` answer 410 `deleted` afterwards, a second
//! DELETE is 204 again, and a render racing the delete does not bring an
//! object back.

use axum::body::Body;
use axum::http::Request;

use crate::helpers::{img, json, photo, PutGate, TestApp};

fn delete(path: &str, token: Option<&str>) -> Request<Body> {
    let mut req = Request::delete(path);
    if let Some(t) = token {
        req = req.header("x-imgpipe-token", t);
    }
    req.body(Body::empty()).unwrap()
}

fn files_of(app: &TestApp, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![app.dir.path().join("objects")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.path().to_string_lossy().contains(id) {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn delete_removes_every_byte_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let id = app.upload(photo(640, 480), "image/jpeg").await;
    app.wait_final(&id).await;
    assert_eq!(app.get(&img(id, "webp/w=120")).await.status(), 200);
    assert!(files_of(&app, &id.to_string()).len() >= 7, "original, five variants and a render");

    let res = app.call(delete(&format!("/images/{id}"), None)).await;
    assert_eq!(res.status(), 204);
    assert!(files_of(&app, &id.to_string()).is_empty(), "{:?}", files_of(&app, &id.to_string()));
    for path in [format!("/meta/{id}"), img(id, "webp"), img(id, "webp/w=120"), img(id, "png?w=50")] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 410, "{path}");
        assert_eq!(json(res).await["code"], "deleted", "{path}");
    }
    assert!(files_of(&app, &id.to_string()).is_empty(), "a GET after the delete wrote something");
    // Again: still 204, nothing changes.
    assert_eq!(app.call(delete(&format!("/images/{id}"), None)).await.status(), 204);
    // Unknown and malformed ids.
    assert_eq!(app.call(delete(&format!("/images/{}", imgpipe::keys::ImageId::new()), None)).await.status(), 404);
    assert_eq!(app.call(delete("/images/not-an-id", None)).await.status(), 400);
}

/// On an address others reach, a DELETE needs the image's own delete token
/// (handed out once, by `POST /uploads`) or an admin token; an upload
/// token, another image's delete token or none is refused, and the image
/// is unchanged.
#[tokio::test]
async fn only_the_delete_token_or_an_admin_token_deletes() {
    let app = TestApp::spawn_exposed(&[("IMGPIPE_UPLOAD_TOKENS", "uploader"), ("IMGPIPE_ADMIN_TOKENS", "root")]).await;
    let upload = || {
        let body = serde_json::json!({"content_type": "image/jpeg", "content_length": 10}).to_string();
        app.call(
            Request::post("/uploads")
                .header("content-type", "application/json")
                .header("x-imgpipe-token", "uploader")
                .body(Body::from(body))
                .unwrap(),
        )
    };
    let mine = json(upload().await).await;
    let theirs = json(upload().await).await;
    let (id, token) = (mine["id"].as_str().unwrap(), mine["delete_token"].as_str().unwrap());
    assert!(token.len() >= 32, "{mine}");
    let path = format!("/images/{id}");
    let meta = json(app.get(&format!("/meta/{id}")).await).await;
    assert!(meta.get("delete_token_sha256").is_none() && !meta.to_string().contains(token), "{meta}");
    for (given, status) in [
        (None, 401),
        (Some("uploader"), 403),
        (Some(theirs["delete_token"].as_str().unwrap()), 403),
        (Some("nonsense"), 403),
    ] {
        let res = app.call(delete(&path, given)).await;
        assert_eq!(res.status(), status, "{given:?}");
        assert_eq!(app.get(&format!("/meta/{id}")).await.status(), 200, "{given:?} changed the image");
    }
    assert_eq!(app.call(delete(&path, Some(token))).await.status(), 204);
    assert_eq!(app.get(&format!("/meta/{id}")).await.status(), 410);
    // An admin deletes anything, a drop-in or another's upload included.
    let other = theirs["id"].as_str().unwrap();
    assert_eq!(app.call(delete(&format!("/images/{other}"), Some("root"))).await.status(), 204);
    // Unknown ids stay 404 whatever the token.
    let unknown = format!("/images/{}", imgpipe::keys::ImageId::new());
    assert_eq!(app.call(delete(&unknown, Some("root"))).await.status(), 404);
}

/// Without admin tokens, an image with no delete token (a drop-in, an
/// import) cannot be deleted from outside at all; on loopback it can.
#[tokio::test]
async fn a_drop_in_needs_an_admin_token_unless_the_server_is_loopback_only() {
    for (loopback, want) in [(false, 401), (true, 204)] {
        let app = if loopback { TestApp::spawn().await } else { TestApp::spawn_exposed(&[]).await };
        let claim = imgpipe::meta::Metadata::dropped(imgpipe::keys::ImageId::new(), "cat.jpg", "\"e\"", 3);
        let id = app.state.meta.claim_source(&claim).await.unwrap();
        assert_eq!(app.call(delete(&format!("/images/{id}"), None)).await.status(), want, "loopback {loopback}");
    }
}

#[tokio::test]
async fn a_render_racing_a_delete_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    for round in 0..4u32 {
        let id = app.upload(photo(2400, 1600), "image/jpeg").await;
        app.wait_final(&id).await;
        let path = img(id, &format!("webp/w={}", 300 + round));
        let render = app.get(&path);
        let gone = async {
            // Let the render start (and at later rounds, get further).
            tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(round))).await;
            app.call(delete(&format!("/images/{id}"), None)).await
        };
        let (render, gone) = tokio::join!(render, gone);
        assert_eq!(gone.status(), 204);
        assert!(matches!(render.status().as_u16(), 200 | 410), "round {round}: {}", render.status());
        assert!(files_of(&app, &id.to_string()).is_empty(), "round {round}: {:?}", files_of(&app, &id.to_string()));
        assert_eq!(app.get(&img(id, &format!("webp/w={}", 300 + round))).await.status(), 410);
    }
}

/// The folder store's write fails (its folder removed from under it) when
/// a delete lands between its steps: the render answers as for a deleted
/// image, never 503, and leaves nothing.
#[tokio::test]
async fn a_render_whose_write_a_delete_breaks_is_410() {
    let app = TestApp::spawn().await;
    let id = app.upload(photo(800, 600), "image/jpeg").await;
    app.wait_final(&id).await;
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
    let (release, release_rx) = tokio::sync::oneshot::channel();
    *app.store.put_gate.lock().unwrap() =
        Some(PutGate { prefix: format!("img/{id}/"), arrived: arrived_tx, release: release_rx });
    let path = img(id, "webp/w=333");
    let render = app.get(&path);
    let gone = async {
        arrived.await.unwrap();
        let gone = app.call(delete(&format!("/images/{id}"), None)).await;
        let folder_gone = std::io::Error::from(std::io::ErrorKind::NotFound);
        release.send(Some(imgpipe::store::StoreError::Io(folder_gone))).unwrap();
        gone
    };
    let (render, gone) = tokio::join!(render, gone);
    assert_eq!(gone.status(), 204);
    assert_eq!(render.status(), 410);
    assert_eq!(json(render).await["code"], "deleted");
    assert!(files_of(&app, &id.to_string()).is_empty(), "{:?}", files_of(&app, &id.to_string()));
}

/// The CDN's part of a delete: counted, and made to fail once.
#[derive(Default)]
struct Cdn {
    calls: std::sync::Mutex<Vec<Vec<String>>>,
    fail_next: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl imgpipe::cdn::Cdn for Cdn {
    async fn invalidate(&self, paths: &[String]) -> Result<(), imgpipe::cdn::CdnError> {
        self.calls.lock().unwrap().push(paths.to_vec());
        if self.fail_next.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(imgpipe::cdn::CdnError("throttled".into()));
        }
        Ok(())
    }
}

/// A DELETE whose invalidation failed is finished by the next one; once
/// everything is gone, a DELETE again asks the CDN for nothing more and
/// touches no store.
#[tokio::test]
async fn a_delete_again_invalidates_only_what_was_not_invalidated() {
    let mut app = TestApp::spawn().await;
    let cdn = std::sync::Arc::new(Cdn::default());
    app.state.cdn = Some(cdn.clone());
    let id = app.upload(photo(64, 48), "image/jpeg").await;
    app.wait_final(&id).await;
    let path = format!("/images/{id}");

    cdn.fail_next.store(true, std::sync::atomic::Ordering::SeqCst);
    let res = app.call(delete(&path, None)).await;
    assert_eq!(res.status(), 503, "the CDN refused: try again");
    assert_eq!(app.call(delete(&path, None)).await.status(), 204);
    assert_eq!(cdn.calls.lock().unwrap().len(), 2, "the failed invalidation was sent again");

    let reads = app.store.reads.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(app.call(delete(&path, None)).await.status(), 204);
    }
    assert_eq!(cdn.calls.lock().unwrap().len(), 2, "a purged image was invalidated again");
    assert_eq!(app.store.reads.load(std::sync::atomic::Ordering::SeqCst), reads, "a purged image touched the store");
    assert_eq!(app.get(&format!("/meta/{id}")).await.status(), 410);
}
