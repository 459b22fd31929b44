//! The local upload URL's query: decoded as axum does, then checked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        if let Ok(pairs) = serde_urlencoded::from_str::<std::collections::HashMap<String, String>>(query) {
            imgpipe::fuzzing::presign_query(&pairs);
        }
    }
});
