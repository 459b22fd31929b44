//! HMAC-SHA256 signatures, in one place: the local stand-in for S3's
//! presigned PUT (`UploadSigner`, minted by the folder store and checked by
//! `PUT /_upload/<id>`), and the `s=` of on-demand renders when
//! `IMGPIPE_SIGNING_KEY` is set. Every check is constant-time.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::keys::Key;
use crate::store::fs::write_atomic;
use crate::store::{unix_now, PresignedPut};

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length")
}

/// The `s=` a client must append for `signed_path` (the canonical path
/// without `s`, see `transform::Canonical::signed_path`): base64url, no
/// padding.
pub fn sign_path(secret: &[u8], signed_path: &str) -> String {
    let mut mac = mac(secret);
    mac.update(signed_path.as_bytes());
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, mac.finalize().into_bytes())
}

/// Whether `given` (decoded from base64url) signs `signed_path`.
pub fn path_signature_matches(secret: &[u8], signed_path: &str, given: &[u8]) -> bool {
    let mut mac = mac(secret);
    mac.update(signed_path.as_bytes());
    mac.verify_slice(given).is_ok()
}

/// Signs and checks the local stand-in for S3's presigned PUT.
#[derive(Clone)]
pub struct UploadSigner {
    secret: Vec<u8>,
    base_url: String,
}

impl std::fmt::Debug for UploadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSigner").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// Why a presigned PUT was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum UploadCheck {
    BadSignature,
    Expired,
}

impl UploadSigner {
    pub fn new(secret: Vec<u8>, base_url: &str) -> Self {
        UploadSigner { secret, base_url: base_url.trim_end_matches('/').to_string() }
    }

    /// The configured secret, or one kept in `<data_dir>/upload-secret`
    /// (created with 32 random bytes on first start).
    pub fn secret_from(data_dir: &Path, configured: Option<Vec<u8>>) -> std::io::Result<Vec<u8>> {
        if let Some(s) = configured {
            return Ok(s);
        }
        let path = data_dir.join("upload-secret");
        match std::fs::read(&path) {
            Ok(s) if s.len() >= 32 => Ok(s),
            _ => {
                let mut secret = vec![0u8; 32];
                getrandom::fill(&mut secret).map_err(std::io::Error::other)?;
                let hexed = hex::encode(&secret).into_bytes();
                std::fs::create_dir_all(data_dir)?;
                write_atomic(&path, &hexed)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(hexed)
            }
        }
    }

    fn mac(&self, key: &Key, content_type: &str, content_length: u64, expires: u64) -> Hmac<Sha256> {
        let mut mac = mac(&self.secret);
        mac.update(format!("PUT\n{key}\n{content_type}\n{content_length}\n{expires}").as_bytes());
        mac
    }

    pub fn presign(&self, key: &Key, content_type: &str, content_length: u64, ttl: Duration) -> PresignedPut {
        let expires = unix_now() + ttl.as_secs();
        let sig = hex::encode(self.mac(key, content_type, content_length, expires).finalize().into_bytes());
        let id = key.as_str().trim_start_matches("uploads/");
        let ct = percent_encoding::utf8_percent_encode(content_type, percent_encoding::NON_ALPHANUMERIC);
        let url = format!("{}/_upload/{id}?ct={ct}&len={content_length}&expires={expires}&sig={sig}", self.base_url);
        let headers = [("content-type".to_string(), content_type.to_string())].into_iter().collect();
        PresignedPut {
            method: "PUT",
            url,
            headers,
            expires_at: time::OffsetDateTime::from_unix_timestamp(expires as i64)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// Check the signed values; the caller then compares the request's own
    /// headers with them.
    pub fn verify(
        &self,
        key: &Key,
        content_type: &str,
        content_length: u64,
        expires: u64,
        sig_hex: &str,
    ) -> Result<(), UploadCheck> {
        let given = hex::decode(sig_hex).map_err(|_| UploadCheck::BadSignature)?;
        let mac = self.mac(key, content_type, content_length, expires);
        mac.verify_slice(&given).map_err(|_| UploadCheck::BadSignature)?;
        if unix_now() > expires {
            return Err(UploadCheck::Expired);
        }
        Ok(())
    }
}
