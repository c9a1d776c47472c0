//! A small scripted IoT Hub stand-in for the client's integration tests: real HTTP or
//! HTTPS (rcgen CA) on 127.0.0.1:0, every request recorded with its arrival time, every
//! answer decided by a closure the test supplies.

#![allow(dead_code)]
// Shared by several test binaries, which reach it through `pub`: there is no crate API here.
#![allow(unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, Response, StatusCode};
use bytes::Bytes;
use edgewatch::iothub::Clock;
use jiff::{SignedDuration, Timestamp};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Raw path as sent (percent-encoding preserved).
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    /// `application/x-www-form-urlencoded` body as pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, value: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&value).unwrap(),
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// IoT Hub's classic error body: `ErrorCode:<Name>;<text>` plus a tracking id.
    pub fn hub_error(status: u16, name: &str, text: &str, tracking_id: &str) -> Reply {
        Reply::json(
            status,
            serde_json::json!({
                "Message": format!("ErrorCode:{name};{text}"),
                "ExceptionMessage": format!("Tracking ID:{tracking_id}-G:3-TimeStamp:11/26/2026 13:00:00"),
            }),
        )
        .header("iothub-errorcode", name)
    }

    /// The newer error body: an escaped JSON object with a numeric errorCode inside `Message`.
    pub fn hub_error_json(status: u16, code: u32, text: &str, tracking_id: &str) -> Reply {
        let inner = serde_json::json!({
            "errorCode": code,
            "trackingId": tracking_id,
            "message": text,
            "timestampUtc": "2026-11-26T13:00:00Z",
        });
        Reply::json(
            status,
            serde_json::json!({"Message": inner.to_string(), "ExceptionMessage": ""}),
        )
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// A running server; dropped with the test's runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    base: String,
    /// PEM of the CA that signed the server certificate (HTTPS servers only).
    pub ca_pem: Option<String>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    gauge: Arc<InFlight>,
}

/// Requests being answered right now, and the most seen at once.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl TestServer {
    /// Plain HTTP on 127.0.0.1.
    pub async fn http(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (router, requests, gauge) = router(Arc::new(handler));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestServer {
            addr,
            base: format!("http://127.0.0.1:{}", addr.port()),
            ca_pem: None,
            requests,
            gauge,
        }
    }

    /// HTTPS on 127.0.0.1 with a certificate for `localhost` signed by a fresh test CA.
    pub async fn https(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (ca_pem, cert_pem, key_pem) = test_pki();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            cert_pem.into_bytes(),
            key_pem.into_bytes(),
        )
        .await
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (router, requests, gauge) = router(Arc::new(handler));
        let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
        tokio::spawn(async move { server.serve(router.into_make_service()).await.unwrap() });
        TestServer {
            addr,
            base: format!("https://localhost:{}", addr.port()),
            ca_pem: Some(ca_pem),
            requests,
            gauge,
        }
    }

    /// `http://127.0.0.1:<port>` or `https://localhost:<port>`.
    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The largest number of requests the server was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.gauge.max.load(Ordering::SeqCst)
    }
}

fn router(handler: Arc<Handler>) -> (Router, Arc<Mutex<Vec<Recorded>>>, Arc<InFlight>) {
    let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let gauge: Arc<InFlight> = Arc::default();
    let in_flight = Arc::clone(&gauge);
    let counter = Arc::new(AtomicUsize::new(0));
    let log = Arc::clone(&requests);
    let router = Router::new().fallback(move |request: Request<Body>| {
        let handler = Arc::clone(&handler);
        let log = Arc::clone(&log);
        let counter = Arc::clone(&counter);
        let in_flight = Arc::clone(&in_flight);
        async move {
            let at = Instant::now();
            let current = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            in_flight.max.fetch_max(current, Ordering::SeqCst);
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
            let recorded = Recorded {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                headers: parts.headers,
                body,
                at,
            };
            let index = counter.fetch_add(1, Ordering::SeqCst);
            log.lock().unwrap().push(recorded.clone());
            let reply = handler(&recorded, index);
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            in_flight.now.fetch_sub(1, Ordering::SeqCst);
            let mut response =
                Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
            for (name, value) in &reply.headers {
                response = response.header(name, value);
            }
            response.body(Body::from(reply.body)).unwrap()
        }
    });
    (router, requests, gauge)
}

/// A CA, and a `localhost`/`127.0.0.1` server certificate it signed, all as PEM.
fn test_pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "edgewatch test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &*ca).unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn at(rfc3339: &str) -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(rfc3339.parse().unwrap())))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now = now
            .checked_add(SignedDuration::try_from(by).unwrap())
            .unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// An observer that remembers every event, for asserting metrics hooks.
#[derive(Debug, Default)]
pub struct RecordingObserver {
    pub finished: Mutex<Vec<(String, String)>>,
    pub throttled: AtomicUsize,
    pub retried: AtomicUsize,
    /// `billed` reports: operation and messages.
    pub billed: Mutex<Vec<(String, u64)>>,
}

impl edgewatch::iothub::RequestObserver for RecordingObserver {
    fn request_finished(
        &self,
        _hub: &str,
        operation: edgewatch::iothub::Operation,
        outcome: &str,
        _latency: Duration,
    ) {
        self.finished
            .lock()
            .unwrap()
            .push((operation.as_str().to_owned(), outcome.to_owned()));
    }
    fn throttled(&self, _hub: &str, _operation: edgewatch::iothub::Operation) {
        self.throttled.fetch_add(1, Ordering::SeqCst);
    }
    fn retried(&self, _hub: &str, _operation: edgewatch::iothub::Operation) {
        self.retried.fetch_add(1, Ordering::SeqCst);
    }
    fn billed(&self, _hub: &str, operation: edgewatch::iothub::Operation, messages: u64) {
        self.billed
            .lock()
            .unwrap()
            .push((operation.as_str().to_owned(), messages));
    }
}

/// The hub name every test client uses.
pub const HUB: &str = "testhub.azure-devices.net";
/// A policy key (base64 of 32 bytes); tests assert it never shows up in output.
pub const KEY: &str = "dGVzdC1rZXktZWRnZXdhdGNoLTAxMjM0NTY3ODlhYmM=";
pub const POLICY: &str = "edgewatch-reader";

pub fn connection_string() -> String {
    format!("HostName={HUB};SharedAccessKeyName={POLICY};SharedAccessKey={KEY}")
}

/// Defaults for tests: aimed at `server`, trusting its CA, quick retries.
pub fn config_for(server: &TestServer) -> edgewatch::iothub::ClientConfig {
    let mut config = edgewatch::iothub::ClientConfig::new(HUB);
    config.endpoint = Some(server.url().to_owned());
    config.extra_ca_pem = server.ca_pem.clone().map(String::into_bytes);
    config.request_timeout = Duration::from_secs(5);
    // Tests check pacing on purpose in iothub_pacing.rs; elsewhere it would only slow them.
    config.rate_limits.queries =
        edgewatch::iothub::RateLimit::per_second(std::num::NonZeroU32::new(1000).unwrap());
    config.retry = edgewatch::iothub::RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    };
    config
}

pub fn sas_client(config: edgewatch::iothub::ClientConfig) -> edgewatch::iothub::IotHubClient {
    let credential = edgewatch::iothub::Credential::SharedAccessKey(
        edgewatch::iothub::ConnectionString::parse(&connection_string()).unwrap(),
    );
    edgewatch::iothub::IotHubClient::new(config, credential).unwrap()
}

/// Checks an `Authorization` header the way IoT Hub would: the signature must match the
/// key for the stated resource, policy and expiry, and the expiry must lie ahead of `now`.
pub fn check_sas(header: Option<&str>, now: Timestamp) -> Result<u64, String> {
    let header = header.ok_or("no Authorization header")?;
    let fields = header
        .strip_prefix("SharedAccessSignature ")
        .ok_or("not a SharedAccessSignature")?;
    let field = |name: &str| {
        fields
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
            .ok_or(format!("no {name}"))
    };
    let sr = field("sr")?;
    let se: u64 = field("se")?.parse().map_err(|_| "se is not a number")?;
    let skn = field("skn")?;
    if sr != edgewatch::iothub::sas::url_encode(HUB) || skn != POLICY {
        return Err(format!("wrong sr/skn: {sr} {skn}"));
    }
    let expected = edgewatch::iothub::sas::token(HUB, KEY, POLICY, se).unwrap();
    if expected != header {
        return Err("signature mismatch".into());
    }
    if (se as i64) <= now.as_second() {
        return Err("token expired".into());
    }
    Ok(se)
}
