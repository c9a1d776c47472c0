//! Authentication: SAS tokens checked against an independent implementation and renewed
//! on a driven clock; Entra ID through Workload Identity against a local token endpoint.

mod iothub_support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgewatch::iothub::{
    ClientConfig, Credential, ErrorKind, IotHubClient, Operation, WorkloadIdentityConfig, sas,
};
use iothub_support::*;
use serde_json::{Value, json};

/// The SAS token as computed by Python's standard library, following reference §3.2.
fn python_sas(resource: &str, key: &str, policy: &str, expiry: u64) -> String {
    let script = r#"
import base64, hashlib, hmac, sys, urllib.parse
resource, key, policy, expiry = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
sr = urllib.parse.quote_plus(resource)
to_sign = (sr + "\n" + expiry).encode("utf-8")
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign, hashlib.sha256).digest()).decode()
print("SharedAccessSignature sr=%s&sig=%s&se=%s&skn=%s" % (sr, urllib.parse.quote_plus(sig), expiry, urllib.parse.quote_plus(policy)), end="")
"#;
    let out = Command::new("python3")
        .args(["-c", script, resource, key, policy, &expiry.to_string()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sas_tokens_match_an_independent_python_implementation() {
    let vectors = [
        (
            "myhub.azure-devices.net",
            "c2VjcmV0LWtleQ==",
            "service",
            1_735_689_600,
        ),
        ("localhost:8443", KEY, "iothubowner", 4_102_444_800),
        // A key whose signatures contain '+' and '/' most of the time; several expiries
        // so the escaping of the signature is exercised.
        (
            "plant-a.azure-devices.net",
            "/+/+/+/+AAAA",
            "edgewatch-reader",
            1,
        ),
        (
            "plant-a.azure-devices.net",
            "/+/+/+/+AAAA",
            "edgewatch-reader",
            2,
        ),
        (
            "plant-a.azure-devices.net",
            "/+/+/+/+AAAA",
            "edgewatch-reader",
            3,
        ),
    ];
    for (resource, key, policy, expiry) in vectors {
        let ours = sas::token(resource, key, policy, expiry).unwrap();
        assert_eq!(
            ours,
            python_sas(resource, key, policy, expiry),
            "{resource} {expiry}"
        );
    }
}

#[tokio::test]
async fn the_header_on_the_wire_matches_python_and_uses_the_sdk_lifetime() {
    let server = TestServer::http(|_, _| Reply::json(200, json!({}))).await;
    let clock = ManualClock::at("2026-11-26T13:00:00Z");
    let mut config = config_for(&server);
    config.clock = clock.clone();
    let client = sas_client(config);
    let _: Value = client.get_device_twin("gw").await.unwrap();

    let header = server.requests()[0]
        .header("authorization")
        .unwrap()
        .to_owned();
    let now = edgewatch::iothub::Clock::now(&*clock).as_second() as u64;
    assert_eq!(
        header,
        python_sas(HUB, KEY, POLICY, now + 20 * 60),
        "20-minute tokens, as the C# SDK"
    );
}

#[tokio::test]
async fn sas_tokens_are_cached_then_renewed_before_expiry_on_a_driven_clock() {
    let clock = ManualClock::at("2026-11-26T13:00:00Z");
    let server_clock = clock.clone();
    let server = TestServer::http(move |r, _| {
        match check_sas(
            r.header("authorization"),
            edgewatch::iothub::Clock::now(&*server_clock),
        ) {
            Ok(_) => Reply::json(200, json!({})),
            Err(why) => Reply::hub_error(401, "IotHubUnauthorizedAccess", &why, "trk"),
        }
    })
    .await;
    let mut config = config_for(&server);
    config.clock = clock.clone();
    config.sas_ttl = Duration::from_secs(20 * 60);
    config.token_renewal_margin = Duration::from_secs(3 * 60);
    let client = sas_client(config);
    let expiry_of = |i: usize| {
        let header = server.requests()[i]
            .header("authorization")
            .unwrap()
            .to_owned();
        header
            .split("&se=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let start = edgewatch::iothub::Clock::now(&*clock).as_second();

    let _: Value = client.get_device_twin("gw").await.unwrap();
    clock.advance(Duration::from_secs(16 * 60 + 59));
    let _: Value = client.get_device_twin("gw").await.unwrap();
    assert_eq!(expiry_of(0), start + 1200);
    assert_eq!(
        expiry_of(1),
        start + 1200,
        "still inside the renewal margin: reused"
    );

    clock.advance(Duration::from_secs(1));
    let _: Value = client.get_device_twin("gw").await.unwrap();
    assert_eq!(
        expiry_of(2),
        start + 17 * 60 + 1200,
        "renewed 3 minutes before expiry"
    );

    // Long after every token expired: the client signs a fresh one and the hub accepts it.
    clock.advance(Duration::from_secs(6 * 3600));
    let _: Value = client.get_device_twin("gw").await.unwrap();
    assert_eq!(expiry_of(3), start + 17 * 60 + 6 * 3600 + 1200);
}

/// A hub and an identity-platform token endpoint on the same local HTTPS server.
struct EntraRig {
    server: TestServer,
    token_file: tempfile::NamedTempFile,
    clock: Arc<ManualClock>,
    client: IotHubClient,
    observer: Arc<RecordingObserver>,
}

const TENANT: &str = "72f988bf-0000-0000-0000-2d7cd011db47";

async fn entra_rig() -> EntraRig {
    let issued = Arc::new(Mutex::new(Vec::<String>::new()));
    let issued_by_endpoint = issued.clone();
    let server = TestServer::https(move |r, _| {
        if r.path.ends_with("/oauth2/v2.0/token") {
            let form = r.form();
            let assertion = form.iter().find(|(k, _)| k == "client_assertion").map(|(_, v)| v.clone()).unwrap_or_default();
            if assertion == "jwt-denied" {
                return Reply::json(
                    400,
                    json!({
                        "error": "invalid_request",
                        "error_description": "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://oidc.example'.\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2026-11-26 13:00:00Z",
                        "error_codes": [70021],
                        "trace_id": "trace-70021",
                    }),
                );
            }
            let token = format!("at-for-{assertion}");
            issued_by_endpoint.lock().unwrap().push(token.clone());
            return Reply::json(200, json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}));
        }
        let expected = issued_by_endpoint.lock().unwrap().last().map(|t| format!("Bearer {t}"));
        if r.header("authorization") == expected.as_deref() {
            Reply::json(200, json!({"deviceId": "gw"}))
        } else {
            Reply::hub_error(401, "IotHubUnauthorized", "Principal is not authorized", "trk")
        }
    })
    .await;
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "jwt-1\n").unwrap();
    let wi = WorkloadIdentityConfig::from_lookup(|name| match name {
        "AZURE_CLIENT_ID" => Some("client-123".into()),
        "AZURE_TENANT_ID" => Some(TENANT.into()),
        "AZURE_FEDERATED_TOKEN_FILE" => Some(token_file.path().display().to_string()),
        // The webhook's value ends with a slash; the tenant must not produce `//`.
        "AZURE_AUTHORITY_HOST" => Some(format!("{}/", server.url())),
        _ => None,
    })
    .unwrap();
    let clock = ManualClock::at("2026-11-26T13:00:00Z");
    let observer = Arc::new(RecordingObserver::default());
    let mut config: ClientConfig = config_for(&server);
    config.clock = clock.clone();
    config.observer = observer.clone();
    let client = IotHubClient::new(config, Credential::WorkloadIdentity(wi)).unwrap();
    drop(issued);
    EntraRig {
        server,
        token_file,
        clock,
        client,
        observer,
    }
}

#[tokio::test]
async fn entra_tokens_are_requested_cached_and_renewed_with_the_rotated_token_file() {
    let rig = entra_rig().await;

    let _: Value = rig
        .client
        .get_module_twin("gw", "$edgeAgent")
        .await
        .unwrap();
    let _: Value = rig.client.get_module_twin("gw", "$edgeHub").await.unwrap();

    let requests = rig.server.requests();
    assert_eq!(
        requests.len(),
        3,
        "one token request, then two hub calls on the cached token"
    );
    let token_request = &requests[0];
    assert_eq!(token_request.method, "POST");
    assert_eq!(token_request.path, format!("/{TENANT}/oauth2/v2.0/token"));
    let form = token_request.form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("client_id"), Some("client-123"));
    assert_eq!(field("scope"), Some("https://iothubs.azure.net/.default"));
    assert_eq!(field("grant_type"), Some("client_credentials"));
    assert_eq!(
        field("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(field("client_assertion"), Some("jwt-1"));
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer at-for-jwt-1")
    );

    // kubelet rotates the projected token; the next token request must read the new one.
    std::fs::write(rig.token_file.path(), "jwt-2").unwrap();
    rig.clock.advance(Duration::from_secs(3599 - 180));
    let _: Value = rig.client.get_device_twin("gw").await.unwrap();

    let requests = rig.server.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(
        requests[3]
            .form()
            .iter()
            .find(|(k, _)| k == "client_assertion")
            .unwrap()
            .1,
        "jwt-2"
    );
    assert_eq!(
        requests[4].header("authorization"),
        Some("Bearer at-for-jwt-2")
    );
    let token_outcomes: Vec<String> = rig
        .observer
        .finished
        .lock()
        .unwrap()
        .iter()
        .filter(|(op, _)| op == Operation::Token.as_str())
        .map(|(_, outcome)| outcome.clone())
        .collect();
    assert_eq!(token_outcomes, ["ok", "ok"]);
}

#[tokio::test]
async fn aadsts_errors_are_surfaced_clearly_and_the_hub_is_not_called() {
    let rig = entra_rig().await;
    std::fs::write(rig.token_file.path(), "jwt-denied").unwrap();

    let err = rig.client.get_device_twin::<Value>("gw").await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.operation(), Operation::Token);
    assert_eq!(err.error_code(), Some(70021));
    assert_eq!(err.tracking_id(), Some("trace-70021"));
    let text = err.to_string();
    assert!(
        text.contains("AADSTS70021: No matching federated identity record"),
        "{text}"
    );
    assert!(
        !text.contains("jwt-denied"),
        "the assertion never appears: {text}"
    );
    let requests = rig.server.requests();
    assert_eq!(
        requests.len(),
        1,
        "not retried, and no hub call without a token"
    );
    assert!(requests[0].path.ends_with("/oauth2/v2.0/token"));
}

#[tokio::test]
async fn a_missing_token_file_is_a_clear_error() {
    let rig = entra_rig().await;
    let path = rig.token_file.path().to_owned();
    drop(rig.token_file);
    let err = rig.client.get_device_twin::<Value>("gw").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(rig.server.requests().is_empty());
}
