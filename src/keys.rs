//! Image ids and storage keys. `ImageId` is the only way an id from a client
//! reaches a key, and `Key` is the only speller of `uploads/<id>` and
//! `img/<id>/...`; nothing else formats a key from user input.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::recipe::Recipe;

/// A server-minted ULID, always lowercase on output.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageId(ulid::Ulid);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid image id")]
pub struct BadId;

impl ImageId {
    /// Mint a fresh id.
    pub fn new() -> Self {
        ImageId(ulid::Ulid::new())
    }

    /// Parse a client-supplied id: exactly 26 Crockford base32 characters
    /// (either case; not I, L, O or U), the first at most `7`.
    pub fn parse(s: &str) -> Result<Self, BadId> {
        let crockford = |b: u8| {
            let b = b.to_ascii_lowercase();
            (b.is_ascii_digit() || b.is_ascii_lowercase()) && !matches!(b, b'i' | b'l' | b'o' | b'u')
        };
        if s.len() != 26 || !s.bytes().all(crockford) || s.as_bytes()[0] > b'7' {
            return Err(BadId);
        }
        ulid::Ulid::from_string(s).map(ImageId).map_err(|_| BadId)
    }
}

impl Default for ImageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_string().to_ascii_lowercase())
    }
}

impl fmt::Debug for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageId({self})")
    }
}

impl FromStr for ImageId {
    type Err = BadId;
    fn from_str(s: &str) -> Result<Self, BadId> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ImageId {
    type Error = BadId;
    fn try_from(s: String) -> Result<Self, BadId> {
        Self::parse(&s)
    }
}

impl From<ImageId> for String {
    fn from(id: ImageId) -> String {
        id.to_string()
    }
}

/// A storage key. Built only from an `ImageId` plus a canonical variant
/// name or option string, so it can never contain `..`, `/` from a client,
/// or anything outside `[a-z0-9=,_-/]`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Key(String);

impl Key {
    /// `uploads/<id>`: the raw upload.
    pub fn raw(id: &ImageId) -> Self {
        Key(format!("uploads/{id}"))
    }

    /// `img/<id>/<recipe>/<name>`: a standard variant, or
    /// `img/<id>/<recipe>/<format>/<opts>` for an on-demand render. `suffix`
    /// comes from `transform::Canonical`. With no recipe, the shape keys had
    /// before recipe versions, which are read (old URLs keep their bytes)
    /// but never written.
    pub(crate) fn variant(id: &ImageId, recipe: Option<Recipe>, suffix: &str) -> Self {
        match recipe {
            Some(r) => Key(format!("img/{id}/{r}/{suffix}")),
            None => Key(format!("img/{id}/{suffix}")),
        }
    }

    /// The prefix under which every variant of `id` lives.
    pub fn variant_prefix(id: &ImageId) -> String {
        format!("img/{id}/")
    }

    /// A drop-in's own key in the raw bucket (`holiday/cat.jpg`), read once
    /// to copy its bytes to `uploads/<id>`. The longest S3 key (1,024
    /// bytes), no control characters, no `.`/`..` segment, no leading `/`
    /// and no trailing one (a console "folder"): nothing a path could
    /// escape through.
    pub fn dropped(s: &str) -> Option<Self> {
        Self::why_not_dropped(s).is_none().then(|| Key(s.to_string()))
    }

    /// Why `s` cannot be a drop-in's key (see `dropped`), said for the
    /// person who named the file; `None` when it can.
    pub fn why_not_dropped(s: &str) -> Option<&'static str> {
        if s.is_empty() {
            Some("the name is empty")
        } else if s.len() > 1024 {
            Some("the name is longer than 1,024 bytes, S3's longest key")
        } else if s.starts_with('/') || s.ends_with('/') {
            Some("the name starts or ends with '/'")
        } else if s.chars().any(char::is_control) {
            Some("the name holds a control character (a tab or a line break)")
        } else if s.contains('\\') {
            Some("the name holds a backslash")
        } else if s.split('/').any(|seg| seg == "." || seg == "..") {
            Some("the name has a '.' or '..' part")
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An upload's bytes (`uploads/<id>`).
    pub fn is_raw(&self) -> bool {
        self.0.starts_with("uploads/") && ImageId::parse(&self.0["uploads/".len()..]).is_ok()
    }

    /// An on-demand render (`img/<id>/<recipe>/<format>/<opts>`), as
    /// opposed to an upload or a standard variant: the only objects that may
    /// expire. Only an options segment holds `=`.
    pub fn is_render(&self) -> bool {
        self.0.starts_with("img/") && self.0.rsplit('/').next().is_some_and(|last| last.contains('='))
    }

    /// Re-check a key read back from storage (a folder listing, an S3
    /// event): only shapes this module writes are accepted.
    pub fn parse_stored(s: &str) -> Option<Self> {
        let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"=,_-/".contains(&b));
        if !ok_chars || s.contains("//") || s.ends_with('/') {
            return None;
        }
        let mut parts = s.split('/');
        match (parts.next(), parts.next()) {
            (Some("uploads"), Some(id)) if parts.next().is_none() => ImageId::parse(id).ok().map(|id| Key::raw(&id)),
            (Some("img"), Some(id)) => {
                let id = ImageId::parse(id).ok()?;
                let mut rest: Vec<&str> = parts.collect();
                let recipe = rest.first().and_then(|r| Recipe::parse(r).ok());
                if recipe.is_some() {
                    rest.remove(0);
                }
                if rest.is_empty() || rest.len() > 2 || rest.iter().any(|p| p.is_empty()) {
                    return None;
                }
                Some(Key::variant(&id, recipe, &rest.join("/")))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, ok: bool) {
        assert_eq!(ImageId::parse(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn ids() {
        check("01hzx3q9k8m2v7w5t4r3p2n1ab", true);
        check("01HZX3Q9K8M2V7W5T4R3P2N1AB", true);
        check("01hzx3q9k8m2v7w5t4r3p2n1a", false); // 25 chars
        check("01hzx3q9k8m2v7w5t4r3p2n1abc", false);
        check("../../etc/passwd/aaaaaaaaaa", false);
        check("01hzx3q9k8m2v7w5t4r3p2n1a\0", false);
        check("81hzx3q9k8m2v7w5t4r3p2n1ab", false); // overflows 128 bits
        check("", false);
        check("01hzx3q9k8m2v7w5t4r3p2n1au", false); // U is not Crockford
        check("01hzx3q9k8m2v7w5t4r3p2n1ai", false);
    }

    #[test]
    fn display_is_lowercase_and_round_trips() {
        let id = ImageId::parse("01HZX3Q9K8M2V7W5T4R3P2N1AB").unwrap();
        assert_eq!(id.to_string(), "01hzx3q9k8m2v7w5t4r3p2n1ab");
        assert_eq!(ImageId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(Key::raw(&id).as_str(), "uploads/01hzx3q9k8m2v7w5t4r3p2n1ab");
    }

    #[test]
    fn dropped_keys() {
        for good in ["cat.jpg", "holiday/cat.jpg", "a b/c+d.jpeg", "café/über.png", "uploads/not-an-id"] {
            assert_eq!(Key::dropped(good).unwrap().as_str(), good);
        }
        let long = "a".repeat(1025);
        for bad in ["", "/etc/passwd", "holiday/", "../x", "a/../b", "a/./b", "a\\b", "a\nb", long.as_str()] {
            assert!(Key::dropped(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn stored_keys() {
        let id = "01hzx3q9k8m2v7w5t4r3p2n1ab";
        for good in [
            format!("uploads/{id}"),
            format!("img/{id}/webp"),
            format!("img/{id}/webp/w=640,fit=cover"),
            format!("img/{id}/r0a1b2c3d/webp"),
            format!("img/{id}/r0a1b2c3d/webp/w=640,fit=cover"),
        ] {
            let key = Key::parse_stored(&good).unwrap();
            assert_eq!(key.as_str(), good);
            assert_eq!(key.is_render(), good.ends_with("fit=cover"), "{good}");
        }
        for bad in [
            format!("uploads/{id}/x"),
            format!("img/{id}/../x"),
            format!("img/{id}/"),
            format!("img/{id}//webp"),
            format!("img/{id}/a/b/c"),
            format!("img/{id}/r0a1b2c3d/a/b/c"),
            format!("img/{id}/r0a1b2c3d"),
            "uploads/../../etc".to_string(),
            format!("other/{id}"),
        ] {
            assert!(Key::parse_stored(&bad).is_none(), "{bad}");
        }
    }
}
