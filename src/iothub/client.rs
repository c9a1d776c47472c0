//! The IoT Hub service client: one shared HTTP connection pool, authorization, pacing,
//! retries and error typing around every call.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::Retryable;
use bytes::Bytes;
use jiff::Timestamp;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, redirect};
use serde::de::DeserializeOwned;

use super::auth::{AuthContext, Authorizer, Credential, transport_error};
use super::billing::{BilledOperation, Meter, quota_refusal_lasts_until};
use super::config::{ClientConfig, Clock, RetryPolicy};
use super::error::{ConfigError, ErrorKind, IotHubError};
use super::observer::{Operation, RequestObserver};
use super::pacing::Pacer;
use super::retry::{backoff, next_delay, parse_retry_after};
use super::urls;

/// Talks to one IoT hub. Cheap to clone; clones share connections, tokens and rate budgets.
#[derive(Clone)]
pub struct IotHubClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Scheme, host and optional path prefix, without a trailing slash.
    base: String,
    hub: String,
    api_version: String,
    auth: Authorizer,
    pacer: Pacer,
    retry: RetryPolicy,
    page_size: u32,
    request_timeout: Duration,
    observer: Arc<dyn RequestObserver>,
    clock: Arc<dyn Clock>,
    /// Set when the hub answered 403002: billable calls fail locally until this instant.
    quota_blocked_until: Mutex<Option<Timestamp>>,
}

/// One logical call, possibly sent several times.
pub(crate) struct Call<'a> {
    pub operation: Operation,
    pub method: Method,
    /// Already percent-encoded, starting with `/`.
    pub path: String,
    pub body: Option<serde_json::Value>,
    pub headers: Vec<(&'static str, String)>,
    /// `None` uses the configured request timeout.
    pub timeout: Option<Duration>,
    pub device: &'a str,
    pub module: Option<&'a str>,
    pub retryable: fn(&IotHubError) -> bool,
}

/// A successful answer.
pub(crate) struct RawResponse {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Time from sending the request to reading the whole answer, for the successful attempt.
    pub latency: Duration,
}

impl fmt::Debug for IotHubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IotHubClient")
            .field("hub", &self.inner.hub)
            .field("base", &self.inner.base)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

impl IotHubClient {
    /// Builds a client. Fails on settings that could never work (bad URLs, an unusable
    /// CA bundle, a connection string for another hub, zero limits).
    pub fn new(config: ClientConfig, credential: Credential) -> Result<IotHubClient, ConfigError> {
        validate(&config)?;
        let base = match &config.endpoint {
            Some(endpoint) => urls::checked_base(endpoint, "endpoint")?,
            None => urls::checked_base(&format!("https://{}", config.host_name), "host name")?,
        };
        let base = base.as_str().trim_end_matches('/').to_owned();
        let http = http_client(&config)?;
        let auth = Authorizer::new(
            credential,
            &config.host_name,
            AuthContext {
                clock: Arc::clone(&config.clock),
                observer: Arc::clone(&config.observer),
                hub: config.host_name.clone(),
                ttl: config.sas_ttl,
                margin: config.token_renewal_margin,
            },
        )?;
        Ok(IotHubClient {
            inner: Arc::new(Inner {
                http,
                base,
                hub: config.host_name.clone(),
                api_version: config.api_version.clone(),
                auth,
                pacer: Pacer::new(&config.rate_limits, config.max_concurrent_requests)?,
                retry: config.retry,
                page_size: config.page_size,
                request_timeout: config.request_timeout,
                observer: Arc::clone(&config.observer),
                clock: Arc::clone(&config.clock),
                quota_blocked_until: Mutex::new(None),
            }),
        })
    }

    /// The hub's host name (the `hub` metrics label).
    pub fn hub(&self) -> &str {
        &self.inner.hub
    }

    pub(crate) fn page_size(&self) -> u32 {
        self.inner.page_size
    }

    /// Until when billable calls (twin reads, queries, methods) fail without a request,
    /// because the hub answered 403002 IotHubQuotaExceeded: the next 00:00 UTC by the
    /// client's clock. `None` when calls go out normally.
    pub fn quota_blocked_until(&self) -> Option<Timestamp> {
        let until = *lock(&self.inner.quota_blocked_until);
        until.filter(|at| self.inner.clock.now() < *at)
    }

    /// Reports what a successful answer cost, by the standard-tier rules (4 KB chunks).
    pub(crate) fn report_billed(
        &self,
        operation: Operation,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        if let Some(kind) = operation.billed_as() {
            let messages = Meter::STANDARD.charge(kind, request_bytes, response_bytes);
            self.inner
                .observer
                .billed(&self.inner.hub, operation, messages);
        }
    }

    /// `GET /twins/{device}`: the device twin.
    pub async fn get_device_twin<T: DeserializeOwned>(
        &self,
        device: &str,
    ) -> Result<T, IotHubError> {
        let operation = Operation::GetTwin;
        check_id(operation, "device id", device)?;
        let call = Call::get(
            operation,
            format!("/twins/{}", urls::encode_segment(device)),
            device,
            None,
        );
        let response = self.execute(&call).await?;
        self.report_billed(operation, 0, response.body.len() as u64);
        parse_json(operation, &response.body)
    }

    /// `GET /twins/{device}/modules/{module}`: a module twin (`$edgeAgent`, `$edgeHub`, custom).
    pub async fn get_module_twin<T: DeserializeOwned>(
        &self,
        device: &str,
        module: &str,
    ) -> Result<T, IotHubError> {
        let operation = Operation::GetModuleTwin;
        check_id(operation, "device id", device)?;
        check_id(operation, "module id", module)?;
        let path = format!(
            "/twins/{}/modules/{}",
            urls::encode_segment(device),
            urls::encode_segment(module)
        );
        let response = self
            .execute(&Call::get(operation, path, device, Some(module)))
            .await?;
        self.report_billed(operation, 0, response.body.len() as u64);
        parse_json(operation, &response.body)
    }

    /// `GET /devices/{device}/modules`: the device's module identities.
    pub async fn list_modules<T: DeserializeOwned>(
        &self,
        device: &str,
    ) -> Result<Vec<T>, IotHubError> {
        let operation = Operation::ListModules;
        check_id(operation, "device id", device)?;
        let path = format!("/devices/{}/modules", urls::encode_segment(device));
        let response = self
            .execute(&Call::get(operation, path, device, None))
            .await?;
        self.report_billed(operation, 0, response.body.len() as u64);
        parse_json(operation, &response.body)
    }

    /// Sends a call, retrying what its `retryable` rule allows with the configured backoff.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<RawResponse, IotHubError> {
        self.refuse_while_over_quota(call.operation)?;
        let attempts = AtomicU32::new(0);
        let policy = self.inner.retry;
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(call).await
        })
        .retry(backoff(&policy))
        .sleep(tokio::time::sleep)
        .when(|e: &IotHubError| (call.retryable)(e))
        .adjust(|e: &IotHubError, step| next_delay(e, step, policy.max_delay))
        .notify(|e: &IotHubError, wait: Duration| {
            self.inner.observer.retried(&self.inner.hub, call.operation);
            tracing::warn!(
                operation = %call.operation,
                device = call.device,
                module = call.module,
                kind = %e.kind(),
                error_code = e.error_code(),
                tracking_id = e.tracking_id(),
                wait_ms = wait.as_millis() as u64,
                "IoT Hub call failed, retrying"
            );
        })
        .await;
        result.map_err(|e| {
            let e = e.with_attempts(attempts.load(Ordering::Relaxed));
            if let Some(until) = e.quota_resets_at() {
                *lock(&self.inner.quota_blocked_until) = Some(until);
            }
            tracing::debug!(
                operation = %call.operation,
                device = call.device,
                module = call.module,
                kind = %e.kind(),
                status = e.status(),
                error_code = e.error_code(),
                tracking_id = e.tracking_id(),
                attempts = e.attempts(),
                "IoT Hub call failed"
            );
            e
        })
    }

    /// After a 403002 the hub refuses billable work until 00:00 UTC: fail such calls at
    /// once instead of sending them (registry reads and token requests still go out).
    fn refuse_while_over_quota(&self, operation: Operation) -> Result<(), IotHubError> {
        let billable = matches!(
            operation.billed_as(),
            Some(
                BilledOperation::TwinRead
                    | BilledOperation::QueryPage
                    | BilledOperation::DirectMethod
            )
        );
        let Some(until) = self.quota_blocked_until().filter(|_| billable) else {
            return Ok(());
        };
        Err(IotHubError::new(
            ErrorKind::DailyQuotaExceeded,
            operation,
            "not sent: the hub answered 403002 IotHubQuotaExceeded earlier today",
        )
        .with_code(403002)
        .with_name("IotHubQuotaExceeded")
        .with_quota_reset(until, self.inner.clock.now())
        .with_attempts(0)
        .unsent())
    }

    /// One paced, authorized HTTP exchange.
    async fn attempt(&self, call: &Call<'_>) -> Result<RawResponse, IotHubError> {
        let _slot = self.inner.pacer.admit(call.operation).await;
        let request = self.build_request(call).await?;
        let started = Instant::now();
        let result = match request.send().await {
            Ok(response) => self.read_response(call, response).await,
            Err(e) => Err(transport_error(call.operation, &e)),
        };
        let latency = started.elapsed();
        self.report_attempt(call, &result, latency);
        result.map(|mut r| {
            r.latency = latency;
            r
        })
    }

    /// The request with URL, current authorization (marked sensitive), headers, body and timeout.
    async fn build_request(&self, call: &Call<'_>) -> Result<reqwest::RequestBuilder, IotHubError> {
        let inner = &self.inner;
        let authorization = inner.auth.header(&inner.http).await?;
        let mut auth_value = HeaderValue::from_str(authorization.expose()).map_err(|_| {
            IotHubError::new(
                ErrorKind::BadResponse,
                Operation::Token,
                "the access token contains characters not allowed in a header",
            )
        })?;
        auth_value.set_sensitive(true);
        let url = format!(
            "{}{}?api-version={}",
            inner.base,
            call.path,
            urls::encode_segment(&inner.api_version)
        );
        let mut request = inner
            .http
            .request(call.method.clone(), url)
            .header(AUTHORIZATION, auth_value)
            .timeout(call.timeout.unwrap_or(inner.request_timeout));
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        Ok(request)
    }

    /// Metrics hooks and a debug log line for one attempt.
    fn report_attempt(
        &self,
        call: &Call<'_>,
        result: &Result<RawResponse, IotHubError>,
        latency: Duration,
    ) {
        let inner = &self.inner;
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind().as_str(),
        };
        inner
            .observer
            .request_finished(&inner.hub, call.operation, outcome, latency);
        let Err(e) = result else { return };
        if e.kind() == ErrorKind::Throttled {
            inner.observer.throttled(&inner.hub, call.operation);
        }
        tracing::debug!(
            operation = %call.operation,
            device = call.device,
            module = call.module,
            kind = %e.kind(),
            status = e.status(),
            error_code = e.error_code(),
            tracking_id = e.tracking_id(),
            latency_ms = latency.as_millis() as u64,
            "IoT Hub attempt failed"
        );
    }

    async fn read_response(
        &self,
        call: &Call<'_>,
        response: reqwest::Response,
    ) -> Result<RawResponse, IotHubError> {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(call.operation, &e))?;
        if status.is_success() {
            return Ok(RawResponse {
                headers,
                body,
                latency: Duration::ZERO,
            });
        }
        let name = headers
            .get("iothub-errorcode")
            .and_then(|v| v.to_str().ok());
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.inner.clock.now()));
        let error = IotHubError::from_response(
            call.operation,
            call.module.is_some(),
            status.as_u16(),
            name,
            &body,
        )
        .with_retry_after(retry_after);
        if error.kind() == ErrorKind::DailyQuotaExceeded {
            let now = self.inner.clock.now();
            return Err(error.with_quota_reset(quota_refusal_lasts_until(now), now));
        }
        Err(error)
    }
}

impl<'a> Call<'a> {
    /// A read: retried on every transient failure.
    pub(crate) fn get(
        operation: Operation,
        path: String,
        device: &'a str,
        module: Option<&'a str>,
    ) -> Self {
        Call {
            operation,
            method: Method::GET,
            path,
            body: None,
            headers: Vec::new(),
            timeout: None,
            device,
            module,
            retryable: IotHubError::is_transient,
        }
    }
}

fn validate(config: &ClientConfig) -> Result<(), ConfigError> {
    let invalid = |name, reason: &str| {
        Err(ConfigError::InvalidSetting {
            name,
            reason: reason.to_owned(),
        })
    };
    if config.host_name.trim().is_empty() {
        return invalid("host_name", "must not be empty");
    }
    if config.api_version.trim().is_empty() {
        return invalid("api_version", "must not be empty");
    }
    if config.retry.max_attempts == 0 {
        return invalid("retry.max_attempts", "must be at least 1");
    }
    if config.page_size == 0 {
        return invalid("page_size", "must be at least 1");
    }
    if config.request_timeout.is_zero() || config.connect_timeout.is_zero() {
        return invalid("timeouts", "must be longer than zero");
    }
    Ok(())
}

/// reqwest with rustls: web PKI roots plus any configured CA, never without verification,
/// and no redirects (an Authorization header must not follow a redirect elsewhere).
fn http_client(config: &ClientConfig) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .redirect(redirect::Policy::none())
        .user_agent(concat!("edgewatch/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &config.extra_ca_pem {
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|_| ConfigError::InvalidCaBundle)?;
        if certificates.is_empty() {
            return Err(ConfigError::InvalidCaBundle);
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|e| ConfigError::HttpClient(e.to_string()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Refuses empty ids before they turn into a request for the wrong resource.
pub(crate) fn check_id(operation: Operation, what: &str, id: &str) -> Result<(), IotHubError> {
    if id.is_empty() {
        return Err(IotHubError::new(
            ErrorKind::InvalidRequest,
            operation,
            format!("{what} must not be empty"),
        ));
    }
    Ok(())
}

pub(crate) fn parse_json<T: DeserializeOwned>(
    operation: Operation,
    body: &[u8],
) -> Result<T, IotHubError> {
    serde_json::from_slice(body).map_err(|e| {
        IotHubError::new(
            ErrorKind::BadResponse,
            operation,
            format!("the answer is not the expected JSON: {e}"),
        )
    })
}
