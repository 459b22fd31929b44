//! The PNG encoder: 8-bit RGB or RGBA, each row filtered with the filter
//! whose output has the smallest sum of absolute values (libpng's
//! heuristic), the whole image deflated in one call to libdeflate. For
//! photos libdeflate at level 5 gives zlib-6's bytes in two thirds of its
//! time (BENCHMARKS.md), and one call over the whole image lets its block
//! splitter see everything.

use libdeflater::{CompressionLvl, Compressor};

/// libdeflate level of the PNG variant.
const LEVEL: i32 = 5;

/// Largest IDAT chunk written; any size up to 2^31 - 1 is valid.
const MAX_IDAT: usize = 1 << 20;

/// PNG filter types (PNG spec, section 9.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Filter {
    None = 0,
    Sub = 1,
    Up = 2,
    Average = 3,
    Paeth = 4,
}

impl Filter {
    const ALL: [Filter; 5] = [Filter::None, Filter::Sub, Filter::Up, Filter::Average, Filter::Paeth];
}

/// Encode `data` (`width`×`height` pixels of `channels` bytes, 3 or 4).
/// `only` forces one filter on every row (tests); `None` picks per row.
pub(super) fn encode(
    data: &[u8],
    width: u32,
    height: u32,
    channels: u8,
    only: Option<Filter>,
) -> Result<Vec<u8>, String> {
    let bpp = usize::from(channels);
    let stride = width as usize * bpp;
    if !(channels == 3 || channels == 4) || stride == 0 || data.len() != stride * height as usize {
        return Err(format!("png: {} bytes do not make {width}x{height} pixels of {channels} channels", data.len()));
    }
    let filtered = filter_image(data, stride, bpp, only);
    let mut compressor = Compressor::new(CompressionLvl::new(LEVEL).map_err(|e| format!("png: level: {e:?}"))?);
    // Zeroed allocations are mapped lazily: only what libdeflate writes
    // becomes resident, not the whole worst-case bound.
    let mut zlib = vec![0u8; compressor.zlib_compress_bound(filtered.len())];
    let n = compressor.zlib_compress(&filtered, &mut zlib).map_err(|e| format!("png: deflate: {e:?}"))?;
    drop(filtered);
    zlib.truncate(n);

    let mut out = Vec::with_capacity(n + 64 + 12 * n.div_ceil(MAX_IDAT));
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = [0u8; 13];
    ihdr[..4].copy_from_slice(&width.to_be_bytes());
    ihdr[4..8].copy_from_slice(&height.to_be_bytes());
    ihdr[8] = 8; // bit depth
    ihdr[9] = if channels == 4 { 6 } else { 2 }; // colour type: RGBA or RGB
                                                 // compression 0, filter method 0, no interlace: already zero
    chunk(&mut out, b"IHDR", &ihdr);
    for part in zlib.chunks(MAX_IDAT) {
        chunk(&mut out, b"IDAT", part);
    }
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    let crc = libdeflater::crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Each row prefixed by its filter type, as the zlib stream carries it.
fn filter_image(data: &[u8], stride: usize, bpp: usize, only: Option<Filter>) -> Vec<u8> {
    let rows = data.len() / stride;
    let mut out = Vec::with_capacity((stride + 1) * rows);
    let zero = vec![0u8; stride];
    let mut scratch: [Vec<u8>; 5] = std::array::from_fn(|_| vec![0u8; stride]);
    for y in 0..rows {
        let cur = &data[y * stride..(y + 1) * stride];
        let prev = if y == 0 { &zero[..] } else { &data[(y - 1) * stride..y * stride] };
        let chosen = match only {
            Some(f) => {
                filter_row(f, cur, prev, bpp, &mut scratch[f as usize]);
                f
            }
            None => {
                let mut best = (u64::MAX, Filter::None);
                for f in Filter::ALL {
                    let row = &mut scratch[f as usize];
                    filter_row(f, cur, prev, bpp, row);
                    let cost = abs_sum(row);
                    if cost < best.0 {
                        best = (cost, f);
                    }
                }
                best.1
            }
        };
        out.push(chosen as u8);
        out.extend_from_slice(&scratch[chosen as usize]);
    }
    out
}

/// The bytes as signed residuals, summed by magnitude.
fn abs_sum(row: &[u8]) -> u64 {
    // Per-chunk u32 sums cannot overflow (4096 × 128) and vectorise well.
    row.chunks(4096).map(|c| u64::from(c.iter().map(|&v| u32::from((v as i8).unsigned_abs())).sum::<u32>())).sum()
}

#[inline(always)]
fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let (a16, b16, c16) = (i16::from(a), i16::from(b), i16::from(c));
    let pa = (b16 - c16).abs();
    let pb = (a16 - c16).abs();
    let pc = (a16 + b16 - 2 * c16).abs();
    let (ab, pab) = if pa <= pb { (a, pa) } else { (b, pb) };
    if pab <= pc {
        ab
    } else {
        c
    }
}

/// Filter one row; `prev` is the unfiltered row above (zeros for the first).
/// Written without per-byte branches on the position so the loops vectorise.
fn filter_row(f: Filter, cur: &[u8], prev: &[u8], bpp: usize, out: &mut [u8]) {
    let n = cur.len();
    let head = bpp.min(n);
    match f {
        Filter::None => out.copy_from_slice(cur),
        Filter::Sub => {
            out[..head].copy_from_slice(&cur[..head]);
            for i in head..n {
                out[i] = cur[i].wrapping_sub(cur[i - bpp]);
            }
        }
        Filter::Up => {
            for i in 0..n {
                out[i] = cur[i].wrapping_sub(prev[i]);
            }
        }
        Filter::Average => {
            for i in 0..head {
                out[i] = cur[i].wrapping_sub(prev[i] >> 1);
            }
            for i in head..n {
                out[i] = cur[i].wrapping_sub(((u16::from(cur[i - bpp]) + u16::from(prev[i])) >> 1) as u8);
            }
        }
        Filter::Paeth => {
            // With a = c = 0 the predictor is b.
            for i in 0..head {
                out[i] = cur[i].wrapping_sub(prev[i]);
            }
            for i in head..n {
                out[i] = cur[i].wrapping_sub(paeth(cur[i - bpp], prev[i], prev[i - bpp]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise with some structure, so every filter wins rows.
    fn pixels(w: u32, h: u32, channels: u8) -> Vec<u8> {
        let mut state = 0x9e37_79b9_u32;
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                for c in 0..u32::from(channels) {
                    crate::engine::xorshift(&mut state);
                    let smooth = (x * 3 + y * 5 + c * 40) as u8;
                    let noise = if (y / 3) % 2 == 0 { (state % 7) as u8 } else { (state >> 8) as u8 };
                    out.push(smooth.wrapping_add(noise));
                }
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().expect("valid header");
        let mut buf = vec![0; reader.output_buffer_size().expect("sized")];
        let info = reader.next_frame(&mut buf).expect("valid image data");
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn every_filter_round_trips_through_another_decoder() {
        for channels in [3u8, 4] {
            for (w, h) in [(1, 1), (1, 7), (2, 3), (37, 23), (300, 40)] {
                let src = pixels(w, h, channels);
                for only in Filter::ALL.map(Some).into_iter().chain([None]) {
                    let bytes = encode(&src, w, h, channels, only).unwrap();
                    let (info, out) = decode(&bytes);
                    assert_eq!((info.width, info.height), (w, h));
                    let expected = if channels == 4 { png::ColorType::Rgba } else { png::ColorType::Rgb };
                    assert_eq!(info.color_type, expected);
                    assert!(out == src, "{w}x{h}x{channels} with {only:?} is not lossless");
                }
            }
        }
    }

    #[test]
    fn adaptive_choice_beats_a_single_fixed_filter_on_mixed_rows() {
        let (w, h) = (256, 96);
        let src = pixels(w, h, 3);
        let adaptive = encode(&src, w, h, 3, None).unwrap().len();
        for f in Filter::ALL {
            let fixed = encode(&src, w, h, 3, Some(f)).unwrap().len();
            assert!(adaptive <= fixed + fixed / 50, "adaptive {adaptive} bytes vs {f:?} {fixed}");
        }
    }

    #[test]
    fn large_images_span_several_idat_chunks() {
        let (w, h) = (1024, 512);
        let src = pixels(w, h, 4);
        let bytes = encode(&src, w, h, 4, None).unwrap();
        let mut idats = 0;
        let mut at = 8;
        while at < bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            idats += usize::from(&bytes[at + 4..at + 8] == b"IDAT");
            at += 12 + len;
        }
        assert_eq!(at, bytes.len(), "chunks tile the file");
        assert!(idats >= 2, "{} bytes in {idats} IDAT chunks", bytes.len());
        assert!(decode(&bytes).1 == src);
    }

    #[test]
    fn mismatched_buffers_are_refused() {
        assert!(encode(&[0; 11], 2, 2, 3, None).is_err());
        assert!(encode(&[0; 8], 2, 2, 2, None).is_err());
        assert!(encode(&[], 0, 0, 3, None).is_err());
    }
}
