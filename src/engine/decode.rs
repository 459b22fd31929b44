//! Decode once: header limits first, then pixels, then colour management and
//! EXIF orientation, giving 8-bit RGB or RGBA in sRGB. JPEG goes through
//! zune-jpeg directly (one header parse, CMYK kept for ICC conversion), AVIF
//! through `avif.rs` (rav1d); the other formats go through `image` with its
//! allocation limits set.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, RgbImage, RgbaImage};
use moxcms::Layout;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use super::color::{to_srgb, Icc};
use super::resize::target_size;
use super::{EngineError, Format, Limits, Plan, SourceInfo, MAX_SOURCE_SIDE};

/// Decoded pixels: 8-bit sRGB, with alpha only when some pixel is not opaque.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    Rgb(RgbImage),
    Rgba(RgbaImage),
}

impl Pixels {
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Rgb(i) => i.dimensions(),
            Pixels::Rgba(i) => i.dimensions(),
        }
    }

    pub fn has_alpha(&self) -> bool {
        matches!(self, Pixels::Rgba(_))
    }

    /// Keep alpha only when it carries information.
    fn from_dynamic(img: DynamicImage) -> Self {
        if img.color().has_alpha() {
            let rgba = img.into_rgba8();
            if rgba.pixels().all(|p| p.0[3] == 255) {
                Pixels::Rgb(DynamicImage::ImageRgba8(rgba).into_rgb8())
            } else {
                Pixels::Rgba(rgba)
            }
        } else {
            Pixels::Rgb(img.into_rgb8())
        }
    }

    fn into_dynamic(self) -> DynamicImage {
        match self {
            Pixels::Rgb(i) => DynamicImage::ImageRgb8(i),
            Pixels::Rgba(i) => DynamicImage::ImageRgba8(i),
        }
    }

    fn oriented(self, orientation: Orientation) -> Self {
        if orientation == Orientation::NoTransforms {
            return self;
        }
        let mut img = self.into_dynamic();
        img.apply_orientation(orientation);
        match img {
            DynamicImage::ImageRgba8(i) => Pixels::Rgba(i),
            other => Pixels::Rgb(other.into_rgb8()),
        }
    }
}

/// A decoded source: what it is, and its pixels.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub info: SourceInfo,
    pub pixels: Pixels,
}

/// Decode `bytes`. With a `plan`, a JPEG may be decoded at 1/2, 1/4 or 1/8
/// of its size when that still leaves at least the plan's output size (see
/// [`jpeg_shrink`]); `info` always gives the full size.
pub(super) fn decode(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    plan: Option<Plan>,
) -> Result<Decoded, EngineError> {
    let (pixels, meta) = match format {
        Format::Jpeg => decode_jpeg(bytes, limits, plan)?,
        Format::Avif => {
            let avif = super::avif::decode(bytes, limits, |w, h| check_pixels(w, h, limits))?;
            (avif.pixels, Meta { orientation: avif.orientation, frames: avif.frames, icc: avif.icc, full: None })
        }
        _ => decode_with_image(bytes, format, limits)?,
    };
    let orientation = meta.orientation;
    let pixels = pixels.oriented(orientation);
    let (width, height) = match meta.full {
        Some((w, h)) if swaps_sides(orientation) => (h, w),
        Some(full) => full,
        None => pixels.dimensions(),
    };
    Ok(Decoded {
        info: SourceInfo {
            format,
            width,
            height,
            orientation: orientation.to_exif(),
            has_alpha: pixels.has_alpha(),
            animated: meta.frames > 1,
            frames: meta.frames,
            icc: meta.icc,
        },
        pixels,
    })
}

pub(super) struct Meta {
    pub orientation: Orientation,
    pub frames: u32,
    pub icc: bool,
    /// The stored (unoriented) size, when the pixels were decoded smaller.
    pub full: Option<(u32, u32)>,
}

fn swaps_sides(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// The shrink-on-load factor for a plan: the largest of 8, 4 and 2 that is
/// no more than the whole part of the plan's reduction on either axis, as
/// sharp chooses it (the reduced-size IDCT then does most of the shrinking
/// and the resize the rest); 1 when the plan does not shrink by 2.
fn jpeg_shrink(src: (u32, u32), plan: Plan) -> u32 {
    let target = target_size(src, plan);
    let (cw, ch) = target.crop.map_or((f64::from(src.0), f64::from(src.1)), |c| (c.width, c.height));
    let reduction = (cw / f64::from(target.width)).min(ch / f64::from(target.height)).floor();
    [8, 4, 2].into_iter().find(|&s| f64::from(s) <= reduction).unwrap_or(1)
}

pub(super) fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), EngineError> {
    let too_many = u64::from(width) * u64::from(height) > limits.max_pixels;
    if too_many || width > MAX_SOURCE_SIDE || height > MAX_SOURCE_SIDE {
        return Err(EngineError::TooManyPixels {
            width,
            height,
            max_pixels: limits.max_pixels,
            max_side: MAX_SOURCE_SIDE,
        });
    }
    if width == 0 || height == 0 {
        return Err(EngineError::Undecodable("image has no pixels".into()));
    }
    Ok(())
}

/// Orientation from an EXIF blob; anything malformed counts as 1.
fn exif_orientation(exif: Option<&[u8]>) -> Orientation {
    exif.and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms)
}

pub(super) fn undecodable(e: impl std::fmt::Display) -> EngineError {
    EngineError::Undecodable(e.to_string())
}

/// A JPEG, strictly; one refused with stray bytes between its header
/// segments (which libjpeg skips with a warning) is decoded again without
/// them. The scan is never repaired: a truncated one stays an error.
fn decode_jpeg(bytes: &[u8], limits: &Limits, plan: Option<Plan>) -> Result<(Pixels, Meta), EngineError> {
    match jpeg_frame_marker(bytes) {
        Some(0xC3 | 0xC7 | 0xCB | 0xCF) => {
            return Err(EngineError::UnsupportedFormat("lossless JPEG is not supported".into()))
        }
        Some(0xC9 | 0xCA | 0xCD | 0xCE) => {
            return Err(EngineError::UnsupportedFormat("arithmetic-coded JPEG is not supported".into()))
        }
        _ => {}
    }
    match decode_jpeg_strict(bytes, limits, plan) {
        Err(EngineError::Undecodable(why)) => match without_junk_between_segments(bytes) {
            Some(clean) => decode_jpeg_strict(&clean, limits, plan).map_err(|_| EngineError::Undecodable(why)),
            None => Err(EngineError::Undecodable(why)),
        },
        other => other,
    }
}

/// The start-of-frame marker (0xC0–0xCF but DHT, JPG and DAC), which
/// names the coding: baseline, progressive, lossless, arithmetic.
fn jpeg_frame_marker(bytes: &[u8]) -> Option<u8> {
    let mut i = 2;
    loop {
        if *bytes.get(i)? != 0xFF {
            i += 1;
            continue;
        }
        let marker = *bytes.get(i + 1)?;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => return Some(marker),
            0xD9 | 0xDA => return None,
            0x01 | 0xD0..=0xD8 | 0xFF => i += if marker == 0xFF { 1 } else { 2 },
            _ => i += 2 + usize::from(u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?])),
        }
    }
}

/// `bytes` without what lies between one header segment and the next
/// marker, up to the first scan (copied as it is from there), or `None`
/// when there is nothing such to remove.
fn without_junk_between_segments(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..2]);
    let (mut i, mut skipped) = (2, 0usize);
    while i < bytes.len() {
        if bytes[i] != 0xFF {
            i += 1;
            skipped += 1;
            continue;
        }
        let mut m = i;
        while bytes.get(m) == Some(&0xFF) {
            m += 1; // fill bytes
        }
        let marker = *bytes.get(m)?;
        match marker {
            0x00 => {
                skipped += m + 1 - i;
                i = m + 1;
            }
            0x01 | 0xD0..=0xD8 => {
                out.extend_from_slice(&[0xFF, marker]);
                i = m + 1;
            }
            0xD9 | 0xDA => {
                out.push(0xFF);
                out.extend_from_slice(&bytes[m..]);
                break;
            }
            _ => {
                let len = usize::from(u16::from_be_bytes([*bytes.get(m + 1)?, *bytes.get(m + 2)?]));
                out.push(0xFF);
                out.extend_from_slice(bytes.get(m..m + 1 + len)?);
                i = m + 1 + len;
            }
        }
    }
    (skipped > 0).then_some(out)
}

fn decode_jpeg_strict(bytes: &[u8], limits: &Limits, plan: Option<Plan>) -> Result<(Pixels, Meta), EngineError> {
    // Strict mode: a truncated or corrupt scan is an error, not grey fill.
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(undecodable)?;
    let (w, h) = decoder.dimensions().ok_or_else(|| undecodable("no frame header"))?;
    let (width, height) = (w as u32, h as u32);
    check_pixels(width, height, limits)?;
    let orientation = exif_orientation(decoder.exif().map(Vec::as_slice));
    let icc_bytes = decoder.icc_profile();
    let icc = icc_bytes.as_deref().and_then(Icc::parse);
    let input = decoder.input_colorspace().ok_or_else(|| undecodable("no colour space"))?;
    let pixels = (width as usize) * (height as usize);
    let oriented = if swaps_sides(orientation) { (height, width) } else { (width, height) };
    let shrink = plan.map_or(1, |p| jpeg_shrink(oriented, p));
    let plain = matches!(input, ColorSpace::YCbCr | ColorSpace::RGB | ColorSpace::Luma);
    // One policy for upload and render: the file was accepted whole (zune,
    // strict), so a scaled decode that jpeg-decoder refuses falls back to
    // that same whole decode rather than refusing a render of it.
    let scaled = (shrink > 1 && plain && !matches!(icc, Some(Icc::Gray(_))))
        .then(|| decode_jpeg_scaled(bytes, width, height, shrink).ok())
        .flatten();
    let shrunk = scaled.is_some();
    let (out, (ow, oh)) = if let Some(img) = scaled {
        let dims = img.dimensions();
        (img.into_raw(), dims)
    } else {
        let out = match (input, &icc) {
            (ColorSpace::CMYK | ColorSpace::YCCK, Some(Icc::Cmyk(profile))) => {
                // Decode to raw CMYK and let the profile do the conversion.
                let raw_cs = if input == ColorSpace::YCCK { ColorSpace::YCCK } else { ColorSpace::CMYK };
                decoder.set_options(decoder.options().jpeg_set_out_colorspace(raw_cs));
                let mut raw = decoder.decode().map_err(undecodable)?;
                if input == ColorSpace::YCCK {
                    ycck_to_cmyk(&mut raw);
                }
                if adobe_inverted(bytes) {
                    raw.iter_mut().for_each(|v| *v = 255 - *v);
                }
                match to_srgb(profile, &raw, Layout::Rgba, Layout::Rgb, pixels) {
                    Some(rgb) => rgb,
                    // Profile unusable: fall back to the naive conversion.
                    None => cmyk_naive(&raw),
                }
            }
            (ColorSpace::Luma, Some(Icc::Gray(profile))) => {
                decoder.set_options(decoder.options().jpeg_set_out_colorspace(ColorSpace::Luma));
                let grey = decoder.decode().map_err(undecodable)?;
                match to_srgb(profile, &grey, Layout::Gray, Layout::Rgb, pixels) {
                    Some(rgb) => rgb,
                    None => grey.iter().flat_map(|&v| [v, v, v]).collect(),
                }
            }
            _ => {
                decoder.set_options(decoder.options().jpeg_set_out_colorspace(ColorSpace::RGB));
                decoder.decode().map_err(undecodable)?
            }
        };
        (out, (width, height))
    };
    // An RGB profile is the one kind the arms above leave to apply, at
    // whichever size the pixels came out.
    let out = match &icc {
        Some(Icc::Rgb(profile)) => {
            let n = (ow as usize) * (oh as usize);
            to_srgb(profile, &out, Layout::Rgb, Layout::Rgb, n).unwrap_or(out)
        }
        _ => out,
    };
    let img = RgbImage::from_raw(ow, oh, out).ok_or_else(|| undecodable("short pixel buffer"))?;
    let meta = Meta { orientation, frames: 1, icc: icc_bytes.is_some(), full: shrunk.then_some((width, height)) };
    Ok((Pixels::Rgb(img), meta))
}

/// Decode a JPEG at 1/`shrink` of its `width`×`height` with jpeg-decoder's
/// reduced-size IDCTs. The header was already parsed and checked against
/// the limits; the buffer limit is the scaled image. Grey comes out as RGB.
fn decode_jpeg_scaled(bytes: &[u8], width: u32, height: u32, shrink: u32) -> Result<RgbImage, EngineError> {
    let (rw, rh) = (width.div_ceil(shrink), height.div_ceil(shrink));
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(undecodable)?;
    let requested = (u16::try_from(rw).map_err(undecodable)?, u16::try_from(rh).map_err(undecodable)?);
    let (sw, sh) = decoder.scale(requested.0, requested.1).map_err(undecodable)?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    decoder.set_max_decoding_buffer_size((sw as usize) * (sh as usize) * 4);
    let data = decoder.decode().map_err(undecodable)?;
    let format = decoder.info().ok_or_else(|| undecodable("no frame header"))?.pixel_format;
    let rgb = match format {
        jpeg_decoder::PixelFormat::RGB24 => data,
        jpeg_decoder::PixelFormat::L8 => data.iter().flat_map(|&v| [v, v, v]).collect(),
        other => return Err(undecodable(format!("unexpected pixel format {other:?} at reduced scale"))),
    };
    RgbImage::from_raw(sw, sh, rgb).ok_or_else(|| undecodable("short pixel buffer"))
}

/// Photoshop writes CMYK JPEGs with inverted samples and says so with an
/// Adobe APP14 marker; without one, samples are taken as plain CMYK.
fn adobe_inverted(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            return false; // start of scan: headers are over
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if marker == 0xEE && len >= 12 && bytes.get(i + 4..i + 9) == Some(b"Adobe") {
            return true;
        }
        i += 2 + len;
    }
    false
}

/// YCCK (Adobe transform 2) to the CMYK it encodes: YCbCr to RGB gives
/// the complement of CMY; K passes through.
fn ycck_to_cmyk(raw: &mut [u8]) {
    for px in raw.chunks_exact_mut(4) {
        let y = f32::from(px[0]);
        let cb = f32::from(px[1]) - 128.0;
        let cr = f32::from(px[2]) - 128.0;
        let r = y + 1.402 * cr;
        let g = y - 0.344_136 * cb - 0.714_136 * cr;
        let b = y + 1.772 * cb;
        px[0] = 255 - r.round().clamp(0.0, 255.0) as u8;
        px[1] = 255 - g.round().clamp(0.0, 255.0) as u8;
        px[2] = 255 - b.round().clamp(0.0, 255.0) as u8;
    }
}

/// CMYK ink amounts (0 = no ink) to RGB without a profile.
pub(super) fn cmyk_naive(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 4 * 3);
    for px in raw.chunks_exact(4) {
        let k = 255 - u16::from(px[3]);
        for c in &px[..3] {
            out.push(((255 - u16::from(*c)) * k / 255) as u8);
        }
    }
    out
}

fn image_format(format: Format) -> ImageFormat {
    match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
        Format::Gif => ImageFormat::Gif,
        Format::Tiff => ImageFormat::Tiff,
        Format::Bmp => ImageFormat::Bmp,
        Format::Avif => ImageFormat::Avif,
    }
}

fn map_image_error(e: image::ImageError) -> EngineError {
    match e {
        image::ImageError::Limits(l) => EngineError::DecoderLimit(l.to_string()),
        image::ImageError::Unsupported(u) => EngineError::UnsupportedFormat(u.to_string()),
        other => EngineError::Undecodable(other.to_string()),
    }
}

/// An animated WebP's frames (ANMF) must hold an image of the frame's own
/// size, as libwebp requires: image-webp 0.2.4 sizes a frame's alpha by
/// the frame and then indexes it by the image inside, and panics when the
/// two differ (found by `fuzz/`, kept in fuzz/regressions/decode_webp/).
pub(super) fn check_webp_frames(bytes: &[u8]) -> Result<(), EngineError> {
    fn chunks(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
        let mut rest = data;
        std::iter::from_fn(move || {
            if rest.len() < 8 {
                return None;
            }
            let kind = [rest[0], rest[1], rest[2], rest[3]];
            let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            let body = rest.get(8..8 + len).unwrap_or(&rest[8..]);
            rest = rest.get(8 + len + (len & 1)..).unwrap_or_default();
            Some((kind, body))
        })
    }
    let u24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    let Some(riff) = bytes.get(12..) else { return Ok(()) };
    for (n, (_, frame)) in chunks(riff).filter(|(k, _)| k == b"ANMF").enumerate() {
        if frame.len() < 16 {
            continue;
        }
        let (w, h) = (u24(&frame[6..9]) + 1, u24(&frame[9..12]) + 1);
        let inner = chunks(&frame[16..]).find_map(|(kind, body)| match &kind {
            // VP8 key frame: 3 bytes of tag, the start code, then 14-bit sizes.
            b"VP8 " if body.len() >= 10 && body[3..6] == [0x9d, 0x01, 0x2a] => Some((
                u32::from(u16::from_le_bytes([body[6], body[7]]) & 0x3fff),
                u32::from(u16::from_le_bytes([body[8], body[9]]) & 0x3fff),
            )),
            // VP8L: the signature byte, then 14 bits each of width-1, height-1.
            b"VP8L" if body.len() >= 5 && body[0] == 0x2f => {
                let bits = u32::from_le_bytes([body[1], body[2], body[3], body[4]]);
                Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
            }
            _ => None,
        });
        if let Some((iw, ih)) = inner {
            if (iw, ih) != (w, h) {
                return Err(EngineError::Undecodable(format!(
                    "webp animation frame {}: its image is {iw}x{ih}, but the frame is {w}x{h}",
                    n + 1
                )));
            }
        }
    }
    Ok(())
}

/// The formats `image` decodes; a TIFF it refuses goes to `tiff.rs`.
fn decode_with_image(bytes: &[u8], format: Format, limits: &Limits) -> Result<(Pixels, Meta), EngineError> {
    if format != Format::Tiff {
        return decode_with_image_crate(bytes, format, limits);
    }
    if let Some(out) = super::tiff::cmyk_with_icc(bytes, limits)? {
        return Ok(out);
    }
    if let Some(out) = super::tiff::fax3(bytes, limits)? {
        return Ok(out);
    }
    match decode_with_image_crate(bytes, format, limits) {
        Err(EngineError::UnsupportedFormat(_)) => super::tiff::decode_direct(bytes, limits),
        other => other,
    }
}

fn decode_with_image_crate(bytes: &[u8], format: Format, limits: &Limits) -> Result<(Pixels, Meta), EngineError> {
    if format == Format::Webp {
        check_webp_frames(bytes)?;
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format(format));
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(MAX_SOURCE_SIDE);
    decoder_limits.max_image_height = Some(MAX_SOURCE_SIDE);
    // Room for one 16-bit RGBA copy of the largest allowed image, no more:
    // a header that lies about its size cannot make the decoder allocate more.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            too_many_from_header(bytes, format, limits).unwrap_or_else(|| map_image_error(e))
        }
        other => map_image_error(other),
    })?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limits)?;
    let icc_bytes = decoder.icc_profile().ok().flatten();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let frames = frame_count(bytes, format);
    let img = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    let icc = icc_bytes.as_deref().and_then(Icc::parse);
    let pixels = apply_icc(img, icc.as_ref());
    Ok((pixels, Meta { orientation, frames, icc: icc_bytes.is_some(), full: None }))
}

/// When `image` refuses at the header, read the size ourselves so the error
/// names it (and is `too_many_pixels`, not a generic failure).
fn too_many_from_header(bytes: &[u8], format: Format, limits: &Limits) -> Option<EngineError> {
    let (w, h) = match format {
        Format::Png if bytes.len() >= 24 => {
            (u32::from_be_bytes(bytes[16..20].try_into().ok()?), u32::from_be_bytes(bytes[20..24].try_into().ok()?))
        }
        _ => return None,
    };
    check_pixels(w, h, limits).err()
}

fn apply_icc(img: DynamicImage, icc: Option<&Icc>) -> Pixels {
    let (w, h) = (img.width(), img.height());
    let n = (w as usize) * (h as usize);
    match icc {
        Some(Icc::Rgb(profile)) => match Pixels::from_dynamic(img) {
            Pixels::Rgb(rgb) => {
                let out = to_srgb(profile, rgb.as_raw(), Layout::Rgb, Layout::Rgb, n);
                Pixels::Rgb(out.and_then(|o| RgbImage::from_raw(w, h, o)).unwrap_or(rgb))
            }
            Pixels::Rgba(rgba) => {
                let out = to_srgb(profile, rgba.as_raw(), Layout::Rgba, Layout::Rgba, n);
                Pixels::Rgba(out.and_then(|o| RgbaImage::from_raw(w, h, o)).unwrap_or(rgba))
            }
        },
        Some(Icc::Gray(profile)) if !img.color().has_alpha() && img.color().channel_count() == 1 => {
            let grey = img.into_luma8();
            match to_srgb(profile, grey.as_raw(), Layout::Gray, Layout::Rgb, n) {
                Some(o) => Pixels::Rgb(RgbImage::from_raw(w, h, o).expect("buffer sized for image")),
                None => Pixels::from_dynamic(DynamicImage::ImageLuma8(grey)),
            }
        }
        _ => Pixels::from_dynamic(img),
    }
}

/// Frames in an animation (1 for still images). Counting is best effort:
/// a damaged later frame does not fail an image whose first frame decodes.
fn frame_count(bytes: &[u8], format: Format) -> u32 {
    const MAX_COUNT: u32 = 100_000;
    match format {
        Format::Gif => {
            let mut opts = gif::DecodeOptions::new();
            opts.skip_frame_decoding(true);
            let Ok(mut d) = opts.read_info(Cursor::new(bytes)) else { return 1 };
            let mut n = 0;
            while n < MAX_COUNT {
                match d.next_frame_info() {
                    Ok(Some(_)) => n += 1,
                    _ => break,
                }
            }
            n.max(1)
        }
        Format::Webp => image_webp::WebPDecoder::new(Cursor::new(bytes))
            .map(|d| if d.is_animated() { d.num_frames() } else { 1 })
            .unwrap_or(1)
            .max(1),
        Format::Png => {
            let Ok(r) = png::Decoder::new(Cursor::new(bytes)).read_info() else { return 1 };
            r.info().animation_control.map_or(1, |a| a.num_frames).max(1)
        }
        _ => 1,
    }
}
