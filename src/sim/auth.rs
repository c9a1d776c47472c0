//! Request authentication as IoT Hub does it: SAS tokens signed with a shared access
//! policy key (checked with [`crate::iothub::sas`], the same code the client signs with),
//! or bearer tokens standing in for Microsoft Entra ID.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::percent_decode_str;

use crate::iothub::sas;

/// A shared access policy: a name and a base64 key.
#[derive(Clone, PartialEq, Eq)]
pub struct SasPolicy {
    pub name: String,
    pub key: String,
}

impl fmt::Debug for SasPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasPolicy")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SasPolicy {
    /// A policy with a fresh random 32-byte key.
    pub fn generate(name: &str) -> Self {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        SasPolicy {
            name: name.to_string(),
            key: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }
}

/// Why a request was refused. Never carries the token or a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no Authorization header")]
    Missing,
    #[error("the Authorization header is not a SharedAccessSignature or Bearer token")]
    Malformed,
    #[error("the token names a policy the hub does not have")]
    UnknownPolicy,
    #[error("the token has expired")]
    Expired,
    #[error("the token's resource (sr) is not this hub")]
    WrongResource,
    #[error("the token's signature does not match the policy key")]
    BadSignature,
    #[error("the bearer token is not accepted")]
    BadBearer,
}

/// Which credentials the simulated hub accepts.
#[derive(Clone)]
pub struct Authenticator {
    host_name: String,
    /// Accepted SAS resources (`sr`), lower case: the host name with and without its port.
    resources: Vec<String>,
    policies: BTreeMap<String, String>,
    bearer_tokens: Vec<String>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("host_name", &self.host_name)
            .field("resources", &self.resources)
            .field("policies", &self.policies.keys().collect::<Vec<_>>())
            .field("bearer_tokens", &self.bearer_tokens.len())
            .finish()
    }
}

/// Tokens may be used this long after their expiry, as the service tolerates clock skew.
pub const CLOCK_SKEW_SECS: u64 = 300;

impl Authenticator {
    pub fn new(host_name: &str, policies: &[SasPolicy], bearer_tokens: &[String]) -> Self {
        let host = host_name.to_ascii_lowercase();
        let bare = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let resources = vec![host.clone(), bare.to_string()];
        Authenticator {
            host_name: host_name.to_string(),
            resources,
            policies: policies
                .iter()
                .map(|p| (p.name.clone(), p.key.clone()))
                .collect(),
            bearer_tokens: bearer_tokens.to_vec(),
        }
    }

    /// Also accepts tokens naming the host with the port the simulator listens on
    /// (`localhost:443` when the host name is the bare `localhost`).
    pub fn with_listen_port(mut self, port: u16) -> Self {
        let bare = self.resources[1].clone();
        self.resources.push(format!("{bare}:{port}"));
        self
    }

    /// Checks an `Authorization` header value at wall time `now_unix`.
    pub fn verify(&self, header: Option<&str>, now_unix: u64) -> Result<(), AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?.trim();
        if let Some(token) = header.strip_prefix("Bearer ") {
            return self.verify_bearer(token.trim());
        }
        let fields = header
            .strip_prefix("SharedAccessSignature ")
            .ok_or(AuthFailure::Malformed)?;
        self.verify_sas(fields, now_unix)
    }

    fn verify_bearer(&self, token: &str) -> Result<(), AuthFailure> {
        let accepted = self
            .bearer_tokens
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if accepted {
            Ok(())
        } else {
            Err(AuthFailure::BadBearer)
        }
    }

    fn verify_sas(&self, fields: &str, now_unix: u64) -> Result<(), AuthFailure> {
        let mut sr = None;
        let mut sig = None;
        let mut se = None;
        let mut skn = None;
        for pair in fields.split('&') {
            let (k, v) = pair.split_once('=').ok_or(AuthFailure::Malformed)?;
            let v = percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| AuthFailure::Malformed)?
                .into_owned();
            match k.trim() {
                "sr" => sr = Some(v),
                "sig" => sig = Some(v),
                "se" => se = Some(v),
                "skn" => skn = Some(v),
                _ => return Err(AuthFailure::Malformed),
            }
        }
        let (Some(sr), Some(sig), Some(se), Some(skn)) = (sr, sig, se, skn) else {
            return Err(AuthFailure::Malformed);
        };
        let expiry: u64 = se.parse().map_err(|_| AuthFailure::Malformed)?;
        let key = self.policies.get(&skn).ok_or(AuthFailure::UnknownPolicy)?;
        let resource = sr
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_ascii_lowercase();
        if !self.resources.contains(&resource) {
            return Err(AuthFailure::WrongResource);
        }
        let expected = sas::signature(key, &sr, expiry).map_err(|_| AuthFailure::BadSignature)?;
        if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
            return Err(AuthFailure::BadSignature);
        }
        if expiry + CLOCK_SKEW_SECS < now_unix {
            return Err(AuthFailure::Expired);
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "localhost:8443";

    fn auth() -> (Authenticator, SasPolicy) {
        let p = SasPolicy::generate("service");
        (
            Authenticator::new(
                HOST,
                std::slice::from_ref(&p),
                &["opaque-entra-token".into()],
            ),
            p,
        )
    }

    #[test]
    fn a_token_from_the_shared_signer_is_accepted() {
        let (a, p) = auth();
        let t = sas::token(HOST, &p.key, "service", 2_000_000_000).unwrap();
        assert_eq!(a.verify(Some(&t), 1_900_000_000), Ok(()));
    }

    #[test]
    fn each_kind_of_bad_token_is_told_apart() {
        let (a, p) = auth();
        let other = SasPolicy::generate("service");
        let now = 1_900_000_000;
        let case = |t: String| a.verify(Some(&t), now);
        assert_eq!(a.verify(None, now), Err(AuthFailure::Missing));
        assert_eq!(case("Basic abc".into()), Err(AuthFailure::Malformed));
        assert_eq!(
            case("SharedAccessSignature sr=x".into()),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(
            case(sas::token(HOST, &p.key, "nobody", 2_000_000_000).unwrap()),
            Err(AuthFailure::UnknownPolicy)
        );
        assert_eq!(
            case(sas::token("otherhub:1", &p.key, "service", 2_000_000_000).unwrap()),
            Err(AuthFailure::WrongResource)
        );
        assert_eq!(
            case(sas::token(HOST, &other.key, "service", 2_000_000_000).unwrap()),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            case(sas::token(HOST, &p.key, "service", now - 3600).unwrap()),
            Err(AuthFailure::Expired)
        );
        assert_eq!(case("Bearer wrong".into()), Err(AuthFailure::BadBearer));
        assert_eq!(case("Bearer opaque-entra-token".into()), Ok(()));
    }

    #[test]
    fn the_resource_may_name_the_host_with_or_without_its_port() {
        let (a, p) = auth();
        let a = a.with_listen_port(8443);
        let ok = |sr: &str| {
            a.verify(
                Some(&sas::token(sr, &p.key, "service", 2_000_000_000).unwrap()),
                1_900_000_000,
            )
        };
        assert_eq!(ok("localhost:8443"), Ok(()));
        assert_eq!(ok("localhost"), Ok(()), "a real hub's sr has no port");
        assert_eq!(ok("LOCALHOST"), Ok(()));
        assert_eq!(ok("localhost:9999"), Err(AuthFailure::WrongResource));
        assert_eq!(ok("otherhost"), Err(AuthFailure::WrongResource));

        let bare =
            Authenticator::new("localhost", std::slice::from_ref(&p), &[]).with_listen_port(443);
        let ok = |sr: &str| {
            bare.verify(
                Some(&sas::token(sr, &p.key, "service", 2_000_000_000).unwrap()),
                1_900_000_000,
            )
        };
        assert_eq!(ok("localhost"), Ok(()));
        assert_eq!(ok("localhost:443"), Ok(()));
        assert_eq!(ok("localhost:8443"), Err(AuthFailure::WrongResource));
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let (a, p) = auth();
        assert!(!format!("{p:?}").contains(&p.key));
        assert!(!format!("{a:?}").contains(&p.key));
        assert!(!format!("{a:?}").contains("opaque-entra-token"));
    }
}
