//! Every corpus file through the service: accept rows end `ready` with five
//! variants; reject rows end `failed` with their code and nothing under
//! `img/<id>/`.

use imgpipe::engine::Variant;
use imgpipe::keys::Key;
use imgpipe::meta::Status;

use crate::helpers::TestApp;

#[path = "../common/corpus.rs"]
mod common;
use common::{corpus_dir, expected_code, manifest};

#[tokio::test]
async fn every_corpus_file_through_the_flow() {
    let Some(dir) = corpus_dir() else { return };
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for row in manifest(&dir) {
        let bytes = std::fs::read(dir.join(&row.file)).unwrap();
        if bytes.is_empty() {
            // An empty upload is refused when it is declared.
            let body = serde_json::json!({"content_type": "image/jpeg", "content_length": 0}).to_string();
            let res = app
                .call(
                    axum::http::Request::post("/uploads")
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(body))
                        .unwrap(),
                )
                .await;
            assert_eq!(res.status(), 400, "{}", row.file);
            continue;
        }
        // The declared type is deliberately always JPEG: the bytes decide.
        ids.push((app.upload(bytes, "image/jpeg").await, row));
    }
    let mut failures = Vec::new();
    for (id, row) in &ids {
        let meta = app.wait_final(id).await;
        let nothing_written = async {
            for v in Variant::ALL {
                let key = Key::parse_stored(&format!("img/{id}/{}", v.name())).unwrap();
                if app.state.processed.head(&key).await.unwrap().is_some() {
                    return false;
                }
            }
            true
        };
        match (row.accept, meta.status) {
            (true, Status::Ready) => {
                if meta.variants.len() != 5 {
                    failures.push(format!("{}: {} variants", row.file, meta.variants.len()));
                }
                let o = meta.original.as_ref().unwrap();
                if Some((o.width, o.height)) != row.oriented {
                    failures
                        .push(format!("{}: original {}x{}, manifest {:?}", row.file, o.width, o.height, row.oriented));
                }
            }
            (false, Status::Failed) => {
                let code = meta.error.as_ref().unwrap().code.clone();
                let want = expected_code(&row.category);
                if code != want {
                    failures.push(format!("{}: code {code}, expected {want}", row.file));
                }
                if !meta.variants.is_empty() || !nothing_written.await {
                    failures.push(format!("{}: failed but variants were written", row.file));
                }
            }
            (_, status) => failures.push(format!("{}: ended {status:?} {:?}", row.file, meta.error)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
