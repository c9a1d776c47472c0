//! Helpers shared by the simulator's integration tests: start a simulator on a manual
//! clock and talk to it over real HTTP(S) with SAS-signed requests.
#![allow(dead_code)]
// Shared by several test binaries, which reach it through `pub`: there is no crate API here.
#![allow(unreachable_pub)]

use edgewatch::iothub::sas;
use edgewatch::sim::{self, ClockMode, Scenario, SimConfig, SimHandle};
use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub const API: &str = "api-version=2021-04-12";

/// Where every manual-clock test starts.
pub fn t0() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

/// A simulator on a manual clock at [`t0`] with the given scenario YAML.
pub async fn start_scenario(yaml: &str) -> SimHandle {
    let scenario = Scenario::from_yaml(yaml).expect("test scenario parses");
    sim::start(SimConfig {
        scenario,
        clock: ClockMode::Manual { start: t0() },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// A simulator on a manual clock with `n` generated devices.
pub async fn start_generated(n: usize) -> SimHandle {
    sim::start(SimConfig {
        devices: n,
        clock: ClockMode::Manual { start: t0() },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// A signed HTTP client for one simulator.
pub struct HubClient {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: String,
}

impl HubClient {
    pub fn new(handle: &SimHandle) -> Self {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = handle.ca_pem() {
            builder = builder
                .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        let policy = &handle.policies()[0];
        let expiry = (Timestamp::now().as_second() + 3600) as u64;
        let auth = sas::token(handle.host_name(), &policy.key, &policy.name, expiry).unwrap();
        HubClient {
            http: builder.build().unwrap(),
            base: handle.base_url(),
            auth,
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
        let resp = req.send().await.expect("request reaches the simulator");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body arrives");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("body is JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, headers, body)
    }

    pub async fn get(&self, path_and_query: &str) -> (StatusCode, HeaderMap, Value) {
        let url = format!("{}{path_and_query}", self.base);
        self.send(self.http.get(url).header("Authorization", &self.auth))
            .await
    }

    pub async fn post(&self, path_and_query: &str, body: &Value) -> (StatusCode, HeaderMap, Value) {
        let url = format!("{}{path_and_query}", self.base);
        self.send(
            self.http
                .post(url)
                .header("Authorization", &self.auth)
                .json(body),
        )
        .await
    }

    /// A module twin, asserting 200.
    pub async fn module_twin(&self, device: &str, module: &str) -> Value {
        let enc = module.replace('$', "%24");
        let (status, _, body) = self
            .get(&format!("/twins/{device}/modules/{enc}?{API}"))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "GET module twin {device}/{module}: {body}"
        );
        body
    }

    /// `$edgeAgent` reported section.
    pub async fn agent_reported(&self, device: &str) -> Value {
        self.module_twin(device, "$edgeAgent").await["properties"]["reported"].clone()
    }

    /// One module's entry in the `$edgeAgent` reported section.
    pub async fn agent_module(&self, device: &str, module: &str) -> Value {
        let r = self.agent_reported(device).await;
        if module == "edgeHub" {
            r["systemModules"]["edgeHub"].clone()
        } else {
            r["modules"][module].clone()
        }
    }

    /// Invokes a method on a module; returns status, headers and body.
    pub async fn invoke(
        &self,
        device: &str,
        module: &str,
        method: &str,
        payload: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let enc = module.replace('$', "%24");
        self.post(
            &format!("/twins/{device}/modules/{enc}/methods?{API}"),
            &serde_json::json!({"methodName": method, "payload": payload, "responseTimeoutInSeconds": 10, "connectTimeoutInSeconds": 0}),
        )
        .await
    }

    /// Runs a query with paging headers.
    pub async fn query(
        &self,
        q: &str,
        page: Option<usize>,
        continuation: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self
            .http
            .post(format!("{}/devices/query?{API}", self.base))
            .header("Authorization", &self.auth)
            .json(&serde_json::json!({"query": q}));
        if let Some(n) = page {
            req = req.header("x-ms-max-item-count", n.to_string());
        }
        if let Some(c) = continuation {
            req = req.header("x-ms-continuation", c);
        }
        self.send(req).await
    }

    /// Every item of a query, following continuation tokens; also returns the page count.
    pub async fn query_all(&self, q: &str, page: usize) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let (status, headers, body) = self.query(q, Some(page), token.as_deref()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(headers["x-ms-item-type"], "twin");
            pages += 1;
            items.extend(body.as_array().unwrap().iter().cloned());
            match headers.get("x-ms-continuation") {
                Some(t) => token = Some(t.to_str().unwrap().to_string()),
                None => return (items, pages),
            }
            assert!(pages < 10_000, "paging terminates");
        }
    }
}

/// The numeric error code of an IoT Hub error body (classic or JSON-in-Message form).
pub fn error_code(body: &Value) -> String {
    let message = body["Message"].as_str().expect("error body has Message");
    match serde_json::from_str::<Value>(message) {
        Ok(inner) => inner["errorCode"].to_string(),
        Err(_) => message
            .trim_start_matches("ErrorCode:")
            .split(';')
            .next()
            .unwrap()
            .to_string(),
    }
}

/// Advances the manual clock.
pub fn advance(handle: &SimHandle, secs: i64) {
    handle
        .clock()
        .advance(jiff::SignedDuration::from_secs(secs))
        .expect("manual clock advances");
}

/// edgewatch's own client for a simulator: no pacing (tests should not wait on quotas
/// they do not test), quick retries, the simulator's clock (so "the quota resets at
/// midnight" moves with the manual clock), and `observer` for the metrics hooks.
pub fn edgewatch_client(
    handle: &SimHandle,
    page_size: u32,
    observer: std::sync::Arc<dyn edgewatch::iothub::RequestObserver>,
) -> edgewatch::iothub::IotHubClient {
    use edgewatch::iothub::{
        ClientConfig, ConnectionString, Credential, IotHubClient, RateLimit, RateLimits,
        RetryPolicy,
    };
    let fast = RateLimit::per_second(std::num::NonZeroU32::new(10_000).unwrap());
    let mut config = ClientConfig::new(handle.host_name());
    config.endpoint = Some(handle.base_url());
    config.extra_ca_pem = handle.ca_pem().map(|p| p.as_bytes().to_vec());
    config.rate_limits = RateLimits {
        twin_reads: fast,
        queries: fast,
        methods: fast,
    };
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(20),
    };
    config.page_size = page_size;
    config.observer = observer;
    config.clock = std::sync::Arc::new(handle.clock().clone());
    let cs = ConnectionString::parse(&handle.connection_string()).unwrap();
    IotHubClient::new(config, Credential::SharedAccessKey(cs)).unwrap()
}

/// Remembers every `billed` report of the client, per operation.
#[derive(Debug, Default)]
pub struct BillingObserver {
    pub billed: std::sync::Mutex<Vec<(edgewatch::iothub::Operation, u64)>>,
}

impl BillingObserver {
    /// Sum of the billed messages reported for `operation` (all operations when `None`).
    pub fn total(&self, operation: Option<edgewatch::iothub::Operation>) -> u64 {
        self.billed
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| operation.is_none_or(|o| o == *op))
            .map(|(_, n)| n)
            .sum()
    }

    /// How many reports were made for `operation`.
    pub fn reports(&self, operation: edgewatch::iothub::Operation) -> usize {
        self.billed
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| *op == operation)
            .count()
    }
}

impl edgewatch::iothub::RequestObserver for BillingObserver {
    fn request_finished(
        &self,
        _: &str,
        _: edgewatch::iothub::Operation,
        _: &str,
        _: std::time::Duration,
    ) {
    }
    fn throttled(&self, _: &str, _: edgewatch::iothub::Operation) {}
    fn retried(&self, _: &str, _: edgewatch::iothub::Operation) {}
    fn billed(&self, _: &str, operation: edgewatch::iothub::Operation, messages: u64) {
        self.billed.lock().unwrap().push((operation, messages));
    }
}
