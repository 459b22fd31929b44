//! Decode once: header limits first, then pixels, then colour management and
//! EXIF orientation, giving 8-bit RGB or RGBA in sRGB. Each format has its
//! file: JPEG in `jpeg.rs` (zune-jpeg directly: one header parse, CMYK kept
//! for ICC conversion), AVIF in `avif.rs` (rav1d), TIFF's own cases in
//! `tiff.rs`, and the rest through the `image` crate with its allocation
//! limits set (`via_image.rs`). This file is what they share.

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage, RgbaImage};
use moxcms::Layout;

use super::color::{to_srgb, Icc};
use super::jpeg::decode_jpeg;
use super::via_image::decode_with_image;
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

pub(super) fn swaps_sides(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
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
pub(super) fn exif_orientation(exif: Option<&[u8]>) -> Orientation {
    exif.and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms)
}

pub(super) fn undecodable(e: impl std::fmt::Display) -> EngineError {
    EngineError::Undecodable(e.to_string())
}

pub(super) fn apply_icc(img: DynamicImage, icc: Option<&Icc>) -> Pixels {
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
