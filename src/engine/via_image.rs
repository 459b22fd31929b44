//! PNG, GIF, WebP, BMP and TIFF through the `image` crate, with its
//! allocation limits set and the header checked first; frame counts; the
//! WebP frame check that keeps image-webp from panicking.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat};

use super::color::Icc;
use super::decode::{apply_icc, check_pixels, Meta, Pixels};
use super::{EngineError, Format, Limits, MAX_SOURCE_SIDE};

pub(super) fn image_format(format: Format) -> ImageFormat {
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

pub(super) fn map_image_error(e: image::ImageError) -> EngineError {
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

/// The formats `image` decodes; TIFF goes through `tiff.rs`, which picks
/// its own path and comes back here for the cases `image` reads.
pub(super) fn decode_with_image(bytes: &[u8], format: Format, limits: &Limits) -> Result<(Pixels, Meta), EngineError> {
    if format == Format::Tiff {
        return super::tiff::decode(bytes, limits);
    }
    decode_with_image_crate(bytes, format, limits)
}

pub(super) fn decode_with_image_crate(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<(Pixels, Meta), EngineError> {
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
pub(super) fn too_many_from_header(bytes: &[u8], format: Format, limits: &Limits) -> Option<EngineError> {
    let (w, h) = match format {
        Format::Png if bytes.len() >= 24 => {
            (u32::from_be_bytes(bytes[16..20].try_into().ok()?), u32::from_be_bytes(bytes[20..24].try_into().ok()?))
        }
        _ => return None,
    };
    check_pixels(w, h, limits).err()
}

/// Frames in an animation (1 for still images). Counting is best effort:
/// a damaged later frame does not fail an image whose first frame decodes.
pub(super) fn frame_count(bytes: &[u8], format: Format) -> u32 {
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
