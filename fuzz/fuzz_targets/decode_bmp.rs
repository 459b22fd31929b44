//! Sniff and decode, then render the smallest standard variant: a panic
//! or abort anywhere is a finding. Seeded with bmp files (scripts/fuzz.sh).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| imgpipe::fuzzing::decode_and_render(data));
