//! Everything logged during failing runs, at TRACE and from every crate, must be free of
//! the policy key, the SAS signature and the bearer token. Runs as its own test binary
//! because it installs a global subscriber.

mod iothub_support;

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgewatch::iothub::{
    ConnectionString, Credential, ErrorKind, IotHubClient, WorkloadIdentityConfig, sas,
};
use iothub_support::*;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const BEARER: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.bearer-secret-payload.signature";
const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.federated-assertion-secret.sig";

#[tokio::test]
async fn failing_runs_never_log_keys_signatures_or_tokens() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = TestServer::https(|r, index| {
        if r.path.ends_with("/oauth2/v2.0/token") {
            return Reply::json(
                200,
                json!({"token_type": "Bearer", "expires_in": 3600, "access_token": BEARER}),
            );
        }
        match index % 3 {
            0 => Reply::hub_error(401, "IotHubUnauthorizedAccess", "Unauthorized", "trk-401"),
            1 => Reply::hub_error_json(503, 503001, "unavailable", "trk-503"),
            _ => Reply::hub_error(429, "ThrottlingException", "slow down", "trk-429"),
        }
    })
    .await;

    // SAS: 401, throttling and server errors, with retries.
    let mut config = config_for(&server);
    config.retry.max_attempts = 3;
    let clock = ManualClock::at("2026-11-26T13:00:00Z");
    config.clock = clock.clone();
    let sas_client = sas_client(config.clone());
    let mut errors = Vec::new();
    for device in ["a", "b", "c", "d"] {
        errors.push(
            sas_client
                .get_device_twin::<Value>(device)
                .await
                .unwrap_err(),
        );
    }
    errors.push(
        sas_client
            .ping_edge_agent("a", Duration::from_secs(5))
            .await
            .unwrap_err(),
    );
    assert!(errors.iter().any(|e| e.kind() == ErrorKind::Unauthorized));
    assert!(
        errors.iter().any(|e| e.attempts() > 1),
        "some calls were retried"
    );

    // Entra ID: a token is obtained, then the hub refuses it.
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), ASSERTION).unwrap();
    let wi = WorkloadIdentityConfig {
        client_id: "client".into(),
        tenant_id: "tenant".into(),
        federated_token_file: token_file.path().to_owned(),
        authority_host: format!("{}/", server.url()),
    };
    let entra_client = IotHubClient::new(config, Credential::WorkloadIdentity(wi.clone())).unwrap();
    for device in ["e", "f", "g"] {
        errors.push(
            entra_client
                .get_device_twin::<Value>(device)
                .await
                .unwrap_err(),
        );
    }

    let now = edgewatch::iothub::Clock::now(&*clock).as_second() as u64;
    let sent_sas = server
        .requests()
        .iter()
        .find_map(|r| {
            r.header("authorization")
                .filter(|h| h.starts_with("SharedAccessSignature"))
                .map(str::to_owned)
        })
        .unwrap();
    let signature = sas::signature(KEY, HUB, now + 1200).unwrap();
    assert!(
        sent_sas.contains(&sas::url_encode(&signature)),
        "the test knows the real signature"
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {BEARER}")))
    );

    // Debug and Display of everything a caller might log.
    let mut out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for e in &errors {
        let _ = writeln!(out, "{e}\n{e:?}");
    }
    let cs = ConnectionString::parse(&connection_string()).unwrap();
    let _ = write!(
        out,
        "{cs:?}\n{:?}\n{sas_client:?}\n{entra_client:?}\n{wi:?}\n{:?}\n",
        Credential::SharedAccessKey(cs.clone()),
        config_for(&server)
    );

    assert!(
        out.contains("IoT Hub call failed, retrying"),
        "logs were captured:\n{out}"
    );
    assert!(out.contains("trk-503"), "tracking ids are logged:\n{out}");
    let forbidden = [
        KEY.to_owned(),
        signature.clone(),
        sas::url_encode(&signature),
        sent_sas.clone(),
        BEARER.to_owned(),
        "bearer-secret-payload".to_owned(),
        ASSERTION.to_owned(),
    ];
    for secret in &forbidden {
        assert!(
            !out.contains(secret.as_str()),
            "secret {secret:?} leaked into output:\n{out}"
        );
    }
}
