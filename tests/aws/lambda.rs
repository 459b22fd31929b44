//! The Lambda handlers, as the real binary under a Runtime API, on moto.

use std::collections::BTreeMap;

use crate::aws::{self, Stack};
use crate::{call, failures, handlers, jpeg, noise_png, sqs_event, upload};

const PUBLIC: &str = "https://cdn.example.test";

#[tokio::test]
async fn function_url_and_sqs_events_end_to_end() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let (mut http, mut events) = handlers(&stack, PUBLIC).await;

    let original = jpeg(640, 480);
    let id = upload(&mut http, &original, "image/jpeg").await;
    let pending = call(&mut http, "GET", &format!("/meta/{id}"), "", None).await;
    assert_eq!(pending.json()["status"], "pending");

    // What S3 delivered to the queue, handed over as Lambda's SQS event.
    // S3 also sends s3:TestEvent when the notification is configured: the
    // batch carries it too, and it must be skipped.
    let messages = stack.receive(2).await;
    // The key arrives URL-encoded (moto, like S3, may send uploads%2F<id>).
    let ours = messages.iter().filter(|m| m.body().unwrap().contains(&id.to_string())).count();
    let bodies: Vec<&str> = messages.iter().map(|m| m.body().unwrap()).collect();
    assert_eq!(ours, 1, "one notification for one upload: {bodies:?}");
    assert!(messages.iter().all(|m| {
        let body = m.body().unwrap();
        body.contains(&id.to_string()) || body.contains("s3:TestEvent")
    }));
    let batch = sqs_event(&messages);
    let answer = events.invoke(batch.clone()).await.unwrap();
    assert_eq!(failures(&answer), Vec::<String>::new());

    let meta = call(&mut http, "GET", &format!("/meta/{id}"), "", None).await;
    assert_eq!(meta.status, 200);
    let meta = meta.json();
    assert_eq!(meta["status"], "ready", "{meta}");
    assert_eq!((meta["original"]["width"].as_u64(), meta["original"]["height"].as_u64()), (Some(640), Some(480)));
    assert_eq!(meta["original"]["bytes"].as_u64(), Some(original.len() as u64));

    // Every variant is in the processed bucket with its headers, and the
    // http handler serves exactly those bytes and headers.
    let variants = meta["variants"].as_object().unwrap();
    assert_eq!(variants.len(), 5);
    let mut etags = BTreeMap::new();
    for (name, v) in variants {
        assert_eq!(v["url"], format!("{PUBLIC}/img/{id}/{}/{name}", crate::recipe()));
        let (stored, ct, cc) = stack.object(&stack.processed, v["key"].as_str().unwrap()).await.expect("variant in S3");
        assert_eq!(ct, v["content_type"]);
        assert_eq!(cc, imgpipe::store::IMMUTABLE);
        let served = call(&mut http, "GET", &format!("/img/{id}/{}/{name}", crate::recipe()), "", None).await;
        assert_eq!(served.status, 200, "{name}");
        assert_eq!(served.body, stored.to_vec(), "{name}: served bytes are the stored object");
        assert_eq!(served.headers["content-type"], ct);
        assert_eq!(served.headers["cache-control"], cc);
        assert_eq!(served.headers["x-content-type-options"], "nosniff");
        etags.insert(name.clone(), served.headers["etag"].clone());
    }

    // On demand: rendered on a miss and written back under the canonical key.
    let rendered = call(&mut http, "GET", &format!("/img/{id}/{}/webp", crate::recipe()), "w=64", None).await;
    assert_eq!(rendered.status, 200, "{}", String::from_utf8_lossy(&rendered.body));
    assert_eq!(rendered.headers["content-type"], "image/webp");
    assert_eq!(image::load_from_memory(&rendered.body).unwrap().width(), 64);
    let key = format!("img/{id}/{}/webp/w=64", crate::recipe());
    let (stored, _, _) = stack.object(&stack.processed, &key).await.expect("written back");
    assert_eq!(stored.to_vec(), rendered.body);
    // The next request is a storage hit: replace the object and see it served.
    stack
        .clients
        .s3
        .put_object()
        .bucket(&stack.processed)
        .key(&key)
        .content_type("image/webp")
        .body(b"stored-marker".to_vec().into())
        .send()
        .await
        .unwrap();
    let again = call(&mut http, "GET", &format!("/img/{id}/{}/webp/w=64", crate::recipe()), "", None).await;
    assert_eq!(again.body, b"stored-marker");

    // Errors leave as problem+json through the adapter.
    let bad = call(&mut http, "GET", "/img/not-an-id/webp", "", None).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.headers["content-type"], "application/problem+json");

    // A duplicate delivery leaves the same item and the same objects.
    let listed = |stack: &Stack| {
        let (s3, bucket, prefix) = (stack.clients.s3.clone(), stack.processed.clone(), format!("img/{id}/"));
        async move {
            let out = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap();
            out.contents()
                .iter()
                .map(|o| (o.key().unwrap().to_string(), o.e_tag().unwrap().to_string()))
                .collect::<Vec<_>>()
        }
    };
    let before = listed(&stack).await;
    let answer = events.invoke(batch).await.unwrap();
    assert_eq!(failures(&answer), Vec::<String>::new());
    assert_eq!(listed(&stack).await, before);
    assert_eq!(call(&mut http, "GET", &format!("/meta/{id}"), "", None).await.json(), meta);
    for (name, etag) in etags {
        let served = call(&mut http, "GET", &format!("/img/{id}/{}/{name}", crate::recipe()), "", None).await;
        assert_eq!(served.headers["etag"], etag, "{name}");
    }
    assert!(http.init_error().is_none() && events.init_error().is_none());
}

#[tokio::test]
async fn recorded_sqs_batch_with_an_encoded_key_and_a_test_event() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let (mut http, mut events) = handlers(&stack, PUBLIC).await;
    let id = upload(&mut http, &jpeg(64, 48), "image/jpeg").await;

    // The recorded batch: an upload, a URL-encoded key that is not one of
    // ours (`uploads/holiday photo(2).jpg`), and S3's s3:TestEvent.
    let fixture = include_str!("../fixtures/lambda/sqs-s3-notifications.json")
        .replace("{{RAW_BUCKET}}", &stack.raw)
        .replace("{{ID}}", &id.to_string());
    let answer = events.invoke(serde_json::from_str(&fixture).unwrap()).await.unwrap();
    assert_eq!(failures(&answer), Vec::<String>::new(), "skipped records are not failures");
    let meta = call(&mut http, "GET", &format!("/meta/{id}"), "", None).await.json();
    assert_eq!(meta["status"], "ready", "{meta}");

    // Nothing was made of the encoded key, decoded or not.
    let out = stack.clients.s3.list_objects_v2().bucket(&stack.processed).send().await.unwrap();
    assert!(out.contents().iter().all(|o| o.key().unwrap().starts_with(&format!("img/{id}/"))));

    // A direct S3 invocation (no SQS) is taken too.
    let other = upload(&mut http, &jpeg(32, 32), "image/jpeg").await;
    let fixture: serde_json::Value = serde_json::from_str(
        &include_str!("../fixtures/lambda/sqs-s3-notifications.json")
            .replace("{{RAW_BUCKET}}", &stack.raw)
            .replace("{{ID}}", &other.to_string()),
    )
    .unwrap();
    let direct: serde_json::Value = serde_json::from_str(fixture["Records"][0]["body"].as_str().unwrap()).unwrap();
    events.invoke(direct).await.unwrap();
    assert_eq!(call(&mut http, "GET", &format!("/meta/{other}"), "", None).await.json()["status"], "ready");
}

#[tokio::test]
async fn a_response_over_six_megabytes_is_a_redirect_to_the_stored_object() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let (mut http, mut events) = handlers(&stack, PUBLIC).await;
    // A 20 MB PNG: its PNG variant is about as large.
    let original = noise_png(2600, 2600, 1);
    assert!(original.len() > 20_000_000, "{}", original.len());
    let id = upload(&mut http, &original, "image/png").await;
    let answer = events.invoke(sqs_event(&stack.receive(2).await)).await.unwrap();
    assert_eq!(failures(&answer), Vec::<String>::new());

    let res = call(&mut http, "GET", &format!("/img/{id}/{}/png", crate::recipe()), "", None).await;
    assert_eq!(res.status, 302, "{:?}", res.headers);
    assert_eq!(res.headers["location"], format!("{PUBLIC}/img/{id}/{}/png", crate::recipe()));
    assert_eq!(res.headers["cache-control"], "private, no-store");
    let (stored, ct, _) = stack.object(&stack.processed, &format!("img/{id}/{}/png", crate::recipe())).await.unwrap();
    assert!(stored.len() > runtime_limit(), "the variant is {} bytes", stored.len());
    assert_eq!(ct, "image/png");
    let decoded = image::load_from_memory(&stored).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (2600, 2600));

    // A large on-demand render: written back first, then the redirect.
    let res = call(&mut http, "GET", &format!("/img/{id}/{}/png/w=2400", crate::recipe()), "", None).await;
    assert_eq!(res.status, 302);
    assert_eq!(res.headers["location"], format!("{PUBLIC}/img/{id}/{}/png/w=2400", crate::recipe()));
    assert!(stack.object(&stack.processed, &format!("img/{id}/{}/png/w=2400", crate::recipe())).await.is_some());

    // Small answers from the same image still come inline.
    let thumb = call(&mut http, "GET", &format!("/img/{id}/{}/thumb", crate::recipe()), "", None).await;
    assert_eq!(thumb.status, 200);
}

fn runtime_limit() -> usize {
    crate::runtime::MAX_RESPONSE
}

#[tokio::test]
async fn storage_faults_are_batch_item_failures_and_bad_images_are_not() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let (mut http, _) = handlers(&stack, PUBLIC).await;
    // An events handler whose processed bucket does not exist: every
    // variant write fails.
    let mut env = stack.env(PUBLIC);
    env.retain(|(k, _)| k != "IMGPIPE_PROCESSED_BUCKET");
    env.push(("IMGPIPE_PROCESSED_BUCKET".into(), aws::unique("missing")));
    env.push(("IMGPIPE_HANDLER".into(), "events".into()));
    let mut broken = crate::runtime::Runtime::start(&env).await;

    let good = upload(&mut http, &jpeg(64, 64), "image/jpeg").await;
    let bad = upload(&mut http, b"%PDF-1.7 definitely not an image", "image/png").await;
    // Two uploads and S3's s3:TestEvent.
    let messages = stack.receive(3).await;
    assert_eq!(messages.len(), 3);
    let answer = broken.invoke(sqs_event(&messages)).await.unwrap();
    let good_message = messages.iter().find(|m| m.body().unwrap().contains(&good.to_string())).unwrap();
    assert_eq!(failures(&answer), vec![good_message.message_id().unwrap().to_string()], "only the storage fault");

    let good_meta = call(&mut http, "GET", &format!("/meta/{good}"), "", None).await.json();
    assert_eq!(good_meta["status"], "pending", "left for the retry");
    let bad_meta = call(&mut http, "GET", &format!("/meta/{bad}"), "", None).await.json();
    assert_eq!(bad_meta["status"], "failed");
    assert_eq!(bad_meta["error"]["code"], "unsupported_format");
    let res = call(&mut http, "GET", &format!("/img/{bad}/{}/jpeg", crate::recipe()), "", None).await;
    assert_eq!(res.status, 415);
}

/// A cold start whose SSM read fails (here: nothing listens where SSM
/// should be) is not a failed init, which the Function URL answers with
/// 502: the request gets 503 with `Retry-After`, after the read was tried
/// again with backoff, and the next request tries once more.
#[tokio::test]
async fn a_cold_start_without_its_settings_answers_503() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let mut env = stack.env(PUBLIC);
    env.push(("IMGPIPE_HANDLER".into(), "http".into()));
    env.push(("IMGPIPE_PARAMETERS".into(), "/imgpipe/unreachable/".into()));
    env.push(("AWS_ENDPOINT_URL_SSM".into(), format!("http://127.0.0.1:{}", crate::free_port())));
    let mut http = crate::runtime::Runtime::start(&env).await;
    for _ in 0..2 {
        let res = call(&mut http, "GET", "/health", "", None).await;
        assert_eq!(res.status, 503, "{}", String::from_utf8_lossy(&res.body));
        assert!(res.headers.contains_key("retry-after"), "{:?}", res.headers);
        assert_eq!(res.json()["code"], "storage_unavailable");
    }
    assert!(http.init_error().is_none(), "the init itself did not fail");
}
