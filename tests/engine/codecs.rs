//! `tests/fixtures/codecs/` (written by scripts/codec-fixtures.py): the
//! layouts real files come in, one row each in its MANIFEST.tsv. Every
//! accepted file decodes to the right size and the right picture (four
//! quadrants, red, green, blue and white, checked by their mean colour),
//! and renders through the on-demand path too; rejects give their code.

use image::DynamicImage;
use imgpipe::engine::{Engine, Fit, Limits, Pixels, Plan};

use crate::corpus::common::{expected_code, manifest};
use crate::helpers::mean_rgb;

const RED: [f64; 3] = [255.0, 0.0, 0.0];
const GREEN: [f64; 3] = [0.0, 255.0, 0.0];
const BLUE: [f64; 3] = [0.0, 0.0, 255.0];
const WHITE: [f64; 3] = [255.0, 255.0, 255.0];

/// Rec. 601 luma, as Pillow turns colour into grey.
fn grey(c: [f64; 3]) -> [f64; 3] {
    let y = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    [y, y, y]
}

#[test]
fn every_layout_decodes_to_the_same_picture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codecs");
    let engine = Engine::new(Limits::default());
    let rows = manifest(&dir);
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let bytes = std::fs::read(dir.join(&row.file)).unwrap();
        let decoded = engine.decode(&bytes);
        if !row.accept {
            match decoded {
                Ok(_) => failures.push(format!("{}: accepted, expected a reject", row.file)),
                Err(e) if e.code() != expected_code(&row.category) => failures.push(format!(
                    "{}: {} ({e}), expected {}",
                    row.file,
                    e.code(),
                    expected_code(&row.category)
                )),
                Err(_) => {}
            }
            continue;
        }
        let d = match decoded {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{}: refused: {e}", row.file));
                continue;
            }
        };
        let (w, h) = row.oriented.expect("accept rows have oriented=");
        if (d.info.width, d.info.height) != (w, h) {
            failures.push(format!("{}: {}x{}, expected {w}x{h}", row.file, d.info.width, d.info.height));
            continue;
        }
        let img = match d.pixels {
            Pixels::Rgb(i) => DynamicImage::ImageRgb8(i),
            Pixels::Rgba(i) => DynamicImage::ImageRgba8(i),
        };
        // Quadrants in reading order. The picture is wider than tall; a
        // taller one was turned a quarter clockwise (orientation 6).
        let mut want = if h > w { [BLUE, RED, WHITE, GREEN] } else { [RED, GREEN, BLUE, WHITE] };
        let is_grey = ["grey", "1bit", "int8", "int16", "float"].iter().any(|k| row.file.contains(k));
        if is_grey {
            want = want.map(grey);
        }
        // Lossy codecs and 1-bit dithering leave more error.
        let tolerance = if row.file.contains("1bit") {
            70.0
        } else if row.file.starts_with("jpeg")
            || row.file.starts_with("avif")
            || row.file.contains("lossy")
            || row.file.contains("ycbcr-jpeg")
        {
            40.0
        } else if row.file.contains("2bit")
            || row.file.contains("4bit")
            || row.file.contains("palette")
            || row.file.contains("gif")
        {
            45.0
        } else {
            12.0
        };
        let (qw, qh) = (w / 2, h / 2);
        let boxes = [(2, 2), (qw + 2, 2), (2, qh + 6), (qw + 2, qh + 6)];
        for (q, ((x, y), expected)) in boxes.iter().zip(want).enumerate() {
            let got = mean_rgb(&img, *x, *y, qw - 4, qh.min(h - y) - 8);
            if got.iter().zip(expected).any(|(g, e)| (g - e).abs() > tolerance) {
                failures.push(format!("{}: quadrant {q} is {got:?}, expected about {expected:?}", row.file));
            }
        }
        let plan = Plan { w: Some(16), h: Some(16), fit: Fit::Cover, upscale: false };
        if let Err(e) = engine.decode_for(&bytes, plan) {
            failures.push(format!("{}: accepted, but refused for a render: {e}", row.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
