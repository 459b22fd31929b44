//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): each takes
//! arbitrary bytes and may only return. Kept in the crate so they build
//! and run as unit tests on stable too.

use std::collections::HashMap;

use crate::engine::{Engine, Fit, Limits, Plan, RenderSpec, Variant};
use crate::keys::{ImageId, Key};

/// Small limits: the fuzzer looks for panics and aborts, not for slowness.
fn engine() -> Engine {
    Engine::new(Limits { max_pixels: 4_000_000, max_upload_bytes: 4 << 20, max_dimension: 256, thumb_size: 32 })
}

/// Sniff, decode, render the thumbnail; and the on-demand path must accept
/// whatever the upload path accepted (one decoder policy).
pub fn decode_and_render(data: &[u8]) {
    let engine = engine();
    let Ok(decoded) = engine.decode(data) else { return };
    let _ = engine.render(&decoded, &engine.standard_spec(Variant::Thumb));
    let plan = Plan { w: Some(16), h: Some(16), fit: Fit::Cover, upscale: false };
    let spec = RenderSpec { format: crate::engine::OutputFormat::Png, quality: 85, plan };
    match engine.decode_for(data, plan) {
        Ok(small) => {
            let _ = engine.render(&small, &spec);
        }
        Err(e) => panic!("accepted at upload, refused for a render: {e}"),
    }
}

/// Path, query and Accept from one input, split at the first two NULs.
pub fn transform(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let path = parts.next().unwrap_or_default();
    let query = parts.next();
    let accept = parts.next();
    if let Ok(c) = crate::transform::parse(path, query, accept) {
        // Canonical forms parse back to themselves.
        let again = crate::transform::parse(&c.path(), None, None).expect("a canonical path parses");
        assert_eq!(again.path(), c.path());
        let _ = c.key();
    }
}

/// A local upload URL's decoded query, checked against a fixed key.
pub fn presign_query(pairs: &HashMap<String, String>) {
    let signer = crate::signing::UploadSigner::new(b"fuzz".to_vec(), "http://fuzz");
    let key = Key::raw(&ImageId::parse("01J00000000000000000000000").expect("a valid id"));
    let _ = crate::http::presigned_put::SignedUpload::check(&signer, &key, pairs);
}

/// An S3 notification document, as SQS or Lambda delivers it.
pub fn s3_event(data: &[u8]) {
    if let Ok(doc) = std::str::from_utf8(data) {
        let _ = crate::events::notices(doc, "raw-bucket");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_points_take_junk() {
        for junk in [&b""[..], b"\0\0", b"\xff\xd8\xff\xe0", b"/img/\0w=1\0image/webp", b"{\"Records\":[{}]}"] {
            decode_and_render(junk);
            transform(junk);
            s3_event(junk);
        }
        let mut q = HashMap::new();
        q.insert("len".to_string(), "18446744073709551616".to_string());
        presign_query(&q);
    }
}
