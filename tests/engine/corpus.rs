//! Every row of `$IMGPIPE_CORPUS/MANIFEST.tsv` (default `../shared/corpus`)
//! through the engine: accept rows give five variants at the right size,
//! reject rows the error their category calls for, and nothing panics.

use image::{DynamicImage, GenericImageView};
use imgpipe::engine::{Engine, Limits, Pixels, Variant};

use crate::helpers::{mean_abs_diff, mean_rgb};
#[path = "../common/corpus.rs"]
pub(crate) mod common;
use common::{corpus_dir, expected_code, manifest};

fn scaled_to(max: u32, (w, h): (u32, u32)) -> (u32, u32) {
    if w.max(h) <= max {
        return (w, h);
    }
    if w >= h {
        (max, ((u64::from(h) * u64::from(max) + u64::from(w) / 2) / u64::from(w)) as u32)
    } else {
        (((u64::from(w) * u64::from(max) + u64::from(h) / 2) / u64::from(h)) as u32, max)
    }
}

#[test]
fn every_manifest_row() {
    let Some(dir) = corpus_dir() else { return };
    let engine = Engine::new(Limits::default());
    let rows = manifest(&dir);
    assert!(rows.len() >= 50, "manifest looks short: {}", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let bytes = std::fs::read(dir.join(&row.file)).unwrap();
        let result = engine.decode(&bytes).and_then(|d| engine.standard(&d, &Variant::ALL).map(|v| (d, v)));
        match (row.accept, result) {
            (true, Ok((_, variants))) => {
                assert_eq!(variants.len(), 5);
                let expected = scaled_to(4096, row.oriented.expect("accept rows have oriented="));
                let jpeg = &variants.iter().find(|(v, _)| *v == Variant::Jpeg).unwrap().1;
                let got = image::load_from_memory(&jpeg.bytes).unwrap().dimensions();
                if got != expected {
                    failures.push(format!("{}: jpeg {got:?}, expected {expected:?}", row.file));
                }
                for (v, r) in &variants {
                    if image::load_from_memory(&r.bytes).is_err() {
                        failures.push(format!("{}: {v:?} does not decode", row.file));
                    }
                }
            }
            (true, Err(e)) => failures.push(format!("{}: rejected: {e}", row.file)),
            (false, Ok(_)) => failures.push(format!("{}: accepted, expected a reject", row.file)),
            (false, Err(e)) => {
                let want = expected_code(&row.category);
                if e.code() != want {
                    failures.push(format!("{}: {} ({e}), expected {want}", row.file, e.code()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn decode_rgb(engine: &Engine, dir: &std::path::Path, file: &str) -> image::RgbImage {
    let d = engine.decode(&std::fs::read(dir.join(file)).unwrap()).unwrap();
    match d.pixels {
        Pixels::Rgb(i) => i,
        Pixels::Rgba(i) => DynamicImage::ImageRgba8(i).into_rgb8(),
    }
}

#[test]
fn orientation_files_show_the_same_picture() {
    let Some(dir) = corpus_dir() else { return };
    let engine = Engine::new(Limits::default());
    let small = |img: image::RgbImage| image::imageops::thumbnail(&img, 90, 60);
    let reference = small(decode_rgb(&engine, &dir, "exif-orientation-1.jpg"));
    for n in 2..=8 {
        let img = small(decode_rgb(&engine, &dir, &format!("exif-orientation-{n}.jpg")));
        assert_eq!(img.dimensions(), reference.dimensions(), "orientation {n}");
        let diff = mean_abs_diff(&img, &reference);
        // Each wrong orientation of this photo differs by far more than 20.
        let flipped = image::imageops::flip_horizontal(&img);
        let wrong = mean_abs_diff(&flipped, &reference);
        assert!(diff < 8.0 && wrong > 2.0 * diff, "orientation {n}: diff {diff}, mirrored {wrong}");
    }
}

#[test]
fn cmyk_files_are_not_inverted() {
    let Some(dir) = corpus_dir() else { return };
    let engine = Engine::new(Limits::default());
    // FOGRA 0/100/100/0: full magenta and yellow ink, no cyan: a red.
    let tiff = DynamicImage::ImageRgb8(decode_rgb(&engine, &dir, "tiff-cmyk-icc-1000x1000.tif"));
    let [r, g, b] = mean_rgb(&tiff, 0, 0, 1000, 1000);
    assert!(r > 180.0 && g < 90.0 && b < 90.0, "cmyk tiff should be red, got {r:.0},{g:.0},{b:.0}");
    // The two CMYK JPEGs are the same photo, one with a CMYK profile and
    // one without (YCCK). Their mean colours as decoded by Pillow with
    // LittleCMS are (121, 126, 115) and (109, 132, 110); an inverted decode
    // would give about (134, 129, 140) and (146, 123, 145).
    for (file, expected) in [("cmyk-icc.jpg", [121.0, 126.0, 115.0]), ("cmyk-no-icc.jpg", [109.0, 132.0, 110.0])] {
        let img = DynamicImage::ImageRgb8(decode_rgb(&engine, &dir, file));
        let got = mean_rgb(&img, 0, 0, img.width(), img.height());
        let off = got.iter().zip(expected).map(|(g, e)| (g - e).abs()).fold(0.0, f64::max);
        assert!(off < 6.0, "{file}: mean colour {got:?}, expected about {expected:?}");
    }
}
