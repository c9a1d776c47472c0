//! What edgewatch's metric says a sweep cost is what the hub bills: one `edgewatch check`
//! sweep of 1,000 simulated devices (the check pipeline, in process, with the operator's
//! metrics registry as the client's observer) costs exactly the billed messages that the
//! simulator's `/_sim/counts` reports, operation by operation.
//!
//! Cost: one sweep of 1,000 devices with pings: the selector's query pages, 2,000 module
//! twin GETs and 1,000 pings, about 6,200 billed messages on a real hub (≈6.2 per device,
//! the figure of issue 10); asserted below to stay between 5 and 8 per device.

mod sim_support;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use edgewatch::api::EdgeDeviceWatch;
use edgewatch::controller::{GivenConnectionString, HubClientTemplate, LocalWatch};
use edgewatch::iothub::{RateLimit, RateLimits};
use edgewatch::ops::metrics::Metrics;
use edgewatch::sim::SimHandle;
use serde_json::Value;

const DEVICES: usize = 1000;

const WATCH: &str = "\
apiVersion: edgewatch.dev/v1alpha1
kind: EdgeDeviceWatch
metadata: {name: fleet, namespace: iot}
spec:
  hub: {connectionStringSecretRef: {name: hub, key: connectionString}}
  selector: {query: \"tags.ring IN ['canary', 'broad']\"}
";

/// The client without pacing: the test measures cost, not the hub's rate limits.
fn unpaced() -> RateLimits {
    let fast = RateLimit::per_second(NonZeroU32::new(100_000).unwrap());
    RateLimits {
        twin_reads: fast,
        queries: fast,
        methods: fast,
    }
}

/// `edgewatch_iothub_billed_messages_total` per operation, read from the exported text.
fn billed_by_operation(metrics: &Metrics) -> BTreeMap<String, u64> {
    let text = metrics.encode();
    let mut billed = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("edgewatch_iothub_billed_messages_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").unwrap();
        let operation = labels
            .split(',')
            .find_map(|l| l.strip_prefix("operation=\""))
            .unwrap()
            .trim_end_matches('"');
        *billed.entry(operation.to_owned()).or_default() += value.parse::<u64>().unwrap();
    }
    billed
}

/// `/_sim/counts`, over HTTP as any client would read it.
async fn sim_counts(sim: &SimHandle) -> Value {
    reqwest::get(format!("{}/_sim/counts", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_check_sweep_costs_what_the_client_metered() {
    let sim = sim_support::start_generated(DEVICES).await;
    let metrics = Metrics::new(true);
    let template = HubClientTemplate {
        endpoint: Some(sim.base_url()),
        observer: Some(Arc::new(metrics.clone())),
        clock: Some(Arc::new(sim.clock().clone())),
        rate_limits: Some(unpaced()),
        ..HubClientTemplate::default()
    };
    let watch: EdgeDeviceWatch = serde_saphyr::from_str(WATCH).unwrap();
    let credentials = GivenConnectionString::new("the simulator", Some(sim.connection_string()));
    let mut check = LocalWatch::new(watch, credentials, template);
    check.reconcile(sim.clock().now()).await.unwrap();

    let status = check.watch().status.clone().unwrap();
    assert_eq!(
        status.summary.devices as usize, DEVICES,
        "every device judged"
    );

    let counts = sim_counts(&sim).await;
    let hub = &counts["billing"]["messages"];
    let client = billed_by_operation(&metrics);
    let sum = |ops: &[&str]| {
        ops.iter()
            .map(|op| client.get(*op).copied().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        hub["total"].as_u64().unwrap(),
        client.values().sum::<u64>(),
        "simulator {hub} vs client {client:?}"
    );
    assert_eq!(hub["twinReads"], sum(&["get_twin", "get_module_twin"]));
    assert_eq!(hub["queries"], sum(&["query"]));
    assert_eq!(hub["methods"], sum(&["invoke_method"]));
    assert_eq!(counts["methods"], DEVICES, "one ping per device");

    let per_device = hub["total"].as_u64().unwrap() as f64 / DEVICES as f64;
    println!(
        "one sweep of {DEVICES} devices: {} billed messages ({per_device:.2} per device): {client:?}",
        hub["total"]
    );
    assert!(
        (5.0..8.0).contains(&per_device),
        "{per_device} messages per device"
    );
    sim.shutdown().await;
}
