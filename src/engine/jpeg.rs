//! JPEG decoding: zune-jpeg for full-size decodes (strict first, then once
//! more without stray bytes between header segments), jpeg-decoder's
//! reduced-size IDCTs for shrink-on-load, and CMYK/YCCK handling.

use std::io::Cursor;

use image::RgbImage;
use moxcms::Layout;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use super::color::{to_srgb, Icc};
use super::decode::{check_pixels, exif_orientation, swaps_sides, undecodable, Meta, Pixels};
use super::resize::target_size;
use super::{EngineError, Limits, Plan};

/// The shrink-on-load factor for a plan: the largest of 8, 4 and 2 that is
/// no more than the whole part of the plan's reduction on either axis, as
/// sharp chooses it (the reduced-size IDCT then does most of the shrinking
/// and the resize the rest); 1 when the plan does not shrink by 2.
pub(super) fn jpeg_shrink(src: (u32, u32), plan: Plan) -> u32 {
    let target = target_size(src, plan);
    let (cw, ch) = target.crop.map_or((f64::from(src.0), f64::from(src.1)), |c| (c.width, c.height));
    let reduction = (cw / f64::from(target.width)).min(ch / f64::from(target.height)).floor();
    [8, 4, 2].into_iter().find(|&s| f64::from(s) <= reduction).unwrap_or(1)
}

/// A JPEG, strictly; one refused with stray bytes between its header
/// segments (which libjpeg skips with a warning) is decoded again without
/// them. The scan is never repaired: a truncated one stays an error.
pub(super) fn decode_jpeg(bytes: &[u8], limits: &Limits, plan: Option<Plan>) -> Result<(Pixels, Meta), EngineError> {
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
pub(super) fn jpeg_frame_marker(bytes: &[u8]) -> Option<u8> {
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
pub(super) fn without_junk_between_segments(bytes: &[u8]) -> Option<Vec<u8>> {
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

pub(super) fn decode_jpeg_strict(
    bytes: &[u8],
    limits: &Limits,
    plan: Option<Plan>,
) -> Result<(Pixels, Meta), EngineError> {
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
pub(super) fn decode_jpeg_scaled(bytes: &[u8], width: u32, height: u32, shrink: u32) -> Result<RgbImage, EngineError> {
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
pub(super) fn adobe_inverted(bytes: &[u8]) -> bool {
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
pub(super) fn ycck_to_cmyk(raw: &mut [u8]) {
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
