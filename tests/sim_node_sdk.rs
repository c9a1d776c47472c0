//! Microsoft's Node.js service SDK (`azure-iothub`), unchanged, against the simulator on
//! port 443 with the bare `HostName=localhost` a real hub's connection string has (the
//! SDK resolves the whole `HostName` as a host name, so `localhost:8443` cannot work).
//!
//! Optional: it needs Node.js, the SDK (`npm install --prefix target/tools/node
//! azure-iothub@1.16.6`) and permission to bind 127.0.0.1:443. Without any of them it
//! says SKIPPED and passes. Cost: 1 twin read (3 messages), 2 query pages, 1 ping (2).

use std::path::PathBuf;

use edgewatch::sim::{self, SimConfig, TlsMode};
use serde_json::Value;

fn node_modules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/node/node_modules")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_node_sdk_accepts_a_bare_host_name_on_port_443() {
    let modules = node_modules();
    if !modules.join("azure-iothub").exists() {
        eprintln!(
            "SKIPPED: {} has no azure-iothub (npm install --prefix target/tools/node azure-iothub@1.16.6)",
            modules.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let handle = match sim::start(SimConfig {
        devices: 3,
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 443)),
        tls: TlsMode::SelfSigned { ca_out: ca.clone() },
        ..SimConfig::default()
    })
    .await
    {
        Ok(h) => h,
        Err(sim::SimError::Bind { source, .. }) => {
            eprintln!("SKIPPED: cannot listen on 127.0.0.1:443 here ({source})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert!(
        handle
            .connection_string()
            .starts_with("HostName=localhost;")
    );
    let run = tokio::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/node/sdk_check.js"
        ))
        .env("SIM_CONNECTION_STRING", handle.connection_string())
        .env("SIM_DEVICE", "edge-0001")
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .env("NODE_PATH", &modules)
        .env("NO_PROXY", "localhost,127.0.0.1")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .await;
    let output = match run {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED: node does not run here ({e})");
            handle.shutdown().await;
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK script failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("script prints JSON");
    assert_eq!(result["moduleId"], "$edgeAgent");
    assert_eq!(result["pages"], 2);
    assert_eq!(result["rows"].as_array().unwrap().len(), 3);
    assert_eq!(result["rows"][0]["lastDesiredStatus"]["code"], 200);
    assert_eq!(result["pingStatus"], 200);
    let counts = handle.request_counts();
    assert_eq!(
        counts.unauthorized, 0,
        "the SDK's SAS tokens (sr=localhost) are accepted"
    );
    assert_eq!(handle.billing_counts().messages.methods, 2);
    handle.shutdown().await;
}
