//! Recipe versions: a setting that shapes bytes changes every variant's
//! key, old keys keep their bytes, a path without a recipe (or with an old
//! one that has no object) is redirected to the current recipe, and
//! `reprocess` moves images to the current recipe once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::Request;
use image::GenericImageView;
use imgpipe::http::images::REDIRECT_CACHE;

use crate::helpers::{body_bytes, photo, TestApp};

/// Every object file of `id` in the folder store, by name.
fn objects(data: &Path, id: &imgpipe::keys::ImageId) -> BTreeMap<String, Vec<u8>> {
    let dir = data.join(format!("objects/img/{id}"));
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_recipe_change_leaves_old_keys_untouched_and_reprocess_moves_on() {
    let before = TestApp::spawn().await;
    let id = before.upload(photo(640, 480), "image/jpeg").await;
    let old = before.wait_final(&id).await;
    let r1 = old.recipe.expect("variants are made under a recipe");
    for v in old.variants.values() {
        assert!(v.key.starts_with(&format!("img/{id}/{r1}/")) && v.url.ends_with(&v.key), "{v:?}");
    }
    let old_render = format!("/img/{id}/{r1}/webp/w=100");
    assert_eq!(before.get(&old_render).await.status(), 200);
    let snapshot = objects(before.dir.path(), &id);
    assert_eq!(snapshot.len(), 12, "five variants and one render, each with its headers: {:?}", snapshot.keys());

    // The same data dir, served with a smaller long side: another recipe.
    let after = TestApp::spawn_in(before.dir, &[("IMGPIPE_MAX_DIMENSION", "320")]).await;
    let r2 = after.state.engine.recipe();
    assert_ne!(r1, r2, "IMGPIPE_MAX_DIMENSION shapes bytes");

    // Every URL handed out before still answers its own bytes.
    for v in old.variants.values() {
        let res = after.get(&format!("/{}", v.key)).await;
        assert_eq!(res.status(), 200, "{}", v.key);
        let name = v.key.rsplit('/').next().unwrap();
        assert_eq!(body_bytes(res).await.as_ref(), snapshot[&format!("{r1}~{name}")], "{}", v.key);
    }
    assert_eq!(body_bytes(after.get(&old_render).await).await.as_ref(), snapshot[&format!("{r1}~webp~w=100")]);

    // No recipe in the path, or an old one with nothing stored: a redirect
    // to the current recipe, never a render under the old key.
    for (path, to) in [
        (format!("/img/{id}/webp?w=100"), format!("/img/{id}/{r2}/webp/w=100")),
        (format!("/img/{id}/thumb"), format!("/img/{id}/{r2}/thumb")),
        (format!("/img/{id}/{r1}/webp/w=90"), format!("/img/{id}/{r2}/webp/w=90")),
    ] {
        let res = after.get(&path).await;
        assert_eq!(res.status(), 302, "{path}");
        assert_eq!(res.headers()["location"], to.as_str(), "{path}");
        assert_eq!(res.headers()["cache-control"], REDIRECT_CACHE, "{path}");
    }
    let auto = Request::get(format!("/img/{id}/auto?w=50")).header("accept", "image/webp").body(Body::empty());
    let res = after.call(auto.unwrap()).await;
    assert_eq!(res.headers()["location"], format!("/img/{id}/{r2}/webp/w=50").as_str());
    assert_eq!(res.headers()["vary"], "Accept");
    let head = after.call(Request::head(format!("/img/{id}/png")).body(Body::empty()).unwrap()).await;
    assert_eq!(head.status(), 302);
    assert!(!objects(after.dir.path(), &id).contains_key(&format!("{r1}~webp~w=90")), "nothing new under r1");

    // The current recipe is rendered on a miss even before a reprocess.
    let res = after.get(&format!("/img/{id}/{r2}/jpeg")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(image::load_from_memory(&body_bytes(res).await).unwrap().dimensions(), (320, 240));

    // reprocess: the item moves to r2, with the new sizes; the old objects
    // are exactly as they were.
    let outdated = after.state.meta.outdated(r2).await.unwrap();
    assert_eq!(outdated, [id]);
    let mut reports = Vec::new();
    let summary = imgpipe::reprocess::run(&after.state, outdated, 2, |r| reports.push(r.clone())).await;
    assert_eq!((summary.ready, summary.errors), (1, 0), "{reports:?}");
    let new = after.state.meta.get(&id).await.unwrap().unwrap();
    assert_eq!(new.recipe, Some(r2));
    assert_eq!((new.variants["jpeg"].width, new.variants["jpeg"].height), (320, 240));
    assert_eq!(new.variants["jpeg"].url, format!("{}/img/{id}/{r2}/jpeg", after.base));
    assert_eq!(new.original, old.original, "the original is the same image");
    let now = objects(after.dir.path(), &id);
    for (name, bytes) in &snapshot {
        assert_eq!(&now[name], bytes, "{name} changed");
    }
    for v in new.variants.values() {
        assert_eq!(body_bytes(after.get(&format!("/{}", v.key)).await).await.len() as u64, v.bytes, "{}", v.key);
    }

    // Again: nothing to do.
    assert!(after.state.meta.outdated(r2).await.unwrap().is_empty());
    let again = imgpipe::reprocess::run(&after.state, vec![id], 1, |_| {}).await;
    assert_eq!((again.ready, again.unchanged), (0, 1));
    assert_eq!(after.state.meta.get(&id).await.unwrap().unwrap(), new, "a second run changes nothing");
}

fn imgpipe(args: &[&str], data: &Path, max_dimension: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IMGPIPE_MAX_DIMENSION", max_dimension)
        .env("IMGPIPE_PUBLIC_BASE_URL", "https://img.example.test")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The command a person runs after changing a setting: `imgpipe recipe`
/// names the new version, `reprocess --all` makes it, once.
#[test]
fn the_reprocess_command_moves_every_image_once() {
    let photos = tempfile::tempdir().unwrap();
    std::fs::write(photos.path().join("a.jpg"), photo(300, 200)).unwrap();
    std::fs::write(photos.path().join("b.jpg"), photo(200, 300)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let imported = lines(&imgpipe(&["import", &photos.path().to_string_lossy()], data.path(), "4096"));
    assert_eq!(imported.last().unwrap()["summary"]["ready"], 2, "{imported:?}");

    let recipe = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("recipe")
        .env_clear()
        .env("IMGPIPE_MAX_DIMENSION", "100")
        .output()
        .unwrap();
    assert!(recipe.status.success());
    let recipe = String::from_utf8(recipe.stdout).unwrap();
    let version = recipe.lines().next().unwrap().to_string();
    assert!(recipe.contains("max_dimension 100\n"), "{recipe}");

    let first = lines(&imgpipe(&["reprocess", "--all"], data.path(), "100"));
    assert_eq!(first.len(), 3, "two images and the summary: {first:?}");
    for report in &first[..2] {
        assert_eq!(report["status"], "ready", "{report}");
        assert_eq!(report["recipe"], version.as_str());
    }
    assert_eq!(first[2]["summary"]["ready"], 2);
    let second = lines(&imgpipe(&["reprocess", "--all"], data.path(), "100"));
    assert_eq!(second.len(), 1, "nothing left to do: {second:?}");
    assert_eq!(second[0]["summary"]["ready"], 0);

    let by_id = imgpipe(&["reprocess", "--id", first[0]["id"].as_str().unwrap()], data.path(), "100");
    assert_eq!(lines(&by_id)[0]["status"], "unchanged");
    let bad = imgpipe(&["reprocess", "--id", "nope"], data.path(), "100");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"nope\" is not an image id"));
    let neither = imgpipe(&["reprocess"], data.path(), "100");
    assert_eq!(neither.status.code(), Some(2), "--id or --all is required");
}

/// `imgpipe recipe | head -n 1` is how scripts read the version: a reader
/// that stops early ends the command quietly, never with a panic.
#[test]
fn a_closed_stdout_ends_a_printing_command_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgpipe"))
        .arg("recipe")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The read end closes before the command writes a byte.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}
