//! URL building: base URLs checked once, path segments percent-encoded, parts joined
//! without the `//` that naive concatenation produces.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::{Host, Url};

use super::error::ConfigError;

/// Everything but RFC 3986 unreserved characters, so `$edgeAgent` becomes `%24edgeAgent`
/// as the C# SDK sends it.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment (device id, module id).
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// Joins URL parts with exactly one `/` between them, whatever slashes they carry.
pub(super) fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let part = if i == 0 {
            part.trim_end_matches('/')
        } else {
            part.trim_matches('/')
        };
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part);
    }
    out
}

/// Parses a base URL, refusing anything but `https://`, except `http://` to a loopback
/// address (local test servers). TLS can be pointed at extra CAs, never switched off.
pub(super) fn checked_base(text: &str, what: &'static str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| ConfigError::InvalidUrl {
        what,
        reason: e.to_string(),
    })?;
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        other => {
            return Err(ConfigError::InvalidUrl {
                what,
                reason: format!("scheme {other:?} is not allowed; use https"),
            });
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::InvalidUrl {
            what,
            reason: "must not carry a query or fragment".to_owned(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_and_other_reserved_characters_are_encoded() {
        assert_eq!(encode_segment("$edgeAgent"), "%24edgeAgent");
        assert_eq!(encode_segment("a+b/c d#e?"), "a%2Bb%2Fc%20d%23e%3F");
        assert_eq!(encode_segment("line-1.gw_2~"), "line-1.gw_2~");
    }

    #[test]
    fn join_never_doubles_slashes() {
        assert_eq!(
            join(&[
                "https://login.microsoftonline.com/",
                "/tenant/",
                "oauth2/v2.0/token"
            ]),
            "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
        );
        assert_eq!(join(&["https://h", "tenant"]), "https://h/tenant");
        assert_eq!(
            join(&["http://127.0.0.1:9/base//", "", "x"]),
            "http://127.0.0.1:9/base/x"
        );
    }

    #[test]
    fn only_https_or_loopback_http() {
        assert!(checked_base("https://hub.azure-devices.net", "endpoint").is_ok());
        assert!(checked_base("http://127.0.0.1:8080", "endpoint").is_ok());
        assert!(checked_base("http://localhost:8080/", "endpoint").is_ok());
        assert!(checked_base("http://[::1]:8080/", "endpoint").is_ok());
        assert!(checked_base("http://hub.azure-devices.net", "endpoint").is_err());
        assert!(checked_base("ftp://localhost", "endpoint").is_err());
        assert!(checked_base("not a url", "endpoint").is_err());
        assert!(checked_base("https://h/?x=1", "endpoint").is_err());
    }
}
