//! TIFF read with the `tiff` crate where `image` does not go: CMYK with an
//! ICC profile (the profile must see the real inks), and the layouts
//! `image` refuses but scanners, microscopes and GIS tools write: palette,
//! 2- and 4-bit grey, signed and floating-point samples, and one plane per
//! channel (strips or tiles). Samples are brought to 8 bits here; the
//! photometric interpretation says what they mean.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{RgbImage, RgbaImage};
use moxcms::Layout;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;
use tiff::ColorType;

use super::color::{to_srgb, Icc};
use super::decode::{check_pixels, undecodable, Meta, Pixels};
use super::jpeg::cmyk_naive;
use super::{EngineError, Limits};

fn open<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Decoder<Cursor<&'a [u8]>>, EngineError> {
    let mut tiff_limits = tiff::decoder::Limits::default();
    // Every plane of the largest allowed image in 64-bit samples, no more.
    tiff_limits.decoding_buffer_size = usize::try_from(limits.max_pixels.saturating_mul(4 * 8)).unwrap_or(usize::MAX);
    Ok(Decoder::new(Cursor::new(bytes)).map_err(undecodable)?.with_limits(tiff_limits))
}

fn orientation(dec: &mut Decoder<Cursor<&[u8]>>) -> Orientation {
    dec.get_tag_u32(Tag::Orientation)
        .ok()
        .and_then(|v| u8::try_from(v).ok())
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms)
}

/// CMYK with an embedded profile, converted through it; `None` for any
/// other TIFF.
fn cmyk_with_icc(dec: &mut Decoder<Cursor<&[u8]>>, limits: &Limits) -> Result<Option<(Pixels, Meta)>, EngineError> {
    if !matches!(dec.colortype(), Ok(ColorType::CMYK(8))) {
        return Ok(None);
    }
    let Ok(icc_bytes) = dec.get_tag_u8_vec(Tag::Unknown(34675)) else { return Ok(None) };
    let Some(Icc::Cmyk(profile)) = Icc::parse(&icc_bytes) else { return Ok(None) };
    let (w, h) = dec.dimensions().map_err(undecodable)?;
    check_pixels(w, h, limits)?;
    let orientation = orientation(dec);
    let DecodingResult::U8(raw) = dec.read_image().map_err(undecodable)? else {
        return Err(undecodable("unexpected sample format"));
    };
    let n = (w as usize) * (h as usize);
    if raw.len() < n * 4 {
        return Err(undecodable("short pixel buffer"));
    }
    let rgb =
        to_srgb(&profile, &raw[..n * 4], Layout::Rgba, Layout::Rgb, n).unwrap_or_else(|| cmyk_naive(&raw[..n * 4]));
    let img = RgbImage::from_raw(w, h, rgb).ok_or_else(|| undecodable("short pixel buffer"))?;
    Ok(Some((Pixels::Rgb(img), Meta { orientation, frames: 1, icc: true, full: None })))
}

/// What the samples are: channels, and how to read them as colour.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Grey { alpha: bool },
    Rgb { alpha: bool },
    Palette,
    Cmyk,
}

fn unsupported(what: impl std::fmt::Display) -> EngineError {
    EngineError::UnsupportedFormat(format!("TIFF: {what}"))
}

/// Bilevel images in CCITT Group 3 (T.4, one-dimensional), which the
/// `tiff` crate does not read (`dec` is `bytes` opened, compression 3).
fn fax3(bytes: &[u8], dec: &mut Decoder<Cursor<&[u8]>>, limits: &Limits) -> Result<(Pixels, Meta), EngineError> {
    let (w, h) = dec.dimensions().map_err(undecodable)?;
    check_pixels(w, h, limits)?;
    let width = u16::try_from(w).map_err(|_| unsupported("a fax image wider than 65535 pixels"))?;
    if dec.get_tag_u32(Tag::Unknown(292)).unwrap_or(0) & 1 != 0 {
        return Err(unsupported("CCITT Group 3 with two-dimensional coding"));
    }
    let white_is_zero = dec.get_tag_u32(Tag::PhotometricInterpretation).unwrap_or(0) == 0;
    let orientation = orientation(dec);
    let offsets = dec.get_tag_u64_vec(Tag::StripOffsets).map_err(undecodable)?;
    let counts = dec.get_tag_u64_vec(Tag::StripByteCounts).map_err(undecodable)?;
    let mut grey: Vec<u8> = Vec::with_capacity((w as usize) * (h as usize));
    let mut rows = 0u32;
    for (&offset, &count) in offsets.iter().zip(&counts) {
        let start = usize::try_from(offset).map_err(undecodable)?;
        let end = start.saturating_add(usize::try_from(count).map_err(undecodable)?);
        let strip = bytes.get(start..end).ok_or_else(|| undecodable("a strip lies outside the file"))?;
        // A strip need not end with end-of-line codes, and the decoder only
        // hands over a row once it has seen the next one: end each strip
        // with six (fill bits, then EOL), as a fax page ends.
        let ended = strip.iter().copied().chain([0x00, 0x01].repeat(6));
        let _ = fax::decoder::decode_g3(ended, |transitions| {
            if rows < h {
                rows += 1;
                // Runs code sample value 0 as "white"; the photometric
                // interpretation says whether 0 shows as white.
                grey.extend(fax::decoder::pels(transitions, width).map(|c| {
                    let zero = c == fax::Color::White;
                    if zero == white_is_zero {
                        255
                    } else {
                        0
                    }
                }));
            }
        });
    }
    if rows < h {
        return Err(undecodable(format!("the fax data holds {rows} of {h} rows")));
    }
    let rgb = grey.iter().flat_map(|&v| [v, v, v]).collect();
    let img = RgbImage::from_raw(w, h, rgb).ok_or_else(|| undecodable("short pixel buffer"))?;
    Ok((Pixels::Rgb(img), Meta { orientation, frames: 1, icc: false, full: None }))
}

/// The TIFF `PhotometricInterpretation` of a palette image.
const PALETTE: u32 = 3;

/// A TIFF: its header read once to pick the path. CCITT Group 3 and CMYK
/// with a profile are decoded here; the rest goes to `image`, and what it
/// refuses comes back to `decode_direct`.
pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<(Pixels, Meta), EngineError> {
    let mut dec = open(bytes, limits)?;
    if dec.get_tag_u32(Tag::Compression).ok() == Some(3) {
        return fax3(bytes, &mut dec, limits);
    }
    if let Some(out) = cmyk_with_icc(&mut dec, limits)? {
        return Ok(out);
    }
    let photometric = dec.get_tag_u32(Tag::PhotometricInterpretation).unwrap_or(1);
    drop(dec);
    match super::via_image::decode_with_image_crate(bytes, super::Format::Tiff, limits) {
        Err(EngineError::UnsupportedFormat(_)) => decode_direct(bytes, photometric, limits),
        other => other,
    }
}

/// Decode a TIFF `image` refused. Errors name what is not supported.
fn decode_direct(bytes: &[u8], photometric: u32, limits: &Limits) -> Result<(Pixels, Meta), EngineError> {
    if photometric == PALETTE {
        // The `tiff` crate reads no palette images, but reads their indices
        // as grey samples: the same file, said to be grey, then mapped here.
        let as_grey = with_photometric(bytes, 1).ok_or_else(|| undecodable("a palette TIFF with no IFD to read"))?;
        return decode_samples(&as_grey, bytes, limits, true);
    }
    decode_samples(bytes, bytes, limits, false)
}

/// A copy of `bytes` whose first IFD's PhotometricInterpretation is `value`.
fn with_photometric(bytes: &[u8], value: u16) -> Option<Vec<u8>> {
    let big_endian = match bytes.get(..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    let u64_at = |at: usize| -> Option<u64> {
        let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
        Some(if big_endian { u64::from_be_bytes(b) } else { u64::from_le_bytes(b) })
    };
    // Classic TIFF: 2-byte entry count, 12-byte entries; BigTIFF: 8 and 20.
    let (count, entry_at, entry_len) = match u16_at(2)? {
        42 => {
            let ifd = usize::try_from(u32_at(4)?).ok()?;
            (usize::from(u16_at(ifd)?), ifd + 2, 12)
        }
        43 => {
            let ifd = usize::try_from(u64_at(8)?).ok()?;
            (usize::try_from(u64_at(ifd)?).ok()?, ifd + 8, 20)
        }
        _ => return None,
    };
    for i in 0..count.min(4096) {
        let at = entry_at + i * entry_len;
        if u16_at(at)? == Tag::PhotometricInterpretation.to_u16() && u16_at(at + 2)? == 3 {
            let value_at = at + if entry_len == 12 { 8 } else { 12 };
            let mut out = bytes.to_vec();
            let v = if big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
            out.get_mut(value_at..value_at + 2)?.copy_from_slice(&v);
            return Some(out);
        }
    }
    None
}

/// Decode `bytes`, whose samples are palette indices when `palette` (its
/// ColorMap then read from `original`).
fn decode_samples(
    bytes: &[u8],
    original: &[u8],
    limits: &Limits,
    palette: bool,
) -> Result<(Pixels, Meta), EngineError> {
    let mut dec = open(bytes, limits)?;
    let (w, h) = dec.dimensions().map_err(undecodable)?;
    check_pixels(w, h, limits)?;
    let colortype = dec.colortype().map_err(unsupported)?;
    let photometric = dec.get_tag_u32(Tag::PhotometricInterpretation).unwrap_or(1);
    let (kind, bits) = match colortype {
        ColorType::Gray(b) if palette => (Kind::Palette, b),
        ColorType::Gray(b) => (Kind::Grey { alpha: false }, b),
        ColorType::GrayA(b) => (Kind::Grey { alpha: true }, b),
        ColorType::RGB(b) => (Kind::Rgb { alpha: false }, b),
        ColorType::RGBA(b) => (Kind::Rgb { alpha: true }, b),
        ColorType::Palette(b) => (Kind::Palette, b),
        ColorType::CMYK(b) => (Kind::Cmyk, b),
        other => return Err(unsupported(format!("{other:?} samples"))),
    };
    let channels: usize = match kind {
        Kind::Grey { alpha } => 1 + usize::from(alpha),
        Kind::Rgb { alpha } => 3 + usize::from(alpha),
        Kind::Palette => 1,
        Kind::Cmyk => 4,
    };
    let planar = dec.get_tag_u32(Tag::PlanarConfiguration).unwrap_or(1) == 2;
    let orientation = orientation(&mut dec);
    let mut result = DecodingResult::U8(Vec::new());
    let layout = dec.read_image_to_buffer(&mut result).map_err(undecodable)?;
    let n = (w as usize) * (h as usize);

    // Samples as 8-bit values, in the file's order (rows; planes when planar).
    let samples: Vec<u8> = match (&result, bits) {
        (DecodingResult::U8(v), 8) => v.clone(),
        (DecodingResult::U8(v), 1 | 2 | 4) => {
            // Packed rows, each padded to a whole byte.
            let per_row = if planar { w as usize } else { w as usize * channels };
            let rows = if planar { h as usize * channels } else { h as usize };
            unpack(v, bits, per_row, rows, kind == Kind::Palette)
        }
        (DecodingResult::U16(v), 16) => v.iter().map(|&s| (s >> 8) as u8).collect(),
        (DecodingResult::U32(v), 32) => v.iter().map(|&s| (s >> 24) as u8).collect(),
        (DecodingResult::I8(v), 8) => v.iter().map(|&s| (i16::from(s) + 128) as u8).collect(),
        (DecodingResult::I16(v), 16) => v.iter().map(|&s| ((i32::from(s) + 32768) >> 8) as u8).collect(),
        (DecodingResult::I32(v), 32) => v.iter().map(|&s| ((i64::from(s) + (1 << 31)) >> 24) as u8).collect(),
        (DecodingResult::F32(v), 32) => v.iter().map(|&s| unit_to_u8(f64::from(s))).collect(),
        (DecodingResult::F64(v), 64) => v.iter().map(|&s| unit_to_u8(s)).collect(),
        _ => return Err(unsupported(format!("{bits}-bit {colortype:?} samples"))),
    };
    if samples.len() < n * channels || layout.complete_len > result_bytes(&result) {
        return Err(undecodable("the image's planes do not all fit the decoding limit"));
    }
    // One pixel's samples together.
    let chunky: Vec<u8> = if planar {
        let mut out = vec![0u8; n * channels];
        for c in 0..channels {
            for (i, px) in out.chunks_exact_mut(channels).enumerate() {
                px[c] = samples[c * n + i];
            }
        }
        out
    } else {
        samples[..n * channels].to_vec()
    };

    let pixels = match kind {
        Kind::Grey { alpha } => {
            let white_is_zero = photometric == 0;
            let mut rgba = Vec::with_capacity(n * 4);
            for px in chunky.chunks_exact(channels) {
                let v = if white_is_zero { 255 - px[0] } else { px[0] };
                rgba.extend_from_slice(&[v, v, v, if alpha { px[1] } else { 255 }]);
            }
            finish(w, h, rgba, alpha)?
        }
        Kind::Rgb { alpha } => {
            if alpha {
                Pixels::Rgba(RgbaImage::from_raw(w, h, chunky).ok_or_else(|| undecodable("short pixel buffer"))?)
            } else {
                Pixels::Rgb(RgbImage::from_raw(w, h, chunky).ok_or_else(|| undecodable("short pixel buffer"))?)
            }
        }
        Kind::Palette => {
            let map = open(original, limits)?
                .get_tag_u16_vec(Tag::ColorMap)
                .map_err(|_| undecodable("a palette TIFF without a ColorMap"))?;
            let entries = 1usize << bits;
            if map.len() < 3 * entries {
                return Err(undecodable("the ColorMap is shorter than the palette"));
            }
            let mut rgb = Vec::with_capacity(n * 3);
            for &i in &chunky {
                let i = usize::from(i).min(entries - 1);
                rgb.extend_from_slice(&[
                    (map[i] >> 8) as u8,
                    (map[entries + i] >> 8) as u8,
                    (map[2 * entries + i] >> 8) as u8,
                ]);
            }
            Pixels::Rgb(RgbImage::from_raw(w, h, rgb).ok_or_else(|| undecodable("short pixel buffer"))?)
        }
        Kind::Cmyk => {
            Pixels::Rgb(RgbImage::from_raw(w, h, cmyk_naive(&chunky)).ok_or_else(|| undecodable("short pixel buffer"))?)
        }
    };
    Ok((pixels, Meta { orientation, frames: 1, icc: false, full: None }))
}

fn result_bytes(r: &DecodingResult) -> usize {
    match r {
        DecodingResult::U8(v) => v.len(),
        DecodingResult::I8(v) => v.len(),
        DecodingResult::U16(v) => v.len() * 2,
        DecodingResult::I16(v) => v.len() * 2,
        DecodingResult::F16(v) => v.len() * 2,
        DecodingResult::U32(v) => v.len() * 4,
        DecodingResult::I32(v) => v.len() * 4,
        DecodingResult::F32(v) => v.len() * 4,
        DecodingResult::U64(v) => v.len() * 8,
        DecodingResult::I64(v) => v.len() * 8,
        DecodingResult::F64(v) => v.len() * 8,
    }
}

/// A float sample, 0.0–1.0 as black to white.
fn unit_to_u8(v: f64) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// `rows` rows of `per_row` samples of `bits` bits each, every row padded
/// to a byte, to one byte per sample: scaled to 0–255, or (for palette
/// indices) kept as the index.
fn unpack(packed: &[u8], bits: u8, per_row: usize, rows: usize, indices: bool) -> Vec<u8> {
    let row_bytes = (per_row * usize::from(bits)).div_ceil(8);
    let max = (1u16 << bits) - 1;
    let mut out = Vec::with_capacity(per_row * rows);
    for row in packed.chunks(row_bytes).take(rows) {
        for i in 0..per_row {
            let bit = i * usize::from(bits);
            let byte = row.get(bit / 8).copied().unwrap_or(0);
            let shift = 8 - usize::from(bits) - bit % 8;
            let v = u16::from(byte >> shift) & max;
            out.push(if indices { v as u8 } else { (v * 255 / max) as u8 });
        }
    }
    out
}

/// RGBA to pixels, dropping alpha when it says nothing.
fn finish(w: u32, h: u32, rgba: Vec<u8>, alpha: bool) -> Result<Pixels, EngineError> {
    let img = RgbaImage::from_raw(w, h, rgba).ok_or_else(|| undecodable("short pixel buffer"))?;
    if alpha && img.pixels().any(|p| p.0[3] != 255) {
        Ok(Pixels::Rgba(img))
    } else {
        Ok(Pixels::Rgb(image::DynamicImage::ImageRgba8(img).into_rgb8()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_samples_unpack_per_row() {
        // Two rows of three 2-bit samples: 0b00_01_10 (pad) and 0b11_00_01.
        let packed = [0b0001_1000, 0b1100_0100];
        assert_eq!(unpack(&packed, 2, 3, 2, false), [0, 85, 170, 255, 0, 85]);
        assert_eq!(unpack(&packed, 2, 3, 2, true), [0, 1, 2, 3, 0, 1]);
        assert_eq!(unpack(&[0b1010_0000], 1, 3, 1, false), [255, 0, 255]);
        assert_eq!(unit_to_u8(f64::NAN), 0);
        assert_eq!(unit_to_u8(2.0), 255);
    }
}
