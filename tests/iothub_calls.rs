//! The client against a local IoT Hub stand-in over real HTTP(S): paths, headers,
//! paging, direct methods, error typing, retries and timeouts.

mod iothub_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use edgewatch::iothub::{ErrorKind, IotHubClient, MethodRequest, Operation};
use futures::TryStreamExt;
use iothub_support::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn module_twin_get_over_https_with_encoded_path_and_valid_sas() {
    let twin = fixture("edgeAgent-module-twin-full_linux2_iotedge.json");
    let served = twin.clone();
    let server = TestServer::https(move |_, _| Reply::json(200, served.clone())).await;
    let client = sas_client(config_for(&server));

    let got: Value = client
        .get_module_twin("linux2", "$edgeAgent")
        .await
        .unwrap();

    assert_eq!(got, twin);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/twins/linux2/modules/%24edgeAgent");
    assert_eq!(r.query.as_deref(), Some("api-version=2021-04-12"));
    check_sas(r.header("authorization"), jiff::Timestamp::now()).unwrap();
}

#[tokio::test]
async fn device_twin_and_module_list_use_their_paths_and_api_version() {
    let twin = fixture("device-twin_Device-385_with-configurations.json");
    let served = twin.clone();
    let server = TestServer::http(move |r, _| {
        if r.path.starts_with("/devices/") {
            Reply::json(200, json!([{"moduleId": "$edgeAgent", "managedBy": "IotEdge"}, {"moduleId": "tempSensor"}]))
        } else {
            Reply::json(200, served.clone())
        }
    })
    .await;
    let mut config = config_for(&server);
    config.api_version = "2020-09-30".into();
    let client = sas_client(config);

    let got: Value = client.get_device_twin("Device 385/a").await.unwrap();
    assert_eq!(got, twin);
    let modules: Vec<Value> = client.list_modules("Device-385").await.unwrap();
    assert_eq!(modules.len(), 2);
    assert_eq!(modules[1]["moduleId"], "tempSensor");

    let requests = server.requests();
    assert_eq!(requests[0].path, "/twins/Device%20385%2Fa");
    assert_eq!(requests[1].path, "/devices/Device-385/modules");
    assert!(
        requests
            .iter()
            .all(|r| r.query.as_deref() == Some("api-version=2020-09-30"))
    );
}

#[tokio::test]
async fn endpoint_with_a_path_prefix_joins_without_double_slashes() {
    let server = TestServer::http(|_, _| Reply::json(200, json!({"deviceId": "d"}))).await;
    let mut config = config_for(&server);
    config.endpoint = Some(format!("{}/iothub-proxy/", server.url()));
    let client = sas_client(config);
    let _: Value = client.get_device_twin("d").await.unwrap();
    assert_eq!(server.requests()[0].path, "/iothub-proxy/twins/d");
}

#[tokio::test]
async fn query_follows_continuation_across_pages() {
    let page = fixture("device-twins-query-page_weathersense-subset.json");
    let twins = page.as_array().unwrap().clone();
    assert!(twins.len() >= 3, "fixture holds at least three twins");
    let served = twins.clone();
    let server = TestServer::http(move |r, _| {
        let (items, next) = match r.header("x-ms-continuation") {
            None => (&served[0..1], Some("c1")),
            Some("c1") => (&served[1..2], Some("c2")),
            Some("c2") => (&served[2..], None),
            Some(other) => panic!("unexpected continuation {other}"),
        };
        let reply = Reply::json(200, Value::Array(items.to_vec())).header("x-ms-item-type", "twin");
        match next {
            Some(token) => reply.header("x-ms-continuation", token),
            None => reply,
        }
    })
    .await;
    let mut config = config_for(&server);
    config.page_size = 1;
    let client = sas_client(config);
    let query = "SELECT * FROM devices WHERE capabilities.iotEdge = true";

    let items: Vec<Value> = client.query(query).try_collect().await.unwrap();

    assert_eq!(items, twins);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/devices/query");
        assert_eq!(r.header("x-ms-max-item-count"), Some("1"));
        assert_eq!(r.json(), json!({ "query": query }));
    }
    let tokens: Vec<Option<&str>> = requests
        .iter()
        .map(|r| r.header("x-ms-continuation"))
        .collect();
    assert_eq!(tokens, [None, Some("c1"), Some("c2")]);

    let first = client.query_page::<Value>(query, None).await.unwrap();
    assert_eq!(first.continuation.as_deref(), Some("c1"));
    assert_eq!(first.item_type.as_deref(), Some("twin"));
}

#[tokio::test]
async fn query_stops_on_a_repeated_continuation_and_on_a_bad_page() {
    let server = TestServer::http(|r, _| match r.header("x-ms-continuation") {
        None => Reply::json(200, json!([1])).header("x-ms-continuation", "same"),
        Some(_) => Reply::json(200, json!([2])).header("x-ms-continuation", "same"),
    })
    .await;
    let client = sas_client(config_for(&server));
    let err = client
        .query::<Value>("SELECT * FROM devices")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse);
    assert_eq!(server.requests().len(), 2);

    let server = TestServer::http(|_, _| Reply::json(200, json!({"not": "an array"}))).await;
    let client = sas_client(config_for(&server));
    let err = client
        .query::<Value>("SELECT * FROM devices")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse);

    let err = client
        .query_page::<Value>(&"x".repeat(8193), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn ping_ok_sends_the_sdk_body_and_measures_latency() {
    let server = TestServer::http(|_, _| {
        Reply::json(200, json!({"status": 200, "payload": null})).after(Duration::from_millis(30))
    })
    .await;
    let client = sas_client(config_for(&server));

    let latency = client
        .ping_edge_agent("gw-1", Duration::from_secs(10))
        .await
        .unwrap();

    assert!(latency >= Duration::from_millis(30), "{latency:?}");
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/twins/gw-1/modules/%24edgeAgent/methods");
    assert_eq!(
        r.json(),
        json!({"methodName": "ping", "payload": {}, "responseTimeoutInSeconds": 10, "connectTimeoutInSeconds": 0})
    );
}

#[tokio::test]
async fn ping_of_an_offline_device_is_404103_and_not_retried() {
    let server = TestServer::http(|_, _| {
        Reply::hub_error_json(
            404,
            404103,
            "The operation failed because the requested device isn't online",
            "trk-404103",
        )
    })
    .await;
    let client = sas_client(config_for(&server));
    let err = client
        .ping_edge_agent("gw-1", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeviceNotOnline);
    assert_eq!(err.error_code(), Some(404103));
    assert_eq!(err.tracking_id(), Some("trk-404103"));
    assert_eq!(err.status(), Some(404));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn ping_without_answer_is_504101_and_not_retried() {
    let server = TestServer::http(|_, _| {
        Reply::hub_error_json(
            504,
            504101,
            "Timed out waiting for the response from device",
            "trk-504",
        )
    })
    .await;
    let client = sas_client(config_for(&server));
    let err = client
        .ping_edge_agent("gw-1", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GatewayTimeout);
    assert_eq!(err.error_code(), Some(504101));
    assert!(!err.is_transient());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn method_answers_with_device_status_and_payload() {
    let server = TestServer::http(|_, _| {
        Reply::json(
            200,
            json!({"status": 400, "payload": {"message": "Command 'x' not found"}}),
        )
    })
    .await;
    let client = sas_client(config_for(&server));
    let answer = client
        .invoke_module_method(
            "gw",
            "$edgeAgent",
            MethodRequest::new("x", json!(null)).with_connect_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(answer.payload["message"], "Command 'x' not found");
    assert_eq!(server.requests()[0].json()["connectTimeoutInSeconds"], 2);

    let err = client
        .ping_edge_agent("gw", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::BadResponse,
        "a non-200 ping answer is not success"
    );
    let err = client
        .ping_edge_agent("gw", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(
        server.requests().len(),
        2,
        "invalid requests are never sent"
    );
}

#[tokio::test]
async fn unauthorized_in_both_body_forms_is_typed_and_not_retried() {
    let server = TestServer::http(|r, _| {
        if r.path.ends_with("/classic") {
            Reply::hub_error(401, "IotHubUnauthorizedAccess", "Unauthorized", "trk-401a")
        } else {
            Reply::hub_error_json(401, 401002, "Unauthorized", "trk-401b")
        }
    })
    .await;
    let client = sas_client(config_for(&server));

    let classic = client
        .get_device_twin::<Value>("classic")
        .await
        .unwrap_err();
    assert_eq!(classic.kind(), ErrorKind::Unauthorized);
    assert_eq!(classic.error_name(), Some("IotHubUnauthorizedAccess"));
    assert_eq!(classic.error_code(), Some(401002));
    assert_eq!(classic.tracking_id(), Some("trk-401a"));

    let json_form = client.get_device_twin::<Value>("json").await.unwrap_err();
    assert_eq!(json_form.kind(), ErrorKind::Unauthorized);
    assert_eq!(json_form.error_code(), Some(401002));
    assert_eq!(json_form.tracking_id(), Some("trk-401b"));

    assert_eq!(server.requests().len(), 2, "401 is never retried");
}

#[tokio::test]
async fn not_found_device_and_module_are_told_apart() {
    let server = TestServer::http(|r, _| {
        if r.path.contains("/modules/") {
            Reply::hub_error(404, "ModuleNotFound", "Module not found", "trk-m")
        } else {
            Reply::hub_error(404, "DeviceNotFound", "Device not found", "trk-d")
        }
    })
    .await;
    let client = sas_client(config_for(&server));
    let device = client.get_device_twin::<Value>("ghost").await.unwrap_err();
    assert_eq!(device.kind(), ErrorKind::DeviceNotFound);
    let module = client
        .get_module_twin::<Value>("gw", "ghost")
        .await
        .unwrap_err();
    assert_eq!(module.kind(), ErrorKind::ModuleNotFound);
    assert_eq!(module.error_code(), Some(404010));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn throttled_twice_then_success_is_retried_and_observed() {
    let server = TestServer::http(|_, index| {
        if index < 2 {
            Reply::hub_error(429, "ThrottlingException", "Throttled", "trk-429")
                .header("retry-after", "0")
        } else {
            Reply::json(200, json!({"deviceId": "gw"}))
        }
    })
    .await;
    let observer = Arc::new(RecordingObserver::default());
    let mut config = config_for(&server);
    config.observer = observer.clone();
    let client = sas_client(config);

    let twin: Value = client.get_module_twin("gw", "$edgeHub").await.unwrap();

    assert_eq!(twin["deviceId"], "gw");
    assert_eq!(
        server.requests().len(),
        3,
        "two throttled attempts and one success"
    );
    assert_eq!(observer.throttled.load(Ordering::SeqCst), 2);
    assert_eq!(observer.retried.load(Ordering::SeqCst), 2);
    let finished = observer.finished.lock().unwrap().clone();
    let outcomes: Vec<&str> = finished.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(outcomes, ["throttled", "throttled", "ok"]);
    assert!(
        finished
            .iter()
            .all(|(op, _)| op == Operation::GetModuleTwin.as_str())
    );
}

#[tokio::test]
async fn a_long_retry_after_is_handed_back_instead_of_waited_for() {
    let server = TestServer::http(|_, _| {
        Reply::hub_error(429, "ThrottlingException", "Throttled", "trk")
            .header("retry-after", "120")
    })
    .await;
    let client = sas_client(config_for(&server));
    let started = Instant::now();
    let err = client.get_device_twin::<Value>("gw").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_exhaust_the_attempts_and_surface_the_error_code() {
    let server = TestServer::http(|_, _| {
        Reply::hub_error_json(503, 503001, "Service unavailable", "trk-503")
    })
    .await;
    let observer = Arc::new(RecordingObserver::default());
    let mut config = config_for(&server);
    config.observer = observer.clone();
    let client = sas_client(config);

    let err = client.get_device_twin::<Value>("gw").await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.error_code(), Some(503001));
    assert_eq!(err.tracking_id(), Some("trk-503"));
    assert_eq!(err.attempts(), 3);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(observer.retried.load(Ordering::SeqCst), 2);
    let text = err.to_string();
    assert!(
        text.contains("503001") && text.contains("after 3 attempts"),
        "{text}"
    );
}

#[tokio::test]
async fn a_slow_answer_hits_the_request_timeout() {
    let server =
        TestServer::http(|_, _| Reply::json(200, json!({})).after(Duration::from_secs(3))).await;
    let mut config = config_for(&server);
    config.request_timeout = Duration::from_millis(150);
    config.retry.max_attempts = 2;
    let client = sas_client(config);

    let started = Instant::now();
    let err = client.get_device_twin::<Value>("gw").await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.attempts(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_success_bodies_are_bad_responses() {
    let server = TestServer::http(|_, _| Reply::raw(200, "<html>proxy login</html>")).await;
    let client = sas_client(config_for(&server));
    let err = client.get_device_twin::<Value>("gw").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse);
    assert_eq!(server.requests().len(), 1, "a bad body is not retried");
}

#[tokio::test]
async fn tls_is_verified_an_unknown_ca_fails_to_connect() {
    let server = TestServer::https(|_, _| Reply::json(200, json!({}))).await;
    let mut config = config_for(&server);
    config.extra_ca_pem = None;
    config.retry.max_attempts = 1;
    let client = sas_client(config);
    let err = client.get_device_twin::<Value>("gw").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn unreachable_hub_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = edgewatch::iothub::ClientConfig::new(HUB);
    config.endpoint = Some(format!("http://127.0.0.1:{port}"));
    config.retry.max_attempts = 2;
    config.retry.base_delay = Duration::from_millis(1);
    let client = sas_client(config);
    let err = client.get_device_twin::<Value>("gw").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection);
    assert!(err.is_transient());
    assert_eq!(err.attempts(), 2);
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    use edgewatch::iothub::{ClientConfig, ConfigError, ConnectionString, Credential};
    let credential =
        || Credential::SharedAccessKey(ConnectionString::parse(&connection_string()).unwrap());
    let build = |config: ClientConfig| IotHubClient::new(config, credential()).map(|_| ());

    let mut other_hub = ClientConfig::new("other.azure-devices.net");
    other_hub.endpoint = None;
    assert!(matches!(
        build(other_hub),
        Err(ConfigError::HostMismatch { .. })
    ));

    let mut plain_http = ClientConfig::new(HUB);
    plain_http.endpoint = Some("http://iothub.example.com".into());
    assert!(matches!(
        build(plain_http),
        Err(ConfigError::InvalidUrl { .. })
    ));

    let mut bad_ca = ClientConfig::new(HUB);
    bad_ca.extra_ca_pem = Some(b"not a certificate".to_vec());
    assert_eq!(build(bad_ca), Err(ConfigError::InvalidCaBundle));

    let mut no_attempts = ClientConfig::new(HUB);
    no_attempts.retry.max_attempts = 0;
    assert!(matches!(
        build(no_attempts),
        Err(ConfigError::InvalidSetting { .. })
    ));

    let mut no_concurrency = ClientConfig::new(HUB);
    no_concurrency.max_concurrent_requests = 0;
    assert!(matches!(
        build(no_concurrency),
        Err(ConfigError::InvalidSetting { .. })
    ));

    assert!(build(ClientConfig::new(HUB)).is_ok());
}

#[tokio::test]
async fn a_method_is_retried_only_when_it_cannot_have_reached_the_device() {
    // 5xx after sending: not retried (the device may have run the method).
    let server =
        TestServer::http(|_, _| Reply::hub_error_json(500, 500001, "server error", "trk-500"))
            .await;
    let client = sas_client(config_for(&server));
    let request = MethodRequest::new(
        "RestartModule",
        json!({"schemaVersion": "1.0", "id": "tempSensor"}),
    );
    let err = client
        .invoke_module_method("gw", "$edgeAgent", request.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(server.requests().len(), 1);

    // Nothing listening: the connection never opened, so retrying is safe.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = edgewatch::iothub::ClientConfig::new(HUB);
    config.endpoint = Some(format!("http://127.0.0.1:{port}"));
    config.retry.base_delay = Duration::from_millis(1);
    config.retry.max_delay = Duration::from_millis(5);
    config.retry.max_attempts = 3;
    let err = sas_client(config)
        .invoke_module_method("gw", "$edgeAgent", request)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection);
    assert!(err.was_unsent());
    assert_eq!(err.attempts(), 3);
}

#[tokio::test]
async fn rejected_requests_are_typed_and_not_retried() {
    let server = TestServer::http(|r, _| {
        if r.path == "/devices/query" {
            Reply::hub_error_json(400, 400004, "Syntax error in query", "trk-400")
        } else {
            Reply::hub_error(
                403,
                "IotHubQuotaExceeded",
                "Total number of messages exceeded",
                "trk-403",
            )
        }
    })
    .await;
    let client = sas_client(config_for(&server));
    let bad_query = client
        .query_page::<Value>("SELECT * FROM nowhere WHERE", None)
        .await
        .unwrap_err();
    assert_eq!(bad_query.kind(), ErrorKind::Rejected);
    assert_eq!(bad_query.error_code(), Some(400004));
    let quota = client.get_device_twin::<Value>("gw").await.unwrap_err();
    assert_eq!(quota.kind(), ErrorKind::DailyQuotaExceeded);
    assert_eq!(quota.error_code(), Some(403002));
    assert!(quota.quota_resets_at().is_some());
    assert!(bad_query.is_unsupported_query_feature());
    assert_eq!(server.requests().len(), 2);
    // Until the reset, billable calls are refused without a request.
    let again = client.get_device_twin::<Value>("gw").await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::DailyQuotaExceeded);
    assert!(again.was_unsent());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn method_answers_with_unknown_fields_or_no_body_are_handled() {
    let server = TestServer::http(|_, index| match index {
        0 => Reply::json(
            200,
            json!({"status": 200, "payload": {"ok": true}, "extra": "ignored"}),
        ),
        _ => Reply::raw(200, ""),
    })
    .await;
    let client = sas_client(config_for(&server));
    let answer = client
        .invoke_module_method("gw", "custom", MethodRequest::new("echo", json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(answer.payload, json!({"ok": true}));
    let err = client
        .ping_edge_agent("gw", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse);
}

/// IoT Hub's own billing examples, as the client reports them: an 8 KB twin is 2
/// messages, a 6 KB method body with a 1 KB answer 3, a 10 KB query page 3, a module
/// list 0, and an error answer nothing at all.
#[tokio::test]
async fn billed_messages_are_reported_per_successful_answer() {
    let kb = |n: usize| "x".repeat(n * 1024);
    let server = TestServer::http(move |r, _| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/twins/gw/modules/%24edgeAgent") => {
            // 8 KB of body exactly: {"p":"xxxx…"} padded to 8,192 bytes.
            Reply::json(200, json!({"p": "x".repeat(8 * 1024 - 8)}))
        }
        ("GET", "/devices/gw/modules") => Reply::json(200, json!([{"moduleId": "$edgeAgent"}])),
        ("POST", "/devices/query") if r.header("x-ms-continuation").is_none() => {
            Reply::json(200, json!([{"p": kb(10)}])).header("x-ms-continuation", "next")
        }
        ("POST", "/devices/query") => Reply::json(200, json!([])),
        ("POST", "/twins/gw/modules/m/methods") => {
            Reply::json(200, json!({"status": 200, "payload": "y".repeat(1024 - 2)}))
        }
        _ => Reply::hub_error(404, "DeviceNotFound", "no", "trk"),
    })
    .await;
    let observer = Arc::new(RecordingObserver::default());
    let mut config = config_for(&server);
    config.observer = observer.clone();
    let client = sas_client(config);

    let twin: Value = client.get_module_twin("gw", "$edgeAgent").await.unwrap();
    assert_eq!(serde_json::to_vec(&twin).unwrap().len(), 8 * 1024);
    let _: Vec<Value> = client.list_modules("gw").await.unwrap();
    let pages: Vec<Value> = client
        .query("SELECT * FROM devices")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
    let request = MethodRequest::new("m", json!("z".repeat(6 * 1024 - 2)));
    client
        .invoke_module_method("gw", "m", request)
        .await
        .unwrap();
    assert!(client.get_device_twin::<Value>("missing").await.is_err());

    let billed = observer.billed.lock().unwrap().clone();
    let billed: Vec<(&str, u64)> = billed.iter().map(|(op, n)| (op.as_str(), *n)).collect();
    assert_eq!(
        billed,
        [
            ("get_module_twin", 2),
            ("list_modules", 0),
            ("query", 3),
            ("query", 1),
            ("invoke_method", 3),
        ]
    );
}
