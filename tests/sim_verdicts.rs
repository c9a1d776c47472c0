//! Twins served by the simulator, read with edgewatch's own IoT Hub client over verified
//! HTTPS, parsed by `crate::twin` and judged by `crate::health`: each scenario kind of
//! `examples/scenarios/every-verdict.yaml` must give the verdict it was written for.

mod sim_support;

use std::num::NonZeroU32;
use std::time::Duration;

use edgewatch::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};
use edgewatch::health::{DeviceTwins, PingError, PingOutcome, Policy, evaluate};
use edgewatch::iothub::{
    ClientConfig, ConnectionString, Credential, ErrorKind, IotHubClient, RateLimit, RateLimits,
};
use edgewatch::sim::{self, ClockMode, Scenario, SimConfig, SimHandle, TlsMode};
use edgewatch::twin::{EdgeAgentTwin, EdgeHubTwin, ModuleTwin};
use futures::TryStreamExt;
use serde_json::Value;
use sim_support::{advance, t0};

async fn start_every_verdict(dir: &std::path::Path) -> SimHandle {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios/every-verdict.yaml");
    sim::start(SimConfig {
        scenario: Scenario::from_file(&path).unwrap(),
        clock: ClockMode::Manual { start: t0() },
        tls: TlsMode::SelfSigned {
            ca_out: dir.join("ca.pem"),
        },
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// The client as the controller would configure it for this hub, minus the pacing
/// (the simulator enforces no quota here, and tests should not wait on one).
fn client_for(h: &SimHandle, page_size: u32) -> IotHubClient {
    let fast = RateLimit::per_second(NonZeroU32::new(10_000).unwrap());
    let mut config = ClientConfig::new(h.host_name());
    config.endpoint = Some(h.base_url());
    config.extra_ca_pem = Some(h.ca_pem().unwrap().as_bytes().to_vec());
    config.rate_limits = RateLimits {
        twin_reads: fast,
        queries: fast,
        methods: fast,
    };
    config.page_size = page_size;
    let cs = ConnectionString::parse(&h.connection_string()).unwrap();
    IotHubClient::new(config, Credential::SharedAccessKey(cs)).unwrap()
}

async fn ping(client: &IotHubClient, device: &str) -> PingOutcome {
    match client
        .ping_edge_agent(device, Duration::from_secs(10))
        .await
    {
        Ok(_) => PingOutcome::Responded { latency_ms: 0 },
        Err(e) => {
            let detail = PingError::new(e.error_code(), e.error_name(), e.message());
            match e.kind() {
                ErrorKind::DeviceNotOnline => PingOutcome::NotOnline(detail),
                ErrorKind::GatewayTimeout => PingOutcome::Timeout(detail),
                ErrorKind::DeviceNotFound => PingOutcome::DeviceNotFound(detail),
                _ => PingOutcome::Failed(detail),
            }
        }
    }
}

/// Reads every twin of one device through the client and judges it at the simulator's now.
async fn judge(h: &SimHandle, client: &IotHubClient, device: &str) -> DeviceReport {
    let agent: Value = client.get_module_twin(device, "$edgeAgent").await.unwrap();
    let hub: Value = client.get_module_twin(device, "$edgeHub").await.unwrap();
    let identities: Vec<Value> = client.list_modules(device).await.unwrap();
    let mut modules = Vec::new();
    for id in identities
        .iter()
        .filter_map(|m| m["moduleId"].as_str())
        .filter(|m| !m.starts_with('$'))
    {
        let twin: Value = client.get_module_twin(device, id).await.unwrap();
        modules.push(ModuleTwin::from_value(&twin).unwrap());
    }
    let twins = DeviceTwins {
        device_id: device.to_string(),
        edge_agent: EdgeAgentTwin::from_value(&agent)
            .expect("the evaluator parses the simulated $edgeAgent"),
        edge_hub: Some(
            EdgeHubTwin::from_value(&hub).expect("the evaluator parses the simulated $edgeHub"),
        ),
        modules,
    };
    let outcome = ping(client, device).await;
    evaluate(&twins, &outcome, None, &Policy::default(), h.clock().now()).report
}

fn assert_verdict(report: &DeviceReport, aspect: ConditionType, reason: Reason) {
    let c = report.condition(aspect).unwrap();
    assert_eq!(
        c.reason, reason,
        "{}: {aspect:?} was {:?} ({})",
        report.device_id, c.reason, c.message
    );
    let ready = report.condition(ConditionType::Ready).unwrap();
    if reason == Reason::Ready {
        assert_eq!(ready.status, ConditionStatus::True);
    } else {
        assert_ne!(
            ready.status,
            ConditionStatus::True,
            "{}: a problem device is not Ready",
            report.device_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scenario_kind_gets_the_intended_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_every_verdict(dir.path()).await;
    let client = client_for(&h, 100);

    // Before the events at 1m, every device is healthy.
    for device in h.device_ids() {
        let report = judge(&h, &client, &device).await;
        assert_verdict(&report, ConditionType::Ready, Reason::Ready);
    }

    // 5 s after a crash the agent is waiting out the 10 s cool-off.
    advance(&h, 65);
    let backoff = judge(&h, &client, "module-backoff").await;
    assert_verdict(
        &backoff,
        ConditionType::ModulesHealthy,
        Reason::ModuleBackoff,
    );

    advance(&h, 25);
    let at_90s: &[(&str, ConditionType, Reason)] = &[
        ("healthy", ConditionType::Ready, Reason::Ready),
        (
            "module-failed",
            ConditionType::ModulesHealthy,
            Reason::ModuleFailed,
        ),
        ("module-backoff", ConditionType::Ready, Reason::Ready),
        (
            "module-unhealthy",
            ConditionType::ModulesHealthy,
            Reason::ModuleUnhealthy,
        ),
        (
            "module-stopped",
            ConditionType::ModulesHealthy,
            Reason::ModuleStopped,
        ),
        (
            "device-offline",
            ConditionType::Reachable,
            Reason::DeviceNotOnline,
        ),
        (
            "ping-timeout",
            ConditionType::Reachable,
            Reason::PingTimeout,
        ),
        (
            "deployment-pending",
            ConditionType::InSync,
            Reason::DeploymentInProgress,
        ),
        (
            "deployment-rejected",
            ConditionType::InSync,
            Reason::DeploymentRejected,
        ),
        // A 500 within the grace period may be a slow image pull: in progress.
        (
            "deployment-failed",
            ConditionType::InSync,
            Reason::DeploymentInProgress,
        ),
        ("image-drift", ConditionType::InSync, Reason::ImageDrift),
        (
            "property-drift",
            ConditionType::InSync,
            Reason::DeploymentInProgress,
        ),
        (
            "agent-shutdown",
            ConditionType::ModulesHealthy,
            Reason::AgentNotRunning,
        ),
    ];
    for (device, aspect, reason) in at_90s {
        let report = judge(&h, &client, device).await;
        assert_verdict(&report, *aspect, *reason);
    }

    // Restarts pile up: 10 s, 20 s, 40 s, 80 s cool-offs → 4 restarts by 4 minutes.
    advance(&h, 150);
    let looping = judge(&h, &client, "restart-loop").await;
    assert_verdict(&looping, ConditionType::ModulesHealthy, Reason::RestartLoop);

    // Past the 10-minute grace, pending deployments and unapplied properties are no
    // longer "in progress"; the offline device's frozen report has gone stale.
    advance(&h, 15 * 60);
    let pending = judge(&h, &client, "deployment-pending").await;
    assert_verdict(&pending, ConditionType::InSync, Reason::DeploymentPending);
    let lagging = judge(&h, &client, "property-drift").await;
    assert_verdict(&lagging, ConditionType::InSync, Reason::PropertyDrift);
    let failed = judge(&h, &client, "deployment-failed").await;
    assert_verdict(&failed, ConditionType::InSync, Reason::DeploymentFailed);
    let offline = judge(&h, &client, "device-offline").await;
    assert_verdict(&offline, ConditionType::Fresh, Reason::ReportedStateStale);
    let healthy = judge(&h, &client, "healthy").await;
    assert_verdict(&healthy, ConditionType::Ready, Reason::Ready);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_pages_through_the_simulated_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_every_verdict(dir.path()).await;
    let client = client_for(&h, 4);
    let agents: Vec<Value> = client
        .query("SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent'")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(agents.len(), h.device_ids().len());
    for twin in &agents {
        EdgeAgentTwin::from_value(twin).expect("query items parse like GETs");
    }
    assert!(h.request_counts().queries >= 4, "{:?}", h.request_counts());
    h.shutdown().await;
}
