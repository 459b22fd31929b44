//! The events handler (Lambda's `events`, `imgpipe worker`) on the real
//! stores: which notification does the work, and that each drop-in is
//! ingested once.

use imgpipe::keys::{ImageId, Key};
use imgpipe::meta::Status;

use crate::helpers::{photo, TestApp};

fn notification(key: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "raw"}, "object": {"key": key, "size": 1}}
    }]})
    .to_string()
}

/// Writes under `img/` so far (the variants).
fn variant_puts(app: &TestApp) -> usize {
    app.store.puts.lock().unwrap().iter().filter(|(k, _)| k.starts_with("img/")).map(|(_, n)| n).sum()
}

/// A drop-in's own event stores its bytes as `uploads/<id>`; that copy's
/// event ingests it. In S3 both events arrive, in either order and maybe
/// at once: the set is made once, never by both.
#[tokio::test]
async fn a_drop_in_is_ingested_once_by_the_event_of_its_copy() {
    let app = TestApp::spawn().await;
    let original = photo(320, 200);
    let at = Key::dropped("holiday/cat.jpg").unwrap();
    app.state.raw.put(&at, original.clone().into(), "image/jpeg", "").await.unwrap();

    imgpipe::events::handle(&app.state, "raw", &notification("holiday/cat.jpg")).await.unwrap();
    let id: ImageId = app.state.meta.by_source("holiday/cat.jpg").await.unwrap().expect("claimed");
    assert_eq!(variant_puts(&app), 0, "the drop-in's own event makes no variant");
    assert_eq!(app.state.meta.get(&id).await.unwrap().unwrap().status, Status::Pending);
    let copy = app.state.raw.get(&Key::raw(&id)).await.unwrap().expect("stored as the id's upload");
    assert_eq!(copy.body, original);

    // The copy's event, and both delivered again at the same time.
    let upload = notification(&format!("uploads/{id}"));
    imgpipe::events::handle(&app.state, "raw", &upload).await.unwrap();
    assert_eq!(app.state.meta.get(&id).await.unwrap().unwrap().status, Status::Ready);
    let made = variant_puts(&app);
    assert_eq!(made, 5, "the five standard variants");
    let dropped = notification("holiday/cat.jpg");
    let (a, b) = tokio::join!(
        imgpipe::events::handle(&app.state, "raw", &dropped),
        imgpipe::events::handle(&app.state, "raw", &upload)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(variant_puts(&app), made, "a duplicate event made variants again");
    assert_eq!(app.state.meta.by_source("holiday/cat.jpg").await.unwrap(), Some(id));
}
