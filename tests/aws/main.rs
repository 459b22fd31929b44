//! The AWS backend end to end against moto (S3, SQS with S3 notifications,
//! DynamoDB) and s3s-fs (SigV4): the real `imgpipe` binary as the Lambda
//! `http` and `events` handlers under a Runtime API, as `worker` and as
//! `serve --backend aws`. Nothing is mocked between them.

#[path = "../common/util.rs"]
mod util;
pub use util::{free_port, noise_png};

#[path = "../common/aws.rs"]
mod aws;
mod lambda;
mod presign;
mod runtime;
mod worker;

use std::io::Cursor;

use aws::Stack;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use imgpipe::keys::ImageId;
use runtime::{function_url, FnResponse, Runtime};

/// A small photo-like JPEG.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, ((x + y) % 256) as u8]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img).write_to(&mut out, ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// The Lambda `http` and `events` handlers on `stack`.
pub async fn handlers(stack: &Stack, public: &str) -> (Runtime, Runtime) {
    let mut env = stack.env(public);
    env.push(("IMGPIPE_HANDLER".into(), "http".into()));
    let http = Runtime::start(&env).await;
    env.pop();
    env.push(("IMGPIPE_HANDLER".into(), "events".into()));
    (http, Runtime::start(&env).await)
}

pub async fn call(http: &mut Runtime, method: &str, path: &str, query: &str, body: Option<&[u8]>) -> FnResponse {
    let headers: &[(&str, &str)] = if body.is_some() { &[("content-type", "application/json")] } else { &[] };
    let answer = http.invoke(function_url(method, path, query, headers, body)).await;
    FnResponse::parse(&answer.unwrap_or_else(|e| panic!("{method} {path}: invocation failed: {e}")))
}

/// `POST /uploads` through the http handler, then the PUT to the presigned
/// URL with a real HTTP client, as a browser would.
pub async fn upload(http: &mut Runtime, bytes: &[u8], content_type: &str) -> ImageId {
    let req = serde_json::json!({ "content_type": content_type, "content_length": bytes.len() }).to_string();
    let res = call(http, "POST", "/uploads", "", Some(req.as_bytes())).await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    let created = res.json();
    put_presigned(&created["upload"], bytes.to_vec()).await;
    ImageId::parse(created["id"].as_str().unwrap()).unwrap()
}

pub async fn put_presigned(upload: &serde_json::Value, bytes: Vec<u8>) {
    let mut put = reqwest::Client::new().put(upload["url"].as_str().unwrap());
    for (k, v) in upload["headers"].as_object().unwrap() {
        put = put.header(k.as_str(), v.as_str().unwrap());
    }
    let res = put.body(bytes).send().await.unwrap();
    assert!(res.status().is_success(), "PUT {}: {}", res.status(), res.text().await.unwrap_or_default());
}

/// An SQS event as Lambda's event source mapping builds it from `messages`,
/// in the recorded fixture's shape.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> serde_json::Value {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/lambda/sqs-s3-notifications.json")).unwrap();
    let template = fixture["Records"][0].clone();
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let mut r = template.clone();
            r["messageId"] = m.message_id().unwrap().into();
            r["receiptHandle"] = m.receipt_handle().unwrap().into();
            r["body"] = m.body().unwrap().into();
            r
        })
        .collect();
    serde_json::json!({ "Records": records })
}

pub fn failures(answer: &serde_json::Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("no batchItemFailures in {answer}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

/// The recipe version of the default settings, which every test runs with:
/// the segment after the id in variant keys and URLs.
pub fn recipe() -> imgpipe::recipe::Recipe {
    imgpipe::engine::Engine::default().recipe()
}
