//! End to end: the real `edgewatch run` binary against the Kubernetes API stand-in and the
//! real `edgewatch sim` IoT Hub simulator. The example watch goes Ready, then follows the
//! simulated fleet through a module crash, a device going offline and a deployment; a
//! second replica stays silent while the first holds the Lease and takes over within the
//! lease duration when the first is killed.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use edgewatch::api::EdgeDeviceWatch;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use support::k8s_standin::StandIn;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_edgewatch");
const NS: &str = "iot";
const WATCH: &str = "plant-a-gateways";
const LEASE: &str = "edgewatch-e2e";

const SCENARIO: &str = "\
hub: plant-a
devices:
  - id: line1-gw
    tags: {site: plant-a}
  - id: line2-gw
    tags: {site: plant-a}
";

struct Simulator {
    _child: Child,
    connection_string: String,
    base_url: String,
    http: reqwest::Client,
}

impl Simulator {
    async fn start(dir: &Path) -> Self {
        let scenario = dir.join("scenario.yaml");
        std::fs::write(&scenario, SCENARIO).unwrap();
        let ca = dir.join("sim-ca.pem");
        let mut child = Command::new(BIN)
            .args([
                "sim",
                "--devices",
                "0",
                "--port",
                "0",
                "--tls",
                "self-signed",
            ])
            .arg("--scenario")
            .arg(&scenario)
            .arg("--ca-out")
            .arg(&ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("edgewatch sim starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let connection_string = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(cs) = line.strip_prefix("connection string:") {
                    return cs.trim().to_owned();
                }
            }
            panic!("the simulator exited before printing its connection string");
        })
        .await
        .expect("the simulator prints its connection string");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let host = connection_string
            .split(';')
            .find_map(|p| p.strip_prefix("HostName="))
            .expect("HostName in the connection string")
            .to_owned();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(&ca).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        Self {
            _child: child,
            connection_string,
            base_url: format!("https://{host}"),
            http,
        }
    }

    async fn act(&self, device: &str, action: serde_json::Value) {
        let url = format!("{}/_sim/devices/{device}/actions", self.base_url);
        let response = self.http.post(url).json(&action).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{action}: {}",
            response.status()
        );
    }
}

/// A loopback address with a port free right now, for a replica's metrics server.
fn free_metrics_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn start_replica(kubeconfig: &Path, ca: &Path, identity: &str, metrics: &str) -> Child {
    Command::new(BIN)
        .args(["run", "--log-format", "json", "--lease-name", LEASE])
        .args(["--lease-namespace", "default", "--lease-duration", "4s"])
        .args(["--identity", identity])
        .args(["--metrics-address", metrics])
        .arg("--iothub-ca-file")
        .arg(ca)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info,kube=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("edgewatch run starts")
}

/// The leader exports the watch's conditions and its devices; both replicas are ready and
/// only the leader says it leads.
async fn assert_metrics_mirror_the_status(http: &reqwest::Client, leader: &str, follower: &str) {
    let scrape = |address: &str, path: &str| {
        let url = format!("http://{address}{path}");
        async move {
            let response = http.get(&url).send().await.expect("ops server answers");
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (code, text) = scrape(leader, "/metrics").await;
    assert_eq!(code, 200);
    let ready_series = format!(
        "edgewatch_watch_condition{{namespace=\"{NS}\",watch=\"{WATCH}\",type=\"Ready\",status=\"True\"}} 1"
    );
    assert!(
        text.contains(&ready_series),
        "{ready_series} missing:\n{text}"
    );
    assert!(text.contains("edgewatch_leader 1"), "{text}");
    assert!(text.contains("edgewatch_device_ready{"), "{text}");
    assert!(text.contains("edgewatch_iothub_requests_total{"), "{text}");
    let (_, text) = scrape(follower, "/metrics").await;
    assert!(text.contains("edgewatch_leader 0"), "{text}");
    for address in [leader, follower] {
        assert_eq!(scrape(address, "/readyz").await.0, 200);
        assert_eq!(scrape(address, "/healthz").await.0, 200);
    }
}

fn condition(standin: &StandIn, type_: &str) -> Option<(String, String)> {
    let watch = standin.get_object::<EdgeDeviceWatch>(Some(NS), WATCH)?;
    watch
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.reason))
}

fn has_event(standin: &StandIn, type_: &str, reason: &str, instance: Option<&str>) -> bool {
    standin.events(Some(NS)).iter().any(|e| {
        e.type_.as_deref() == Some(type_)
            && e.reason.as_deref() == Some(reason)
            && instance.is_none_or(|i| e.reporting_instance.as_deref() == Some(i))
    })
}

fn lease_holder(standin: &StandIn) -> Option<String> {
    standin
        .get_object::<Lease>(Some("default"), LEASE)?
        .spec?
        .holder_identity
}

async fn wait(standin: &StandIn, what: &str, seconds: u64, check: impl Fn(&StandIn) -> bool) {
    let ok = standin.wait_for(Duration::from_secs(seconds), check).await;
    let state = standin
        .get_object::<EdgeDeviceWatch>(Some(NS), WATCH)
        .and_then(|w| w.status)
        .map(|s| s.conditions);
    assert!(ok, "timed out waiting for {what}; conditions: {state:#?}");
}

fn is(expected: (&str, &str)) -> impl Fn(Option<(String, String)>) -> bool {
    move |actual| actual.is_some_and(|(s, r)| s == expected.0 && r == expected.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_follows_the_simulated_fleet_and_fails_over() {
    let dir = tempfile::tempdir().unwrap();
    let standin = StandIn::start().await;
    standin.install_crd(&EdgeDeviceWatch::crd());
    let kubeconfig = standin.write_kubeconfig(dir.path());
    let sim = Simulator::start(dir.path()).await;
    let ca = dir.path().join("sim-ca.pem");

    let secret: Secret = serde_saphyr::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/iothub-secret.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut secret = secret;
    secret.string_data = None;
    secret.data = Some(
        [(
            "connectionString".to_owned(),
            k8s_openapi::ByteString(sim.connection_string.clone().into_bytes()),
        )]
        .into(),
    );
    standin.apply_object(&secret);
    let mut watch: EdgeDeviceWatch = serde_saphyr::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/watch-minimal.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    watch.spec.interval = "10s".into();
    watch.spec.ping.interval = "10s".into();
    watch.spec.ping.timeout_seconds = 5;
    standin.apply_object(&watch);

    let first_metrics = free_metrics_address();
    let mut first = start_replica(&kubeconfig, &ca, "replica-a", &first_metrics);
    wait(&standin, "replica-a to lead", 20, |s| {
        lease_holder(s).as_deref() == Some("replica-a")
    })
    .await;
    let second_metrics = free_metrics_address();
    let _second = start_replica(&kubeconfig, &ca, "replica-b", &second_metrics);

    wait(&standin, "Ready", 30, |s| {
        is(("True", "Ready"))(condition(s, "Ready"))
    })
    .await;
    let status = standin
        .get_object::<EdgeDeviceWatch>(Some(NS), WATCH)
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.summary.devices, 2);
    assert_metrics_mirror_the_status(&sim.http, &first_metrics, &second_metrics).await;
    assert_eq!(
        status.hub.as_deref(),
        sim.connection_string
            .split(';')
            .next()
            .and_then(|h| h.strip_prefix("HostName="))
    );

    // A module crashes: ModulesHealthy and Ready turn False, one Warning.
    sim.act(
        "line1-gw",
        serde_json::json!({"crash": {"module": "SimulatedTemperatureSensor", "exitCode": 1}}),
    )
    .await;
    wait(&standin, "ModulesHealthy False", 30, |s| {
        condition(s, "ModulesHealthy").is_some_and(|(status, _)| status == "False")
    })
    .await;
    let (_, reason) = condition(&standin, "ModulesHealthy").unwrap();
    wait(&standin, "a Warning Event", 10, |s| {
        has_event(s, "Warning", &reason, Some("replica-a"))
    })
    .await;
    sim.act(
        "line1-gw",
        serde_json::json!({"recover": {"module": "SimulatedTemperatureSensor"}}),
    )
    .await;
    wait(&standin, "ModulesHealthy True again", 60, |s| {
        is(("True", "AllModulesHealthy"))(condition(s, "ModulesHealthy"))
    })
    .await;
    wait(&standin, "a Normal recovery Event", 10, |s| {
        has_event(s, "Normal", "AllModulesHealthy", None)
    })
    .await;

    // A device goes offline: Reachable turns False.
    sim.act("line2-gw", serde_json::json!({"offline": {}}))
        .await;
    wait(&standin, "Reachable False", 30, |s| {
        is(("False", "DeviceNotOnline"))(condition(s, "Reachable"))
    })
    .await;
    sim.act("line2-gw", serde_json::json!({"online": {}})).await;
    wait(&standin, "Reachable True again", 30, |s| {
        is(("True", "AgentResponded"))(condition(s, "Reachable"))
    })
    .await;

    // A deployment is pending, then applied: InSync leaves True and comes back.
    sim.act(
        "line1-gw",
        serde_json::json!({"deploy": {"images": {"SimulatedTemperatureSensor": "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5.1"}, "outcome": "applied", "delay": "15s"}}),
    )
    .await;
    wait(&standin, "InSync not True while deploying", 20, |s| {
        condition(s, "InSync").is_some_and(|(status, _)| status != "True")
    })
    .await;
    wait(&standin, "InSync True again", 40, |s| {
        is(("True", "InSync"))(condition(s, "InSync"))
    })
    .await;

    // The follower never wrote: every Event so far is replica-a's, the Lease is replica-a's.
    assert!(
        standin
            .events(Some(NS))
            .iter()
            .all(|e| e.reporting_instance.as_deref() == Some("replica-a"))
    );
    assert_eq!(lease_holder(&standin).as_deref(), Some("replica-a"));

    // The leader dies without releasing the Lease: replica-b takes over once it expires.
    first.start_kill().unwrap();
    let _ = first.wait().await;
    wait(&standin, "replica-b to lead", 15, |s| {
        lease_holder(s).as_deref() == Some("replica-b")
    })
    .await;
    sim.act("line2-gw", serde_json::json!({"offline": {}}))
        .await;
    wait(
        &standin,
        "replica-b to report the offline device",
        40,
        |s| {
            is(("False", "DeviceNotOnline"))(condition(s, "Reachable"))
                && has_event(s, "Warning", "DeviceNotOnline", Some("replica-b"))
        },
    )
    .await;
}
