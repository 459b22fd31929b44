//! The image engine: sniff, limits, decode once, orient, colour-manage,
//! resize, encode. Synchronous and free of I/O: it takes bytes and returns
//! bytes, and knows nothing of HTTP, storage or metadata. Callers run it on a
//! blocking thread.

mod av1;
mod avif;
mod color;
mod decode;
mod encode;
mod jpeg;
mod jpegenc;
mod pngenc;
mod resize;
mod sniff;
mod tiff;
mod via_image;

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use decode::{Decoded, Pixels};
pub use resize::{target_size, Plan};
pub use sniff::{sniff, Format};

/// Largest width or height we decode, whatever the pixel budget says.
pub const MAX_SOURCE_SIDE: u32 = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    UnsupportedFormat(String),
    #[error("upload is {bytes} bytes, over the {limit} byte limit")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("image is {width}x{height}, over the limit of {max_pixels} pixels or {max_side} per side")]
    TooManyPixels { width: u32, height: u32, max_pixels: u64, max_side: u32 },
    #[error("decoder limit reached: {0}")]
    DecoderLimit(String),
    #[error("image could not be decoded: {0}")]
    Undecodable(String),
    #[error("encoding failed: {0}")]
    Encode(String),
    /// A panic in our own code (resize, encode): a bug, not the image.
    #[error("internal fault: {0}")]
    Internal(String),
}

impl EngineError {
    /// The image's own fault (final: the upload is `failed`), as opposed
    /// to ours (`Encode`, `Internal`: retried, never stored).
    pub fn is_image_fault(&self) -> bool {
        !matches!(self, EngineError::Encode(_) | EngineError::Internal(_))
    }

    /// The stable snake_case code (problem+json `code`, `meta.error.code`):
    /// one of `http::problem::Code`'s.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnsupportedFormat(_) => "unsupported_format",
            EngineError::TooLarge { .. } => "too_large",
            EngineError::TooManyPixels { .. } | EngineError::DecoderLimit(_) => "too_many_pixels",
            EngineError::Undecodable(_) => "undecodable",
            EngineError::Encode(_) | EngineError::Internal(_) => "internal",
        }
    }
}

/// Output formats the engine encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Webp,
    Png,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 3] = [OutputFormat::Jpeg, OutputFormat::Webp, OutputFormat::Png];

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Webp => "webp",
            OutputFormat::Png => "png",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Png => "image/png",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Webp => "webp",
            OutputFormat::Png => "png",
        }
    }

    /// Whether `q` means anything for this format (PNG is lossless).
    pub fn has_quality(self) -> bool {
        self != OutputFormat::Png
    }
}

/// How a target box is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Fit inside the box, keep aspect ratio, never upscale.
    Inside,
    /// Fill the box exactly, cropping the centre.
    Cover,
    /// Stretch to the box exactly.
    Fill,
}

impl Fit {
    pub fn name(self) -> &'static str {
        match self {
            Fit::Inside => "inside",
            Fit::Cover => "cover",
            Fit::Fill => "fill",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [Fit::Inside, Fit::Cover, Fit::Fill].into_iter().find(|f| f.name() == s)
    }
}

/// The five standard (eager) variants: the original pipeline's recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Jpeg,
    JpegLow,
    Webp,
    Png,
    Thumb,
}

impl Variant {
    pub const ALL: [Variant; 5] = [Variant::Jpeg, Variant::JpegLow, Variant::Webp, Variant::Png, Variant::Thumb];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Jpeg => "jpeg",
            Variant::JpegLow => "jpeg-low",
            Variant::Webp => "webp",
            Variant::Png => "png",
            Variant::Thumb => "thumb",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }

    /// The standard variant that a bare format name stands for.
    pub fn standard_for(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Jpeg => Variant::Jpeg,
            OutputFormat::Webp => Variant::Webp,
            OutputFormat::Png => Variant::Png,
        }
    }

    pub fn format(self) -> OutputFormat {
        match self {
            Variant::Jpeg | Variant::JpegLow | Variant::Thumb => OutputFormat::Jpeg,
            Variant::Webp => OutputFormat::Webp,
            Variant::Png => OutputFormat::Png,
        }
    }

    pub fn quality(self) -> u8 {
        match self {
            Variant::Jpeg | Variant::Webp | Variant::Png => 85,
            Variant::JpegLow => 60,
            Variant::Thumb => 80,
        }
    }

    pub fn is_thumb(self) -> bool {
        self == Variant::Thumb
    }
}

/// Limits applied before and during decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub max_pixels: u64,
    /// Long side of the standard variants (never upscaled).
    pub max_dimension: u32,
    /// Box of the thumbnail variant.
    pub thumb_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_upload_bytes: 50 * 1024 * 1024, max_pixels: 50_000_000, max_dimension: 4096, thumb_size: 300 }
    }
}

/// One request for output: format, quality and how to size it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderSpec {
    pub format: OutputFormat,
    pub quality: u8,
    pub plan: Plan,
}

/// An encoded output.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
    pub resize: Duration,
    pub encode: Duration,
}

/// What the engine learned about a source image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceInfo {
    pub format: Format,
    /// After EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
    pub has_alpha: bool,
    pub animated: bool,
    pub frames: u32,
    pub icc: bool,
}

/// The engine: a set of limits and the recipe; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    pub limits: Limits,
    recipe: crate::recipe::Recipe,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Limits::default())
    }
}

impl Engine {
    pub fn new(limits: Limits) -> Self {
        let mut engine = Engine { limits, recipe: crate::recipe::Recipe::NONE };
        engine.recipe = crate::recipe::Recipe::of(&engine);
        engine
    }

    /// The version of the settings that shape this engine's output.
    pub fn recipe(&self) -> crate::recipe::Recipe {
        self.recipe
    }

    /// Sniff, check limits from the header, decode once, orient, convert to
    /// sRGB. Any panic inside a decoder becomes `Undecodable`.
    pub fn decode(&self, bytes: &[u8]) -> Result<Decoded, EngineError> {
        self.decode_planned(bytes, None)
    }

    /// [`decode`](Self::decode) for one render with `plan`: a JPEG that the
    /// plan shrinks by 2 or more is decoded at 1/2, 1/4 or 1/8 of its size
    /// (shrink-on-load; `info` still gives the full size). The pixels serve
    /// that plan, not the standard variants.
    pub fn decode_for(&self, bytes: &[u8], plan: Plan) -> Result<Decoded, EngineError> {
        self.decode_planned(bytes, Some(plan))
    }

    fn decode_planned(&self, bytes: &[u8], plan: Option<Plan>) -> Result<Decoded, EngineError> {
        if bytes.len() as u64 > self.limits.max_upload_bytes {
            return Err(EngineError::TooLarge { bytes: bytes.len() as u64, limit: self.limits.max_upload_bytes });
        }
        let format = sniff(bytes)?;
        guard_decoder(|| decode::decode(bytes, format, &self.limits, plan))
    }

    /// The spec of a standard variant for this engine's limits.
    pub fn standard_spec(&self, variant: Variant) -> RenderSpec {
        let side = if variant.is_thumb() { self.limits.thumb_size } else { self.limits.max_dimension };
        RenderSpec {
            format: variant.format(),
            quality: variant.quality(),
            plan: Plan { w: Some(side), h: Some(side), fit: Fit::Inside, upscale: false },
        }
    }

    /// Render the given standard variants from one decoded source: one
    /// resize per distinct target size, then one encode per variant.
    pub fn standard(&self, src: &Decoded, variants: &[Variant]) -> Result<Vec<(Variant, Rendered)>, EngineError> {
        let specs: Vec<RenderSpec> = variants.iter().map(|v| self.standard_spec(*v)).collect();
        let out = self.render_many(src, &specs)?;
        Ok(variants.iter().copied().zip(out).collect())
    }

    /// Render one spec.
    pub fn render(&self, src: &Decoded, spec: &RenderSpec) -> Result<Rendered, EngineError> {
        let mut out = self.render_many(src, std::slice::from_ref(spec))?;
        Ok(out.remove(0))
    }

    /// Resize `pixels` to what `plan` asks for (a copy even when the size is
    /// unchanged). One step of `render_many`, exposed for benchmarks.
    pub fn resize(&self, pixels: &Pixels, plan: Plan) -> Result<Pixels, EngineError> {
        let target = target_size(pixels.dimensions(), plan);
        guard(|| {
            if target.is_identity(pixels.dimensions()) {
                Ok(pixels.clone())
            } else {
                resize::resize(pixels, &target)
            }
        })
    }

    /// Encode `pixels` as they are. One step of `render_many`, exposed for
    /// benchmarks.
    pub fn encode(&self, pixels: &Pixels, format: OutputFormat, quality: u8) -> Result<Vec<u8>, EngineError> {
        guard(|| encode::encode(pixels, format, quality))
    }

    /// Render several specs, sharing each resized size between them. A
    /// smaller plan resizes from the smallest copy already made that is at
    /// least twice its size, rather than from the full source: one less pass
    /// over a large image.
    pub fn render_many(&self, src: &Decoded, specs: &[RenderSpec]) -> Result<Vec<Rendered>, EngineError> {
        guard(|| {
            // Sizes are planned on the full source; a source decoded smaller
            // (shrink-on-load) has its crop scaled to its pixels.
            let src_dims = (src.info.width, src.info.height);
            let scaled = src.pixels.dimensions() != src_dims;
            let mut sized: Vec<(resize::Geometry, Cow<'_, Pixels>, Duration)> = Vec::new();
            let mut out = Vec::with_capacity(specs.len());
            for spec in specs {
                let target = target_size(src_dims, spec.plan);
                let idx = match sized.iter().position(|(t, _, _)| *t == target) {
                    Some(i) => i,
                    None => {
                        let started = Instant::now();
                        // Resize from the smallest copy that still covers the
                        // target (an aspect-preserving copy only).
                        let from = sized
                            .iter()
                            .filter(|(t, p, _)| {
                                t.crop.is_none() && target.crop.is_none() && {
                                    let (w, h) = p.dimensions();
                                    w >= target.width * 2 && h >= target.height * 2
                                }
                            })
                            .min_by_key(|(t, _, _)| t.width as u64 * t.height as u64)
                            .map(|(_, p, _)| p);
                        let pixels = match from {
                            Some(p) => {
                                let t = resize::Geometry { width: target.width, height: target.height, crop: None };
                                Cow::Owned(resize::resize(p, &t)?)
                            }
                            None if !scaled && target.is_identity(src_dims) => Cow::Borrowed(&src.pixels),
                            None => Cow::Owned(resize::resize(
                                &src.pixels,
                                &target.scaled_crop(src_dims, src.pixels.dimensions()),
                            )?),
                        };
                        sized.push((target, pixels, started.elapsed()));
                        sized.len() - 1
                    }
                };
                let (_, pixels, resize_time) = &sized[idx];
                let started = Instant::now();
                let bytes = encode::encode(pixels, spec.format, spec.quality)?;
                let (width, height) = pixels.dimensions();
                out.push(Rendered {
                    format: spec.format,
                    width,
                    height,
                    bytes,
                    resize: *resize_time,
                    encode: started.elapsed(),
                });
            }
            Ok(out)
        })
    }
}

/// The text of a caught panic, for the log (never for a client).
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Run a decoder so that a panic in it (third-party code meeting a file it
/// cannot handle) is the image's fault: `undecodable`, the panic logged
/// here and not repeated to the client.
fn guard_decoder<T>(f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        PANICS_CAUGHT.with(|n| n.set(n.get() + 1));
        tracing::warn!(panic = %panic_text(&*panic), "a decoder panicked");
        Err(EngineError::Undecodable("the decoder failed on this file".into()))
    })
}

/// Run our own code (resize, encode): a panic there is our fault, never
/// the image's, so it is `Internal`, which is retried and never stored.
fn guard<T>(f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        PANICS_CAUGHT.with(|n| n.set(n.get() + 1));
        Err(EngineError::Internal(panic_text(&*panic)))
    })
}

thread_local! {
    static PANICS_CAUGHT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many panics the guards have turned into errors on this thread. A
/// caught panic answers like any refusal, so without this a test of "never
/// panics" could not tell one from a clean error.
pub fn panics_caught_on_this_thread() -> u64 {
    PANICS_CAUGHT.with(|n| n.get())
}

/// The test generator of the engine's unit tests: the next value of a
/// xorshift32 sequence (deterministic noise, no dependency).
#[cfg(test)]
pub(crate) fn xorshift(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoder_panic_blames_the_image_and_ours_does_not() {
        let before = panics_caught_on_this_thread();
        let e = guard_decoder::<()>(|| panic!("index out of bounds in a codec")).unwrap_err();
        assert_eq!(panics_caught_on_this_thread(), before + 1, "a caught panic is counted");
        assert!(matches!(&e, EngineError::Undecodable(m) if !m.contains("index")), "no panic text: {e}");
        assert!(e.is_image_fault());
        let e = guard::<()>(|| panic!("resize bug")).unwrap_err();
        assert!(matches!(&e, EngineError::Internal(m) if m == "resize bug"), "{e:?}");
        assert!(!e.is_image_fault());
        assert_eq!(e.code(), "internal");
    }
}
