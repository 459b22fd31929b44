//! Engine, transform and `imgpipe process` tests. Images are generated in
//! the tests; the corpus suite reads `$IMGPIPE_CORPUS` and says when it is
//! absent.

mod avif;
mod cli;
mod codecs;
mod corpus;
mod generated;
mod helpers;
mod regressions;
#[path = "../common/util.rs"]
mod util;
mod vectors;
