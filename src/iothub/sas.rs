//! Shared access signatures, as IoT Hub computes them.
//!
//! The client signs its requests with these; the simulator verifies them with the same
//! code, so the two can never disagree about the string to sign. The format is the one of
//! the service SDKs: `SharedAccessSignature sr=<enc(resource)>&sig=<enc(b64(hmac))>&se=<expiry>&skn=<policy>`,
//! where the string to sign is `<enc(resource)>\n<expiry>` and the HMAC-SHA256 key is the
//! base64-decoded policy key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

/// Characters `WebUtility.UrlEncode` leaves alone: letters, digits and `-_.!*()`.
/// Base64 signatures contain `+`, `/` and `=`, which must be escaped.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'*')
    .remove(b'(')
    .remove(b')');

/// Why a signature could not be computed. Never carries the key itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SasError {
    #[error("the shared access key is not valid base64")]
    KeyNotBase64,
}

/// URL-encodes a token component the way the service SDKs do.
pub fn url_encode(value: &str) -> String {
    utf8_percent_encode(value, URL_ENCODE).to_string()
}

/// The base64 HMAC-SHA256 signature of `<enc(resource)>\n<expiry>` (not yet URL-encoded).
pub fn signature(key_base64: &str, resource: &str, expiry: u64) -> Result<String, SasError> {
    let key = BASE64
        .decode(key_base64.trim())
        .map_err(|_| SasError::KeyNotBase64)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(format!("{}\n{}", url_encode(resource), expiry).as_bytes());
    Ok(BASE64.encode(mac.finalize().into_bytes()))
}

/// A complete `Authorization` header value for a hub-scoped policy.
pub fn token(
    resource: &str,
    key_base64: &str,
    policy: &str,
    expiry: u64,
) -> Result<String, SasError> {
    let sig = signature(key_base64, resource, expiry)?;
    Ok(format!(
        "SharedAccessSignature sr={}&sig={}&se={}&skn={}",
        url_encode(resource),
        url_encode(&sig),
        expiry,
        url_encode(policy)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_has_the_sdk_shape_and_escapes_the_signature() {
        let t = token(
            "myhub.azure-devices.net",
            "c2VjcmV0",
            "service",
            1_735_689_600,
        )
        .unwrap();
        assert!(t.starts_with("SharedAccessSignature sr=myhub.azure-devices.net&sig="));
        assert!(t.ends_with("&se=1735689600&skn=service"));
        let sig = t.split("&sig=").nth(1).unwrap().split('&').next().unwrap();
        assert!(!sig.contains('+') && !sig.contains('/') && !sig.contains('='));
    }

    #[test]
    fn a_key_that_is_not_base64_is_refused_without_echoing_it() {
        let err = signature("not base64 !!", "hub", 1).unwrap_err();
        assert!(!err.to_string().contains("not base64 !!"));
    }

    #[test]
    fn host_with_port_is_encoded() {
        assert_eq!(url_encode("localhost:8443"), "localhost%3A8443");
    }
}
