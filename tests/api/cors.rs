//! CORS and the upload page: preflights are answered 204 with what each
//! route takes and never need a token; answers to a named origin carry
//! `Access-Control-Allow-Origin` and `Vary: Origin`; other origins get no
//! CORS headers; the token travels in `X-Imgpipe-Token`; `GET /` is the page.

use axum::body::Body;
use axum::http::{Request, Response};

use crate::helpers::{body_bytes, img, json, photo, TestApp};

const SITE: &str = "http://127.0.0.1:5173";

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Response<Body> {
    app.call(
        Request::options(path)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type,x-imgpipe-token,x-amz-content-sha256")
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn vary_has_origin(res: &Response<Body>) -> bool {
    res.headers().get_all("vary").iter().any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin"))
}

#[tokio::test]
async fn preflights_are_answered_for_named_origins_without_a_token() {
    let app = TestApp::spawn_with(&[
        ("IMGPIPE_CORS_ORIGINS", &format!("https://app.example.com,{SITE}")),
        ("IMGPIPE_UPLOAD_TOKENS", "s3cret"),
    ])
    .await;
    let id = imgpipe::keys::ImageId::new();
    for (path, method, allowed) in [
        ("/uploads".to_string(), "POST", "POST, OPTIONS"),
        (format!("/_upload/{id}"), "PUT", "PUT, OPTIONS"),
        (format!("/meta/{id}"), "GET", "GET, HEAD, OPTIONS"),
        (img(id, "webp"), "GET", "GET, HEAD, OPTIONS"),
        (img(id, "webp/w=640"), "GET", "GET, HEAD, OPTIONS"),
    ] {
        let res = preflight(&app, &path, SITE, method).await;
        assert_eq!(res.status(), 204, "{path}");
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], SITE, "{path}");
        assert_eq!(h["access-control-allow-methods"], allowed, "{path}");
        assert_eq!(h["allow"], allowed, "{path}");
        let headers = h["access-control-allow-headers"].to_str().unwrap();
        for needed in ["content-type", "x-imgpipe-token", "x-amz-content-sha256"] {
            assert!(headers.contains(needed), "{path}: {headers}");
        }
        assert!(vary_has_origin(&res), "{path}");

        // Another origin: still 204, but nothing that lets a browser through.
        let res = preflight(&app, &path, "https://evil.example", method).await;
        assert_eq!(res.status(), 204, "{path}");
        assert!(res.headers().get("access-control-allow-origin").is_none(), "{path}");
        assert!(res.headers().get("access-control-allow-methods").is_none(), "{path}");
    }
    // The page and the operational routes stay same-origin.
    for path in ["/", "/health", "/openapi.yaml"] {
        let res = preflight(&app, path, SITE, "GET").await;
        assert_eq!(res.status(), 405, "{path}");
        assert!(res.headers().get("access-control-allow-origin").is_none(), "{path}");
    }
}

#[tokio::test]
async fn answers_carry_the_origin_and_vary_and_the_token_header_works() {
    let app = TestApp::spawn_with(&[("IMGPIPE_CORS_ORIGINS", SITE), ("IMGPIPE_UPLOAD_TOKENS", "s3cret")]).await;
    let bytes = photo(64, 48);
    let body = serde_json::json!({"content_type": "image/jpeg", "content_length": bytes.len()}).to_string();
    let post = |token: Option<(&'static str, &'static str)>| {
        let mut req = Request::post("/uploads").header("content-type", "application/json").header("origin", SITE);
        if let Some((name, value)) = token {
            req = req.header(name, value);
        }
        req.body(Body::from(body.clone())).unwrap()
    };
    // No token: 401 that names the header; a wrong one: 403. Both readable
    // by the page (CORS headers on errors too), so it can ask for a token.
    let res = app.call(post(None)).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["access-control-allow-origin"], SITE);
    assert!(json(res).await["detail"].as_str().unwrap().contains("X-Imgpipe-Token"));
    assert_eq!(app.call(post(Some(("x-imgpipe-token", "nope")))).await.status(), 403);
    // X-Imgpipe-Token wins over an Authorization header that OAC rewrote.
    let mut req = post(Some(("x-imgpipe-token", "s3cret")));
    req.headers_mut().insert("authorization", "AWS4-HMAC-SHA256 Credential=x/y, Signature=z".parse().unwrap());
    let res = app.call(req).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["access-control-allow-origin"], SITE);
    assert!(res.headers()["access-control-expose-headers"].to_str().unwrap().contains("etag"));
    assert!(vary_has_origin(&res));
    // Authorization: Bearer still works where no OAC is involved.
    assert_eq!(app.call(post(Some(("authorization", "Bearer s3cret")))).await.status(), 201);

    let created = json(res).await;
    let id = created["id"].as_str().unwrap().to_string();
    let path = app.local_path(created["upload"]["url"].as_str().unwrap());
    let res = app
        .call(
            Request::put(&path)
                .header("origin", SITE)
                .header("content-type", "image/jpeg")
                .header("content-length", bytes.len())
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], SITE);
    app.wait_final(&imgpipe::keys::ImageId::parse(&id).unwrap()).await;
    for path in [format!("/meta/{id}"), img(&id, "thumb"), img(&id, "auto")] {
        let res = app.call(Request::get(&path).header("origin", SITE).body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["access-control-allow-origin"], SITE, "{path}");
        assert!(vary_has_origin(&res), "{path}");
    }
    // `auto` keeps its Vary: Accept next to Vary: Origin.
    let res = app.get(&img(&id, "auto")).await;
    let vary: Vec<String> = res.headers().get_all("vary").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(vary.iter().any(|v| v.contains("Accept")), "{vary:?}");
    // Same-origin requests carry no Origin, and get no Allow-Origin.
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_cors_origins_nothing_is_cross_origin() {
    let app = TestApp::spawn().await;
    let res = preflight(&app, "/uploads", SITE, "POST").await;
    assert_eq!(res.status(), 204);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = app.call(Request::get("/health").header("origin", SITE).body(Body::empty()).unwrap()).await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert!(!vary_has_origin(&res));
}

#[tokio::test]
async fn the_upload_page_is_served_with_its_own_policy() {
    let app = TestApp::spawn_with(&[("IMGPIPE_UPLOAD_TOKENS", "s3cret")]).await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"), "{csp}");
    assert!(csp.contains(&format!("connect-src 'self' {}", app.base)), "{csp}");
    let html = String::from_utf8(body_bytes(res).await.to_vec()).unwrap();
    assert!(html.contains(r#"data-token-required="true""#));
    assert!(html.contains(r#"<script src="/ui/app.js" defer></script>"#));
    assert!(!html.contains("{{"), "every placeholder is filled");
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");

    for (file, ct) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let res = app.get(&format!("/ui/{file}")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], ct);
        assert!(!body_bytes(res).await.is_empty());
    }
    let res = app.get("/ui/nope.js").await;
    assert_eq!(
        (res.status().as_u16(), json(res).await["code"].as_str().unwrap().to_string()),
        (404, "not_found".into())
    );
    let open = TestApp::spawn().await;
    let html = body_bytes(open.get("/").await).await;
    assert!(String::from_utf8_lossy(&html).contains(r#"data-token-required="false""#));
}
