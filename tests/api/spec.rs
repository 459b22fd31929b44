//! `openapi.yaml` and the router describe the same routes, and the spec is
//! served as written.

use axum::body::Body;
use axum::http::Request;
use imgpipe::app::{OPENAPI, ROUTES};
use imgpipe::keys::ImageId;

use crate::helpers::{body_bytes, json, TestApp};

/// The keys under `paths:` (two-space indented, starting with `/`).
fn spec_paths() -> Vec<String> {
    let mut in_paths = false;
    let mut paths = Vec::new();
    for line in OPENAPI.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if in_paths && line.starts_with("  /") && line.trim_end().ends_with(':') {
            paths.push(line.trim().trim_end_matches(':').to_string());
        }
    }
    paths.sort();
    paths
}

#[test]
fn router_routes_and_spec_paths_are_the_same_set() {
    let mut routed: Vec<String> = ROUTES.iter().flat_map(|(_, spec)| spec.iter().map(|s| s.to_string())).collect();
    routed.sort();
    assert_eq!(routed, spec_paths());
}

#[tokio::test]
async fn every_spec_path_reaches_a_handler() {
    let app = TestApp::spawn().await;
    let id = ImageId::new().to_string();
    for path in spec_paths() {
        let concrete = path
            .replace("{id}", &id)
            .replace("{recipe}", &imgpipe::engine::Engine::default().recipe().to_string())
            .replace("{variant}", "webp")
            .replace("{format}", "webp")
            .replace("{opts}", "w=10");
        let req = match path.as_str() {
            "/uploads" => Request::post(&concrete).header("content-type", "application/json").body(Body::from("{}")),
            "/_upload/{id}" => Request::put(&concrete).body(Body::empty()),
            "/images/{id}" => Request::delete(&concrete).body(Body::empty()),
            _ => Request::get(&concrete).body(Body::empty()),
        };
        let res = app.call(req.unwrap()).await;
        let status = res.status();
        if status.is_client_error() {
            let code = json(res).await["code"].as_str().unwrap().to_string();
            assert!(code != "no_route" && code != "method_not_allowed", "{path}: {code}");
        } else {
            // A path without a recipe version redirects to one with it.
            assert!(status.is_success() || status == 302, "{path}: {status}");
        }
    }
    let res = app.get("/openapi.yaml").await;
    assert_eq!(res.headers()["content-type"], "application/yaml");
    assert_eq!(body_bytes(res).await, OPENAPI.as_bytes());
    let res = app.get("/nowhere").await;
    assert_eq!(json(res).await["code"], "no_route");
}

/// The `ErrorCode` enum in openapi.yaml, in order.
fn spec_error_codes() -> Vec<String> {
    let start = OPENAPI.find("    ErrorCode:").expect("openapi.yaml has an ErrorCode schema");
    let enum_at = start + OPENAPI[start..].find("      enum:").expect("ErrorCode has an enum");
    OPENAPI[enum_at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("        - "))
        .map(|l| l.trim_start_matches("        - ").trim().to_string())
        .collect()
}

#[test]
fn openapi_and_readme_name_every_error_code_with_its_status() {
    use imgpipe::http::problem::Code;
    let ours: Vec<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    let mut spec = spec_error_codes();
    let mut sorted = ours.clone();
    spec.sort();
    sorted.sort();
    assert_eq!(spec, sorted, "openapi.yaml's ErrorCode enum and http::problem::Code");

    // README: "`code` (status)" groups, each code listed once with its status.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("Errors are `application/problem+json`").expect("README lists the error codes");
    let list = &readme[start..start + readme[start..].find("\n\n").unwrap()];
    for code in Code::ALL {
        let at = list.find(&format!("`{}`", code.as_str())).unwrap_or_else(|| panic!("README misses `{code}`"));
        let status = list[at..].find('(').map(|i| &list[at + i + 1..at + i + 4]).unwrap_or_default();
        assert_eq!(status, code.status().as_str(), "README gives `{code}` the wrong status");
    }
}

fn rust_files(dir: &str) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// ARCHITECTURE.md's layering: the engine is pure (no HTTP, storage,
/// metadata or URL parsing), and handlers see only the store traits.
#[test]
fn layers_import_only_downwards() {
    for file in rust_files("src/engine") {
        let text = std::fs::read_to_string(&file).unwrap();
        for layer in ["crate::http", "crate::store", "crate::meta", "crate::transform", "crate::app", "tokio::"] {
            assert!(!text.contains(layer), "{} names {layer}", file.display());
        }
    }
    for file in rust_files("src/http") {
        let text = std::fs::read_to_string(&file).unwrap();
        for adapter in ["FsStore", "SqliteMeta", "S3Store", "DynamoMeta"] {
            assert!(!text.contains(adapter), "{} names {adapter}", file.display());
        }
    }
}

/// ARCHITECTURE.md's "Where is it decided?" table: every file it names
/// exists, and every name beside a file is defined in that file, so the
/// one hop it promises lands.
#[test]
fn architecture_says_where_each_thing_is_decided() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let start = doc.find("## Where is it decided?").expect("ARCHITECTURE.md has the table");
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Question")).collect();
    assert!(rows.len() >= 15, "{} rows", rows.len());
    for row in rows {
        let place = row.trim_end_matches('|').rsplit('|').next().unwrap();
        let ticked: Vec<&str> = place.split('`').skip(1).step_by(2).collect();
        let mut file: Option<String> = None;
        assert!(!ticked.is_empty(), "no file in: {row}");
        for item in ticked {
            if item.contains('/') {
                let text = std::fs::read_to_string(root.join(item)).unwrap_or_else(|e| panic!("{item}: {e}"));
                file = Some(text);
            } else {
                let text = file.as_deref().unwrap_or_else(|| panic!("`{item}` before any file in: {row}"));
                let defined = ["fn", "struct", "enum", "const", "static", "type"].iter().any(|kw| {
                    text.contains(&format!("{kw} {item}("))
                        || text.contains(&format!("{kw} {item} "))
                        || text.contains(&format!("{kw} {item}:"))
                        || text.contains(&format!("{kw} {item}<"))
                });
                assert!(defined, "`{item}` is not defined where ARCHITECTURE.md says: {row}");
            }
        }
    }
}
