//! The image path and query parser: any bytes as path, query and Accept.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| imgpipe::fuzzing::transform(data));
