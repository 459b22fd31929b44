//! Sizing math (inside / cover / fill, never upscaling the standard
//! variants) and the resize itself: fast_image_resize, Lanczos3, SIMD,
//! alpha-aware for RGBA.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{RgbImage, RgbaImage};

use super::{EngineError, Fit, Pixels};

/// How to size an output: a box (either side may be open) and a fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub fit: Fit,
    /// Whether `Inside` may enlarge a smaller source.
    pub upscale: bool,
}

/// A source rectangle to crop before scaling (for `cover`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// The concrete output size of a plan for one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    pub crop: Option<Crop>,
}

impl Geometry {
    pub fn is_identity(&self, src: (u32, u32)) -> bool {
        self.crop.is_none() && (self.width, self.height) == src
    }

    /// This target for a copy of the source at another size: the crop
    /// rectangle scaled from `planned` to `actual` (unchanged when they are
    /// equal: the factors are exactly 1).
    pub fn scaled_crop(&self, planned: (u32, u32), actual: (u32, u32)) -> Geometry {
        let (fx, fy) = (f64::from(actual.0) / f64::from(planned.0), f64::from(actual.1) / f64::from(planned.1));
        let crop =
            self.crop.map(|c| Crop { left: c.left * fx, top: c.top * fy, width: c.width * fx, height: c.height * fy });
        Geometry { crop, ..*self }
    }
}

/// Scale `a` by `num/den`, rounded, at least 1.
fn scale(a: u32, num: u32, den: u32) -> u32 {
    let v = (u64::from(a) * u64::from(num) + u64::from(den) / 2) / u64::from(den);
    v.clamp(1, u64::from(u32::MAX)) as u32
}

/// Output size for `plan` applied to a `src` of (width, height).
pub fn target_size(src: (u32, u32), plan: Plan) -> Geometry {
    let (sw, sh) = src;
    let plain = |width, height| Geometry { width, height, crop: None };
    match (plan.w, plan.h, plan.fit) {
        (None, None, _) => plain(sw, sh),
        (Some(w), Some(h), Fit::Fill) => plain(w, h),
        (Some(w), Some(h), Fit::Cover) => {
            // Crop the source to the box's aspect ratio, centred.
            let (sw64, sh64) = (f64::from(sw), f64::from(sh));
            let box_aspect = f64::from(w) / f64::from(h);
            let crop = if sw64 / sh64 > box_aspect {
                let cw = sh64 * box_aspect;
                Crop { left: (sw64 - cw) / 2.0, top: 0.0, width: cw, height: sh64 }
            } else {
                let ch = sw64 / box_aspect;
                Crop { left: 0.0, top: (sh64 - ch) / 2.0, width: sw64, height: ch }
            };
            let exact = crop.width == sw64 && crop.height == sh64;
            Geometry { width: w, height: h, crop: (!exact).then_some(crop) }
        }
        (w, h, _) => {
            // Inside: the limiting side gets exactly the box size.
            let width_limits = match (w, h) {
                (Some(w), Some(h)) => u64::from(w) * u64::from(sh) <= u64::from(h) * u64::from(sw),
                (Some(_), None) => true,
                _ => false,
            };
            let (bw, bh) = (w.unwrap_or(0), h.unwrap_or(0));
            let enlarging = if width_limits { bw > sw } else { bh > sh };
            if enlarging && !plan.upscale {
                return plain(sw, sh);
            }
            if width_limits {
                plain(bw, scale(sh, bw, sw))
            } else {
                plain(scale(sw, bh, sh), bh)
            }
        }
    }
}

pub(super) fn resize(src: &Pixels, target: &Geometry) -> Result<Pixels, EngineError> {
    let (sw, sh) = src.dimensions();
    let (buf, pixel_type) = match src {
        Pixels::Rgb(i) => (i.as_raw().as_slice(), PixelType::U8x3),
        Pixels::Rgba(i) => (i.as_raw().as_slice(), PixelType::U8x4),
    };
    let internal = |e: &dyn std::fmt::Display| EngineError::Encode(format!("resize: {e}"));
    let src_view = ImageRef::new(sw, sh, buf, pixel_type).map_err(|e| internal(&e))?;
    let mut dst = Image::new(target.width, target.height, pixel_type);
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if let Some(c) = target.crop {
        options = options.crop(c.left, c.top, c.width, c.height);
    }
    Resizer::new().resize(&src_view, &mut dst, &options).map_err(|e| internal(&e))?;
    let (w, h) = (target.width, target.height);
    let data = dst.into_vec();
    Ok(match src {
        Pixels::Rgb(_) => Pixels::Rgb(RgbImage::from_raw(w, h, data).ok_or_else(|| internal(&"buffer"))?),
        Pixels::Rgba(_) => Pixels::Rgba(RgbaImage::from_raw(w, h, data).ok_or_else(|| internal(&"buffer"))?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: (u32, u32), plan: Plan, expected: (u32, u32)) {
        let t = target_size(src, plan);
        assert_eq!((t.width, t.height), expected, "{src:?} {plan:?}");
    }

    fn inside(w: Option<u32>, h: Option<u32>, upscale: bool) -> Plan {
        Plan { w, h, fit: Fit::Inside, upscale }
    }

    #[test]
    fn standard_variants_never_upscale() {
        let std = inside(Some(4096), Some(4096), false);
        check((4608, 1976), std, (4096, 1756));
        check((1976, 4608), std, (1756, 4096));
        check((4032, 3024), std, (4032, 3024));
        check((100, 50), std, (100, 50));
        check((4096, 4096), std, (4096, 4096));
        let thumb = inside(Some(300), Some(300), false);
        check((4032, 3024), thumb, (300, 225));
        check((1200, 1800), thumb, (200, 300));
        check((80, 80), thumb, (80, 80));
        check((10_000, 1), thumb, (300, 1));
    }

    #[test]
    fn inside_boxes() {
        check((1000, 500), inside(Some(640), None, false), (640, 320));
        check((1000, 500), inside(None, Some(100), false), (200, 100));
        check((1000, 500), inside(Some(100), Some(100), false), (100, 50));
        check((1000, 500), inside(Some(2000), None, false), (1000, 500));
        check((1000, 500), inside(Some(2000), None, true), (2000, 1000));
        check((3, 1000), inside(Some(1), None, false), (1, 333));
    }

    #[test]
    fn cover_and_fill_are_exact() {
        let cover = Plan { w: Some(300), h: Some(300), fit: Fit::Cover, upscale: true };
        let t = target_size((1000, 500), cover);
        assert_eq!((t.width, t.height), (300, 300));
        let c = t.crop.unwrap();
        assert_eq!((c.left, c.top, c.width, c.height), (250.0, 0.0, 500.0, 500.0));
        let t = target_size((600, 600), cover);
        assert!(t.crop.is_none());
        let fill = Plan { w: Some(30), h: Some(700), fit: Fit::Fill, upscale: true };
        check((1000, 500), fill, (30, 700));
    }
}
