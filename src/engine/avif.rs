//! AVIF: the HEIF container read by mp4parse (Mozilla's parser, as shipped
//! in Firefox), the AV1 payloads decoded by `av1.rs`, and YUV turned into
//! 8-bit sRGB here. Handled: 8/10/12-bit, 4:0:0/4:2:0/4:2:2/4:4:4, limited
//! and full range, the usual matrices (BT.601/709/2020, identity, YCgCo),
//! an alpha auxiliary image (premultiplied or not), `irot`/`imir`, and
//! colour from an ICC `colr` box or else the stream's CICP code points.
//! Tiled (`grid`) images are refused with `unsupported_format`.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{RgbImage, RgbaImage};
use moxcms::Layout as PixelLayout;
use mp4parse::{ImageMirror, ImageRotation, ParseStrictness};

use super::av1::{self, ColourInfo, Frame, Samples};
use super::color::{cicp_profile, to_srgb, Icc};
use super::decode::{undecodable, Pixels};
use super::{EngineError, Limits};

/// A decoded AVIF: pixels as stored (orientation not yet applied).
pub(super) struct Avif {
    pub pixels: Pixels,
    pub orientation: Orientation,
    pub frames: u32,
    pub icc: bool,
}

/// Decoder threads per image: AVIF tiles decode in parallel, and an AVIF
/// decode is slower than a JPEG one of the same size.
fn threads() -> usize {
    crate::cpu::cores().min(4)
}

pub(super) fn decode(
    bytes: &[u8],
    limits: &Limits,
    check_pixels: impl Fn(u32, u32) -> Result<(), EngineError>,
) -> Result<Avif, EngineError> {
    // The spec's "shall"s first; a file that breaks one but is not
    // ambiguous (properties listed out of order, a bad association count:
    // what encoders in the wild write) is read permissively, as libavif does.
    check_box_sizes(bytes, 0)?;
    let parse = |strictness| mp4parse::read_avif(&mut Cursor::new(bytes), strictness);
    let ctx = parse(ParseStrictness::Normal).or_else(|_| parse(ParseStrictness::Permissive)).map_err(|e| match e {
        mp4parse::Error::Unsupported(what) => EngineError::UnsupportedFormat(format!("avif: {what}")),
        other => undecodable(format!("avif container: {other}")),
    })?;
    let Some(primary) = ctx.primary_item_coded_data() else {
        use mp4parse::Feature;
        let has = |f| ctx.unsupported_features.contains(f);
        if has(Feature::Grid) {
            return Err(EngineError::UnsupportedFormat("tiled (grid) avif images are not supported".into()));
        }
        if has(Feature::Clap) {
            return Err(EngineError::UnsupportedFormat(
                "avif with a clean-aperture crop (clap) is not supported".into(),
            ));
        }
        if has(Feature::A1lx) || has(Feature::A1op) || has(Feature::Lsel) {
            return Err(EngineError::UnsupportedFormat("layered avif (a1lx, a1op, lsel) is not supported".into()));
        }
        if has(Feature::Ipro) {
            return Err(EngineError::UnsupportedFormat(
                "avif with protected (encrypted) items is not supported".into(),
            ));
        }
        if ctx.sequence.is_some() {
            return Err(EngineError::UnsupportedFormat("animated avif without a still image is not supported".into()));
        }
        return Err(undecodable("avif without a primary image"));
    };

    // Limits first, from what the stream claims.
    let (w, h) = av1::max_frame_size(primary).map_err(undecodable)?;
    check_pixels(w, h)?;

    let frame = av1::decode(primary, limits.max_pixels, threads()).map_err(undecodable)?;
    check_pixels(frame.width as u32, frame.height as u32)?;
    let alpha = match ctx.alpha_item_coded_data() {
        Some(obus) => {
            let a = av1::decode(obus, limits.max_pixels, threads()).map_err(undecodable)?;
            if (a.width, a.height) != (frame.width, frame.height) {
                return Err(undecodable("avif alpha image does not match the colour image"));
            }
            Some(alpha_channel(&a))
        }
        None => None,
    };

    let mut rgb = to_rgb(&frame);
    let icc_bytes = match ctx.icc_colour_information() {
        Some(Ok(b)) => Some(b),
        _ => None,
    };
    let profile = match icc_bytes {
        Some(b) => match Icc::parse(b) {
            Some(Icc::Rgb(p)) => Some(p),
            _ => None,
        },
        None => cicp_profile(frame.colour.primaries, frame.colour.transfer),
    };
    let (width, height) = (frame.width as u32, frame.height as u32);
    let n = frame.width * frame.height;
    let pixels = match alpha {
        None => {
            if let Some(out) = profile.as_ref().and_then(|p| to_srgb(p, &rgb, PixelLayout::Rgb, PixelLayout::Rgb, n)) {
                rgb = out;
            }
            Pixels::Rgb(RgbImage::from_raw(width, height, rgb).ok_or_else(|| undecodable("short pixel buffer"))?)
        }
        Some(alpha) => {
            let mut rgba = Vec::with_capacity(n * 4);
            for (px, &a) in rgb.chunks_exact(3).zip(&alpha) {
                rgba.extend_from_slice(&[px[0], px[1], px[2], a]);
            }
            if ctx.premultiplied_alpha {
                unpremultiply(&mut rgba);
            }
            if let Some(out) = profile.as_ref().and_then(|p| to_srgb(p, &rgba, PixelLayout::Rgba, PixelLayout::Rgba, n))
            {
                rgba = out;
            }
            let img = RgbaImage::from_raw(width, height, rgba).ok_or_else(|| undecodable("short pixel buffer"))?;
            if img.pixels().all(|p| p.0[3] == 255) {
                Pixels::Rgb(image::DynamicImage::ImageRgba8(img).into_rgb8())
            } else {
                Pixels::Rgba(img)
            }
        }
    };

    let rotation = ctx.image_rotation().unwrap_or(ImageRotation::D0);
    let mirror = match ctx.image_mirror_ptr() {
        // SAFETY: a non-null pointer from mp4parse points into `ctx`'s
        // property table, which is alive and unchanged here.
        Ok(p) if !p.is_null() => Some(unsafe { &*p }),
        _ => None,
    };
    let frames = ctx
        .sequence
        .as_ref()
        .and_then(|s| s.tracks.iter().filter_map(|t| t.stsz.as_ref()).map(|z| z.sample_sizes.len()).max())
        .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX).max(1));
    Ok(Avif { pixels, orientation: orientation(rotation, mirror), frames, icc: icc_bytes.is_some() })
}

/// HEIF applies `irot` (anticlockwise) and then `imir`; the same result as
/// one EXIF orientation, so the engine's one orientation step handles it.
/// Boxes whose children are boxes (after a 4-byte version and flags for
/// `meta`), walked by [`check_box_sizes`].
const CONTAINERS: [&[u8; 4]; 9] = [b"meta", b"iprp", b"ipco", b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf"];

/// Every box must fit inside its parent (the file, at the top). mp4parse
/// sizes some buffers from a box's declared length before it reads the
/// box, so a 1 KB file whose `ftyp` claims 2 GiB would reserve 2 GiB.
fn check_box_sizes(bytes: &[u8], depth: u8) -> Result<(), EngineError> {
    let too_big = || undecodable("avif container: a box is larger than the data that holds it");
    let mut rest = bytes;
    while rest.len() >= 8 {
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let kind: [u8; 4] = [rest[4], rest[5], rest[6], rest[7]];
        let (size, header) = match size32 {
            0 => (rest.len() as u64, 8),
            1 if rest.len() >= 16 => (u64::from_be_bytes(rest[8..16].try_into().expect("8 bytes")), 16),
            1 => return Err(too_big()),
            n => (u64::from(n), 8),
        };
        if size < header as u64 || size > rest.len() as u64 {
            return Err(too_big());
        }
        let body = &rest[header..size as usize];
        if depth < 8 && CONTAINERS.contains(&&kind) {
            let children = if &kind == b"meta" { body.get(4..).unwrap_or_default() } else { body };
            check_box_sizes(children, depth + 1)?;
        }
        rest = &rest[size as usize..];
    }
    Ok(())
}

fn orientation(rotation: ImageRotation, mirror: Option<&ImageMirror>) -> Orientation {
    use Orientation::*;
    match (rotation, mirror) {
        (ImageRotation::D0, None) => NoTransforms,
        (ImageRotation::D0, Some(ImageMirror::LeftRight)) => FlipHorizontal,
        (ImageRotation::D0, Some(ImageMirror::TopBottom)) => FlipVertical,
        (ImageRotation::D90, None) => Rotate270,
        (ImageRotation::D90, Some(ImageMirror::LeftRight)) => Rotate270FlipH,
        (ImageRotation::D90, Some(ImageMirror::TopBottom)) => Rotate90FlipH,
        (ImageRotation::D180, None) => Rotate180,
        (ImageRotation::D180, Some(ImageMirror::LeftRight)) => FlipVertical,
        (ImageRotation::D180, Some(ImageMirror::TopBottom)) => FlipHorizontal,
        (ImageRotation::D270, None) => Rotate90,
        (ImageRotation::D270, Some(ImageMirror::LeftRight)) => Rotate90FlipH,
        (ImageRotation::D270, Some(ImageMirror::TopBottom)) => Rotate270FlipH,
    }
}

/// Sample value ranges for one bit depth and range flag.
struct Range {
    y_offset: f32,
    y_scale: f32,
    c_offset: f32,
    c_scale: f32,
}

impl Range {
    fn new(bit_depth: u8, full: bool) -> Range {
        let unit = f32::from(1u16 << (bit_depth - 8));
        let max = f32::from(((1u32 << bit_depth) - 1) as u16);
        if full {
            Range { y_offset: 0.0, y_scale: 1.0 / max, c_offset: 128.0 * unit, c_scale: 1.0 / max }
        } else {
            Range {
                y_offset: 16.0 * unit,
                y_scale: 1.0 / (219.0 * unit),
                c_offset: 128.0 * unit,
                c_scale: 1.0 / (224.0 * unit),
            }
        }
    }
}

/// How Y, Cb, Cr turn into R, G, B (ITU-T H.273 matrix_coefficients).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Matrix {
    /// Kr, Kb.
    YCbCr(f32, f32),
    /// GBR stored as Y=G, U=B, V=R.
    Identity,
    YCgCo,
}

impl Matrix {
    fn from_cicp(code: u8) -> Matrix {
        match code {
            0 => Matrix::Identity,
            1 => Matrix::YCbCr(0.2126, 0.0722),
            4 => Matrix::YCbCr(0.30, 0.11),
            7 => Matrix::YCbCr(0.212, 0.087),
            8 => Matrix::YCgCo,
            9 | 10 => Matrix::YCbCr(0.2627, 0.0593),
            // 5, 6, unspecified and anything else: BT.601, as libavif does.
            _ => Matrix::YCbCr(0.299, 0.114),
        }
    }
}

trait Sample: Copy {
    fn value(self) -> f32;
}
impl Sample for u8 {
    fn value(self) -> f32 {
        f32::from(self)
    }
}
impl Sample for u16 {
    fn value(self) -> f32 {
        f32::from(self)
    }
}

fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// YUV planes to interleaved 8-bit RGB. Chroma is upsampled by taking the
/// nearest sample (each chroma sample covers its 2×2 or 2×1 luma block).
fn to_rgb(frame: &Frame) -> Vec<u8> {
    match frame.planes.as_slice() {
        [y] => match &y.samples {
            Samples::U8(s) => grey(s, frame),
            Samples::U16(s) => grey(s, frame),
        },
        [y, u, v] => match (&y.samples, &u.samples, &v.samples) {
            (Samples::U8(y), Samples::U8(u), Samples::U8(v)) => colour(y, u, v, frame),
            (Samples::U16(y), Samples::U16(u), Samples::U16(v)) => colour(y, u, v, frame),
            _ => unreachable!("av1.rs gives every plane of a frame the same sample type"),
        },
        _ => unreachable!("av1.rs gives one or three planes"),
    }
}

fn grey<T: Sample>(y: &[T], frame: &Frame) -> Vec<u8> {
    let r = Range::new(frame.bit_depth, frame.colour.full_range);
    y.iter()
        .flat_map(|&s| {
            let v = to_u8((s.value() - r.y_offset) * r.y_scale);
            [v, v, v]
        })
        .collect()
}

fn colour<T: Sample>(y: &[T], u: &[T], v: &[T], frame: &Frame) -> Vec<u8> {
    let ColourInfo { matrix, full_range, .. } = frame.colour;
    let r = Range::new(frame.bit_depth, full_range);
    let matrix = Matrix::from_cicp(matrix);
    let (sx, sy) = frame.layout.shifts();
    let cw = frame.planes[1].width;
    let mut out = Vec::with_capacity(frame.width * frame.height * 3);
    for row in 0..frame.height {
        let yrow = &y[row * frame.width..(row + 1) * frame.width];
        let crow = (row >> sy) * cw;
        let (urow, vrow) = (&u[crow..crow + cw], &v[crow..crow + cw]);
        for (x, &ys) in yrow.iter().enumerate() {
            let (us, vs) = (urow[x >> sx].value(), vrow[x >> sx].value());
            let rgb = match matrix {
                Matrix::YCbCr(kr, kb) => {
                    let yn = (ys.value() - r.y_offset) * r.y_scale;
                    let cb = (us - r.c_offset) * r.c_scale;
                    let cr = (vs - r.c_offset) * r.c_scale;
                    let kg = 1.0 - kr - kb;
                    [
                        yn + 2.0 * (1.0 - kr) * cr,
                        yn - (2.0 * kb * (1.0 - kb) * cb + 2.0 * kr * (1.0 - kr) * cr) / kg,
                        yn + 2.0 * (1.0 - kb) * cb,
                    ]
                }
                Matrix::Identity => {
                    let n = |s: f32| (s - r.y_offset) * r.y_scale;
                    [n(vs), n(ys.value()), n(us)]
                }
                Matrix::YCgCo => {
                    let yn = (ys.value() - r.y_offset) * r.y_scale;
                    let cg = (us - r.c_offset) * r.c_scale;
                    let co = (vs - r.c_offset) * r.c_scale;
                    let t = yn - cg;
                    [t + co, yn + cg, t - co]
                }
            };
            out.extend_from_slice(&[to_u8(rgb[0]), to_u8(rgb[1]), to_u8(rgb[2])]);
        }
    }
    out
}

/// The alpha image's luma plane as 8-bit alpha.
fn alpha_channel(frame: &Frame) -> Vec<u8> {
    let r = Range::new(frame.bit_depth, frame.colour.full_range);
    let plane = &frame.planes[0];
    match &plane.samples {
        Samples::U8(s) => s.iter().map(|&a| to_u8((a.value() - r.y_offset) * r.y_scale)).collect(),
        Samples::U16(s) => s.iter().map(|&a| to_u8((a.value() - r.y_offset) * r.y_scale)).collect(),
    }
}

fn unpremultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = u16::from(px[3]);
        if a == 0 || a == 255 {
            continue;
        }
        for c in &mut px[..3] {
            *c = ((u16::from(*c) * 255 + a / 2) / a).min(255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::av1::Layout;
    use super::*;
    use image::{DynamicImage, GenericImageView};

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn box_sizes_must_fit_their_parent() {
        let ftyp = boxed(b"ftyp", b"avif\0\0\0\0avifmif1");
        let mut ok = ftyp.clone();
        ok.extend(boxed(b"meta", &[&[0u8; 4][..], &boxed(b"pitm", &[0; 6])].concat()));
        assert!(check_box_sizes(&ok, 0).is_ok());
        // A box of size 0 runs to the end; a 64-bit size that fits is fine.
        assert!(check_box_sizes(&[&ftyp[..], &[0, 0, 0, 0], b"mdat", b"xyz"].concat(), 0).is_ok());
        let large = [&1u32.to_be_bytes()[..], b"mdat", &20u64.to_be_bytes(), &[7; 4]].concat();
        assert!(check_box_sizes(&large, 0).is_ok());

        let mut top = ftyp.clone();
        top[0..4].copy_from_slice(&0x8000_0020u32.to_be_bytes());
        let mut nested = ok.clone();
        let pitm = nested.len() - 14;
        nested[pitm..pitm + 4].copy_from_slice(&4096u32.to_be_bytes());
        let mut short = ok.clone();
        short.truncate(ok.len() - 1);
        let tiny = [&4u32.to_be_bytes()[..], b"ftyp"].concat();
        let huge64 = [&1u32.to_be_bytes()[..], b"mdat", &u64::MAX.to_be_bytes()].concat();
        for (what, bytes) in [("top", top), ("nested", nested), ("short", short), ("tiny", tiny), ("huge64", huge64)] {
            let err = check_box_sizes(&bytes, 0).expect_err(what);
            assert!(err.to_string().contains("larger than the data"), "{what}: {err}");
        }
    }

    #[test]
    fn irot_then_imir_matches_one_exif_orientation() {
        // An asymmetric 3×2 image; HEIF: rotate anticlockwise, then mirror.
        let src = DynamicImage::ImageRgb8(RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 0])));
        let rotations = [ImageRotation::D0, ImageRotation::D90, ImageRotation::D180, ImageRotation::D270];
        for (turns, rotation) in rotations.into_iter().enumerate() {
            for mirror in [None, Some(ImageMirror::LeftRight), Some(ImageMirror::TopBottom)] {
                let mut expected = src.clone();
                for _ in 0..turns {
                    expected = expected.rotate270(); // 90° anticlockwise
                }
                match mirror {
                    Some(ImageMirror::LeftRight) => expected = expected.fliph(),
                    Some(ImageMirror::TopBottom) => expected = expected.flipv(),
                    None => {}
                }
                let mut got = src.clone();
                got.apply_orientation(orientation(rotation, mirror.as_ref()));
                assert_eq!(got.dimensions(), expected.dimensions());
                assert_eq!(got.to_rgb8(), expected.to_rgb8(), "turns {turns}, mirror {mirror:?}");
            }
        }
    }

    fn frame(bit_depth: u8, full_range: bool, matrix: u8, y: u16, u: u16, v: u16) -> Frame {
        let plane = |s: u16| av1::Plane {
            width: 1,
            samples: if bit_depth == 8 { Samples::U8(vec![s as u8]) } else { Samples::U16(vec![s]) },
        };
        Frame {
            width: 1,
            height: 1,
            bit_depth,
            layout: Layout::I444,
            colour: ColourInfo { primaries: 1, transfer: 13, matrix, full_range },
            planes: vec![plane(y), plane(u), plane(v)],
        }
    }

    #[test]
    fn yuv_to_rgb_known_values() {
        // BT.601 limited range: black, white, and pure red as JPEG-era
        // encoders write them.
        assert_eq!(to_rgb(&frame(8, false, 6, 16, 128, 128)), vec![0, 0, 0]);
        assert_eq!(to_rgb(&frame(8, false, 6, 235, 128, 128)), vec![255, 255, 255]);
        let red = to_rgb(&frame(8, false, 6, 81, 90, 240));
        assert!(red[0] >= 253 && red[1] <= 2 && red[2] <= 2, "{red:?}");
        // BT.709 full range, 10-bit: mid grey stays grey.
        assert_eq!(to_rgb(&frame(10, true, 1, 512, 512, 512)), vec![128, 128, 128]);
        // Identity: Y=G, U=B, V=R.
        assert_eq!(to_rgb(&frame(8, true, 0, 10, 20, 30)), vec![30, 10, 20]);
    }

    #[test]
    fn unpremultiply_restores_colour() {
        let mut px = [64u8, 32, 0, 128];
        unpremultiply(&mut px);
        assert_eq!(px, [128, 64, 0, 128]);
    }
}
