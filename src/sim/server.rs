//! The HTTP surface: IoT Hub's service REST paths and the simulator's admin API.
//!
//! Every hub request passes the same gate as on the real service, in this order:
//! authentication (401), api-version (400), the category's throttle quota (429), the
//! daily message quota for billable operations (403002), then the injected-fault dice
//! (500, slow, dropped connection). Every answer is then metered: its billed messages
//! (by IoT Hub's rules, see [`crate::iothub::billing`]) and its body size.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::SimState;
use super::device::MethodOutcome;
use super::error::HubError;
use super::faults::{Event, FaultRates, Injection, OpCategory, ThrottleQuotas};
use super::fleet::lock;
use super::metering::{DailyQuota, QuotaSettings};
use super::query::{self, QueryRefusals, Source};
use super::scenario::{Action, parse_duration};

/// api-versions the simulator answers (GA and preview versions seen in SDKs and docs).
pub const API_VERSIONS: &[&str] = &[
    "2018-06-30",
    "2019-03-30",
    "2019-07-01-preview",
    "2020-03-13",
    "2020-05-31-preview",
    "2020-09-30",
    "2021-04-12",
    "2024-03-31",
];

/// Page size when the client does not ask for one, and the largest page served.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

type Shared = Arc<SimState>;
type Params = Query<HashMap<String, String>>;

pub fn router(state: Shared) -> Router {
    let metered = |cat: OpCategory, route: MethodRouter<Shared>| {
        let s = state.clone();
        route.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let s = s.clone();
                async move { s.meter_answer(cat, next.run(request).await) }
            },
        ))
    };
    Router::new()
        .route(
            "/twins/{device}",
            metered(OpCategory::TwinRead, get(get_device_twin)),
        )
        .route(
            "/twins/{device}/modules/{module}",
            metered(OpCategory::TwinRead, get(get_module_twin)),
        )
        .route(
            "/twins/{device}/modules/{module}/methods",
            metered(OpCategory::Method, post(invoke_module_method)),
        )
        .route(
            "/twins/{device}/methods",
            metered(OpCategory::Method, post(invoke_device_method)),
        )
        .route(
            "/devices/{device}/modules",
            metered(OpCategory::Registry, get(list_modules)),
        )
        .route(
            "/devices/query",
            metered(OpCategory::Query, post(query_twins)),
        )
        .route("/_sim/status", get(admin_status))
        .route("/_sim/counts", get(admin_counts))
        .route("/_sim/clock/advance", post(admin_advance))
        .route("/_sim/devices/{device}/actions", post(admin_action))
        .route("/_sim/faults", put(admin_set_faults).get(admin_get_faults))
        .route(
            "/_sim/throttle",
            put(admin_set_throttle).get(admin_get_throttle),
        )
        .route("/_sim/quota", put(admin_set_quota).get(admin_get_quota))
        .route(
            "/_sim/query-refusals",
            put(admin_set_refusals).get(admin_get_refusals),
        )
        .fallback(unknown_path)
        .with_state(state)
}

impl SimState {
    /// The device brought up to the simulated present, or IoT Hub's 404001 error.
    fn device_or_404(
        &self,
        device: &str,
    ) -> Result<std::sync::MutexGuard<'_, super::device::SimDevice>, HubError> {
        self.fleet
            .device(device, self.clock.now())
            .ok_or_else(|| HubError::device_not_found(device))
    }

    /// A twin document as a 200 answer, billed by its size.
    fn twin_response(&self, twin: &impl serde::Serialize) -> Response {
        match serde_json::to_vec(twin) {
            Ok(body) => {
                let messages = self.meter.meter().twin_read(body.len() as u64);
                billed(json_bytes(StatusCode::OK, body), messages)
            }
            Err(e) => self.error(HubError::new(500001, "ServerError", e.to_string())),
        }
    }

    /// Counts an answered hub request: its billed messages (0 unless the handler said
    /// otherwise, so error answers cost nothing) and its body size.
    fn meter_answer(&self, cat: OpCategory, response: Response) -> Response {
        let messages = response.extensions().get::<Billed>().map_or(0, |b| b.0);
        let bytes = response.body().size_hint().exact().unwrap_or(0);
        self.meter.record(cat, self.clock.now(), messages, bytes);
        response
    }

    fn error(&self, e: HubError) -> Response {
        self.counters.count(match e.code {
            401_000..=401_999 => Event::Unauthorized,
            429_000..=429_999 => Event::Throttled,
            _ => Event::Error,
        });
        e.render(self.clock.now())
    }

    /// The service-side checks every hub request goes through.
    async fn gate(
        &self,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
        cat: OpCategory,
        method: &str,
        path: &str,
    ) -> Result<Injection, Response> {
        self.counters.count(Event::Request(cat));
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        // Tokens are judged by the earlier of the wall clock and the simulated clock, so
        // clients signing on either (an SDK on the wall clock, an in-process client on a
        // manual clock set in the past) are accepted; a token expired on both is not.
        let now = jiff::Timestamp::now().min(self.clock.now());
        let now = now.as_second().max(0) as u64;
        if let Err(failure) = self.auth.verify(auth, now) {
            tracing::debug!(%failure, path, "request refused");
            let e = if auth.is_some_and(|a| a.trim_start().starts_with("Bearer ")) {
                HubError::bearer_unauthorized(method, path)
            } else {
                HubError::unauthorized()
            };
            return Err(self.error(e));
        }
        let version = params.get("api-version").map(String::as_str);
        if !version.is_some_and(|v| API_VERSIONS.contains(&v)) {
            return Err(self.error(HubError::invalid_api_version(version)));
        }
        if !self.chaos.admit(cat, self.clock.now()) {
            return Err(self.error(HubError::throttled()));
        }
        if let Err(over) = self.meter.admit(cat, self.clock.now()) {
            tracing::debug!(
                path,
                limit = over.limit,
                used = over.used,
                "daily quota used up"
            );
            return Err(self.error(HubError::quota_exceeded(
                &self.hub_name,
                over.limit,
                over.used,
                cat == OpCategory::Method,
            )));
        }
        let injection = self.chaos.roll();
        self.counters.count(Event::Injected(injection));
        match injection {
            Injection::ServerError => Err(self.error(HubError::server_error())),
            Injection::Drop => Err(dropped_connection()),
            Injection::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(injection)
            }
            Injection::None => Ok(injection),
        }
    }
}

/// Billed messages of a successful answer, for [`SimState::meter_answer`].
#[derive(Debug, Clone, Copy)]
struct Billed(u64);

fn billed(mut response: Response, messages: u64) -> Response {
    response.extensions_mut().insert(Billed(messages));
    response
}

/// The size of a method payload as serialized JSON (what IoT Hub bills a method by).
fn payload_bytes(payload: &Value) -> u64 {
    serde_json::to_vec(payload).map_or(0, |v| v.len() as u64)
}

/// Headers go out, then the connection is cut before the body.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection dropped by the simulator",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

async fn get_device_twin(
    State(s): State<Shared>,
    Path(device): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let path = format!("/twins/{device}");
    if let Err(r) = s
        .gate(&headers, &params, OpCategory::TwinRead, "GET", &path)
        .await
    {
        return r;
    }
    match s.device_or_404(&device) {
        Ok(dev) => s.twin_response(dev.device_twin()),
        Err(e) => s.error(e),
    }
}

async fn get_module_twin(
    State(s): State<Shared>,
    Path((device, module)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let path = format!("/twins/{device}/modules/{module}");
    if let Err(r) = s
        .gate(&headers, &params, OpCategory::TwinRead, "GET", &path)
        .await
    {
        return r;
    }
    let dev = match s.device_or_404(&device) {
        Ok(dev) => dev,
        Err(e) => return s.error(e),
    };
    match dev.module_twin(&module) {
        Some(twin) => s.twin_response(twin),
        None => s.error(HubError::module_not_found(&device, &module)),
    }
}

async fn list_modules(
    State(s): State<Shared>,
    Path(device): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let path = format!("/devices/{device}/modules");
    if let Err(r) = s
        .gate(&headers, &params, OpCategory::Registry, "GET", &path)
        .await
    {
        return r;
    }
    match s.device_or_404(&device) {
        // Identity-registry reads are not billed.
        Ok(dev) => billed(Json(dev.module_identities()).into_response(), 0),
        Err(e) => s.error(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MethodRequest {
    method_name: String,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    response_timeout_in_seconds: Option<u64>,
    #[serde(default)]
    connect_timeout_in_seconds: Option<u64>,
}

fn parse_method_request(body: &[u8]) -> Result<(MethodRequest, u64), HubError> {
    let req: MethodRequest = serde_json::from_slice(body).map_err(|e| {
        HubError::format_error(format!("The method request body is not valid: {e}"))
    })?;
    if req.method_name.trim().is_empty() {
        return Err(HubError::argument_invalid("methodName must not be empty"));
    }
    let timeout = req.response_timeout_in_seconds.unwrap_or(30);
    if !(5..=300).contains(&timeout) {
        return Err(HubError::argument_invalid(
            "responseTimeoutInSeconds must be between 5 and 300",
        ));
    }
    if req.connect_timeout_in_seconds.is_some_and(|c| c > 300) {
        return Err(HubError::argument_invalid(
            "connectTimeoutInSeconds must be between 0 and 300",
        ));
    }
    Ok((req, timeout))
}

async fn invoke_module_method(
    State(s): State<Shared>,
    Path((device, module)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/twins/{device}/modules/{module}/methods");
    if let Err(r) = s
        .gate(&headers, &params, OpCategory::Method, "POST", &path)
        .await
    {
        return r;
    }
    let (req, timeout) = match parse_method_request(&body) {
        Ok(r) => r,
        Err(e) => return s.error(e),
    };
    let outcome = {
        let mut dev = match s.device_or_404(&device) {
            Ok(dev) => dev,
            Err(e) => return s.error(e),
        };
        if dev.module_twin(&module).is_none() {
            return s.error(HubError::module_not_found(&device, &module));
        }
        dev.invoke(&module, &req.method_name, &req.payload, s.clock.now())
    };
    method_response(&s, outcome, timeout, payload_bytes(&req.payload)).await
}

async fn invoke_device_method(
    State(s): State<Shared>,
    Path(device): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/twins/{device}/methods");
    if let Err(r) = s
        .gate(&headers, &params, OpCategory::Method, "POST", &path)
        .await
    {
        return r;
    }
    if let Err(e) = parse_method_request(&body) {
        return s.error(e);
    }
    if let Err(e) = s.device_or_404(&device) {
        return s.error(e);
    }
    // Edge devices answer methods through their modules; the device identity has no handler.
    s.error(HubError::device_not_online())
}

async fn method_response(
    s: &SimState,
    outcome: MethodOutcome,
    timeout: u64,
    request_payload_bytes: u64,
) -> Response {
    match outcome {
        MethodOutcome::Answer { status, payload } => {
            let messages = s
                .meter
                .meter()
                .direct_method(request_payload_bytes, payload_bytes(&payload));
            billed(
                Json(json!({"status": status, "payload": payload})).into_response(),
                messages,
            )
        }
        MethodOutcome::NotOnline => s.error(HubError::device_not_online()),
        MethodOutcome::Timeout => {
            // On the wall clock the hub really waits; a manual clock answers at once so
            // tests stay fast (they drive time themselves).
            if !s.clock.is_manual() {
                tokio::time::sleep(Duration::from_secs(timeout)).await;
            }
            s.error(HubError::gateway_timeout(timeout))
        }
    }
}

#[derive(Deserialize)]
struct QueryBody {
    query: String,
}

/// Where the previous page stopped: the last device id, and module id for module queries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Continuation {
    device: String,
    module: Option<String>,
}

impl Continuation {
    fn encode(&self) -> String {
        let raw = match &self.module {
            Some(m) => format!("m\n{}\n{m}", self.device),
            None => format!("d\n{}", self.device),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(token: &str, source: Source) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token.trim()).ok()?).ok()?;
        let mut parts = raw.split('\n');
        let kind = parts.next()?;
        let device = parts.next()?.to_string();
        let module = parts.next().map(str::to_string);
        match (kind, source, &module, parts.next()) {
            ("d", Source::Devices, None, None) | ("m", Source::Modules, Some(_), None) => {
                Some(Continuation { device, module })
            }
            _ => None,
        }
    }
}

fn page_size(headers: &HeaderMap) -> Result<usize, HubError> {
    let Some(v) = headers.get("x-ms-max-item-count") else {
        return Ok(DEFAULT_PAGE);
    };
    let n: usize = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            HubError::argument_invalid("x-ms-max-item-count must be a positive integer")
        })?;
    if n == 0 {
        return Err(HubError::argument_invalid(
            "x-ms-max-item-count must be a positive integer",
        ));
    }
    Ok(n.min(MAX_PAGE))
}

async fn query_twins(
    State(s): State<Shared>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = s
        .gate(
            &headers,
            &params,
            OpCategory::Query,
            "POST",
            "/devices/query",
        )
        .await
    {
        return r;
    }
    let spec: QueryBody = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => {
            return s.error(HubError::format_error(format!(
                "The query request body is not valid: {e}"
            )));
        }
    };
    let refusals = *s.refusals.lock().unwrap_or_else(|p| p.into_inner());
    let parsed = match query::parse(&spec.query).and_then(|q| refusals.check(&q).map(|()| q)) {
        Ok(q) => q,
        Err(e) => {
            return s.error(HubError::argument_invalid(format!(
                "Query is not supported: {e}"
            )));
        }
    };
    let size = match page_size(&headers) {
        Ok(n) => n,
        Err(e) => return s.error(e),
    };
    let after = match headers
        .get("x-ms-continuation")
        .and_then(|v| v.to_str().ok())
    {
        None | Some("") => None,
        Some(t) => match Continuation::decode(t, parsed.source) {
            Some(c) => Some(c),
            None => {
                return s.error(HubError::argument_invalid(
                    "The continuation token is not valid for this query",
                ));
            }
        },
    };
    let (body, next) = run_query(&s, &parsed, after, size);
    let messages = s.meter.meter().query_page(body.len() as u64);
    let mut r = billed(json_bytes(StatusCode::OK, body), messages);
    // Whole twins are `twin`; projected objects are plain JSON (`raw`).
    let item_type = if parsed.has_projection() {
        "raw"
    } else {
        "twin"
    };
    r.headers_mut()
        .insert("x-ms-item-type", HeaderValue::from_static(item_type));
    if let Some(token) = next
        && let Ok(v) = HeaderValue::from_str(&token.encode())
    {
        r.headers_mut().insert("x-ms-continuation", v);
    }
    r
}

/// One page of matching twins as a JSON array, and where the next page starts (if any).
fn run_query(
    s: &SimState,
    q: &query::Query,
    after: Option<Continuation>,
    size: usize,
) -> (Vec<u8>, Option<Continuation>) {
    let now = s.clock.now();
    let mut out = Vec::with_capacity(size * 2048);
    out.push(b'[');
    let mut emitted = 0usize;
    let mut last: Option<Continuation> = None;
    let start = match &after {
        Some(c) if c.module.is_some() => Bound::Included(c.device.as_str()),
        Some(c) => Bound::Excluded(c.device.as_str()),
        None => Bound::Unbounded,
    };
    for (id, cell) in s.fleet.devices_from(start) {
        let mut dev = lock(cell);
        dev.advance_to(now);
        let twins: Vec<_> = match q.source {
            Source::Devices => vec![dev.device_twin()],
            Source::Modules => {
                // Sorted by module id, so "after module m" means the same on every page.
                let mut twins: Vec<_> = dev
                    .module_twins()
                    .filter(|t| match &after {
                        Some(Continuation {
                            device,
                            module: Some(m),
                        }) if device == id => {
                            t.module_id.as_deref().is_some_and(|mid| mid > m.as_str())
                        }
                        _ => true,
                    })
                    .collect();
                twins.sort_by(|a, b| a.module_id.cmp(&b.module_id));
                twins
            }
        };
        for twin in twins {
            if !q.matches(twin) {
                continue;
            }
            if emitted == size {
                return (close(out), last);
            }
            if emitted > 0 {
                out.push(b',');
            }
            let written = match q.project(twin) {
                Some(fields) => serde_json::to_writer(&mut out, &fields),
                None => serde_json::to_writer(&mut out, twin),
            };
            if written.is_err() {
                continue;
            }
            emitted += 1;
            last = Some(Continuation {
                device: id.to_string(),
                module: twin.module_id.clone(),
            });
        }
    }
    (close(out), None)
}

fn close(mut out: Vec<u8>) -> Vec<u8> {
    out.push(b']');
    out
}

async fn unknown_path(State(s): State<Shared>, method: Method, uri: axum::http::Uri) -> Response {
    s.error(HubError::not_found_path(&format!(
        "{method} {}",
        uri.path()
    )))
}

// ----- admin API -------------------------------------------------------------

fn admin_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

async fn admin_status(State(s): State<Shared>) -> Response {
    s.counters.count(Event::Admin);
    let now = s.clock.now();
    Json(json!({
        "hub": s.hub_name,
        "hostName": s.host_name,
        "now": now.to_string(),
        "clock": if s.clock.is_manual() { "manual" } else { "wall" },
        "fleet": s.fleet.summary(now),
        "counts": s.counters.snapshot(),
    }))
    .into_response()
}

/// `/_sim/counts`: the request counters, plus what the hub billed under `billing`.
async fn admin_counts(State(s): State<Shared>) -> Response {
    let mut counts = serde_json::to_value(s.counters.snapshot()).unwrap_or_default();
    if let Some(map) = counts.as_object_mut() {
        map.insert(
            "billing".into(),
            serde_json::to_value(s.meter.snapshot(s.clock.now())).unwrap_or_default(),
        );
    }
    Json(counts).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    /// `30s`, `5m`, `PT1H` or a number of seconds.
    by: Value,
}

async fn admin_advance(State(s): State<Shared>, body: Bytes) -> Response {
    s.counters.count(Event::Admin);
    let req: AdvanceBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"by\": \"30s\"}}: {e}"),
            );
        }
    };
    let by = match &req.by {
        Value::String(t) => parse_duration(t),
        Value::Number(n) => parse_duration(&n.to_string()),
        _ => Err("by must be a duration string or a number of seconds".to_string()),
    };
    let by = match by {
        Ok(d) => d,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
    };
    match s.clock.advance(by) {
        Ok(now) => Json(json!({"now": now.to_string()})).into_response(),
        Err(e) => admin_error(StatusCode::CONFLICT, e),
    }
}

async fn admin_action(
    State(s): State<Shared>,
    Path(device): Path<String>,
    body: Bytes,
) -> Response {
    s.counters.count(Event::Admin);
    let action: Action = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("not a valid action: {e}")),
    };
    let now = s.clock.now();
    let Some(mut dev) = s.fleet.device(&device, now) else {
        return admin_error(StatusCode::NOT_FOUND, format!("no device {device:?}"));
    };
    match dev.apply(&action, now) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn admin_set_faults(State(s): State<Shared>, body: Bytes) -> Response {
    s.counters.count(Event::Admin);
    let rates: FaultRates = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(e) = rates.validate() {
        return admin_error(StatusCode::BAD_REQUEST, e);
    }
    s.chaos.set_rates(rates);
    Json(rates).into_response()
}

async fn admin_get_faults(State(s): State<Shared>) -> Response {
    Json(s.chaos.rates()).into_response()
}

async fn admin_set_throttle(State(s): State<Shared>, body: Bytes) -> Response {
    s.counters.count(Event::Admin);
    let quotas: ThrottleQuotas = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
    };
    s.chaos.set_quotas(quotas);
    Json(quotas).into_response()
}

async fn admin_get_throttle(State(s): State<Shared>) -> Response {
    Json(s.chaos.quotas()).into_response()
}

/// `PUT /_sim/quota`: `{"dailyQuota": "s1:2" | 1000 | null, "fleetMessagesPerDeviceDay": 50}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QuotaBody {
    #[serde(default)]
    daily_quota: Option<Value>,
    #[serde(default)]
    fleet_messages_per_device_day: u64,
}

fn quota_settings(body: &[u8]) -> Result<QuotaSettings, String> {
    let req: QuotaBody = serde_json::from_slice(body).map_err(|e| {
        format!("expected {{\"dailyQuota\": \"s1\", \"fleetMessagesPerDeviceDay\": 0}}: {e}")
    })?;
    let daily_quota = match &req.daily_quota {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(DailyQuota::parse(t)?),
        Some(Value::Number(n)) => Some(DailyQuota::parse(&n.to_string())?),
        Some(_) => return Err("dailyQuota must be a tier (\"s1:2\") or a number".into()),
    };
    Ok(QuotaSettings {
        daily_quota,
        fleet_messages_per_device_day: req.fleet_messages_per_device_day,
    })
}

async fn admin_set_quota(State(s): State<Shared>, body: Bytes) -> Response {
    s.counters.count(Event::Admin);
    match quota_settings(&body) {
        Ok(settings) => {
            s.meter.set_settings(settings, s.clock.now());
            admin_get_quota(State(s)).await
        }
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn admin_get_quota(State(s): State<Shared>) -> Response {
    let settings = s.meter.settings();
    Json(json!({
        "dailyQuota": settings.daily_quota.map(|q| q.messages),
        "chunkBytes": s.meter.meter().chunk_bytes(),
        "fleetMessagesPerDeviceDay": settings.fleet_messages_per_device_day,
    }))
    .into_response()
}

async fn admin_set_refusals(State(s): State<Shared>, body: Bytes) -> Response {
    s.counters.count(Event::Admin);
    let refusals: QueryRefusals = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
    };
    *s.refusals.lock().unwrap_or_else(|p| p.into_inner()) = refusals;
    Json(refusals).into_response()
}

async fn admin_get_refusals(State(s): State<Shared>) -> Response {
    Json(*s.refusals.lock().unwrap_or_else(|p| p.into_inner())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_round_trip_and_refuse_the_wrong_source() {
        let c = Continuation {
            device: "dev-1".into(),
            module: Some("$edgeHub".into()),
        };
        let t = c.encode();
        assert_eq!(Continuation::decode(&t, Source::Modules), Some(c));
        assert_eq!(Continuation::decode(&t, Source::Devices), None);
        assert_eq!(Continuation::decode("!!!", Source::Devices), None);
    }
}
