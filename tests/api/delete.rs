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

#[tokio::test]
async fn delete_needs_the_upload_token_when_tokens_are_set() {
    let app = TestApp::spawn_with(&[("IMGPIPE_UPLOAD_TOKENS", "sekrit")]).await;
    let id = imgpipe::keys::ImageId::new();
    assert_eq!(app.call(delete(&format!("/images/{id}"), None)).await.status(), 401);
    assert_eq!(app.call(delete(&format!("/images/{id}"), Some("wrong"))).await.status(), 403);
    assert_eq!(app.call(delete(&format!("/images/{id}"), Some("sekrit"))).await.status(), 404);
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
