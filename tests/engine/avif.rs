//! AVIF input: the small files in tests/fixtures/avif (written by
//! scripts/avif-fixtures.py with Pillow/libavif, as the crate has no AVIF
//! encoder) and, when the corpus is present, its two AVIF photos.

use image::{DynamicImage, GenericImageView, RgbaImage};
use imgpipe::engine::{Engine, Format, Limits, Pixels, Variant};

use crate::corpus::common::corpus_dir;
use crate::helpers::mean_rgb;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/avif").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode(bytes: &[u8]) -> imgpipe::engine::Decoded {
    Engine::new(Limits::default()).decode(bytes).expect("decode")
}

fn rgba(pixels: Pixels) -> RgbaImage {
    match pixels {
        Pixels::Rgb(i) => DynamicImage::ImageRgb8(i).into_rgba8(),
        Pixels::Rgba(i) => i,
    }
}

fn assert_near(img: &RgbaImage, x: u32, y: u32, want: [u8; 4], what: &str) {
    let got = img.get_pixel(x, y).0;
    let off = got.iter().zip(want).map(|(g, w)| (i16::from(*g) - i16::from(w)).abs()).max().unwrap();
    assert!(off <= 12, "{what}: pixel ({x},{y}) is {got:?}, expected about {want:?}");
}

const RED: [u8; 4] = [255, 0, 0, 255];
const GREEN: [u8; 4] = [0, 255, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];
const WHITE: [u8; 4] = [255, 255, 255, 255];

#[test]
fn avif_444_and_420_decode_to_the_right_colours() {
    for name in ["quadrants-444.avif", "quadrants-420.avif"] {
        let d = decode(&fixture(name));
        assert_eq!(d.info.format, Format::Avif, "{name}");
        assert_eq!((d.info.width, d.info.height), (64, 48), "{name}");
        assert!(!d.info.has_alpha, "{name}: opaque image reported with alpha");
        let img = rgba(d.pixels);
        // Quadrant centres, away from the edges AV1 may soften.
        assert_near(&img, 16, 12, RED, name);
        assert_near(&img, 48, 12, GREEN, name);
        assert_near(&img, 16, 36, BLUE, name);
        assert_near(&img, 48, 36, WHITE, name);
    }
}

#[test]
fn avif_alpha_item_becomes_the_alpha_channel() {
    let d = decode(&fixture("alpha.avif"));
    assert!(d.info.has_alpha);
    let img = rgba(d.pixels);
    assert_near(&img, 16, 12, RED, "opaque half");
    assert_near(&img, 16, 36, BLUE, "opaque half");
    for (x, y) in [(40, 5), (60, 40), (33, 24)] {
        assert_eq!(img.get_pixel(x, y).0[3], 0, "transparent half at ({x},{y})");
    }
}

#[test]
fn animated_avif_keeps_the_first_frames_alpha() {
    let d = decode(&fixture("animated-alpha.avif"));
    assert_eq!(d.info.frames, 3);
    assert!(d.info.has_alpha, "animated AVIF with alpha reported opaque");
    let img = rgba(d.pixels);
    assert_near(&img, 16, 12, RED, "opaque half");
    for (x, y) in [(40, 5), (60, 40)] {
        assert_eq!(img.get_pixel(x, y).0[3], 0, "transparent half at ({x},{y})");
    }
}

#[test]
fn avif_irot_turns_the_pixels() {
    // Written with EXIF orientation 6, which libavif stores as irot: the
    // picture turns 90° clockwise, so blue moves to the top left.
    let d = decode(&fixture("orientation-6.avif"));
    assert_eq!((d.info.width, d.info.height), (48, 64));
    assert_eq!(d.info.orientation, 6);
    let img = rgba(d.pixels);
    assert_near(&img, 12, 16, BLUE, "top left");
    assert_near(&img, 36, 16, RED, "top right");
    assert_near(&img, 12, 48, WHITE, "bottom left");
    assert_near(&img, 36, 48, GREEN, "bottom right");
}

#[test]
fn avif_gives_the_five_variants_without_metadata() {
    let engine = Engine::new(Limits::default());
    let d = engine.decode(&fixture("orientation-6.avif")).unwrap();
    let variants = engine.standard(&d, &Variant::ALL).unwrap();
    assert_eq!(variants.len(), 5);
    for (v, r) in &variants {
        let img = image::load_from_memory(&r.bytes).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        assert_eq!(img.dimensions(), (48, 64), "{v:?}");
    }
}

#[test]
fn damaged_avif_is_undecodable_not_a_panic() {
    let good = fixture("quadrants-444.avif");
    let engine = Engine::new(Limits::default());
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [24, 100, good.len() / 2, good.len() - 20, good.len() - 1] {
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    // Every byte of the file flipped in turn, two ways: container and AV1
    // payload alike. (A panic inside rav1d would abort this process, since
    // it cannot unwind out of rav1d's `extern "C"` functions.)
    for at in 0..good.len() {
        for mask in [0xFF, 0x10] {
            let mut bad = good.clone();
            bad[at] ^= mask;
            cases.push((format!("byte {at} ^ {mask:#x}"), bad));
        }
    }
    let mut header_only = b"\0\0\0\x18ftypavif\0\0\0\0avifmif1".to_vec();
    header_only.extend_from_slice(&[0xFF; 64]);
    cases.push(("ftyp then garbage".into(), header_only));
    for (what, bytes) in cases {
        match engine.decode(&bytes) {
            Err(e) => assert!(matches!(e.code(), "undecodable" | "unsupported_format"), "{what}: {} ({e})", e.code()),
            // A flipped byte may land in a coefficient or an unused field:
            // still a picture, of a sane size.
            Ok(d) => assert!(d.info.width * d.info.height <= 64 * 64 * 4, "{what}: {}x{}", d.info.width, d.info.height),
        }
    }
}

#[test]
fn corpus_avif_colours_match_a_colour_managed_decode() {
    let Some(dir) = corpus_dir() else { return };
    let engine = Engine::new(Limits::default());
    // Mean colours from Pillow 12 (libavif 1.3) with LittleCMS: the iPhone
    // photo is Display P3, so its sRGB mean (150.8, 122.7, 92.6) differs
    // from the unconverted one (146.8, 124.0, 97.9).
    let photo = engine.decode(&std::fs::read(dir.join("photo-iphone-12mp-3024x4032.avif")).unwrap()).unwrap();
    assert_eq!((photo.info.width, photo.info.height), (3024, 4032));
    assert!(photo.info.icc);
    let img = DynamicImage::ImageRgba8(rgba(photo.pixels));
    let got = mean_rgb(&img, 0, 0, 3024, 4032);
    let off = got.iter().zip([150.8, 122.7, 92.6]).map(|(g, e)| (g - e).abs()).fold(0.0, f64::max);
    assert!(off < 1.5, "iphone avif: mean colour {got:?}, expected about (150.8, 122.7, 92.6)");

    let alpha = engine.decode(&std::fs::read(dir.join("avif-alpha.avif")).unwrap()).unwrap();
    assert!(alpha.info.has_alpha);
    let img = rgba(alpha.pixels);
    let n = f64::from(img.width() * img.height());
    let mut mean = [0f64; 4];
    for p in img.pixels() {
        for (m, v) in mean.iter_mut().zip(p.0) {
            *m += f64::from(v) / n;
        }
    }
    // Pillow: (73.3, 176.4, 119.7, 200.5).
    let off = mean.iter().zip([73.3, 176.4, 119.7, 200.5]).map(|(g, e)| (g - e).abs()).fold(0.0, f64::max);
    assert!(off < 2.0, "avif-alpha: mean {mean:?}");
}
