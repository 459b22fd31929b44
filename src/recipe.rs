//! Recipe versions. Every stored variant is a pure function of three things:
//! the original, its canonical path, and the recipe that shaped it (the
//! standard variants' formats, qualities and boxes, the long-side limit that
//! size-less renders take, and the engine's own revision). The recipe's
//! version is a short hash of all of them, spelled `r` + 8 hex digits, and
//! it is a segment of every variant key and URL:
//! `img/<id>/<recipe>/<name>` and `img/<id>/<recipe>/<format>/<opts>`.
//! Changing a setting changes the version, so old and new bytes never share
//! a key, and a key cached for a year never changes meaning.

use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{Engine, Variant};

/// Bumped whenever a change to a decoder, the resampler or an encoder
/// changes output bytes for the same settings (a new encoder version,
/// another filter), so the new bytes get new keys too.
pub const ENGINE_REVISION: u32 = 1;

/// A recipe version: the first 32 bits of the SHA-256 of the recipe's
/// text (see [`describe`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Recipe([u8; 4]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a recipe version (r and 8 hex digits)")]
pub struct BadRecipe;

impl Recipe {
    /// A placeholder while an `Engine` is built; never stored.
    pub(crate) const NONE: Recipe = Recipe([0; 4]);

    /// The version of `engine`'s settings.
    pub fn of(engine: &Engine) -> Self {
        let digest = Sha256::digest(text(engine, false).as_bytes());
        Recipe([digest[0], digest[1], digest[2], digest[3]])
    }

    /// `r` and 8 hex digits, either case.
    pub fn parse(s: &str) -> Result<Self, BadRecipe> {
        let hex = s.strip_prefix(['r', 'R']).filter(|h| h.len() == 8).ok_or(BadRecipe)?;
        let mut out = [0u8; 4];
        hex::decode_to_slice(hex, &mut out).map_err(|_| BadRecipe)?;
        Ok(Recipe(out))
    }

    /// Whether a path segment is spelled like a recipe version (and so is
    /// never a variant or format name).
    pub fn looks_like(s: &str) -> bool {
        Self::parse(s).is_ok()
    }
}

/// Everything that shapes output bytes, one line each, in a fixed order,
/// as `imgpipe recipe` prints it: PNG's quality reads `lossless`.
pub fn describe(engine: &Engine) -> String {
    text(engine, true)
}

/// The lines of `describe`. The version hashes them with PNG's (unused)
/// quality number in place of `lossless`, as it always has, so that the
/// wording of the listing never changes a deployed recipe's version.
fn text(engine: &Engine, for_people: bool) -> String {
    let mut out = format!("engine {ENGINE_REVISION}\nmax_dimension {}\n", engine.limits.max_dimension);
    for v in Variant::ALL {
        let spec = engine.standard_spec(v);
        let side = spec.plan.w.unwrap_or(0);
        let quality = match spec.format.name() {
            "png" if for_people => "lossless".to_string(),
            _ => format!("q{}", spec.quality),
        };
        let _ = writeln!(out, "{} {} {quality} {side}", v.name(), spec.format.name());
    }
    out
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipe({self})")
    }
}

impl TryFrom<String> for Recipe {
    type Error = BadRecipe;
    fn try_from(s: String) -> Result<Self, BadRecipe> {
        Self::parse(&s)
    }
}

impl From<Recipe> for String {
    fn from(r: Recipe) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Limits;

    #[test]
    fn every_setting_that_shapes_bytes_changes_the_version() {
        let base = Recipe::of(&Engine::new(Limits::default()));
        assert_eq!(base, Recipe::of(&Engine::new(Limits::default())), "a pure function of the settings");
        let max_dimension = Limits { max_dimension: 2048, ..Limits::default() };
        let thumb = Limits { thumb_size: 200, ..Limits::default() };
        assert_ne!(base, Recipe::of(&Engine::new(max_dimension)));
        assert_ne!(base, Recipe::of(&Engine::new(thumb)));
        assert_ne!(Recipe::of(&Engine::new(max_dimension)), Recipe::of(&Engine::new(thumb)));
        // Limits that only refuse input do not shape bytes.
        let refusals = Limits { max_pixels: 1_000, max_upload_bytes: 10, ..Limits::default() };
        assert_eq!(base, Recipe::of(&Engine::new(refusals)));
    }

    #[test]
    fn spelling() {
        let r = Recipe::parse("r0a1B2c3D").unwrap();
        assert_eq!(r.to_string(), "r0a1b2c3d");
        assert_eq!(Recipe::parse(&r.to_string()), Ok(r));
        for bad in ["", "r", "r0a1b2c3", "r0a1b2c3d4", "x0a1b2c3d", "r0a1b2c3g", "0a1b2c3d", "webp", "r+a1b2c3d"] {
            assert!(Recipe::parse(bad).is_err(), "{bad}");
        }
        let described = describe(&Engine::new(Limits::default()));
        assert!(
            described.contains("max_dimension 4096\n") && described.contains("thumb jpeg q80 300\n"),
            "{described}"
        );
        // PNG has no quality; the listing says so.
        assert!(described.contains("png png lossless 4096\n") && !described.contains("png png q"), "{described}");
    }

    /// The default settings' version is the one deployed images carry in
    /// their keys: rewording the listing must never move it.
    #[test]
    fn the_default_version_stays_put() {
        assert_eq!(Recipe::of(&Engine::new(Limits::default())).to_string(), "rfaed9b80");
    }
}
