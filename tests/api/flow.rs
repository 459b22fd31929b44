//! The whole flow over a real TCP socket with a real HTTP client.

use image::GenericImageView;
use imgpipe::keys::Key;
use imgpipe::meta::Status;

use crate::helpers::{create_over_http, photo, TestApp};

#[tokio::test]
async fn upload_process_serve_and_render_on_demand_over_tcp() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let bytes = photo(1200, 800);
    let created = create_over_http(&http, &app.base, "image/jpeg", bytes.len()).await;
    let url = created["upload"]["url"].as_str().unwrap();
    let put = http.put(url).header("content-type", "image/jpeg").body(bytes.clone()).send().await.unwrap();
    assert_eq!(put.status(), 200);

    // Poll /meta until ready.
    let meta_url = created["meta_url"].as_str().unwrap();
    let mut meta = serde_json::Value::Null;
    for _ in 0..300 {
        meta = http.get(meta_url).send().await.unwrap().json().await.unwrap();
        if meta["status"] != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(meta["status"], "ready", "{meta}");
    assert_eq!(meta["original"]["width"], 1200);
    assert_eq!(meta["original"]["format"], "jpeg");
    assert_eq!(meta["original"]["bytes"], bytes.len());

    for (name, size) in [
        ("jpeg", (1200, 800)),
        ("jpeg-low", (1200, 800)),
        ("webp", (1200, 800)),
        ("png", (1200, 800)),
        ("thumb", (300, 200)),
    ] {
        let res = http.get(meta["variants"][name]["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert_eq!(res.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(res.headers()["content-type"], meta["variants"][name]["content_type"].as_str().unwrap());
        let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(img.dimensions(), size, "{name}");
    }

    // On demand: rendered on a miss, written back, then served from the store.
    let id = meta["id"].as_str().unwrap();
    let first = http.get(format!("{}{}", app.base, crate::helpers::img(id, "webp/w=320"))).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().contains_key("server-timing"), "a render reports its timing");
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let body = first.bytes().await.unwrap();
    assert_eq!(image::load_from_memory(&body).unwrap().dimensions(), (320, 213));
    let key = Key::parse_stored(&crate::helpers::img(id, "webp/w=320")[1..]).unwrap();
    let stored = app.state.processed.get(&key).await.unwrap().expect("written back");
    assert_eq!(stored.body, body);
    assert_eq!(stored.info.etag, etag);
    // Replace the stored object: the next answer must be exactly it, which
    // only a store hit can give.
    app.state
        .processed
        .put(&key, bytes::Bytes::from_static(b"from-the-store"), "image/webp", imgpipe::store::IMMUTABLE)
        .await
        .unwrap();
    // The query form without a recipe: redirected to the path above.
    let second = http.get(format!("{}/img/{id}/webp?w=320", app.base)).send().await.unwrap();
    assert_eq!(second.url().path(), crate::helpers::img(id, "webp/w=320"));
    assert!(!second.headers().contains_key("server-timing"));
    assert_eq!(second.bytes().await.unwrap().as_ref(), b"from-the-store");
    assert_eq!(
        app.state.meta.get(&imgpipe::keys::ImageId::parse(id).unwrap()).await.unwrap().unwrap().status,
        Status::Ready
    );
}
