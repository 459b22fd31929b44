//! imgpipe: upload once, get optimized variants eagerly, any other size or
//! format on demand. See ARCHITECTURE.md for the map.

/// `AppState` and the one router for `serve` and Lambda.
pub mod app;
/// AWS clients and the S3 + DynamoDB state.
pub mod aws;
/// `imgpipe bench`: the recipe timed step by step, in the peers' format.
pub mod bench;
/// The CDN, for invalidating a deleted image's copies.
pub mod cdn;
/// Typed configuration from `IMGPIPE_*` and flags, checked once.
pub mod config;
/// The CPU budget: a job per core, a bounded wait, shed past it.
pub mod cpu;
/// Drop-ins: any object in the raw bucket or file in `inbox/` is an image.
pub mod dropin;
/// Sniff, limits, decode, orient, resize, encode: sync, no I/O.
pub mod engine;
/// S3 notifications → ingest (Lambda `events` and `imgpipe worker`).
pub mod events;
/// Entry points for the fuzz targets in `fuzz/`.
#[doc(hidden)]
pub mod fuzzing;
/// HTTP handlers, one file per resource, and `ApiError`.
pub mod http;
/// `imgpipe import`: existing images from a folder or a bucket.
pub mod import;
/// The local drop-in folder: `<data dir>/inbox/` watched by `serve`.
pub mod inbox;
/// Raw upload -> decode once -> variants -> store -> metadata (last).
pub mod ingest;
/// Image ids (ULID) and storage keys: the only key speller.
pub mod keys;
/// The Lambda `http` and `events` handlers.
pub mod lambda;
/// Metadata items behind `MetaStore`: SQLite locally, DynamoDB in AWS.
pub mod meta;
/// `imgpipe process`: the engine over files on disk.
pub mod process;
/// The progress bar of the commands run by hand (indicatif, local builds).
pub mod progress;
/// The local bounded work queue; resumes pending uploads at start.
pub mod queue;
/// Recipe versions: the hash of the settings that shape output bytes.
pub mod recipe;
/// `imgpipe reprocess`: the standard variants again for the current recipe.
pub mod reprocess;
/// `imgpipe serve` wiring: local stores, queue, graceful shutdown.
pub mod serve;
/// HMAC signatures: the local presigned PUT and signed render URLs.
pub mod signing;
/// Blobs behind `BlobStore`: a folder locally, S3 in AWS.
pub mod store;
/// Parse and canonicalize `/img/<id>/<variant>[/<opts>]` and its query form.
pub mod transform;
/// `imgpipe worker`: the events handler on an SQS long poll.
pub mod worker;
