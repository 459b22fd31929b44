//! S3 notifications as SQS delivers them (or Lambda, directly).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| imgpipe::fuzzing::s3_event(data));
