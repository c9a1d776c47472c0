//! Typed errors: configuration mistakes ([`ConfigError`]) and failed calls ([`IotHubError`]).
//!
//! IoT Hub reports failures in three places: the HTTP status, the `iothub-errorcode`
//! header (a name such as `DeviceNotFound`) and a JSON body whose `Message` is either
//! `ErrorCode:<Name>;<text>` or an escaped JSON object carrying a numeric `errorCode`.
//! [`IotHubError::from_response`] reads all three so the controller can tell "device
//! offline" from "hub unreachable" from "our credentials are wrong".

use std::fmt;
use std::num::NonZeroI64;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use super::observer::Operation;

/// A configuration or credential problem found before any request is sent.
///
/// Messages name the offending part, never a key or token value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("connection string is missing {0}")]
    MissingPart(&'static str),
    #[error("connection string part {0:?} has no '=' and no value")]
    MalformedPart(String),
    #[error(
        "connection string is scoped to a device or module ({0}); edgewatch needs a hub-level shared access policy"
    )]
    DeviceScoped(&'static str),
    #[error("the shared access key is not valid base64")]
    KeyNotBase64,
    #[error(
        "environment variable {0} is not set; is the pod labelled for Azure Workload Identity?"
    )]
    MissingEnv(&'static str),
    #[error("invalid URL for {what}: {reason}")]
    InvalidUrl { what: &'static str, reason: String },
    #[error("the CA bundle holds no usable PEM certificate")]
    InvalidCaBundle,
    #[error(
        "host name {config:?} in the client configuration differs from the connection string's {credential:?}"
    )]
    HostMismatch { config: String, credential: String },
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting { name: &'static str, reason: String },
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}

/// What went wrong, at the granularity the controller maps onto condition reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 404001 or a 404 on a device resource.
    DeviceNotFound,
    /// 404010 or a 404 on a module resource.
    ModuleNotFound,
    /// 404103: the target is not connected or has no method handler. A result, not a fault of ours.
    DeviceNotOnline,
    /// 504101: the device is connected but did not answer the method in time.
    GatewayTimeout,
    /// 401xxx other than 401001, or an Entra ID token that could not be obtained.
    Unauthorized,
    /// 429xxx.
    Throttled,
    /// 401001: the hub name does not exist.
    HubNotFound,
    /// 5xx other than 504101.
    Server,
    /// 403002 IotHubQuotaExceeded: the hub's daily message quota is used up; billable
    /// calls are refused until 00:00 UTC ([`IotHubError::quota_resets_at`]).
    DailyQuotaExceeded,
    /// Other 4xx answers (malformed or unsupported query, precondition failed).
    Rejected,
    /// No answer within the configured request timeout.
    Timeout,
    /// DNS, TCP or TLS failure before an HTTP answer.
    Connection,
    /// An answer that is not what the API promises (unparsable JSON, missing fields).
    BadResponse,
    /// The caller asked for something the API does not allow (for example a method timeout out of range).
    InvalidRequest,
}

impl ErrorKind {
    /// The `outcome` label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::DeviceNotFound => "device_not_found",
            ErrorKind::ModuleNotFound => "module_not_found",
            ErrorKind::DeviceNotOnline => "device_not_online",
            ErrorKind::GatewayTimeout => "gateway_timeout",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Throttled => "throttled",
            ErrorKind::HubNotFound => "hub_not_found",
            ErrorKind::Server => "server",
            ErrorKind::DailyQuotaExceeded => "daily_quota_exceeded",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::InvalidRequest => "invalid_request",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::DeviceNotFound => "device not found",
            ErrorKind::ModuleNotFound => "module not found",
            ErrorKind::DeviceNotOnline => "device not online",
            ErrorKind::GatewayTimeout => "device did not answer in time",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Throttled => "throttled by IoT Hub",
            ErrorKind::HubNotFound => "IoT hub not found",
            ErrorKind::Server => "IoT Hub server error",
            ErrorKind::DailyQuotaExceeded => "the IoT hub's daily message quota is used up",
            ErrorKind::Rejected => "request rejected",
            ErrorKind::Timeout => "request timed out",
            ErrorKind::Connection => "connection failed",
            ErrorKind::BadResponse => "unexpected response",
            ErrorKind::InvalidRequest => "invalid request",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed IoT Hub call, with everything an operator needs to look it up in Azure
/// (errorCode, tracking id) and nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IotHubError {
    kind: ErrorKind,
    operation: Operation,
    status: Option<u16>,
    error_code: Option<u32>,
    error_name: Option<String>,
    tracking_id: Option<String>,
    message: String,
    retry_after: Option<Duration>,
    /// For [`ErrorKind::DailyQuotaExceeded`]: the next 00:00 UTC by the client's clock,
    /// in Unix seconds (a midnight is whole seconds; kept small so `Result`s stay small).
    quota_resets_at: Option<NonZeroI64>,
    attempts: u32,
    /// The failure happened before the request left (connect/TLS), so repeating it is always safe.
    unsent: bool,
}

impl std::error::Error for IotHubError {}

impl fmt::Display for IotHubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.kind.describe())?;
        let mut details = Vec::new();
        if let Some(status) = self.status {
            details.push(format!("HTTP {status}"));
        }
        match (self.error_code, &self.error_name) {
            (Some(code), Some(name)) => details.push(format!("errorCode {code} {name}")),
            (Some(code), None) => details.push(format!("errorCode {code}")),
            (None, Some(name)) => details.push(format!("errorCode {name}")),
            (None, None) => {}
        }
        if let Some(id) = &self.tracking_id {
            details.push(format!("tracking id {id}"));
        }
        if self.attempts > 1 {
            details.push(format!("after {} attempts", self.attempts));
        }
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(at) = self.quota_resets_at() {
            write!(
                f,
                "; billable calls (twin reads, queries, direct methods) are refused until the quota resets at {at} (00:00 UTC)"
            )?;
        }
        Ok(())
    }
}

impl IotHubError {
    /// An error that did not come from an HTTP answer (timeout, connection, bad input).
    pub fn new(kind: ErrorKind, operation: Operation, message: impl Into<String>) -> Self {
        IotHubError {
            kind,
            operation,
            status: None,
            error_code: None,
            error_name: None,
            tracking_id: None,
            message: message.into(),
            retry_after: None,
            quota_resets_at: None,
            attempts: 1,
            unsent: false,
        }
    }

    /// Classifies a non-success answer from its status, `iothub-errorcode` header and body.
    ///
    /// `on_module` says whether the URL named a module, which decides what a bare 404 means.
    pub fn from_response(
        operation: Operation,
        on_module: bool,
        status: u16,
        header_name: Option<&str>,
        body: &[u8],
    ) -> Self {
        let parsed = ParsedBody::parse(body);
        let error_name = header_name
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
            .or(parsed.name);
        let error_code = parsed
            .code
            .or_else(|| error_name.as_deref().and_then(code_for_name));
        let kind = classify(status, error_code, on_module);
        IotHubError {
            kind,
            operation,
            status: Some(status),
            error_code,
            error_name,
            tracking_id: parsed.tracking_id,
            message: parsed.message,
            retry_after: None,
            quota_resets_at: None,
            attempts: 1,
            unsent: false,
        }
    }

    // Builders, public so fakes in other parts' tests can produce realistic errors.

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// When the daily quota resets; also sets [`retry_after`](Self::retry_after) to the
    /// time left until then (by `now`), so callers that only read that come back in time.
    pub fn with_quota_reset(mut self, resets_at: Timestamp, now: Timestamp) -> Self {
        self.quota_resets_at = NonZeroI64::new(resets_at.as_second());
        self.retry_after =
            Some(Duration::try_from(resets_at.duration_since(now)).unwrap_or(Duration::ZERO));
        self
    }

    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.error_name = Some(name.into());
        self
    }

    pub(crate) fn unsent(mut self) -> Self {
        self.unsent = true;
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_code(mut self, code: u32) -> Self {
        self.error_code = Some(code);
        self
    }

    pub fn with_tracking_id(mut self, tracking_id: Option<String>) -> Self {
        self.tracking_id = tracking_id;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn operation(&self) -> Operation {
        self.operation
    }
    /// HTTP status of the last answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
    /// Numeric IoT Hub errorCode (e.g. 404103), from the body or derived from the error name.
    pub fn error_code(&self) -> Option<u32> {
        self.error_code
    }
    /// Error name from the `iothub-errorcode` header or `ErrorCode:<Name>;` (e.g. `DeviceNotFound`).
    pub fn error_name(&self) -> Option<&str> {
        self.error_name.as_deref()
    }
    /// IoT Hub tracking id, for Azure support.
    pub fn tracking_id(&self) -> Option<&str> {
        self.tracking_id.as_deref()
    }
    /// Server-provided detail text.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// How long the hub asked us to wait (`Retry-After`), when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    /// For [`ErrorKind::DailyQuotaExceeded`]: when the hub's quota resets (the next
    /// 00:00 UTC by the client's clock). Billable calls fail without a request until then.
    pub fn quota_resets_at(&self) -> Option<Timestamp> {
        self.quota_resets_at
            .and_then(|s| Timestamp::from_second(s.get()).ok())
    }
    /// How many HTTP attempts were made before giving up.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the request provably never reached the hub (connection or TLS set-up failed).
    pub fn was_unsent(&self) -> bool {
        self.unsent
    }

    /// Whether trying again later may succeed without anything changing on our side.
    ///
    /// 404103 and 504101 are answers about the device, and 401 needs new credentials:
    /// none of them is transient.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Connection
        )
    }

    /// Whether the hub refused the text of a query (HTTP 400 on `/devices/query`).
    ///
    /// For a query edgewatch composed itself (a projection, a `$metadata` or `$version`
    /// filter) this means the hub does not support that feature: fall back to full reads
    /// (`SELECT *`, twin GETs) instead of failing. For a user's selector it means the
    /// selector is wrong. The simulator answers this way when started with
    /// `--refuse-projections` or `--refuse-metadata-filters`.
    pub fn is_unsupported_query_feature(&self) -> bool {
        self.operation == Operation::Query
            && self.kind == ErrorKind::Rejected
            && self.status == Some(400)
            && self.error_code.is_none_or(|c| c == 400004)
    }
}

fn classify(status: u16, code: Option<u32>, on_module: bool) -> ErrorKind {
    match code {
        Some(404001) => return ErrorKind::DeviceNotFound,
        Some(404010) => return ErrorKind::ModuleNotFound,
        Some(404103) => return ErrorKind::DeviceNotOnline,
        Some(504101) => return ErrorKind::GatewayTimeout,
        Some(401001) => return ErrorKind::HubNotFound,
        Some(403002) => return ErrorKind::DailyQuotaExceeded,
        Some(c) if (401000..402000).contains(&c) => return ErrorKind::Unauthorized,
        Some(c) if (429000..430000).contains(&c) => return ErrorKind::Throttled,
        _ => {}
    }
    match status {
        401 => ErrorKind::Unauthorized,
        429 => ErrorKind::Throttled,
        404 if on_module => ErrorKind::ModuleNotFound,
        404 => ErrorKind::DeviceNotFound,
        408 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::Rejected,
    }
}

/// Numeric codes of the error names the service SDKs know (reference §2.2), for answers
/// that carry only a name.
fn code_for_name(name: &str) -> Option<u32> {
    Some(match name {
        "IotHubNotFound" => 401001,
        "IotHubUnauthorizedAccess" => 401002,
        "IotHubUnauthorized" => 401003,
        "IotHubSuspended" => 403001,
        "IotHubQuotaExceeded" => 403002,
        "DeviceNotFound" => 404001,
        "ModuleNotFound" => 404010,
        "DeviceNotOnline" => 404103,
        "InvalidProtocolVersion" => 400001,
        "ArgumentInvalid" => 400004,
        "ArgumentNull" => 400005,
        "IotHubFormatError" => 400006,
        "PreconditionFailed" => 412001,
        "GenericTooManyRequests" => 429000,
        "ThrottlingException" => 429001,
        "ThrottleBacklogLimitExceeded" => 429002,
        "ThrottlingBacklogTimeout" => 429003,
        "DeviceThrottlingLimitExceeded" => 429005,
        "ServerError" => 500001,
        "ServiceUnavailable" => 503001,
        "GatewayTimeout" => 504101,
        _ => return None,
    })
}

/// What could be read from an error body; every field optional.
#[derive(Debug, Default, PartialEq, Eq)]
struct ParsedBody {
    code: Option<u32>,
    name: Option<String>,
    tracking_id: Option<String>,
    message: String,
}

#[derive(Deserialize)]
struct OuterBody {
    #[serde(alias = "message")]
    #[serde(rename = "Message")]
    outer_message: Option<String>,
    #[serde(rename = "ExceptionMessage")]
    exception_message: Option<String>,
    #[serde(rename = "errorCode")]
    error_code: Option<serde_json::Value>,
    #[serde(rename = "trackingId")]
    tracking_id: Option<String>,
}

#[derive(Deserialize)]
struct InnerBody {
    #[serde(rename = "errorCode")]
    error_code: Option<serde_json::Value>,
    #[serde(rename = "trackingId")]
    tracking_id: Option<String>,
    message: Option<String>,
}

/// Longest server text kept in an error, so a misbehaving proxy cannot flood logs.
const MAX_MESSAGE_CHARS: usize = 512;

impl ParsedBody {
    fn parse(body: &[u8]) -> ParsedBody {
        let Ok(outer) = serde_json::from_slice::<OuterBody>(body) else {
            return ParsedBody {
                message: truncate(String::from_utf8_lossy(body).trim()),
                ..ParsedBody::default()
            };
        };
        let mut parsed = ParsedBody {
            code: outer.error_code.as_ref().and_then(numeric_code),
            tracking_id: outer.tracking_id,
            ..ParsedBody::default()
        };
        let message = outer.outer_message.unwrap_or_default();
        if let Ok(inner) = serde_json::from_str::<InnerBody>(&message) {
            parsed.code = parsed
                .code
                .or(inner.error_code.as_ref().and_then(numeric_code));
            parsed.tracking_id = parsed.tracking_id.or(inner.tracking_id);
            parsed.message = inner.message.unwrap_or_default();
        } else if let Some((name, text)) = split_error_code_prefix(&message) {
            parsed.name = Some(name.to_owned());
            parsed.message = text.to_owned();
        } else {
            parsed.message = message;
        }
        if parsed.tracking_id.is_none() {
            parsed.tracking_id = outer
                .exception_message
                .as_deref()
                .and_then(tracking_id_from_exception);
        }
        parsed.message = truncate(parsed.message.trim());
        parsed
    }
}

fn numeric_code(value: &serde_json::Value) -> Option<u32> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Splits `ErrorCode:<Name>;<text>` into name and text.
fn split_error_code_prefix(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("ErrorCode:")?;
    let (name, text) = rest.split_once(';').unwrap_or((rest, ""));
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((name, text))
}

/// Reads `<id>` out of `Tracking ID:<id>-G:<n>-TimeStamp:<...>` (or `...-TimeStamp:` without `-G`).
fn tracking_id_from_exception(text: &str) -> Option<String> {
    let rest = text.split("Tracking ID:").nth(1)?;
    let end = rest
        .find("-G:")
        .or_else(|| rest.find("-TimeStamp:"))
        .unwrap_or(rest.len());
    let id = rest[..end].trim();
    (!id.is_empty()).then(|| id.to_owned())
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, header: Option<&str>, body: &str) -> IotHubError {
        IotHubError::from_response(Operation::GetTwin, false, status, header, body.as_bytes())
    }

    #[test]
    fn classic_body_gives_name_code_and_tracking_id() {
        let e = err(
            401,
            None,
            r#"{"Message":"ErrorCode:IotHubUnauthorizedAccess;Unauthorized","ExceptionMessage":"Tracking ID:abc123-G:15-TimeStamp:11/03/2020 07:18:24"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.error_name(), Some("IotHubUnauthorizedAccess"));
        assert_eq!(e.error_code(), Some(401002));
        assert_eq!(e.tracking_id(), Some("abc123"));
        assert_eq!(e.message(), "Unauthorized");
    }

    #[test]
    fn tracking_id_without_gateway_part() {
        let e = err(
            401,
            None,
            r#"{"Message":"ErrorCode:IotHubUnauthorized;Principal x is not authorized","ExceptionMessage":"Tracking ID:abc:0-TimeStamp:06/26/2023 07:44:12"}"#,
        );
        assert_eq!(e.tracking_id(), Some("abc:0"));
        assert_eq!(e.error_code(), Some(401003));
    }

    #[test]
    fn embedded_json_body_gives_numeric_code() {
        let e = IotHubError::from_response(
            Operation::InvokeMethod,
            true,
            404,
            None,
            br#"{"Message":"{\"errorCode\":404103,\"trackingId\":\"t-1\",\"message\":\"device isn't online\",\"timestampUtc\":\"2024-01-01T00:00:00Z\"}","ExceptionMessage":""}"#,
        );
        assert_eq!(e.kind(), ErrorKind::DeviceNotOnline);
        assert_eq!(e.error_code(), Some(404103));
        assert_eq!(e.tracking_id(), Some("t-1"));
        assert!(!e.is_transient());
    }

    #[test]
    fn header_name_alone_is_enough() {
        let e = IotHubError::from_response(
            Operation::GetModuleTwin,
            true,
            404,
            Some("DeviceNotFound"),
            b"",
        );
        assert_eq!(e.kind(), ErrorKind::DeviceNotFound);
        assert_eq!(e.error_code(), Some(404001));
    }

    #[test]
    fn bare_404_depends_on_the_resource() {
        assert_eq!(err(404, None, "").kind(), ErrorKind::DeviceNotFound);
        let m = IotHubError::from_response(Operation::GetModuleTwin, true, 404, None, b"not json");
        assert_eq!(m.kind(), ErrorKind::ModuleNotFound);
        assert_eq!(m.message(), "not json");
    }

    #[test]
    fn gateway_timeout_is_not_transient_but_other_5xx_are() {
        let gw = err(504, None, r#"{"Message":"{\"errorCode\":504101}"}"#);
        assert_eq!(gw.kind(), ErrorKind::GatewayTimeout);
        assert!(!gw.is_transient());
        let s = err(503, Some("ServiceUnavailable"), "");
        assert_eq!(s.kind(), ErrorKind::Server);
        assert_eq!(s.error_code(), Some(503001));
        assert!(s.is_transient());
    }

    #[test]
    fn hub_not_found_and_throttling() {
        assert_eq!(
            err(401, Some("IotHubNotFound"), "").kind(),
            ErrorKind::HubNotFound
        );
        let t = err(
            429,
            None,
            r#"{"Message":"ErrorCode:ThrottlingException;slow down"}"#,
        );
        assert_eq!(t.kind(), ErrorKind::Throttled);
        assert_eq!(t.error_code(), Some(429001));
        assert!(t.is_transient());
    }

    #[test]
    fn top_level_error_code_form_and_string_codes() {
        let e = err(
            400,
            None,
            r#"{"errorCode":"400004","trackingId":"x","message":"bad query"}"#,
        );
        assert_eq!(e.error_code(), Some(400004));
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(e.tracking_id(), Some("x"));
    }

    #[test]
    fn quota_exceeded_in_both_body_forms_is_its_own_kind() {
        let classic = err(
            403,
            Some("IotHubQuotaExceeded"),
            r#"{"Message":"ErrorCode:IotHubQuotaExceeded;Total number of messages on IotHub 'x' exceeded the allocated quota","ExceptionMessage":"Tracking ID:q1-G:0-TimeStamp:03/01/2026 12:00:00"}"#,
        );
        assert_eq!(classic.kind(), ErrorKind::DailyQuotaExceeded);
        assert_eq!(classic.error_code(), Some(403002));
        let nested = IotHubError::from_response(
            Operation::InvokeMethod,
            true,
            403,
            None,
            br#"{"Message":"{\"errorCode\":403002,\"trackingId\":\"q2\",\"message\":\"quota\",\"timestampUtc\":\"2026-03-01T12:00:00Z\"}","ExceptionMessage":""}"#,
        );
        assert_eq!(nested.kind(), ErrorKind::DailyQuotaExceeded);
        assert!(!nested.is_transient(), "never retried before the reset");
        let other_403 = err(403, Some("IotHubSuspended"), "");
        assert_eq!(other_403.kind(), ErrorKind::Rejected);
    }

    #[test]
    fn quota_errors_say_when_the_quota_resets() {
        let now: Timestamp = "2026-03-01T22:30:00Z".parse().unwrap();
        let reset: Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
        let e = err(403, Some("IotHubQuotaExceeded"), "").with_quota_reset(reset, now);
        assert_eq!(e.quota_resets_at(), Some(reset));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(90 * 60)));
        let text = e.to_string();
        assert!(
            text.contains("daily message quota is used up")
                && text.contains("403002 IotHubQuotaExceeded")
                && text.contains("2026-03-02T00:00:00Z"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_query_is_recognisable_as_an_unsupported_feature() {
        let refused = IotHubError::from_response(
            Operation::Query,
            false,
            400,
            Some("ArgumentInvalid"),
            br#"{"Message":"ErrorCode:ArgumentInvalid;projections are not supported"}"#,
        );
        assert!(refused.is_unsupported_query_feature());
        let bad_version = IotHubError::from_response(
            Operation::Query,
            false,
            400,
            Some("InvalidProtocolVersion"),
            b"",
        );
        assert!(!bad_version.is_unsupported_query_feature());
        let twin = err(400, Some("ArgumentInvalid"), "");
        assert!(!twin.is_unsupported_query_feature(), "only queries");
    }

    #[test]
    fn huge_bodies_are_truncated() {
        let body = "x".repeat(10_000);
        assert_eq!(err(500, None, &body).message().len(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn display_names_everything_useful() {
        let e = err(
            404,
            Some("DeviceNotFound"),
            r#"{"Message":"ErrorCode:DeviceNotFound;no such device","ExceptionMessage":"Tracking ID:tid-G:1-TimeStamp:x"}"#,
        )
        .with_attempts(1);
        let s = e.to_string();
        assert!(s.contains("get_twin: device not found"), "{s}");
        assert!(
            s.contains("HTTP 404")
                && s.contains("404001 DeviceNotFound")
                && s.contains("tracking id tid"),
            "{s}"
        );
    }
}
