//! Engine tests on images made here: no corpus needed.

use image::{DynamicImage, GenericImageView, ImageFormat, RgbImage};
use imgpipe::engine::{Engine, EngineError, Fit, Limits, OutputFormat, Pixels, Plan, RenderSpec, Variant};

use crate::helpers::*;

fn engine() -> Engine {
    Engine::new(Limits::default())
}

fn standard(bytes: &[u8]) -> Vec<(Variant, imgpipe::engine::Rendered)> {
    let e = engine();
    let d = e.decode(bytes).expect("decode");
    e.standard(&d, &Variant::ALL).expect("variants")
}

fn guessed(bytes: &[u8]) -> ImageFormat {
    image::guess_format(bytes).expect("known output format")
}

#[test]
fn every_variant_decodes_with_its_format_and_size() {
    let src = encode(&DynamicImage::ImageRgb8(gradient(1000, 600)), ImageFormat::Png);
    let out = standard(&src);
    assert_eq!(out.len(), 5);
    for (variant, r) in &out {
        let expected_format = match variant.format() {
            OutputFormat::Jpeg => ImageFormat::Jpeg,
            OutputFormat::Webp => ImageFormat::WebP,
            OutputFormat::Png => ImageFormat::Png,
        };
        assert_eq!(guessed(&r.bytes), expected_format, "{variant:?}");
        let img = image::load_from_memory(&r.bytes).unwrap();
        let expected_size = if variant.is_thumb() { (300, 180) } else { (1000, 600) };
        assert_eq!(img.dimensions(), expected_size, "{variant:?}");
        assert_eq!((r.width, r.height), expected_size);
    }
}

#[test]
fn long_side_is_capped_at_max_dimension_and_never_upscaled() {
    let big = encode(&DynamicImage::ImageRgb8(gradient(5000, 2500)), ImageFormat::Png);
    for (variant, r) in standard(&big) {
        let img = image::load_from_memory(&r.bytes).unwrap();
        let expected = if variant.is_thumb() { (300, 150) } else { (4096, 2048) };
        assert_eq!(img.dimensions(), expected, "{variant:?}");
    }
    let small = encode(&DynamicImage::ImageRgb8(gradient(120, 90)), ImageFormat::Png);
    for (variant, r) in standard(&small) {
        assert_eq!((r.width, r.height), (120, 90), "{variant:?} must not be upscaled");
    }
}

#[test]
fn jpeg_has_no_alpha_and_transparency_becomes_white_webp_png_keep_alpha() {
    let src = encode(&DynamicImage::ImageRgba8(rgba_half_transparent(200, 100)), ImageFormat::Png);
    for (variant, r) in standard(&src) {
        let img = image::load_from_memory(&r.bytes).unwrap();
        match variant.format() {
            OutputFormat::Jpeg => {
                assert!(!img.color().has_alpha(), "{variant:?}");
                let [r, g, b] = mean_rgb(&img, 0, 0, img.width() / 4, img.height());
                assert!(r > 245.0 && g > 245.0 && b > 245.0, "{variant:?} left half should be white: {r} {g} {b}");
            }
            OutputFormat::Webp | OutputFormat::Png => {
                assert!(img.color().has_alpha(), "{variant:?}");
                assert_eq!(img.get_pixel(5, 5)[3], 0, "{variant:?}");
                assert_eq!(img.get_pixel(195, 50)[3], 255, "{variant:?}");
            }
        }
    }
}

#[test]
fn png_is_pixel_equal_to_the_source_when_not_resized() {
    let src_img = gradient(333, 211);
    let src = encode(&DynamicImage::ImageRgb8(src_img.clone()), ImageFormat::Png);
    let out = standard(&src);
    let (_, png) = out.iter().find(|(v, _)| *v == Variant::Png).unwrap();
    let decoded = image::load_from_memory(&png.bytes).unwrap().into_rgb8();
    assert_eq!(decoded, src_img);
}

#[test]
fn png_is_pixel_equal_to_the_resized_source() {
    use fast_image_resize as fr;
    let src_img = gradient(5000, 1000);
    let src = encode(&DynamicImage::ImageRgb8(src_img.clone()), ImageFormat::Png);
    let out = standard(&src);
    let (_, png) = out.iter().find(|(v, _)| *v == Variant::Png).unwrap();
    let decoded = image::load_from_memory(&png.bytes).unwrap().into_rgb8();
    // The same resize, done here directly with fast_image_resize.
    let view = fr::images::ImageRef::new(5000, 1000, src_img.as_raw(), fr::PixelType::U8x3).unwrap();
    let mut dst = fr::images::Image::new(4096, 819, fr::PixelType::U8x3);
    let opts = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new().resize(&view, &mut dst, &opts).unwrap();
    let expected = RgbImage::from_raw(4096, 819, dst.into_vec()).unwrap();
    assert_eq!(decoded.dimensions(), (4096, 819));
    assert!(decoded == expected, "png must be lossless over the resized pixels");
}

#[test]
fn outputs_carry_no_exif_and_no_gps() {
    let src = jpeg_with_exif(&gradient(400, 300), &exif_block(1));
    assert!(contains(&src, GPS_MARKER), "fixture must carry the marker");
    for (variant, r) in standard(&src) {
        assert!(!contains(&r.bytes, GPS_MARKER), "{variant:?} leaks GPS");
        assert!(!contains(&r.bytes, b"Exif\0\0"), "{variant:?} carries EXIF");
        assert!(!contains(&r.bytes, b"EXIF"), "{variant:?} carries a WebP EXIF chunk");
        assert!(!contains(&r.bytes, b"eXIf"), "{variant:?} carries a PNG eXIf chunk");
        assert!(!contains(&r.bytes, b"http://ns.adobe.com/xap"), "{variant:?} carries XMP");
    }
}

/// The stored pixels for a display image `d` under EXIF orientation `n`,
/// written out from the EXIF definitions (independent of the engine).
fn stored_for(d: &RgbImage, n: u16) -> RgbImage {
    let (w, h) = d.dimensions();
    let px = |x: u32, y: u32| *d.get_pixel(x, y);
    match n {
        1 => d.clone(),
        2 => RgbImage::from_fn(w, h, |x, y| px(w - 1 - x, y)),
        3 => RgbImage::from_fn(w, h, |x, y| px(w - 1 - x, h - 1 - y)),
        4 => RgbImage::from_fn(w, h, |x, y| px(x, h - 1 - y)),
        5 => RgbImage::from_fn(h, w, |x, y| px(y, x)),
        6 => RgbImage::from_fn(h, w, |x, y| px(w - 1 - y, x)),
        7 => RgbImage::from_fn(h, w, |x, y| px(w - 1 - y, h - 1 - x)),
        8 => RgbImage::from_fn(h, w, |x, y| px(y, h - 1 - x)),
        _ => unreachable!(),
    }
}

#[test]
fn exif_orientations_rotate_the_pixels() {
    let display = quadrants(64, 32);
    for n in 1..=8u16 {
        let src = jpeg_with_exif(&stored_for(&display, n), &exif_block(n));
        let d = engine().decode(&src).unwrap();
        assert_eq!(d.info.orientation, n as u8);
        assert_eq!((d.info.width, d.info.height), (64, 32), "orientation {n}");
        let Pixels::Rgb(got) = &d.pixels else { panic!("rgb expected") };
        let diff = mean_abs_diff(got, &display);
        assert!(diff < 6.0, "orientation {n}: mean diff {diff}");
    }
}

#[test]
fn malformed_exif_counts_as_orientation_1() {
    let mut exif = exif_block(6);
    exif.truncate(12); // IFD entry cut off mid-way
    let src = jpeg_with_exif(&gradient(40, 20), &exif);
    let d = engine().decode(&src).expect("malformed EXIF must not fail an image");
    assert_eq!((d.info.width, d.info.height, d.info.orientation), (40, 20, 1));
    let bogus = jpeg_with_exif(&gradient(40, 20), &exif_block(99));
    let d = engine().decode(&bogus).unwrap();
    assert_eq!((d.info.width, d.info.height, d.info.orientation), (40, 20, 1));
}

#[test]
fn on_demand_fits() {
    let e = engine();
    let d = e.decode(&encode(&DynamicImage::ImageRgb8(gradient(800, 400)), ImageFormat::Png)).unwrap();
    let spec = |w, h, fit, format| RenderSpec { format, quality: 80, plan: Plan { w, h, fit, upscale: false } };
    let cases = [
        (spec(Some(200), None, Fit::Inside, OutputFormat::Webp), (200, 100)),
        (spec(Some(200), Some(200), Fit::Cover, OutputFormat::Jpeg), (200, 200)),
        (spec(Some(200), Some(50), Fit::Fill, OutputFormat::Png), (200, 50)),
        (spec(Some(2000), None, Fit::Inside, OutputFormat::Png), (800, 400)),
    ];
    for (s, expected) in cases {
        let r = e.render(&d, &s).unwrap();
        let img = image::load_from_memory(&r.bytes).unwrap();
        assert_eq!(img.dimensions(), expected, "{s:?}");
    }
    // cover keeps the centre: the centre column of a horizontal gradient
    let r = e.render(&d, &spec(Some(100), Some(100), Fit::Cover, OutputFormat::Png)).unwrap();
    let img = image::load_from_memory(&r.bytes).unwrap();
    let [red, _, _] = mean_rgb(&img, 45, 0, 10, 100);
    assert!((red - 127.0).abs() < 12.0, "centre crop expected, red={red}");
}

/// The PNG variant of a render: exact pixels to compare.
fn png_pixels(r: &imgpipe::engine::Rendered) -> RgbImage {
    image::load_from_memory(&r.bytes).unwrap().into_rgb8()
}

#[test]
fn shrink_on_load_gives_the_full_decode_render() {
    let e = engine();
    // Quadrants stored for orientation 6: the scaled decode must orient too.
    let display = quadrants(1600, 1200);
    let src = jpeg_with_exif(&stored_for(&display, 6), &exif_block(6));
    let full = e.decode(&src).unwrap();
    let spec =
        |w, h, fit| RenderSpec { format: OutputFormat::Png, quality: 80, plan: Plan { w, h, fit, upscale: false } };
    let cases = [
        // (plan, decoded size: 1600x1200 shrunk by 8, 4, 2 or not at all)
        (spec(Some(200), None, Fit::Inside), (200, 150)),
        (spec(Some(400), None, Fit::Inside), (400, 300)),
        (spec(Some(700), None, Fit::Inside), (800, 600)),
        (spec(Some(1000), None, Fit::Inside), (1600, 1200)),
        (spec(Some(300), Some(300), Fit::Cover), (400, 300)),
        (spec(Some(100), Some(500), Fit::Fill), (800, 600)),
    ];
    for (s, decoded) in cases {
        let shrunk = e.decode_for(&src, s.plan).unwrap();
        assert_eq!((shrunk.info.width, shrunk.info.height), (1600, 1200), "info gives the full size");
        assert_eq!(shrunk.pixels.dimensions(), decoded, "{s:?}");
        let a = e.render(&shrunk, &s).unwrap();
        let b = e.render(&full, &s).unwrap();
        assert_eq!((a.width, a.height), (b.width, b.height), "{s:?}");
        let diff = mean_abs_diff(&png_pixels(&a), &png_pixels(&b));
        assert!(diff < 2.5, "{s:?}: shrink-on-load differs from the full decode by {diff}");
    }
    // A tall cover crop: its rectangle is scaled with the pixels.
    let s = spec(Some(100), Some(400), Fit::Cover);
    let out = png_pixels(&e.render(&e.decode_for(&src, s.plan).unwrap(), &s).unwrap());
    let expected = png_pixels(&e.render(&full, &s).unwrap());
    assert!(mean_abs_diff(&out, &expected) < 2.5);
    // Not a JPEG: the same as a full decode.
    let png = encode(&DynamicImage::ImageRgb8(gradient(800, 400)), ImageFormat::Png);
    let d = e.decode_for(&png, spec(Some(100), None, Fit::Inside).plan).unwrap();
    assert_eq!(d.pixels.dimensions(), (800, 400));
}

#[test]
fn limits_are_checked_from_the_header() {
    let small_limits = Engine::new(Limits { max_pixels: 10_000, ..Limits::default() });
    let src = encode(&DynamicImage::ImageRgb8(gradient(200, 100)), ImageFormat::Png);
    assert!(matches!(small_limits.decode(&src), Err(EngineError::TooManyPixels { width: 200, height: 100, .. })));
    let tiny_upload = Engine::new(Limits { max_upload_bytes: 10, ..Limits::default() });
    assert_eq!(tiny_upload.decode(&src).unwrap_err().code(), "too_large");
    // A PNG header that claims 60000x60000 in a few bytes is refused before
    // any pixel buffer exists.
    let mut lying = Vec::new();
    let mut enc = png::Encoder::new(&mut lying, 60_000, 60_000);
    enc.set_color(png::ColorType::Rgb);
    drop(enc.write_header().unwrap());
    assert_eq!(engine().decode(&lying).unwrap_err().code(), "too_many_pixels");
}

#[test]
fn truncated_and_garbage_inputs_are_refused_cleanly() {
    let jpeg = encode(&DynamicImage::ImageRgb8(gradient(300, 200)), ImageFormat::Jpeg);
    let png = encode(&DynamicImage::ImageRgb8(gradient(300, 200)), ImageFormat::Png);
    let gif = encode(&DynamicImage::ImageRgb8(gradient(300, 200)), ImageFormat::Gif);
    let webp = imgpipe_webp(&gradient(300, 200));
    for (name, full) in [("jpeg", &jpeg), ("png", &png), ("gif", &gif), ("webp", &webp)] {
        for cut in [full.len() / 2, full.len() * 3 / 4, 40] {
            let code = engine().decode(&full[..cut]).map(|_| ()).unwrap_err().code();
            assert_eq!(code, "undecodable", "{name} cut at {cut}");
        }
    }
    // Deterministic garbage after a valid magic number never panics (a
    // panic caught by the engine's guards would answer `undecodable` too,
    // so the guards' count is checked as well).
    let panics = imgpipe::engine::panics_caught_on_this_thread();
    let mut seed = 0x2545_F491u32;
    for magic in [
        &b"\xFF\xD8\xFF\xE0"[..],
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"II*\0",
        b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0",
    ] {
        for len in [0usize, 7, 100, 3000] {
            let mut bytes = magic.to_vec();
            bytes.extend((0..len).map(|_| crate::util::xorshift(&mut seed) as u8));
            let err = engine().decode(&bytes).map(|_| ()).unwrap_err();
            assert!(matches!(err.code(), "undecodable" | "unsupported_format" | "too_many_pixels"), "{err}");
            assert_eq!(
                imgpipe::engine::panics_caught_on_this_thread(),
                panics,
                "a decoder panicked on {magic:?}+{len}"
            );
        }
    }
}

fn imgpipe_webp(img: &RgbImage) -> Vec<u8> {
    webp::Encoder::from_rgb(img.as_raw(), img.width(), img.height()).encode(80.0).to_vec()
}

#[test]
fn animated_gif_uses_first_frame_and_reports_frames() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, Rgba, RgbaImage};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        for colour in [[255u8, 0, 0, 255], [0, 0, 255, 255], [0, 255, 0, 255]] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(20, 10, Rgba(colour)),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            enc.encode_frame(frame).unwrap();
        }
    }
    let d = engine().decode(&out).unwrap();
    assert!(d.info.animated);
    assert_eq!(d.info.frames, 3);
    let img = match d.pixels {
        Pixels::Rgb(i) => DynamicImage::ImageRgb8(i),
        Pixels::Rgba(i) => DynamicImage::ImageRgba8(i),
    };
    let [r, g, b] = mean_rgb(&img, 0, 0, 20, 10);
    assert!(r > 200.0 && g < 50.0 && b < 50.0, "first frame is red: {r} {g} {b}");
}

#[test]
fn grey_and_sixteen_bit_sources_come_out_as_8_bit_rgb() {
    let grey = DynamicImage::ImageLuma8(image::GrayImage::from_fn(50, 40, |x, _| image::Luma([(x * 5) as u8])));
    let rgb16 = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(50, 40, |x, _| {
        image::Rgb([(x * 1000) as u16, 30000, 65535])
    }));
    for src in [encode(&grey, ImageFormat::Png), encode(&rgb16, ImageFormat::Png), encode(&grey, ImageFormat::Jpeg)] {
        let d = engine().decode(&src).unwrap();
        assert!(matches!(d.pixels, Pixels::Rgb(_)));
        assert_eq!((d.info.width, d.info.height), (50, 40));
    }
    let d = engine().decode(&encode(&rgb16, ImageFormat::Png)).unwrap();
    let Pixels::Rgb(img) = d.pixels else { unreachable!() };
    assert_eq!(img.get_pixel(0, 0).0, [0, 117, 255]);
}
