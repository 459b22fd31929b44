//! URL side of the image API: parse `/img/<id>/[<recipe>/]<variant>`,
//! `/img/<id>/[<recipe>/]<format>/<opts>` and the query form into one
//! `Canonical` request, and spell its canonical path. Pure: no I/O, no
//! engine calls.
//!
//! The CloudFront Function implements the same rules in JavaScript; both are
//! held to `tests/vectors/transform.json`.
//!
//! Rules, in short: the id is a ULID (either case, lowercased); format names,
//! option keys and `fit` values are case-insensitive and lowercased; options
//! are `w`, `h` (1–8192), `fit` (inside | cover | fill), `q` (1–100, jpeg and
//! webp only) and `s` (signature, kept verbatim, last); keys appear in the
//! order w,h,fit,q,s and defaults (`fit=inside`, `q=85`) are omitted; `fit`
//! is dropped unless both `w` and `h` are given; a format whose options are
//! all defaults is the standard variant of that name; `auto` becomes `webp`
//! when `Accept` lists `image/webp`, else `jpeg`; a recipe version
//! (`r` + 8 hex digits, see `recipe`) may follow the id, is lowercased, and
//! is kept in the path but not in what a signature covers.

use crate::engine::{Fit, Limits, OutputFormat, Plan, RenderSpec, Variant};
use crate::keys::{ImageId, Key};
use crate::recipe::Recipe;

/// Largest `w` or `h` a client may ask for.
pub const MAX_SIDE: u32 = 8192;
/// Quality used when `q` is not given (and so omitted from the canonical form).
pub const DEFAULT_QUALITY: u8 = 85;
/// Longest input we look at; a longer path is refused before parsing.
const MAX_INPUT: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransformError {
    #[error("not a valid image id")]
    BadId,
    #[error("unknown variant: {0}")]
    BadVariant(String),
    #[error("bad options: {0}")]
    BadOptions(String),
}

impl TransformError {
    /// The stable snake_case code used in problem+json bodies and vectors.
    pub fn code(&self) -> &'static str {
        match self {
            TransformError::BadId => "bad_id",
            TransformError::BadVariant(_) => "bad_variant",
            TransformError::BadOptions(_) => "bad_options",
        }
    }
}

/// An on-demand render: format, box and quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub format: OutputFormat,
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub fit: Fit,
    pub q: u8,
}

impl Spec {
    /// The engine's view: with no box given, the standard long-side limit
    /// applies; `inside` never enlarges.
    pub fn render_spec(&self, limits: &Limits) -> RenderSpec {
        let (w, h) = match (self.w, self.h) {
            (None, None) => (Some(limits.max_dimension), Some(limits.max_dimension)),
            other => other,
        };
        RenderSpec { format: self.format, quality: self.q, plan: Plan { w, h, fit: self.fit, upscale: false } }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One of the five eager variants.
    Standard(Variant),
    /// Anything else, rendered on a miss and written back.
    Custom(Spec),
}

/// A validated image request in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    pub id: ImageId,
    /// The recipe version the path names; `None` for a path without one
    /// (which the HTTP layer redirects to the current recipe).
    pub recipe: Option<Recipe>,
    pub target: Target,
    /// `s=` as given; checked against the signing key by the HTTP layer.
    pub signature: Option<String>,
    /// The request named `auto`: the response varies on `Accept`.
    pub negotiated: bool,
}

impl Canonical {
    /// The part after `/img/<id>/<recipe>/`: `webp` or `webp/w=640,fit=cover`.
    pub fn suffix(&self) -> String {
        match &self.target {
            Target::Standard(v) => v.name().to_string(),
            Target::Custom(spec) => {
                let mut opts = spec_opts(spec);
                if let Some(s) = &self.signature {
                    opts.push(format!("s={s}"));
                }
                format!("{}/{}", spec.format.name(), opts.join(","))
            }
        }
    }

    /// The canonical path, `/img/<id>/<recipe>/<suffix>`.
    pub fn path(&self) -> String {
        format!("/{}", self.key())
    }

    /// The same request under `recipe`.
    pub fn with_recipe(&self, recipe: Recipe) -> Self {
        Canonical { recipe: Some(recipe), ..self.clone() }
    }

    /// What a signature covers: the canonical path without `s` and without
    /// the recipe version, so a signed URL outlives a recipe change.
    pub fn signed_path(&self) -> String {
        match &self.target {
            Target::Standard(v) => format!("/img/{}/{}", self.id, v.name()),
            Target::Custom(spec) => format!("/img/{}/{}/{}", self.id, spec.format.name(), spec_opts(spec).join(",")),
        }
    }

    /// The processed-store key, which is the canonical path without its `/`.
    pub fn key(&self) -> Key {
        Key::variant(&self.id, self.recipe, &self.suffix())
    }

    pub fn output_format(&self) -> OutputFormat {
        match &self.target {
            Target::Standard(v) => v.format(),
            Target::Custom(spec) => spec.format,
        }
    }
}

fn spec_opts(spec: &Spec) -> Vec<String> {
    let mut opts = Vec::with_capacity(4);
    if let Some(w) = spec.w {
        opts.push(format!("w={w}"));
    }
    if let Some(h) = spec.h {
        opts.push(format!("h={h}"));
    }
    if spec.fit != Fit::Inside {
        opts.push(format!("fit={}", spec.fit.name()));
    }
    if spec.q != DEFAULT_QUALITY {
        opts.push(format!("q={}", spec.q));
    }
    opts
}

/// Parse a request URI (`/img/...` with an optional `?query`).
pub fn parse_uri(uri: &str, accept: Option<&str>) -> Result<Canonical, TransformError> {
    match uri.split_once('?') {
        Some((path, query)) => parse(path, Some(query), accept),
        None => parse(uri, None, accept),
    }
}

/// Parse a path and its query string (both still percent-encoded).
pub fn parse(path: &str, query: Option<&str>, accept: Option<&str>) -> Result<Canonical, TransformError> {
    if path.len() + query.map_or(0, str::len) > MAX_INPUT {
        return Err(TransformError::BadOptions("request too long".into()));
    }
    let rest = path.strip_prefix("/img/").ok_or_else(|| TransformError::BadVariant("not an image path".into()))?;
    let mut segments = rest.split('/');
    let id = segments.next().map(decode).ok_or(TransformError::BadId)?;
    let id = ImageId::parse(&id.ok_or(TransformError::BadId)?).map_err(|_| TransformError::BadId)?;
    let missing = || TransformError::BadVariant("missing variant".into());
    let mut name = segments.next().and_then(decode).ok_or_else(missing)?.to_ascii_lowercase();
    let recipe = Recipe::parse(&name).ok();
    if recipe.is_some() {
        name = segments.next().and_then(decode).ok_or_else(missing)?.to_ascii_lowercase();
    }
    let opts_segment = match segments.next() {
        None => None,
        Some(raw) => Some(decode(raw).ok_or_else(|| TransformError::BadOptions("bad encoding".into()))?),
    };
    if segments.next().is_some() {
        return Err(TransformError::BadOptions("too many path segments".into()));
    }

    let mut opts = RawOpts::default();
    if let Some(seg) = &opts_segment {
        if seg.is_empty() {
            return Err(TransformError::BadOptions("empty options segment".into()));
        }
        for pair in seg.split(',') {
            opts.add(pair)?;
        }
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            if opts_segment.is_some() {
                return Err(TransformError::BadOptions("options in both the path and the query".into()));
            }
            let pair = decode_query(pair).ok_or_else(|| TransformError::BadOptions("bad encoding".into()))?;
            opts.add(&pair)?;
        }
    }

    let (format, negotiated) = match name.as_str() {
        "auto" => (negotiate(accept), true),
        other => match OutputFormat::from_name(other) {
            Some(f) => (f, false),
            None => {
                let standard = Variant::from_name(other)
                    .ok_or_else(|| TransformError::BadVariant(other.chars().take(32).collect()))?;
                if !opts.is_empty() {
                    return Err(TransformError::BadOptions(format!("{other} takes no options; use jpeg, webp or png")));
                }
                return Ok(Canonical {
                    id,
                    recipe,
                    target: Target::Standard(standard),
                    signature: None,
                    negotiated: false,
                });
            }
        },
    };

    let spec = opts.into_spec(format)?;
    let is_default = spec.spec.w.is_none() && spec.spec.h.is_none() && spec.spec.q == DEFAULT_QUALITY;
    if is_default {
        let standard = Variant::standard_for(format);
        return Ok(Canonical { id, recipe, target: Target::Standard(standard), signature: None, negotiated });
    }
    Ok(Canonical { id, recipe, target: Target::Custom(spec.spec), signature: spec.sig, negotiated })
}

/// `webp` if the client lists it with a non-zero q, else `jpeg`.
pub fn negotiate(accept: Option<&str>) -> OutputFormat {
    let accepts_webp = accept.is_some_and(|a| {
        a.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            media.eq_ignore_ascii_case("image/webp")
                && !parts
                    .any(|p| p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()).is_some_and(|q| q <= 0.0))
        })
    });
    if accepts_webp {
        OutputFormat::Webp
    } else {
        OutputFormat::Jpeg
    }
}

fn decode(raw: &str) -> Option<String> {
    let s = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
    if s.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return None;
    }
    Some(s.into_owned())
}

fn decode_query(raw: &str) -> Option<String> {
    decode(&raw.replace('+', " "))
}

#[derive(Default)]
struct RawOpts {
    w: Option<u32>,
    h: Option<u32>,
    fit: Option<Fit>,
    q: Option<u8>,
    s: Option<String>,
}

struct ParsedSpec {
    spec: Spec,
    sig: Option<String>,
}

impl RawOpts {
    fn is_empty(&self) -> bool {
        self.w.is_none() && self.h.is_none() && self.fit.is_none() && self.q.is_none() && self.s.is_none()
    }

    fn add(&mut self, pair: &str) -> Result<(), TransformError> {
        let bad = |why: String| TransformError::BadOptions(why);
        let (k, v) = pair.split_once('=').ok_or_else(|| bad(format!("expected key=value, got {:?}", clip(pair))))?;
        if v.is_empty() {
            return Err(bad(format!("empty value for {:?}", clip(k))));
        }
        let key = k.to_ascii_lowercase();
        let dup = || bad(format!("duplicate option {key}"));
        match key.as_str() {
            "w" | "h" => {
                let n = number(v, 1, MAX_SIDE).ok_or_else(|| bad(format!("{key} must be 1..={MAX_SIDE}")))?;
                let slot = if key == "w" { &mut self.w } else { &mut self.h };
                if slot.replace(n).is_some() {
                    return Err(dup());
                }
            }
            "fit" => {
                let fit = Fit::from_name(&v.to_ascii_lowercase())
                    .ok_or_else(|| bad("fit must be inside, cover or fill".into()))?;
                if self.fit.replace(fit).is_some() {
                    return Err(dup());
                }
            }
            "q" => {
                let q = number(v, 1, 100).ok_or_else(|| bad("q must be 1..=100".into()))?;
                if self.q.replace(q as u8).is_some() {
                    return Err(dup());
                }
            }
            "s" => {
                let ok = v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(bad("s must be base64url".into()));
                }
                if self.s.replace(v.to_string()).is_some() {
                    return Err(dup());
                }
            }
            _ => return Err(bad(format!("unknown option {:?}", clip(k)))),
        }
        Ok(())
    }

    fn into_spec(self, format: OutputFormat) -> Result<ParsedSpec, TransformError> {
        if self.q.is_some() && !format.has_quality() {
            return Err(TransformError::BadOptions(format!("q does not apply to {}", format.name())));
        }
        let both = self.w.is_some() && self.h.is_some();
        let fit = if both { self.fit.unwrap_or(Fit::Inside) } else { Fit::Inside };
        Ok(ParsedSpec {
            spec: Spec { format, w: self.w, h: self.h, fit, q: self.q.unwrap_or(DEFAULT_QUALITY) },
            sig: self.s,
        })
    }
}

/// Decimal digits only (leading zeros allowed), within `lo..=hi`.
fn number(v: &str, lo: u32, hi: u32) -> Option<u32> {
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = v.parse().ok()?;
    (lo..=hi).contains(&n).then_some(n)
}

fn clip(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01hzx3q9k8m2v7w5t4r3p2n1ab";

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = parse_uri(&input.replace("{id}", ID), Some("image/webp,*/*")).map(|c| c.path()).map_err(|e| e.code());
        let expected = expected.map(|p| p.replace("{id}", ID));
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn table() {
        check("/img/{id}/webp", Ok("/img/{id}/webp"));
        check("/img/{id}/thumb", Ok("/img/{id}/thumb"));
        check("/img/{id}/webp?w=640&fit=cover", Ok("/img/{id}/webp/w=640"));
        check("/img/{id}/webp?h=10&w=20&fit=COVER", Ok("/img/{id}/webp/w=20,h=10,fit=cover"));
        check("/img/{id}/jpeg/q=85", Ok("/img/{id}/jpeg"));
        check("/img/{id}/auto?w=5", Ok("/img/{id}/webp/w=5"));
        check("/img/{id}/png?q=50", Err("bad_options"));
        check("/img/{id}/webp?w=0", Err("bad_options"));
        check("/img/{id}/webp?w=8193", Err("bad_options"));
        check("/img/{id}/webp?w=1&w=2", Err("bad_options"));
        check("/img/{id}/webp/w=1?h=2", Err("bad_options"));
        check("/img/{id}/thumb?w=2", Err("bad_options"));
        check("/img/{id}/gif", Err("bad_variant"));
        check("/img/..%2f/webp", Err("bad_id"));
        check("/img/{id}/R0A1B2C3D/WEBP?w=640", Ok("/img/{id}/r0a1b2c3d/webp/w=640"));
        check("/img/{id}/r0a1b2c3d/thumb", Ok("/img/{id}/r0a1b2c3d/thumb"));
        check("/img/{id}/r0a1b2c3d", Err("bad_variant"));
        check("/img/{id}/r0a1b2c3/webp", Err("bad_options"));
        check("/img/{id}/r0a1b2c3", Err("bad_variant"));
        check("/img/{id}/r0a1b2c3d/webp/w=1/x", Err("bad_options"));
        check("/img/{id}/r0a1b2c3d/r0a1b2c3d/webp", Err("bad_options"));
        check("/img/{id}/r0a1b2c3d/r0a1b2c3d", Err("bad_variant"));
    }

    #[test]
    fn the_recipe_is_in_the_key_but_not_signed() {
        let c = parse_uri(&format!("/img/{ID}/r0a1b2c3d/webp?s=abc&w=10"), None).unwrap();
        assert_eq!(c.key().as_str(), format!("img/{ID}/r0a1b2c3d/webp/w=10,s=abc"));
        assert_eq!(c.signed_path(), format!("/img/{ID}/webp/w=10"));
        let bare = parse_uri(&format!("/img/{ID}/webp?w=10"), None).unwrap();
        assert_eq!(bare.recipe, None);
        assert_eq!(bare.with_recipe(c.recipe.unwrap()).path(), format!("/img/{ID}/r0a1b2c3d/webp/w=10"));
    }

    #[test]
    fn signature_is_kept_last_and_not_signed() {
        let c = parse_uri(&format!("/img/{ID}/webp?s=abc_-1&w=10"), None).unwrap();
        assert_eq!(c.path(), format!("/img/{ID}/webp/w=10,s=abc_-1"));
        assert_eq!(c.signed_path(), format!("/img/{ID}/webp/w=10"));
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(None), OutputFormat::Jpeg);
        assert_eq!(negotiate(Some("image/avif,image/webp,*/*")), OutputFormat::Webp);
        assert_eq!(negotiate(Some("image/webp;q=0, image/jpeg")), OutputFormat::Jpeg);
        assert_eq!(negotiate(Some("*/*")), OutputFormat::Jpeg);
    }
}
