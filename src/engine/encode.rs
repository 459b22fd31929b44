//! Encoders: JPEG (`jpegenc`: optimal Huffman tables, one scan), WebP
//! (libwebp, method 4 like the original pipeline), PNG (`pngenc`: adaptive
//! filters, libdeflate level 5). Outputs carry no EXIF, XMP or IPTC: only pixels are written.
//! JPEG has no alpha, so transparent pixels are composited on white.

use image::RgbImage;

use super::{EngineError, OutputFormat, Pixels};

pub(super) fn encode(pixels: &Pixels, format: OutputFormat, quality: u8) -> Result<Vec<u8>, EngineError> {
    match format {
        OutputFormat::Jpeg => jpeg(pixels, quality),
        OutputFormat::Webp => webp(pixels, quality),
        OutputFormat::Png => png(pixels),
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Encode(format!("{what}: {e}"))
}

/// Alpha composited over white, as the original pipeline did.
pub(super) fn flatten_on_white(pixels: &Pixels) -> std::borrow::Cow<'_, RgbImage> {
    match pixels {
        Pixels::Rgb(img) => std::borrow::Cow::Borrowed(img),
        Pixels::Rgba(img) => {
            let (w, h) = img.dimensions();
            let mut out = Vec::with_capacity((w * h * 3) as usize);
            for p in img.as_raw().chunks_exact(4) {
                let a = u32::from(p[3]);
                for &c in &p[..3] {
                    // c*a + 255*(255-a), rounded, over 255
                    out.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
                }
            }
            std::borrow::Cow::Owned(RgbImage::from_raw(w, h, out).expect("sized buffer"))
        }
    }
}

fn jpeg(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, EngineError> {
    let rgb = flatten_on_white(pixels);
    let (w, h) = rgb.dimensions();
    super::jpegenc::encode(rgb.as_raw(), w, h, quality).map_err(EngineError::Encode)
}

fn webp(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, EngineError> {
    let (w, h) = pixels.dimensions();
    let encoder = match pixels {
        Pixels::Rgb(img) => webp::Encoder::from_rgb(img.as_raw(), w, h),
        Pixels::Rgba(img) => webp::Encoder::from_rgba(img.as_raw(), w, h),
    };
    let mut config = webp::WebPConfig::new().map_err(|()| err("webp", "config"))?;
    config.quality = f32::from(quality);
    config.method = 4;
    let mem = encoder.encode_advanced(&config).map_err(|e| err("webp", format!("{e:?}")))?;
    Ok(mem.to_vec())
}

fn png(pixels: &Pixels) -> Result<Vec<u8>, EngineError> {
    let (w, h) = pixels.dimensions();
    let (data, channels) = match pixels {
        Pixels::Rgb(img) => (img.as_raw(), 3),
        Pixels::Rgba(img) => (img.as_raw(), 4),
    };
    super::pngenc::encode(data, w, h, channels, None).map_err(EngineError::Encode)
}
