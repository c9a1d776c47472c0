//! Microsoft's own IoT Hub service SDK (`azure-iot-hub` for Python), unchanged, against
//! the simulator over verified HTTPS. CI installs it with `scripts/install-test-tools`.

use std::path::PathBuf;

use edgewatch::sim::{self, Action, SimConfig, TlsMode};
use serde_json::Value;

fn venv_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/venv/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_python_sdk_reads_twins_pages_queries_and_pings() {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-tools (it installs azure-iot-hub into target/tools/venv)",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("sim-ca.pem");
    let handle = sim::start(SimConfig {
        devices: 25,
        seed: 42,
        tls: TlsMode::SelfSigned { ca_out: ca.clone() },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let ids = handle.device_ids();
    let (online, offline) = (&ids[0], &ids[1]);
    handle.apply(offline, Action::Offline {}).unwrap();

    let output = tokio::process::Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/sdk_check.py"
        ))
        .env("SIM_CONNECTION_STRING", handle.connection_string())
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SIM_ONLINE_DEVICE", online)
        .env("SIM_OFFLINE_DEVICE", offline)
        .env("SIM_DEVICE_COUNT", ids.len().to_string())
        .env("NO_PROXY", "localhost,127.0.0.1")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK script failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("script prints JSON");
    assert_eq!(result["pingOnlineStatus"], 200);
    assert_eq!(result["pingOfflineHttpStatus"], 404);
    assert_eq!(result["pingOfflineErrorCode"], 404103);
    assert_eq!(result["pingOfflineHeader"], "DeviceNotOnline");
    assert_eq!(result["queryItems"], 25);
    assert!(result["queryPages"].as_u64().unwrap() > 1, "{result}");
    assert!(
        result["agentModules"]
            .as_array()
            .unwrap()
            .contains(&Value::from("SimulatedTemperatureSensor"))
    );
    assert_eq!(result["edgeHubRuntimeStatus"], "running");
    assert_eq!(
        result["edgeHubClients"][0],
        format!("{online}/SimulatedTemperatureSensor")
    );

    assert_eq!(result["projectionItems"], 25);
    assert_eq!(result["projectionDevices"], 25);
    assert_eq!(result["projectionPages"], 3);
    assert_eq!(result["projectionType"], "raw");
    assert_eq!(
        result["projectionStates"],
        serde_json::json!(["Disconnected"]),
        "$edgeAgent module twins always read Disconnected"
    );

    let counts = handle.request_counts();
    assert_eq!(counts.unauthorized, 0, "the SDK's SAS tokens are accepted");
    assert!(
        counts.queries >= 6 && counts.methods == 2 && counts.twin_reads == 3,
        "{counts:?}"
    );
    let billing = handle.billing_counts();
    assert_eq!(
        billing.messages.methods, 2,
        "the SDK's ping costs 2 messages; the 404103 costs nothing"
    );
    assert_eq!(billing.messages.registry, 0);
    assert!(
        billing.messages.queries >= counts.queries,
        "every page costs at least one message: {billing:?}"
    );
    handle.shutdown().await;
}
