//! The `BlobStore` contract.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use imgpipe::keys::{ImageId, Key};
use imgpipe::store::{etag_of, BlobStore, StoreError, IMMUTABLE};

pub async fn contract(store: &dyn BlobStore) {
    store.ping().await.unwrap();
    let id = ImageId::new();
    let raw = Key::raw(&id);

    // Absence is None, for get and head.
    assert!(store.get(&raw).await.unwrap().is_none());
    assert!(store.head(&raw).await.unwrap().is_none());

    // Put, then get the same bytes and headers; ETag is the quoted MD5,
    // and put returns the headers get and head later give.
    let body = Bytes::from_static(b"\xFF\xD8\xFFnot really a jpeg");
    let written = store.put(&raw, body.clone(), "image/jpeg", "private, no-store").await.unwrap();
    let obj = store.get(&raw).await.unwrap().expect("stored object");
    assert_eq!(obj.body, body);
    assert_eq!(obj.info.content_type, "image/jpeg");
    assert_eq!(obj.info.cache_control, "private, no-store");
    assert_eq!(obj.info.etag, etag_of(&body));
    assert!(obj.info.etag.starts_with('"') && obj.info.etag.len() == 34);
    assert_eq!(obj.info.len, body.len() as u64);
    assert_eq!(store.head(&raw).await.unwrap().unwrap(), obj.info);
    assert_eq!(written, obj.info);

    // A variant and an on-demand render under the same name coexist.
    let standard = Key::parse_stored(&format!("img/{id}/{}/webp", crate::recipe())).unwrap();
    let custom = Key::parse_stored(&format!("img/{id}/{}/webp/w=640,fit=cover", crate::recipe())).unwrap();
    store.put(&standard, Bytes::from_static(b"standard"), "image/webp", IMMUTABLE).await.unwrap();
    store.put(&custom, Bytes::from_static(b"custom"), "image/webp", IMMUTABLE).await.unwrap();
    assert_eq!(store.get(&standard).await.unwrap().unwrap().body, Bytes::from_static(b"standard"));
    assert_eq!(store.get(&custom).await.unwrap().unwrap().body, Bytes::from_static(b"custom"));
    assert_eq!(store.get(&custom).await.unwrap().unwrap().info.cache_control, IMMUTABLE);

    // Overwrite replaces the whole object; an empty body is allowed.
    let written = store.put(&standard, Bytes::new(), "image/webp", IMMUTABLE).await.unwrap();
    let empty = store.get(&standard).await.unwrap().unwrap();
    assert!(empty.body.is_empty());
    assert_eq!(written, empty.info);
    assert_eq!(empty.info.etag, etag_of(b""));

    // Streamed puts store exactly `len` bytes, or nothing at all.
    let streamed = Key::raw(&ImageId::new());
    let chunks = |parts: Vec<&'static [u8]>| {
        futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))).boxed()
    };
    let err = store.put_stream(&streamed, chunks(vec![b"abc", b"def"]), 5, "image/png", "private").await.unwrap_err();
    assert!(matches!(err, StoreError::Length { longer: true, .. }), "{err}");
    let err = store.put_stream(&streamed, chunks(vec![b"abc"]), 5, "image/png", "private").await.unwrap_err();
    assert!(matches!(err, StoreError::Length { longer: false, .. }), "{err}");
    assert!(store.get(&streamed).await.unwrap().is_none(), "a refused stream stores nothing");
    store.put_stream(&streamed, chunks(vec![b"ab", b"", b"cde"]), 5, "image/png", "private").await.unwrap();
    let obj = store.get(&streamed).await.unwrap().unwrap();
    assert_eq!(obj.body, Bytes::from_static(b"abcde"));
    assert_eq!((obj.info.etag, obj.info.content_type.as_str()), (etag_of(b"abcde"), "image/png"));

    // Other ids are untouched.
    assert!(store.get(&Key::raw(&ImageId::new())).await.unwrap().is_none());

    // A presigned PUT names the key's id, the method and the content type.
    let p = store.presign_put(&raw, "image/png", 1234, Duration::from_secs(60)).await.unwrap();
    assert_eq!(p.method, "PUT");
    assert!(p.url.contains(&id.to_string()), "{}", p.url);
    assert_eq!(p.headers.get("content-type").map(String::as_str), Some("image/png"));
    let now = time::OffsetDateTime::now_utc();
    assert!(p.expires_at > now && p.expires_at <= now + time::Duration::seconds(61));

    // Deleting: every variant and render of one id, not another's; the
    // raw object; absent objects are no error.
    let (gone, kept) = (ImageId::new(), ImageId::new());
    let variant = Key::parse_stored(&format!("img/{gone}/{}/webp", crate::recipe())).unwrap();
    let render = Key::parse_stored(&format!("img/{gone}/{}/webp/w=10", crate::recipe())).unwrap();
    let other = Key::parse_stored(&format!("img/{kept}/{}/webp", crate::recipe())).unwrap();
    for k in [&variant, &render, &other] {
        store.put(k, Bytes::from_static(b"v"), "image/webp", IMMUTABLE).await.unwrap();
    }
    store.put(&Key::raw(&gone), Bytes::from_static(b"raw"), "image/png", "").await.unwrap();
    assert_eq!(store.delete_variants(&gone).await.unwrap(), 2);
    assert!(store.get(&variant).await.unwrap().is_none() && store.get(&render).await.unwrap().is_none());
    assert!(store.get(&other).await.unwrap().is_some(), "another id's variant went too");
    assert_eq!(store.delete_variants(&gone).await.unwrap(), 0);
    store.delete(&Key::raw(&gone)).await.unwrap();
    assert!(store.head(&Key::raw(&gone)).await.unwrap().is_none());
    store.delete(&Key::raw(&gone)).await.unwrap();
}
