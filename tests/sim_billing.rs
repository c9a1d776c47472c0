//! What IoT Hub bills, metered twice: by the simulator for every answer it gives, and by
//! edgewatch's client for every answer it gets. Both must agree exactly, and the daily
//! quota must stop billable work (and only billable work) until simulated midnight.
//!
//! Cost: everything here runs against the in-process simulator; the numbers asserted are
//! what the same calls would be billed on an S1 hub.

mod sim_support;

use std::sync::Arc;
use std::time::Duration;

use edgewatch::iothub::billing::Meter;
use edgewatch::iothub::{ErrorKind, IotHubClient, Operation};
use edgewatch::sim::{
    self, Action, BillingCounts, ClockMode, DailyQuota, SimConfig, SimHandle, ThrottleQuotas,
};
use futures::TryStreamExt;
use jiff::Timestamp;
use serde_json::Value;
use sim_support::*;

async fn start(devices: usize, start: Timestamp, quota: Option<&str>, fleet: u64) -> SimHandle {
    sim::start(SimConfig {
        devices,
        seed: 7,
        clock: ClockMode::Manual { start },
        daily_quota: quota.map(|q| DailyQuota::parse(q).unwrap()),
        fleet_messages_per_device_day: fleet,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn billing(h: &SimHandle) -> BillingCounts {
    h.billing_counts()
}

async fn query_rows(client: &IotHubClient, q: &str) -> Vec<Value> {
    client.query::<Value>(q).try_collect().await.unwrap()
}

const AGENTS: &str = "SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent'";
const AGENTS_PROJECTED: &str = "SELECT deviceId, moduleId, properties.reported.lastDesiredStatus FROM devices.modules WHERE moduleId = '$edgeAgent'";

#[tokio::test]
async fn the_client_reports_exactly_what_the_simulator_bills() {
    let h = start(25, t0(), None, 0).await;
    let observer = Arc::new(BillingObserver::default());
    let client = edgewatch_client(&h, 10, observer.clone());
    let ids = h.device_ids();
    h.apply(&ids[24], Action::Offline {}).unwrap();
    advance(&h, 600);

    // Twin reads, each billed by its own size.
    let mut expected_twin_reads = 0;
    for id in &ids[..4] {
        for module in ["$edgeAgent", "$edgeHub"] {
            let twin: Value = client.get_module_twin(id, module).await.unwrap();
            let bytes = serde_json::to_vec(&twin).unwrap().len() as u64;
            expected_twin_reads += Meter::STANDARD.twin_read(bytes);
        }
    }
    let device: Value = client.get_device_twin(&ids[0]).await.unwrap();
    expected_twin_reads +=
        Meter::STANDARD.twin_read(serde_json::to_vec(&device).unwrap().len() as u64);

    // Two queries of three pages each (25 twins, 10 a page), full and projected.
    assert_eq!(query_rows(&client, AGENTS).await.len(), 25);
    assert_eq!(query_rows(&client, AGENTS_PROJECTED).await.len(), 25);

    // Pings: 2 messages each; the offline device's 404103 costs nothing.
    for id in &ids[..3] {
        client
            .ping_edge_agent(id, Duration::from_secs(10))
            .await
            .unwrap();
    }
    let offline = client
        .ping_edge_agent(&ids[24], Duration::from_secs(10))
        .await;
    assert_eq!(offline.unwrap_err().kind(), ErrorKind::DeviceNotOnline);

    // Registry reads are free; errors are free.
    for id in &ids[..2] {
        let _: Vec<Value> = client.list_modules(id).await.unwrap();
    }
    let missing = client
        .get_module_twin::<Value>("no-such-device", "$edgeAgent")
        .await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::DeviceNotFound);
    h.set_throttle(ThrottleQuotas {
        twin_reads_per_second: Some(0),
        ..ThrottleQuotas::default()
    });
    let throttled = client.get_module_twin::<Value>(&ids[0], "$edgeAgent").await;
    assert_eq!(throttled.unwrap_err().kind(), ErrorKind::Throttled);
    h.set_throttle(ThrottleQuotas::default());

    let b = billing(&h);
    let counts = h.request_counts();
    assert_eq!(
        counts.throttled, 3,
        "three attempts of the throttled read, none billed"
    );
    assert_eq!(b.messages.twin_reads, expected_twin_reads);
    assert_eq!(
        observer.total(Some(Operation::GetModuleTwin)) + observer.total(Some(Operation::GetTwin)),
        expected_twin_reads
    );
    assert_eq!(b.messages.methods, 6, "three pings at 2 messages");
    assert_eq!(observer.total(Some(Operation::InvokeMethod)), 6);
    assert_eq!(b.messages.registry, 0);
    assert_eq!(observer.reports(Operation::ListModules), 2);
    assert_eq!(observer.total(Some(Operation::ListModules)), 0);
    assert_eq!(observer.reports(Operation::Query), 6, "one report per page");
    assert_eq!(b.messages.queries, observer.total(Some(Operation::Query)));
    assert_eq!(b.messages.total, observer.total(None));
    assert_eq!(
        b.requests.total,
        counts.twin_reads + counts.queries + counts.methods + counts.registry
    );
    assert_eq!(b.days.len(), 1);
    assert_eq!(b.days[0].date.to_string(), "2026-03-01");
    assert_eq!(b.days[0].messages, b.messages);
    assert_eq!(b.days[0].remaining, None, "no quota configured");
    assert!(b.response_bytes.queries > b.response_bytes.methods);
    h.shutdown().await;
}

#[tokio::test]
async fn a_generated_edge_agent_twin_costs_what_a_real_one_does() {
    let h = start(3, t0(), None, 0).await;
    let c = HubClient::new(&h);
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/edgeAgent-module-twin-full_linux2_iotedge.json"
    ))
    .unwrap();
    let real: Value = serde_json::from_slice(&fixture).unwrap();
    let real_bytes = serde_json::to_vec(&real).unwrap().len() as u64;
    let twin = c.module_twin("edge-0001", "$edgeAgent").await;
    let sim_bytes = serde_json::to_vec(&twin).unwrap().len() as u64;
    let real_cost = Meter::STANDARD.twin_read(real_bytes);
    assert_eq!(
        real_cost, 3,
        "the real twin ({real_bytes} bytes) is 3 messages"
    );
    assert_eq!(
        Meter::STANDARD.twin_read(sim_bytes),
        real_cost,
        "a generated $edgeAgent twin ({sim_bytes} bytes) is billed like the real one ({real_bytes} bytes)"
    );
    assert_eq!(billing(&h).messages.twin_reads, real_cost);
    h.shutdown().await;
}

fn midnight() -> Timestamp {
    "2026-03-02T00:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn a_used_up_quota_refuses_billable_calls_until_midnight_without_retries() {
    let late = "2026-03-01T23:50:00Z".parse().unwrap();
    let h = start(10, late, Some("20"), 0).await;
    let observer = Arc::new(BillingObserver::default());
    let client = edgewatch_client(&h, 100, observer.clone());
    let ids = h.device_ids();

    let mut served = 0;
    let refusal = loop {
        match client
            .get_module_twin::<Value>(&ids[served % ids.len()], "$edgeAgent")
            .await
        {
            Ok(_) => served += 1,
            Err(e) => break e,
        }
        assert!(served < 20, "the quota of 20 must run out");
    };
    assert!(
        served >= 6,
        "a few reads fit before the quota is used up ({served})"
    );
    assert_eq!(refusal.kind(), ErrorKind::DailyQuotaExceeded);
    assert_eq!(refusal.error_code(), Some(403002));
    assert_eq!(refusal.status(), Some(403));
    assert_eq!(refusal.attempts(), 1, "never retried");
    assert_eq!(refusal.quota_resets_at(), Some(midnight()));
    assert!(
        refusal.to_string().contains("2026-03-02T00:00:00Z"),
        "{refusal}"
    );
    assert_eq!(h.request_counts().twin_reads as usize, served + 1);

    // Until midnight nothing billable leaves the client; registry reads still work.
    let before = h.request_counts();
    let q = client.query::<Value>(AGENTS).try_collect::<Vec<_>>().await;
    assert_eq!(q.unwrap_err().kind(), ErrorKind::DailyQuotaExceeded);
    let ping = client
        .ping_edge_agent(&ids[0], Duration::from_secs(10))
        .await;
    let ping = ping.unwrap_err();
    assert_eq!(ping.kind(), ErrorKind::DailyQuotaExceeded);
    assert!(ping.was_unsent());
    let modules: Vec<Value> = client.list_modules(&ids[0]).await.unwrap();
    assert!(modules.len() >= 3);
    let after = h.request_counts();
    assert_eq!(
        (
            after.twin_reads,
            after.queries,
            after.methods,
            after.registry
        ),
        (
            before.twin_reads,
            before.queries,
            before.methods,
            before.registry + 1
        ),
        "only the registry read reached the hub"
    );
    assert_eq!(client.quota_blocked_until(), Some(midnight()));

    // Another client (a fresh process) is refused by the hub itself, in the method form.
    let other = edgewatch_client(&h, 100, Arc::new(BillingObserver::default()));
    let hub_says = other
        .ping_edge_agent(&ids[0], Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(hub_says.kind(), ErrorKind::DailyQuotaExceeded);
    assert!(!hub_says.was_unsent());

    let b = billing(&h);
    assert_eq!(b.quota_exceeded.twin_reads, 1);
    assert_eq!(b.quota_exceeded.methods, 1);
    assert_eq!(b.days[0].remaining, Some(0));
    assert_eq!(
        b.messages.total,
        observer.total(None),
        "refusals cost nothing"
    );

    // Simulated midnight: the quota is fresh and the client calls again.
    advance(&h, 600);
    assert_eq!(client.quota_blocked_until(), None);
    let _: Value = client.get_module_twin(&ids[0], "$edgeAgent").await.unwrap();
    client
        .ping_edge_agent(&ids[0], Duration::from_secs(10))
        .await
        .unwrap();
    let b = billing(&h);
    assert_eq!(b.days.len(), 2);
    assert_eq!(b.days[1].date.to_string(), "2026-03-02");
    assert_eq!(b.days[1].messages.methods, 2);
    assert!(b.days[1].used >= 3);
    h.shutdown().await;
}

#[tokio::test]
async fn the_fleets_own_telemetry_shares_the_quota() {
    // 10 devices × 100 messages a day = the whole quota of 1,000 by the end of the day.
    let h = start(
        10,
        "2026-03-01T00:00:00Z".parse().unwrap(),
        Some("1000"),
        100,
    )
    .await;
    let observer = Arc::new(BillingObserver::default());
    let client = edgewatch_client(&h, 100, observer.clone());
    let ids = h.device_ids();
    advance(&h, 23 * 3600);
    let b = billing(&h);
    assert_eq!(b.fleet_messages, 958, "23 hours of 1,000 a day");
    assert_eq!(b.days[0].remaining, Some(42));

    let mut served = 0;
    let refusal = loop {
        match client
            .ping_edge_agent(&ids[served % ids.len()], Duration::from_secs(10))
            .await
        {
            Ok(_) => served += 1,
            Err(e) => break e,
        }
        assert!(served < 100);
    };
    assert_eq!(refusal.kind(), ErrorKind::DailyQuotaExceeded);
    assert_eq!(served, 21, "42 messages left, 2 per ping");
    advance(&h, 1800);
    let b = billing(&h);
    assert_eq!(b.days[0].used, 1000);
    assert_eq!(
        b.fleet_messages, 958,
        "the fleet's telemetry is refused too once the quota is used up"
    );
    assert_eq!(
        b.fleet_refused, 21,
        "half an hour of telemetry (20.8, plus the fraction carried) refused"
    );
    assert_eq!(
        b.messages.methods,
        observer.total(Some(Operation::InvokeMethod))
    );
    assert_eq!(b.messages.methods, 42);
    h.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_sets_the_quota_and_reports_billing() {
    let h = start(2, t0(), None, 0).await;
    let c = HubClient::new(&h);
    let admin = |path: &str| format!("{}/_sim/{path}", h.base_url());
    let (status, _, body) = c
        .send(
            c.http
                .put(admin("quota"))
                .json(&serde_json::json!({"dailyQuota": "free", "fleetMessagesPerDeviceDay": 12})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["dailyQuota"], 8000);
    assert_eq!(body["chunkBytes"], 512);
    let (status, _, body) = c
        .send(
            c.http
                .put(admin("quota"))
                .json(&serde_json::json!({"dailyQuota": "s9"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("s9"), "{body}");

    let twin = c.module_twin("edge-0001", "$edgeHub").await;
    let bytes = serde_json::to_vec(&twin).unwrap().len() as u64;
    advance(&h, 3600);
    let (_, _, counts) = c.send(c.http.get(admin("counts"))).await;
    assert_eq!(
        counts["twinReads"], 1,
        "the request counters are still there"
    );
    let billing = &counts["billing"];
    assert_eq!(billing["chunkBytes"], 512);
    assert_eq!(
        billing["messages"]["twinReads"],
        Meter::FREE.twin_read(bytes)
    );
    assert_eq!(billing["responseBytes"]["twinReads"], bytes);
    assert_eq!(
        billing["fleetMessages"], 1,
        "2 devices × 12 a day for an hour"
    );
    assert_eq!(billing["days"][0]["date"], "2026-03-01");
    assert_eq!(
        billing["days"][0]["remaining"],
        8000 - billing["days"][0]["used"].as_u64().unwrap()
    );
    h.shutdown().await;
}
