//! Credentials and the `Authorization` header they produce.
//!
//! SAS tokens are signed locally and cached until shortly before expiry. Entra ID tokens
//! come from the Microsoft identity platform via Azure Workload Identity: the federated
//! service-account token is re-read from disk on every token request (kubelet rotates
//! it), exchanged with a client-credentials grant, and the access token cached.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use url::Url;

use super::config::Clock;
use super::connection_string::ConnectionString;
use super::error::{ConfigError, ErrorKind, IotHubError};
use super::observer::{Operation, RequestObserver};
use super::sas;
use super::secret::Secret;
use super::urls;

/// OAuth scope of the IoT Hub data plane.
pub const IOTHUB_SCOPE: &str = "https://iothubs.azure.net/.default";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A hub-level shared access policy from a connection string.
    SharedAccessKey(ConnectionString),
    /// Microsoft Entra ID through Azure Workload Identity.
    WorkloadIdentity(WorkloadIdentityConfig),
}

/// What the Azure Workload Identity webhook injects into the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentityConfig {
    pub client_id: String,
    pub tenant_id: String,
    /// Projected service-account token; re-read for every token request.
    pub federated_token_file: PathBuf,
    /// e.g. `https://login.microsoftonline.com/` (the webhook's value ends with a slash).
    pub authority_host: String,
}

impl WorkloadIdentityConfig {
    /// Reads `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
    /// `AZURE_AUTHORITY_HOST` (the last defaults to the public cloud).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env) with an explicit variable source.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(ConfigError::MissingEnv(name));
        Ok(WorkloadIdentityConfig {
            client_id: required("AZURE_CLIENT_ID")?,
            tenant_id: required("AZURE_TENANT_ID")?,
            federated_token_file: PathBuf::from(required("AZURE_FEDERATED_TOKEN_FILE")?),
            authority_host: get("AZURE_AUTHORITY_HOST")
                .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned()),
        })
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`, joined without double slashes.
    pub fn token_endpoint(&self) -> Result<Url, ConfigError> {
        let base = urls::checked_base(&self.authority_host, "AZURE_AUTHORITY_HOST")?;
        let joined = urls::join(&[
            base.as_str(),
            &urls::encode_segment(self.tenant_id.trim_matches('/')),
            "oauth2/v2.0/token",
        ]);
        Url::parse(&joined).map_err(|e| ConfigError::InvalidUrl {
            what: "token endpoint",
            reason: e.to_string(),
        })
    }
}

/// A token and the instant it stops being valid.
#[derive(Clone)]
struct CachedToken {
    header: Secret,
    expires_at: Timestamp,
    /// Renew once `now >= renew_at`.
    renew_at: Timestamp,
}

impl CachedToken {
    fn new(header: Secret, now: Timestamp, lifetime: Duration, margin: Duration) -> Self {
        let margin = margin.min(lifetime / 2);
        let lifetime = SignedDuration::try_from(lifetime).unwrap_or(SignedDuration::MAX);
        let margin = SignedDuration::try_from(margin).unwrap_or(SignedDuration::ZERO);
        let expires_at = now.saturating_add(lifetime).unwrap_or(Timestamp::MAX);
        let renew_at = expires_at.saturating_sub(margin).unwrap_or(now);
        CachedToken {
            header,
            expires_at,
            renew_at,
        }
    }

    fn usable_at(&self, now: Timestamp) -> bool {
        now < self.renew_at && now < self.expires_at
    }
}

/// Shared context for token acquisition.
pub(crate) struct AuthContext {
    pub clock: Arc<dyn Clock>,
    pub observer: Arc<dyn RequestObserver>,
    pub hub: String,
    pub ttl: Duration,
    pub margin: Duration,
}

/// Produces `Authorization` header values, renewing them as they age.
pub(crate) enum Authorizer {
    Sas(SasTokens),
    Entra(EntraTokens),
}

impl Authorizer {
    pub(super) fn new(
        credential: Credential,
        host_name: &str,
        ctx: AuthContext,
    ) -> Result<Authorizer, ConfigError> {
        if ctx.ttl.is_zero() {
            return Err(ConfigError::InvalidSetting {
                name: "sas_ttl",
                reason: "must be positive".to_owned(),
            });
        }
        match credential {
            Credential::SharedAccessKey(cs) => {
                if !cs.host_name().eq_ignore_ascii_case(host_name) {
                    return Err(ConfigError::HostMismatch {
                        config: host_name.to_owned(),
                        credential: cs.host_name().to_owned(),
                    });
                }
                Ok(Authorizer::Sas(SasTokens {
                    resource: cs.host_name().to_owned(),
                    key: cs.key().clone(),
                    policy: cs.key_name().to_owned(),
                    ctx,
                    cache: Mutex::new(None),
                }))
            }
            Credential::WorkloadIdentity(wi) => Ok(Authorizer::Entra(EntraTokens {
                endpoint: wi.token_endpoint()?,
                config: wi,
                ctx,
                cache: tokio::sync::Mutex::new(None),
            })),
        }
    }

    /// A current header value, fetched or signed only when the cached one is due for renewal.
    pub(super) async fn header(&self, http: &reqwest::Client) -> Result<Secret, IotHubError> {
        match self {
            Authorizer::Sas(sas) => sas.header(),
            Authorizer::Entra(entra) => entra.header(http).await,
        }
    }
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorizer::Sas(s) => f
                .debug_struct("Sas")
                .field("resource", &s.resource)
                .field("policy", &s.policy)
                .finish_non_exhaustive(),
            Authorizer::Entra(e) => f
                .debug_struct("Entra")
                .field("client_id", &e.config.client_id)
                .field("endpoint", &e.endpoint.as_str())
                .finish_non_exhaustive(),
        }
    }
}

pub(crate) struct SasTokens {
    resource: String,
    key: Secret,
    policy: String,
    ctx: AuthContext,
    cache: Mutex<Option<CachedToken>>,
}

impl SasTokens {
    fn header(&self) -> Result<Secret, IotHubError> {
        let now = self.ctx.clock.now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = cache.as_ref().filter(|t| t.usable_at(now)) {
            return Ok(token.header.clone());
        }
        let expiry = now
            .as_second()
            .saturating_add(self.ctx.ttl.as_secs() as i64);
        let expiry = u64::try_from(expiry).unwrap_or(0);
        let value =
            sas::token(&self.resource, self.key.expose(), &self.policy, expiry).map_err(|_| {
                IotHubError::new(
                    ErrorKind::Unauthorized,
                    Operation::Token,
                    "the shared access key is not valid base64",
                )
            })?;
        tracing::debug!(hub = %self.ctx.hub, expiry, "signed a new SAS token");
        let token = CachedToken::new(Secret::new(value), now, self.ctx.ttl, self.ctx.margin);
        *cache = Some(token.clone());
        Ok(token.header)
    }
}

pub(crate) struct EntraTokens {
    config: WorkloadIdentityConfig,
    endpoint: Url,
    ctx: AuthContext,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct TokenErrorResponse {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    trace_id: Option<String>,
}

impl EntraTokens {
    async fn header(&self, http: &reqwest::Client) -> Result<Secret, IotHubError> {
        // Held across the fetch so concurrent callers wait for one request instead of stampeding.
        let mut cache = self.cache.lock().await;
        let now = self.ctx.clock.now();
        if let Some(token) = cache.as_ref().filter(|t| t.usable_at(now)) {
            return Ok(token.header.clone());
        }
        let started = Instant::now();
        let result = self.fetch(http, now).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind().as_str(),
        };
        self.ctx.observer.request_finished(
            &self.ctx.hub,
            Operation::Token,
            outcome,
            started.elapsed(),
        );
        let token = result?;
        *cache = Some(token.clone());
        Ok(token.header)
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        now: Timestamp,
    ) -> Result<CachedToken, IotHubError> {
        let assertion = self.read_assertion().await?;
        let form = [
            ("client_id", self.config.client_id.as_str()),
            ("scope", IOTHUB_SCOPE),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion.expose()),
            ("grant_type", "client_credentials"),
        ];
        let response = http
            .post(self.endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error(Operation::Token, &e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(Operation::Token, &e))?;
        if status != 200 {
            return Err(token_error(status, &body));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            IotHubError::new(
                ErrorKind::BadResponse,
                Operation::Token,
                format!("token endpoint answered 200 with an unreadable body: {e}"),
            )
        })?;
        if parsed
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(IotHubError::new(
                ErrorKind::BadResponse,
                Operation::Token,
                "token endpoint returned a token that is not a bearer token",
            ));
        }
        let lifetime = expires_in_seconds(&parsed.expires_in).ok_or_else(|| {
            IotHubError::new(
                ErrorKind::BadResponse,
                Operation::Token,
                "token endpoint answer has no usable expires_in",
            )
        })?;
        tracing::debug!(hub = %self.ctx.hub, expires_in = lifetime, "obtained an Entra ID access token");
        let header = Secret::new(format!("Bearer {}", parsed.access_token));
        Ok(CachedToken::new(
            header,
            now,
            Duration::from_secs(lifetime),
            self.ctx.margin,
        ))
    }

    async fn read_assertion(&self) -> Result<Secret, IotHubError> {
        let path = &self.config.federated_token_file;
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            IotHubError::new(
                ErrorKind::Unauthorized,
                Operation::Token,
                format!(
                    "cannot read the federated token file {}: {e}",
                    path.display()
                ),
            )
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Err(IotHubError::new(
                ErrorKind::Unauthorized,
                Operation::Token,
                format!("the federated token file {} is empty", path.display()),
            ));
        }
        Ok(Secret::new(text))
    }
}

fn expires_in_seconds(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s| *s > 0)
}

/// Turns an identity-platform error answer into an error whose message starts with the AADSTS text.
fn token_error(status: u16, body: &[u8]) -> IotHubError {
    let parsed: TokenErrorResponse = serde_json::from_slice(body).unwrap_or_default();
    let description = parsed
        .error_description
        .as_deref()
        .and_then(|d| d.lines().next())
        .unwrap_or("")
        .trim()
        .to_owned();
    let kind = match status {
        400 | 401 | 403 => ErrorKind::Unauthorized,
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::BadResponse,
    };
    let message = if description.is_empty() {
        format!("Entra ID token request failed with HTTP {status}")
    } else {
        format!("Entra ID token request failed: {description}")
    };
    let mut err = IotHubError::new(kind, Operation::Token, message)
        .with_status(status)
        .with_tracking_id(parsed.trace_id);
    if let Some(code) = parsed.error_codes.first() {
        err = err.with_code(*code);
    }
    if let Some(name) = parsed.error {
        err = err.with_name(name);
    }
    err
}

/// Maps a reqwest transport failure to Timeout or Connection, without the URL's query.
pub(crate) fn transport_error(operation: Operation, e: &reqwest::Error) -> IotHubError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() || e.is_body() {
        ErrorKind::BadResponse
    } else {
        ErrorKind::Connection
    };
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let error = IotHubError::new(kind, operation, message);
    if e.is_connect() {
        error.unsent()
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn workload_identity_env_is_read_and_endpoint_joined_cleanly() {
        let wi = WorkloadIdentityConfig::from_lookup(lookup(&[
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_TENANT_ID", "tid"),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/tokens/azure-identity-token",
            ),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
        ]))
        .unwrap();
        assert_eq!(
            wi.token_endpoint().unwrap().as_str(),
            "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
        );
    }

    #[test]
    fn authority_host_defaults_to_public_cloud() {
        let wi = WorkloadIdentityConfig::from_lookup(lookup(&[
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_TENANT_ID", "/tid/"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
        ]))
        .unwrap();
        let endpoint = wi.token_endpoint().unwrap();
        assert_eq!(
            endpoint.as_str(),
            "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
        );
    }

    #[test]
    fn missing_variables_are_named() {
        let err =
            WorkloadIdentityConfig::from_lookup(lookup(&[("AZURE_CLIENT_ID", "cid")])).unwrap_err();
        assert_eq!(err, ConfigError::MissingEnv("AZURE_TENANT_ID"));
        let err = WorkloadIdentityConfig::from_lookup(lookup(&[
            ("AZURE_CLIENT_ID", " "),
            ("AZURE_TENANT_ID", "t"),
        ]))
        .unwrap_err();
        assert_eq!(err, ConfigError::MissingEnv("AZURE_CLIENT_ID"));
    }

    #[test]
    fn plain_http_authority_is_refused_unless_loopback() {
        let mut wi = WorkloadIdentityConfig {
            client_id: "c".into(),
            tenant_id: "t".into(),
            federated_token_file: "/f".into(),
            authority_host: "http://login.example.com/".into(),
        };
        assert!(wi.token_endpoint().is_err());
        wi.authority_host = "http://127.0.0.1:1234/".into();
        assert_eq!(
            wi.token_endpoint().unwrap().as_str(),
            "http://127.0.0.1:1234/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn aadsts_errors_keep_the_first_line_and_trace_id() {
        let body = br#"{"error":"invalid_request","error_description":"AADSTS70021: No matching federated identity record found for presented assertion.\r\nTrace ID: abc\r\nCorrelation ID: def","error_codes":[70021],"trace_id":"abc"}"#;
        let e = token_error(400, body);
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(
            e.message()
                .starts_with("Entra ID token request failed: AADSTS70021: No matching")
        );
        assert!(!e.message().contains("Correlation"));
        assert_eq!(e.error_code(), Some(70021));
        assert_eq!(e.error_name(), Some("invalid_request"));
        assert_eq!(e.tracking_id(), Some("abc"));
        assert!(!e.is_transient());
        assert!(token_error(503, b"").is_transient());
    }

    #[test]
    fn expires_in_is_read_as_number_or_string_and_must_be_positive() {
        assert_eq!(expires_in_seconds(&serde_json::json!(3599)), Some(3599));
        assert_eq!(expires_in_seconds(&serde_json::json!("3599")), Some(3599));
        assert_eq!(expires_in_seconds(&serde_json::json!(0)), None);
        assert_eq!(expires_in_seconds(&serde_json::json!(-5)), None);
        assert_eq!(expires_in_seconds(&serde_json::Value::Null), None);
    }

    #[test]
    fn cached_tokens_renew_before_expiry() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let t = CachedToken::new(
            Secret::new("x"),
            now,
            Duration::from_secs(1200),
            Duration::from_secs(180),
        );
        assert!(t.usable_at(now));
        assert!(t.usable_at(Timestamp::from_second(1_000_000 + 1019).unwrap()));
        assert!(!t.usable_at(Timestamp::from_second(1_000_000 + 1020).unwrap()));
        // A margin longer than the lifetime is cut to half of it.
        let short = CachedToken::new(
            Secret::new("x"),
            now,
            Duration::from_secs(60),
            Duration::from_secs(180),
        );
        assert!(short.usable_at(Timestamp::from_second(1_000_000 + 29).unwrap()));
        assert!(!short.usable_at(Timestamp::from_second(1_000_000 + 30).unwrap()));
    }
}
