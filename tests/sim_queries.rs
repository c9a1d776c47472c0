//! The query forms a cheap read path needs, through edgewatch's own client: projections,
//! `$metadata` and `$version` filters, `connectionState`, and a hub that refuses them.
//!
//! Cost: in-process simulator; each test states the billed messages it compares.

mod sim_support;

use std::sync::Arc;

use edgewatch::iothub::{ErrorKind, IotHubClient};
use edgewatch::sim::{
    self, Action, ClockMode, DeployOutcome, QueryRefusals, Scenario, SimConfig, SimHandle,
};
use futures::TryStreamExt;
use serde_json::{Value, json};
use sim_support::*;

async fn start(devices: usize, refusals: QueryRefusals) -> SimHandle {
    sim::start(SimConfig {
        devices,
        seed: 11,
        clock: ClockMode::Manual { start: t0() },
        query_refusals: refusals,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

async fn rows(client: &IotHubClient, q: &str) -> Vec<Value> {
    client.query::<Value>(q).try_collect().await.unwrap()
}

fn device_ids(rows: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["deviceId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Billed query messages of running `q` to the end.
async fn query_cost(h: &SimHandle, client: &IotHubClient, q: &str) -> (Vec<Value>, u64) {
    let before = h.billing_counts().messages.queries;
    let result = rows(client, q).await;
    (result, h.billing_counts().messages.queries - before)
}

#[tokio::test]
async fn a_projection_returns_the_same_rows_for_a_fraction_of_the_cost() {
    let h = start(40, QueryRefusals::default()).await;
    let client = edgewatch_client(&h, 100, Arc::new(BillingObserver::default()));
    let (full, full_cost) = query_cost(
        &h,
        &client,
        "SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent'",
    )
    .await;
    let (projected, projected_cost) = query_cost(
        &h,
        &client,
        "SELECT deviceId, moduleId, version, properties.reported.lastDesiredStatus AS status, properties.reported.$metadata.$lastUpdated AS reportedAt FROM devices.modules WHERE moduleId = '$edgeAgent'",
    )
    .await;
    assert_eq!(device_ids(&full), device_ids(&projected));
    let first = &projected[0];
    assert_eq!(
        first.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["deviceId", "moduleId", "reportedAt", "status", "version"]
    );
    assert_eq!(first["status"], json!({"code": 200, "description": ""}));
    let full_first = full
        .iter()
        .find(|t| t["deviceId"] == first["deviceId"])
        .unwrap();
    assert_eq!(first["version"], full_first["version"]);
    assert_eq!(
        first["reportedAt"],
        full_first["properties"]["reported"]["$metadata"]["$lastUpdated"]
    );
    assert!(
        projected_cost * 20 <= full_cost,
        "projected {projected_cost} messages vs SELECT * {full_cost}"
    );
    assert!(
        projected_cost <= 2,
        "40 rows of ~130 bytes: {projected_cost}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn metadata_version_and_connection_state_filters_find_exactly_what_changed() {
    let h = start(12, QueryRefusals::default()).await;
    let client = edgewatch_client(&h, 100, Arc::new(BillingObserver::default()));
    let ids = h.device_ids();
    advance(&h, 3600);
    // The hub's own spelling of "now": 7 fractional digits and Z.
    let watermark = "2026-03-01T13:00:00.0000000Z";
    h.apply(
        &ids[2],
        Action::Crash {
            module: "SimulatedTemperatureSensor".into(),
            exit_code: 1,
        },
    )
    .unwrap();
    h.apply(
        &ids[5],
        Action::Unhealthy {
            module: "SimulatedTemperatureSensor".into(),
        },
    )
    .unwrap();
    h.apply(
        &ids[7],
        Action::Deploy {
            images: [(
                "SimulatedTemperatureSensor".to_string(),
                "example/sensor:2".to_string(),
            )]
            .into(),
            outcome: DeployOutcome::NeverApplied,
            delay: jiff::SignedDuration::ZERO,
        },
    )
    .unwrap();
    h.apply(&ids[9], Action::Offline {}).unwrap();
    advance(&h, 301);

    let changed = rows(
        &client,
        &format!(
            "SELECT deviceId, properties.reported.$metadata.$lastUpdated AS at FROM devices.modules WHERE moduleId = '$edgeAgent' AND properties.reported.$metadata.$lastUpdated >= '{watermark}'"
        ),
    )
    .await;
    assert_eq!(device_ids(&changed), [ids[2].clone(), ids[5].clone()]);
    assert!(
        changed
            .iter()
            .all(|r| r["at"].as_str().unwrap() >= watermark),
        "{changed:?}"
    );

    let sloppy = rows(
        &client,
        "SELECT deviceId FROM devices.modules WHERE moduleId = '$edgeAgent' AND properties.reported.$metadata.$lastUpdated >= '2026-03-01T13:00:00Z'",
    )
    .await;
    assert_eq!(
        device_ids(&sloppy),
        [ids[2].clone()],
        "strings compare as strings: a watermark without fractional digits misses the change \
         at 13:00:00.0000000Z (its own second) and finds only the restart at 13:00:10"
    );

    let nested = rows(
        &client,
        &format!(
            "SELECT deviceId FROM devices.modules WHERE moduleId = '$edgeAgent' AND properties.reported.$metadata.modules.SimulatedTemperatureSensor.runtimeStatus.$lastUpdated >= '{watermark}'"
        ),
    )
    .await;
    assert_eq!(device_ids(&nested), [ids[2].clone(), ids[5].clone()]);

    let pending = rows(
        &client,
        "SELECT deviceId, properties.desired.$version AS desired, properties.reported.lastDesiredVersion AS applied FROM devices.modules WHERE moduleId = '$edgeAgent' AND properties.desired.$version != properties.reported.lastDesiredVersion",
    )
    .await;
    assert_eq!(device_ids(&pending), [ids[7].clone()]);
    assert_eq!(
        pending[0]["desired"].as_i64().unwrap(),
        pending[0]["applied"].as_i64().unwrap() + 1
    );
    let moved = rows(
        &client,
        "SELECT deviceId FROM devices.modules WHERE moduleId = '$edgeAgent' AND properties.desired.$version > 2",
    )
    .await;
    assert_eq!(device_ids(&moved), [ids[7].clone()]);

    let disconnected = rows(
        &client,
        "SELECT deviceId, connectionState, lastActivityTime FROM devices WHERE connectionState = 'Disconnected'",
    )
    .await;
    assert_eq!(device_ids(&disconnected), [ids[9].clone()]);
    assert_eq!(
        disconnected[0]["lastActivityTime"],
        "2026-03-01T13:00:00.0000000Z"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_hub_that_refuses_projections_or_metadata_filters_says_so_in_a_way_the_client_can_tell() {
    let h = start(
        3,
        QueryRefusals {
            projections: true,
            metadata_filters: true,
        },
    )
    .await;
    let client = edgewatch_client(&h, 100, Arc::new(BillingObserver::default()));
    for q in [
        "SELECT deviceId FROM devices",
        "SELECT * FROM devices.modules WHERE properties.reported.$metadata.$lastUpdated >= '2026-03-01T12:00:00.0000000Z'",
    ] {
        let e = client
            .query::<Value>(q)
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert!(e.is_unsupported_query_feature(), "{q}: {e}");
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!((e.status(), e.error_code()), (Some(400), Some(400004)));
        assert_eq!(e.attempts(), 1, "a refused query is not retried");
    }
    let refused = h.billing_counts();
    assert_eq!(
        (refused.requests.queries, refused.messages.queries),
        (2, 0),
        "refusals cost nothing"
    );
    assert_eq!(
        rows(
            &client,
            "SELECT * FROM devices.modules WHERE properties.desired.$version >= 1"
        )
        .await
        .len(),
        h.fleet_summary().module_twins,
        "the fallback (SELECT *, no $metadata) still works"
    );

    // The admin API switches the refusals at run time.
    let c = HubClient::new(&h);
    let (status, _, body) = c
        .send(
            c.http
                .put(format!("{}/_sim/query-refusals", h.base_url()))
                .json(&json!({"projections": false})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(
        body,
        json!({"projections": false, "metadataFilters": false})
    );
    assert_eq!(rows(&client, "SELECT deviceId FROM devices").await.len(), 3);
    h.shutdown().await;
}

#[tokio::test]
async fn projections_page_with_continuation_like_whole_twins() {
    let h = start(7, QueryRefusals::default()).await;
    let client = edgewatch_client(&h, 4, Arc::new(BillingObserver::default()));
    let all = rows(&client, "SELECT deviceId, moduleId FROM devices.modules").await;
    let fleet = h.fleet_summary();
    assert_eq!(all.len(), fleet.module_twins);
    let keys: std::collections::BTreeSet<(String, String)> = all
        .iter()
        .map(|r| {
            (
                r["deviceId"].as_str().unwrap().into(),
                r["moduleId"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(keys.len(), fleet.module_twins, "no row twice, none missing");
    let pages = h.billing_counts().requests.queries as usize;
    assert_eq!(pages, fleet.module_twins.div_ceil(4));

    let scenario = Scenario::from_yaml("devices: [{id: a-1}]").unwrap();
    let h2 = sim::start(SimConfig {
        scenario,
        clock: ClockMode::Manual { start: t0() },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let c2 = HubClient::new(&h2);
    let (status, headers, body) = c2
        .query("SELECT deviceId, tags.nothing FROM devices", None, None)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(headers["x-ms-item-type"], "raw");
    assert_eq!(
        body,
        json!([{"deviceId": "a-1"}]),
        "missing paths are left out"
    );
    h2.shutdown().await;
    h.shutdown().await;
}
