//! One client cannot take the renders of everyone else: an attacker asking
//! for distinct renders of a costly image as fast as it can, from
//! 127.0.0.1, and a normal user from 127.0.0.2 (another loopback address
//! is another client). The attacker is shed past its share of the queue;
//! the normal user is served.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::helpers::{img, noise_png, photo, TestApp};

fn from(last: u8) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, last])).build().unwrap()
}

#[tokio::test]
async fn a_greedy_client_gets_its_share_and_another_is_still_served() {
    let app =
        TestApp::spawn_with(&[("IMGPIPE_MAX_QUEUED_RENDERS", "8"), ("IMGPIPE_MAX_QUEUED_RENDERS_PER_CLIENT", "2")])
            .await;
    let costly = app.upload(noise_png(2400, 1800, 7), "image/png").await;
    let normal = app.upload(photo(640, 480), "image/jpeg").await;
    app.wait_final(&costly).await;
    app.wait_final(&normal).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (shed, served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let next = Arc::new(AtomicUsize::new(100));
    let attackers: Vec<_> = (0..12)
        .map(|_| {
            let (stop, shed, served, next) = (stop.clone(), shed.clone(), served.clone(), next.clone());
            let (http, base) = (from(1), app.base.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let w = next.fetch_add(1, Ordering::SeqCst);
                    let url = format!("{base}{}", img(costly, &format!("png?w={w}")));
                    match http.get(url).send().await.map(|r| r.status().as_u16()) {
                        Ok(503) => shed.fetch_add(1, Ordering::SeqCst),
                        Ok(_) => served.fetch_add(1, Ordering::SeqCst),
                        Err(_) => 0,
                    };
                }
            })
        })
        .collect();
    // The attack is under way: the queue is full of the attacker's renders.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let http = from(2);
    let mut ok = 0;
    let tries = 20;
    for w in 0..tries {
        let url = format!("{}{}", app.base, img(normal, &format!("webp?w={}", 200 + w)));
        let res = http.get(url).send().await.unwrap();
        ok += usize::from(res.status() == 200);
    }
    stop.store(true, Ordering::SeqCst);
    for a in attackers {
        a.await.unwrap();
    }
    let (shed, served) = (shed.load(Ordering::SeqCst), served.load(Ordering::SeqCst));
    assert!(shed > 0, "the attacker was never shed ({served} served): no contention to test");
    assert!(
        ok * 10 >= tries * 9,
        "the normal user got {ok} of {tries} renders (attacker: {served} served, {shed} shed)"
    );
}

/// A render's cost is known before it starts (the original's pixels,
/// weighted by format): past the limit it is refused with 422, before a
/// core is taken or the original read; the standard variants still serve.
#[tokio::test]
async fn a_render_costing_more_than_the_limit_is_refused_before_it_starts() {
    let app = TestApp::spawn_with(&[("IMGPIPE_MAX_RENDER_COST", "4")]).await;
    let big = app.upload(noise_png(2000, 1500, 3), "image/png").await; // 3 MP × 1.5
    let small = app.upload(noise_png(1000, 1000, 4), "image/png").await; // 1 MP × 1.5
    app.wait_final(&big).await;
    app.wait_final(&small).await;
    let reads = app.store.reads.load(Ordering::SeqCst);
    let res = app.get(&img(big, "webp?w=300")).await;
    assert_eq!(res.status(), 422);
    let problem = crate::helpers::json(res).await;
    assert_eq!(problem["code"], "too_costly");
    assert!(problem["detail"].as_str().unwrap().contains("IMGPIPE_MAX_RENDER_COST"), "{problem}");
    // The lookup of the render's key, and nothing of the original.
    assert_eq!(app.store.reads.load(Ordering::SeqCst), reads + 1, "the original was read");
    assert_eq!(app.get(&img(big, "webp")).await.status(), 200, "the standard variant");
    assert_eq!(app.get(&img(small, "webp?w=300")).await.status(), 200);
}
