//! `imgpipe serve --backend aws` and `imgpipe worker` as processes on moto:
//! the same flow without Lambda.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::aws::{self, Stack};
use crate::{free_port, jpeg, put_presigned};

struct Child {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Child {
    fn spawn(args: &[&str], env: &[(String, String)], dir: &std::path::Path, name: &str) -> Child {
        let log = dir.join(format!("{name}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_imgpipe"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Child { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id();
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "did not stop on SIGTERM\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Until `serve` answers /health (30 s at most).
async fn wait_serving(http: &reqwest::Client, base: &str, serve: &Child) {
    let started = Instant::now();
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "serve did not start\n{}", serve.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Poll /meta/<id> until it leaves pending (60 s at most).
async fn wait_final(http: &reqwest::Client, base: &str, id: &str, worker: &Child) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let meta: serde_json::Value = http.get(format!("{base}/meta/{id}")).send().await.unwrap().json().await.unwrap();
        if meta["status"] != "pending" {
            return meta;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not processed\n{}", worker.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn serve_backend_aws_and_worker_process_an_upload() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // IMGPIPE_BACKEND comes from the flag here, not the environment.
    let mut env = stack.env(&base);
    env.retain(|(k, _)| k != "IMGPIPE_BACKEND");
    let addr = format!("127.0.0.1:{port}");
    let serve = Child::spawn(&["serve", "--backend", "aws", "--addr", &addr], &env, dir.path(), "serve");
    let mut worker_env = stack.env(&base);
    worker_env.retain(|(k, _)| k != "IMGPIPE_QUEUE_URL");
    let worker = Child::spawn(&["worker", "--queue-url", &stack.queue_url], &worker_env, dir.path(), "worker");

    let http = reqwest::Client::new();
    wait_serving(&http, &base, &serve).await;

    let original = jpeg(320, 200);
    let created: serde_json::Value = http
        .post(format!("{base}/uploads"))
        .json(&serde_json::json!({"content_type": "image/jpeg", "content_length": original.len()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = created["upload"]["url"].as_str().unwrap();
    assert!(url.starts_with(&endpoint), "a presigned S3 URL on the configured endpoint: {url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    put_presigned(&created["upload"], original).await;
    let id = created["id"].as_str().unwrap().to_string();

    let meta = wait_final(&http, &base, &id, &worker).await;
    assert_eq!(meta["status"], "ready", "{meta}");
    assert_eq!(meta["variants"]["thumb"]["url"], format!("{base}/img/{id}/{}/thumb", crate::recipe()));
    let res = http.get(format!("{base}/img/{id}/{}/thumb", crate::recipe())).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (stored, _, _) = stack.object(&stack.processed, &format!("img/{id}/{}/thumb", crate::recipe())).await.unwrap();
    assert_eq!(res.bytes().await.unwrap(), stored);

    // The worker deleted the message it handled.
    let left = stack.receive(0).await;
    assert!(left.is_empty(), "{left:?}");

    // Both stop cleanly on SIGTERM, the worker in the middle of a long poll.
    assert!(worker.terminate().await.success());
    assert!(serve.terminate().await.success());
}

/// Poll /meta?source_key= until the newest image from that name is final
/// and, when given, is not `other` (60 s at most).
async fn wait_dropped(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    other: Option<&str>,
    worker: &Child,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let res = http.get(format!("{base}/meta")).query(&[("source_key", key)]).send().await.unwrap();
        if res.status() == 200 {
            let meta: serde_json::Value = res.json().await.unwrap();
            if meta["status"] != "pending" && meta["id"].as_str() != other {
                return meta;
            }
        } else {
            assert_eq!(res.status(), 404, "{key}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{key} not processed\n{}", worker.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The seeds' flow: `aws s3 cp cat.jpg s3://<raw bucket>/holiday/my cat.jpg`,
/// through moto's real S3 → SQS notification and `imgpipe worker`.
#[tokio::test]
async fn an_object_dropped_in_the_raw_bucket_becomes_an_image() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = stack.env(&base);
    let serve = Child::spawn(&["serve", "--addr", &format!("127.0.0.1:{port}")], &env, dir.path(), "serve");
    let worker = Child::spawn(&["worker"], &env, dir.path(), "worker");
    let http = reqwest::Client::new();
    wait_serving(&http, &base, &serve).await;
    let drop = |key: &str, body: Vec<u8>| {
        let put = stack.clients.s3.put_object().bucket(&stack.raw).key(key).body(body.into());
        async move { put.send().await.unwrap() }
    };

    let key = "holiday/my cat+1.jpg";
    let original = jpeg(320, 200);
    drop(key, original.clone()).await;
    let meta = wait_dropped(&http, &base, key, None, &worker).await;
    assert_eq!(meta["status"], "ready", "{meta}");
    assert_eq!(meta["source_key"], key);
    let id = meta["id"].as_str().unwrap().to_string();
    assert_eq!(meta["original"]["key"], format!("uploads/{id}"));
    assert_eq!(meta["original"]["bytes"], original.len());
    // The bytes were copied to the id's own key; the dropped object stays.
    assert_eq!(stack.object(&stack.raw, &format!("uploads/{id}")).await.unwrap().0, original);
    assert_eq!(stack.object(&stack.raw, key).await.unwrap().0, original);
    let webp = http.get(format!("{base}/img/{id}/{}/webp", crate::recipe())).send().await.unwrap();
    assert_eq!(webp.status(), 200);
    let old_webp = webp.bytes().await.unwrap();
    assert_eq!(
        http.get(format!("{base}/meta/{id}")).send().await.unwrap().json::<serde_json::Value>().await.unwrap(),
        meta
    );

    // A duplicate event for the same object changes nothing.
    let duplicate = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": stack.raw}, "object": {"key": "holiday/my+cat%2B1.jpg", "size": original.len()}}
    }]});
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(&stack.queue_url)
        .message_body(duplicate.to_string())
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let handled = |log: String| log.lines().any(|l| l.contains("my cat+1.jpg") && l.contains("AlreadyDone"));
    while !handled(worker.log()) {
        assert!(started.elapsed() < Duration::from_secs(30), "duplicate not handled\n{}", worker.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = wait_dropped(&http, &base, key, None, &worker).await;
    assert_eq!(again["id"], id.as_str(), "a duplicate event made a new image");

    // New bytes at the same name: a new image; the old id keeps its bytes.
    drop(key, jpeg(200, 320)).await;
    let newer = wait_dropped(&http, &base, key, Some(&id), &worker).await;
    assert_eq!(newer["status"], "ready", "{newer}");
    assert_eq!((newer["original"]["width"].as_u64(), newer["original"]["height"].as_u64()), (Some(200), Some(320)));
    let old = http.get(format!("{base}/img/{id}/{}/webp", crate::recipe())).send().await.unwrap();
    assert_eq!(old.bytes().await.unwrap(), old_webp);
    let old_meta: serde_json::Value = http.get(format!("{base}/meta/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(old_meta["original"]["width"], 320);

    // Not an image: failed, with the reason, found by its name.
    drop("notes/readme.txt", b"just some text, not an image".to_vec()).await;
    let refused = wait_dropped(&http, &base, "notes/readme.txt", None, &worker).await;
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["error"]["code"], "unsupported_format", "{refused}");

    // A name never dropped.
    let missing = http.get(format!("{base}/meta")).query(&[("source_key", "nope.jpg")]).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let bad = http.get(format!("{base}/meta")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(worker.terminate().await.success());
    assert!(serve.terminate().await.success());
}

#[tokio::test]
async fn lambda_handler_outside_lambda_is_a_clear_error() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let mut env = stack.env("https://cdn.example.test");
    env.push(("IMGPIPE_HANDLER".into(), "http".into()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgpipe")).env_clear().envs(env).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AWS_LAMBDA_RUNTIME_API"), "{err}");
}

/// Secrets and the CDN's URL from SSM Parameter Store, as infra/ deploys
/// them: `IMGPIPE_PARAMETERS` names the path; serve and the worker read it
/// once at start; tokens and URLs follow without being in the environment.
#[tokio::test]
async fn settings_come_from_ssm_parameters() {
    use aws_sdk_ssm::types::ParameterType;
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let path = format!("/imgpipe/{}/", aws::unique("params"));
    for (name, value, kind) in [
        ("IMGPIPE_PUBLIC_BASE_URL", "https://cdn.example.test", ParameterType::String),
        ("IMGPIPE_UPLOAD_TOKENS", "ssm-token", ParameterType::SecureString),
        ("SOMETHING_ELSE", "ignored", ParameterType::String),
    ] {
        let put = stack.clients.ssm.put_parameter().name(format!("{path}{name}")).value(value).r#type(kind);
        put.send().await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut env = stack.env("");
    env.retain(|(k, _)| k != "IMGPIPE_PUBLIC_BASE_URL");
    env.push(("IMGPIPE_PARAMETERS".into(), path.trim_end_matches('/').into()));
    let addr = format!("127.0.0.1:{port}");
    let serve = Child::spawn(&["serve", "--addr", &addr], &env, dir.path(), "serve");
    let worker = Child::spawn(&["worker"], &env, dir.path(), "worker");

    let http = reqwest::Client::new();
    wait_serving(&http, &base, &serve).await;
    let original = jpeg(64, 48);
    let body = serde_json::json!({"content_type": "image/jpeg", "content_length": original.len()});
    let refused = http.post(format!("{base}/uploads")).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the token from SSM is required");
    let created: serde_json::Value = http
        .post(format!("{base}/uploads"))
        .header("x-imgpipe-token", "ssm-token")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["urls"]["thumb"], format!("https://cdn.example.test/img/{id}/{}/thumb", crate::recipe()));
    put_presigned(&created["upload"], original).await;
    let meta = wait_final(&http, &base, &id, &worker).await;
    assert_eq!(meta["status"], "ready", "{meta}");
    // The worker wrote the metadata: it read the CDN's URL from SSM too.
    assert_eq!(meta["variants"]["webp"]["url"], format!("https://cdn.example.test/img/{id}/{}/webp", crate::recipe()));
    assert!(worker.log().contains("settings from SSM parameters"), "{}", worker.log());
}

/// A command run by hand (`import`, `reprocess`) against `stack` with
/// `--backend aws` and `env` added: it must succeed; its JSON lines.
fn command(stack: &Stack, args: &[&str], env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .args(["--backend", "aws"])
        .env_clear()
        .envs(stack.env("https://cdn.example.test"))
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `imgpipe import s3://bucket/prefix --backend aws`: every object under
/// the prefix, named relative to it, on S3 + DynamoDB; a second run does
/// nothing.
#[tokio::test]
async fn import_from_a_bucket_into_the_aws_backend() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let library = aws::unique("library");
    aws::create_bucket(&stack.clients, &library).await;
    let objects = [("photos/a.jpg", jpeg(64, 48)), ("photos/2024/b.jpg", jpeg(48, 64)), ("other/c.jpg", jpeg(8, 8))];
    for (key, body) in &objects {
        stack.clients.s3.put_object().bucket(&library).key(*key).body(body.clone().into()).send().await.unwrap();
    }
    let source = format!("s3://{library}/photos/");
    // Without the CDN's URL (from the environment or SSM) it refuses to
    // start: the items it writes are final.
    let mut env = stack.env("");
    env.retain(|(k, _)| k != "IMGPIPE_PUBLIC_BASE_URL");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["import", &source, "--backend", "aws"])
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("IMGPIPE_PUBLIC_BASE_URL"));
    let run = || command(&stack, &["import", &source], &[]);
    let first = run();
    assert_eq!(first.len(), 3, "two images and the summary: {first:?}");
    assert_eq!(first[2]["summary"]["ready"], 2);
    let meta = imgpipe::meta::dynamo::DynamoMeta::new(stack.clients.dynamodb.clone(), &stack.table);
    use imgpipe::meta::MetaStore;
    for name in ["a.jpg", "2024/b.jpg"] {
        let id = meta.by_source(name).await.unwrap().unwrap_or_else(|| panic!("{name} not imported"));
        let item = meta.get(&id).await.unwrap().unwrap();
        assert_eq!(item.status, imgpipe::meta::Status::Ready);
        assert_eq!(item.variants["webp"].url, format!("https://cdn.example.test/img/{id}/{}/webp", crate::recipe()));
        assert!(stack.object(&stack.processed, &format!("img/{id}/{}/thumb", crate::recipe())).await.is_some());
        assert!(stack.object(&stack.raw, &format!("uploads/{id}")).await.is_some());
    }
    assert!(meta.by_source("c.jpg").await.unwrap().is_none() && meta.by_source("other/c.jpg").await.unwrap().is_none());
    assert_eq!(first.iter().filter(|r| r["source_key"] == "a.jpg").count(), 1, "the refused run imported nothing");
    let second = run();
    assert_eq!(second[2]["summary"]["unchanged"], 2, "{second:?}");
    assert_eq!(
        (second[0]["id"].clone(), second[1]["id"].clone()),
        if second[0]["source_key"] == first[0]["source_key"] {
            (first[0]["id"].clone(), first[1]["id"].clone())
        } else {
            (first[1]["id"].clone(), first[0]["id"].clone())
        }
    );
}

/// `DELETE /images/<id>` on S3 + DynamoDB: the objects and the item go,
/// and CloudFront (moto's) is asked to invalidate `/img/<id>/*`.
#[tokio::test]
async fn delete_on_aws_removes_the_objects_and_invalidates_the_cdn() {
    use aws_sdk_cloudfront::types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig, ViewerProtocolPolicy,
    };
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let cloudfront = stack.clients.cloudfront.clone();
    let origin = Origin::builder()
        .id("processed")
        .domain_name(format!("{}.s3.amazonaws.com", stack.processed))
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(aws::unique("ref"))
        .comment("imgpipe test")
        .enabled(true)
        .origins(Origins::builder().quantity(1).items(origin).build().unwrap())
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("processed")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let created = cloudfront.create_distribution().distribution_config(config).send().await.unwrap();
    let distribution = created.distribution.unwrap().id;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut env = stack.env(&base);
    env.push(("IMGPIPE_DISTRIBUTION_ID".into(), distribution.clone()));
    let serve = Child::spawn(&["serve", "--addr", &format!("127.0.0.1:{port}")], &env, dir.path(), "serve");
    let worker = Child::spawn(&["worker"], &env, dir.path(), "worker");
    let http = reqwest::Client::new();
    wait_serving(&http, &base, &serve).await;
    stack
        .clients
        .s3
        .put_object()
        .bucket(&stack.raw)
        .key("to-delete.jpg")
        .body(jpeg(96, 64).into())
        .send()
        .await
        .unwrap();
    let meta = wait_dropped(&http, &base, "to-delete.jpg", None, &worker).await;
    let id = meta["id"].as_str().unwrap().to_string();
    assert_eq!(http.get(format!("{base}/img/{id}/{}/webp/w=40", crate::recipe())).send().await.unwrap().status(), 200);

    let res = http.delete(format!("{base}/images/{id}")).send().await.unwrap();
    assert_eq!(res.status(), 204, "{}", serve.log());
    for key in [
        format!("img/{id}/{}/webp", crate::recipe()),
        format!("img/{id}/{}/thumb", crate::recipe()),
        format!("img/{id}/{}/webp/w=40", crate::recipe()),
    ] {
        assert!(stack.object(&stack.processed, &key).await.is_none(), "{key} is still there");
    }
    assert!(stack.object(&stack.raw, &format!("uploads/{id}")).await.is_none());
    assert!(stack.object(&stack.raw, "to-delete.jpg").await.is_none(), "an import of the bucket would bring it back");
    let gone = http.get(format!("{base}/meta/{id}")).send().await.unwrap();
    assert_eq!(gone.status(), 410);
    let invalidations = cloudfront.list_invalidations().distribution_id(&distribution).send().await.unwrap();
    let list = invalidations.invalidation_list.unwrap();
    assert_eq!(list.quantity, 1, "{list:?}");
    let one = list.items.unwrap()[0].id.clone();
    let got = cloudfront.get_invalidation().distribution_id(&distribution).id(&one).send().await.unwrap();
    let paths = got.invalidation.unwrap().invalidation_batch.unwrap().paths.unwrap().items.unwrap_or_default();
    assert_eq!(paths, vec![format!("/img/{id}/*")]);
    // Again: 204, nothing more to remove, and no second invalidation.
    assert_eq!(http.delete(format!("{base}/images/{id}")).send().await.unwrap().status(), 204);
    let again = cloudfront.list_invalidations().distribution_id(&distribution).send().await.unwrap();
    assert_eq!(again.invalidation_list.unwrap().quantity, 1);
    assert!(worker.terminate().await.success());
    assert!(serve.terminate().await.success());
}

/// A recipe change on S3 + DynamoDB: `imgpipe reprocess --all --backend
/// aws` writes the new recipe's variants under new keys and points the item
/// at them; every object of the old recipe is left byte for byte.
#[tokio::test]
async fn a_recipe_change_on_aws_leaves_old_keys_untouched() {
    use imgpipe::meta::MetaStore;
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let library = aws::unique("library");
    aws::create_bucket(&stack.clients, &library).await;
    stack.clients.s3.put_object().bucket(&library).key("cat.jpg").body(jpeg(96, 64).into()).send().await.unwrap();
    let run = |args: &[&str], max_dimension: &str| command(&stack, args, &[("IMGPIPE_MAX_DIMENSION", max_dimension)]);
    let imported = run(&["import", &format!("s3://{library}/")], "4096");
    assert_eq!(imported.last().unwrap()["summary"]["ready"], 1, "{imported:?}");
    let meta = imgpipe::meta::dynamo::DynamoMeta::new(stack.clients.dynamodb.clone(), &stack.table);
    let id = meta.by_source("cat.jpg").await.unwrap().unwrap();
    let old = meta.get(&id).await.unwrap().unwrap();
    let r1 = old.recipe.unwrap();
    let listing = || async {
        let res = stack.clients.s3.list_objects_v2().bucket(&stack.processed).prefix(format!("img/{id}/")).send();
        let res = res.await.unwrap();
        res.contents().iter().map(|o| (o.key().unwrap().to_string(), o.e_tag().unwrap().to_string())).collect()
    };
    let before: std::collections::BTreeMap<String, String> = listing().await;
    assert_eq!(before.len(), 5);
    assert!(before.keys().all(|k| k.starts_with(&format!("img/{id}/{r1}/"))), "{before:?}");

    let reprocessed = run(&["reprocess", "--all"], "48");
    assert_eq!(reprocessed.len(), 2, "one image and the summary: {reprocessed:?}");
    let r2 = reprocessed[0]["recipe"].as_str().unwrap().to_string();
    assert_ne!(r2, r1.to_string());
    let new = meta.get(&id).await.unwrap().unwrap();
    assert_eq!(new.recipe.map(|r| r.to_string()), Some(r2.clone()));
    assert_eq!((new.variants["jpeg"].width, new.variants["jpeg"].height), (48, 32));
    assert_eq!(new.variants["webp"].url, format!("https://cdn.example.test/img/{id}/{r2}/webp"));
    let after: std::collections::BTreeMap<String, String> = listing().await;
    for (key, etag) in &before {
        assert_eq!(after.get(key), Some(etag), "{key} changed");
    }
    assert_eq!(after.keys().filter(|k| k.starts_with(&format!("img/{id}/{r2}/"))).count(), 5, "{after:?}");
    let again = run(&["reprocess", "--all"], "48");
    assert_eq!(again.len(), 1, "nothing left: {again:?}");
}

/// Keys as S3 spells them: `2024//double.jpg` is not `2024/double.jpg`, a
/// prefix is a folder (`s3://b/photos` never takes `photosx/`), and a key no
/// drop-in can have is skipped with the real reason, never "gone from the
/// bucket".
#[tokio::test]
async fn import_from_a_bucket_takes_keys_as_s3_spells_them() {
    let Some(endpoint) = aws::moto() else { return };
    let stack = Stack::create(&endpoint).await;
    let library = aws::unique("library");
    aws::create_bucket(&stack.clients, &library).await;
    for key in ["photos/double.jpg", "photos//double.jpg", "photos/./dot.jpg", "photos/tab\there.jpg", "photosx/no.jpg"]
    {
        stack.clients.s3.put_object().bucket(&library).key(key).body(jpeg(16, 16).into()).send().await.unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(["import", &format!("s3://{library}/photos"), "--backend", "aws"])
        .env_clear()
        .envs(stack.env("https://cdn.example.test"))
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(out.status.code(), Some(1), "skipped entries make the exit status 1: {lines:?}");
    let status =
        |name: &str| lines.iter().find(|l| l["source_key"].as_str().is_some_and(|k| k.contains(name))).cloned();
    let plain = lines.iter().find(|l| l["source_key"] == "double.jpg").unwrap();
    let doubled = lines.iter().find(|l| l["source_key"] == "/double.jpg").unwrap();
    assert_eq!((plain["status"].as_str(), doubled["status"].as_str()), (Some("ready"), Some("ready")));
    assert_ne!(plain["id"], doubled["id"], "two keys, two images");
    for (name, why) in [("dot.jpg", "'.' or '..'"), ("here.jpg", "control character")] {
        let line = status(name).unwrap_or_else(|| panic!("{name}: {lines:?}"));
        assert_eq!(line["status"], "skipped", "{line}");
        assert!(line["message"].as_str().unwrap().contains(why), "{line}");
    }
    assert!(status("no.jpg").is_none(), "photosx/ is not under photos/: {lines:?}");
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!((summary["ready"].as_u64(), summary["skipped"].as_u64()), (Some(2), Some(2)), "{summary}");
}
