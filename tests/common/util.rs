//! Helpers every test binary that starts servers or makes images needs.
#![allow(dead_code)]

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The next value of a xorshift32 sequence: deterministic noise for
/// generated images and garbage inputs (`state` must not be 0).
pub fn xorshift(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

/// A PNG of xorshift noise: it does not compress, so its PNG variant is as
/// big, and it is slow to compress and to decode, so jobs and renders of it
/// take long enough to be queued, cut off or killed mid-way. `seed` picks
/// the noise.
pub fn noise_png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    let img = RgbImage::from_fn(w, h, |_, _| {
        let n = xorshift(&mut s);
        Rgb([n as u8, (n >> 8) as u8, (n >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img).write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}
