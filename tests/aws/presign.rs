//! Presigned PUTs from `S3Store` against s3s-fs, an S3 that checks SigV4
//! (moto accepts any signature). The URL is good for exactly one key,
//! content type and length, create-only, until it expires; anything else is
//! a 403 and stores nothing. A replay is refused (moto, which implements
//! conditional writes).

use std::time::Duration;

use bytes::Bytes;
use imgpipe::keys::{ImageId, Key};
use imgpipe::store::s3::S3Store;
use imgpipe::store::BlobStore;

use crate::aws;

struct Target {
    store: S3Store,
}

async fn target() -> Option<Target> {
    let endpoint = aws::emulator("IMGPIPE_TEST_S3S_URL")?;
    let keys = std::env::var("IMGPIPE_TEST_S3S_KEYS").expect("IMGPIPE_TEST_S3S_KEYS with IMGPIPE_TEST_S3S_URL");
    let (access, secret) = keys.split_once(':').unwrap();
    let clients = imgpipe::aws::Clients::from_sdk(&aws::sdk(&endpoint, access, secret), true);
    let bucket = aws::unique("presign");
    aws::create_bucket(&clients, &bucket).await;
    Some(Target { store: S3Store::new(clients.s3, &bucket) })
}

/// A PUT as a client following the presigned headers sends it.
async fn put(url: &str, content_type: &str, body: Vec<u8>) -> u16 {
    let res = reqwest::Client::new()
        .put(url)
        .header("content-type", content_type)
        .header("if-none-match", "*")
        .body(body)
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

#[tokio::test]
async fn presigned_put_is_good_for_one_key_type_and_length_until_it_expires() {
    let Some(t) = target().await else { return };
    let body = b"\x89PNG\r\n\x1a\n pretend png".to_vec();
    let id = ImageId::new();
    let key = Key::raw(&id);
    let p = t.store.presign_put(&key, "image/png", body.len() as u64, Duration::from_secs(300)).await.unwrap();
    let signed = p.url.split("X-Amz-SignedHeaders=").nth(1).unwrap().split('&').next().unwrap().to_string();
    for header in ["content-type", "content-length", "if-none-match"] {
        assert!(signed.contains(header), "{header} is signed: {signed}");
    }
    assert_eq!(p.headers["content-type"], "image/png");
    assert_eq!(p.headers["content-length"], body.len().to_string());
    assert_eq!(p.headers["if-none-match"], "*");

    // Without the create-only condition the signature does not match.
    let res = reqwest::Client::new().put(&p.url).header("content-type", "image/png").body(body.clone()).send();
    assert_eq!(res.await.unwrap().status(), 403, "If-None-Match dropped");

    // Tampered signature.
    let sig = p.url.split("X-Amz-Signature=").nth(1).unwrap().split('&').next().unwrap();
    let flipped = format!("{}{}", &sig[..sig.len() - 1], if sig.ends_with('0') { '1' } else { '0' });
    assert_eq!(put(&p.url.replace(sig, &flipped), "image/png", body.clone()).await, 403, "tampered signature");
    // Another key with the same signature.
    let other = ImageId::new();
    assert_eq!(put(&p.url.replace(&id.to_string(), &other.to_string()), "image/png", body.clone()).await, 403);
    assert!(t.store.head(&Key::raw(&other)).await.unwrap().is_none());
    // Wrong content type.
    assert_eq!(put(&p.url, "image/jpeg", body.clone()).await, 403, "wrong content type");
    // Wrong length, shorter and longer.
    assert_eq!(put(&p.url, "image/png", body[..body.len() - 1].to_vec()).await, 403, "shorter body");
    let mut longer = body.clone();
    longer.push(0);
    assert_eq!(put(&p.url, "image/png", longer).await, 403, "longer body");
    assert!(t.store.head(&key).await.unwrap().is_none(), "nothing stored by a refused PUT");

    // The exact request succeeds and stores the bytes.
    assert_eq!(put(&p.url, "image/png", body.clone()).await, 200);
    let obj = t.store.get(&key).await.unwrap().unwrap();
    assert_eq!(obj.body, Bytes::from(body));
    assert_eq!(obj.info.content_type, "image/png");
}

#[tokio::test]
async fn presigned_put_expires() {
    let Some(t) = target().await else { return };
    let key = Key::raw(&ImageId::new());
    let p = t.store.presign_put(&key, "image/png", 3, Duration::from_secs(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(put(&p.url, "image/png", b"abc".to_vec()).await, 403, "expired");
    assert!(t.store.head(&key).await.unwrap().is_none());
}

/// S3's conditional write refuses a second PUT with the same URL (moto
/// implements `If-None-Match: *` on PutObject; s3s-fs does not), so an
/// original cannot be swapped after its variants exist.
#[tokio::test]
async fn a_replayed_presigned_put_is_refused_and_keeps_the_first_bytes() {
    let Some(endpoint) = aws::moto() else { return };
    let clients = aws::clients(&endpoint);
    let bucket = aws::unique("replay");
    aws::create_bucket(&clients, &bucket).await;
    let store = S3Store::new(clients.s3, &bucket);
    let key = Key::raw(&ImageId::new());
    let p = store.presign_put(&key, "image/png", 5, Duration::from_secs(300)).await.unwrap();
    let send = |body: &'static [u8]| {
        let mut req = reqwest::Client::new().put(&p.url);
        for (k, v) in &p.headers {
            if k != "content-length" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        req.body(body).send()
    };
    assert_eq!(send(b"first").await.unwrap().status(), 200);
    assert_eq!(send(b"swap!").await.unwrap().status(), 412, "a replay is refused");
    assert_eq!(store.get(&key).await.unwrap().unwrap().body, Bytes::from_static(b"first"));
}

/// A 403 from S3 (here a signature S3 refuses: a wrong secret) is a fault
/// to retry, never "no such object": the event is kept for another try
/// instead of leaving the item pending for ever.
#[tokio::test]
async fn a_denied_read_is_a_retryable_fault_not_a_missing_object() {
    let Some(t) = target().await else { return };
    let endpoint = aws::emulator("IMGPIPE_TEST_S3S_URL").unwrap();
    let keys = std::env::var("IMGPIPE_TEST_S3S_KEYS").unwrap();
    let (access, _) = keys.split_once(':').unwrap();
    let wrong = imgpipe::aws::Clients::from_sdk(&aws::sdk(&endpoint, access, "not-the-secret"), true);
    let denied = S3Store::new(wrong.s3, t.store.bucket());
    let key = Key::raw(&ImageId::new());
    for (what, got) in
        [("get", denied.get(&key).await.map(|o| o.is_some())), ("head", denied.head(&key).await.map(|o| o.is_some()))]
    {
        let e = got.expect_err(what);
        assert!(e.is_retryable(), "{what}: {e:?}");
    }
    // The right credentials: a missing key is simply not there.
    assert!(t.store.get(&key).await.unwrap().is_none());
}
