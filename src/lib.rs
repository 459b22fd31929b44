//! imgpipe: upload once, get optimized variants eagerly, any other size or
//! format on demand. See ARCHITECTURE.md for the map.

/// Typed configuration from `IMGPIPE_*` and flags, checked once.
pub mod config;
/// Sniff, limits, decode, orient, resize, encode: sync, no I/O.
pub mod engine;
/// Image ids (ULID) and storage keys: the only key speller.
pub mod keys;
/// `imgpipe process`: the engine over files on disk.
pub mod process;
/// Parse and canonicalize `/img/<id>/<variant>[/<opts>]` and its query form.
pub mod transform;
