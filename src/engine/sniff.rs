//! Format detection from magic bytes only. The file name and any declared
//! Content-Type are never consulted. Formats we recognise but do not take
//! (SVG, PDF, PSD, JPEG 2000, HEIC, Office files) get
//! a message naming them, which helps the uploader.

use super::EngineError;

/// A source format the engine decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
    Bmp,
    Avif,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tiff",
            Format::Bmp => "bmp",
            Format::Avif => "avif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
            Format::Tiff => "image/tiff",
            Format::Bmp => "image/bmp",
            Format::Avif => "image/avif",
        }
    }
}

/// Identify the format of `bytes`, or say why it is refused.
pub fn sniff(b: &[u8]) -> Result<Format, EngineError> {
    let refuse = |what: &str| Err(EngineError::UnsupportedFormat(what.to_string()));
    if b.is_empty() {
        return refuse("empty upload");
    }
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Ok(Format::Webp);
    }
    if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") || b.starts_with(b"II+\0") || b.starts_with(b"MM\0+") {
        return Ok(Format::Tiff);
    }
    if is_bmp(b) {
        return Ok(Format::Bmp);
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        let brand = &b[8..12];
        return match brand {
            b"avif" | b"avis" => Ok(Format::Avif),
            // Generic HEIF brands: AVIF when it lists an AVIF brand.
            b"mif1" | b"msf1" if compatible_brands(b).any(|c| c == b"avif" || c == b"avis") => Ok(Format::Avif),
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" => refuse("heif/heic is not supported"),
            _ => refuse("video and other ISO media files are not images we take"),
        };
    }
    if b.starts_with(b"%PDF") {
        return refuse("pdf is not an image we take");
    }
    if b.starts_with(b"8BPS") {
        return refuse("psd is not an image we take");
    }
    if b.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) || b.starts_with(b"\0\0\0\x0cjP  ") {
        return refuse("jpeg 2000 is not supported");
    }
    if b.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) || b.starts_with(b"PK\x03\x04") {
        return refuse("office documents and archives are not images");
    }
    if looks_like_markup(b) {
        return refuse("svg, html and xml are active content and are not accepted");
    }
    refuse("not a recognised image format")
}

/// The compatible brands of an `ftyp` box at the start of `b`.
fn compatible_brands(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let end = size.min(b.len()).min(256);
    b.get(16..end).unwrap_or(&[]).chunks_exact(4)
}

/// "BM" plus a plausible DIB header size; "BM" alone is too weak.
fn is_bmp(b: &[u8]) -> bool {
    if b.len() < 18 || !b.starts_with(b"BM") {
        return false;
    }
    let dib = u32::from_le_bytes([b[14], b[15], b[16], b[17]]);
    matches!(dib, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124)
}

fn looks_like_markup(b: &[u8]) -> bool {
    let head = &b[..b.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with('<')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], expected: Result<Format, &str>) {
        let got = sniff(input).map_err(|e| e.code());
        assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(&input[..input.len().min(16)]));
    }

    #[test]
    fn table() {
        check(b"\xFF\xD8\xFF\xE0rest", Ok(Format::Jpeg));
        check(b"\x89PNG\r\n\x1a\nrest", Ok(Format::Png));
        check(b"GIF89a....", Ok(Format::Gif));
        check(b"RIFF\0\0\0\0WEBPVP8 ", Ok(Format::Webp));
        check(b"II*\0\x08\0\0\0", Ok(Format::Tiff));
        check(b"MM\0*\0\0\0\x08", Ok(Format::Tiff));
        check(b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0", Ok(Format::Bmp));
        check(b"BM is a band", Err("unsupported_format"));
        check(b"", Err("unsupported_format"));
        check(b"<svg xmlns='http://www.w3.org/2000/svg'/>", Err("unsupported_format"));
        check(b"\xEF\xBB\xBF  <?xml version='1.0'?><svg/>", Err("unsupported_format"));
        check(b"<!DOCTYPE html><html>", Err("unsupported_format"));
        check(b"%PDF-1.7", Err("unsupported_format"));
        check(b"8BPS\0\x01", Err("unsupported_format"));
        check(b"\0\0\0\x18ftypavif\0\0\0\0", Ok(Format::Avif));
        check(b"\0\0\0\x18ftypheic\0\0\0\0", Err("unsupported_format"));
        check(b"\0\0\0\x18ftypmif1\0\0\0\0avif", Ok(Format::Avif));
        check(b"\0\0\0\x18ftypmif1\0\0\0\0heic", Err("unsupported_format"));
        check(b"PK\x03\x04", Err("unsupported_format"));
        check(b"# README\nnot an image", Err("unsupported_format"));
    }
}
