//! Client-side pacing measured at the server: the configured rate is never exceeded,
//! whatever the callers' demand, and concurrency stays bounded.

mod iothub_support;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use edgewatch::iothub::RateLimit;
use futures::future::join_all;
use iothub_support::*;
use serde_json::{Value, json};

/// The most arrivals inside any window of length `window` starting at an arrival.
fn busiest_window(arrivals: &[Instant], window: Duration) -> usize {
    let mut sorted = arrivals.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|t| **t - sorted[i] < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_rate_is_spread_out_and_never_exceeds_the_limit() {
    let server = TestServer::http(|_, _| Reply::json(200, json!({"deviceId": "gw"}))).await;
    let limit = RateLimit {
        requests: NonZeroU32::new(20).unwrap(),
        period: Duration::from_millis(200),
    };
    let mut config = config_for(&server);
    config.rate_limits.twin_reads = limit;
    config.max_concurrent_requests = 64;
    let client = sas_client(config);
    let demand = 10 * limit.requests.get() as usize;

    let started = Instant::now();
    let calls = (0..demand).map(|i| {
        let client = client.clone();
        async move {
            if i % 2 == 0 {
                client
                    .get_module_twin::<Value>(&format!("gw-{i}"), "$edgeAgent")
                    .await
            } else {
                client.get_device_twin::<Value>(&format!("gw-{i}")).await
            }
        }
    });
    let results = join_all(calls).await;
    let elapsed = started.elapsed();

    assert!(results.iter().all(Result::is_ok));
    let arrivals: Vec<Instant> = server.requests().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), demand);
    // Even spacing allows `requests` per period plus the one on the window's edge; one more
    // for scheduling jitter between the limiter and the server's clock.
    let busiest = busiest_window(&arrivals, limit.period);
    assert!(
        busiest <= limit.requests.get() as usize + 2,
        "{busiest} requests arrived within one {:?} window (limit {})",
        limit.period,
        limit.requests
    );
    let achieved = (demand - 1) as f64
        / (arrivals
            .iter()
            .max()
            .unwrap()
            .duration_since(*arrivals.iter().min().unwrap()))
        .as_secs_f64();
    eprintln!(
        "pacing: {demand} requests, busiest {:?} window {busiest}, achieved {achieved:.1}/s for a limit of {:.1}/s",
        limit.period,
        f64::from(limit.requests.get()) / limit.period.as_secs_f64()
    );
    let minimum = limit.interval() * (demand as u32 - 1);
    assert!(
        elapsed >= minimum.mul_f64(0.95),
        "{elapsed:?} < {minimum:?}: the rate was not applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn categories_have_separate_budgets() {
    let server = TestServer::http(|r, _| {
        if r.path == "/devices/query" {
            Reply::json(200, json!([]))
        } else {
            Reply::json(200, json!({"status": 200, "payload": null}))
        }
    })
    .await;
    let mut config = config_for(&server);
    config.rate_limits.queries = RateLimit::per_minute(NonZeroU32::new(1).unwrap());
    config.rate_limits.methods = RateLimit::per_second(NonZeroU32::new(1000).unwrap());
    let client = sas_client(config);

    let _ = client
        .query_page::<Value>("SELECT * FROM devices", None)
        .await
        .unwrap();
    // The query budget is now spent for a minute; pings must not wait for it.
    let started = Instant::now();
    for i in 0..20 {
        client
            .ping_edge_agent(&format!("gw-{i}"), Duration::from_secs(5))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let second_query = tokio::time::timeout(
        Duration::from_millis(200),
        client.query_page::<Value>("SELECT * FROM devices", None),
    )
    .await;
    assert!(
        second_query.is_err(),
        "the second query waits for its budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_bounded() {
    let server =
        TestServer::http(|_, _| Reply::json(200, json!({})).after(Duration::from_millis(40))).await;
    let mut config = config_for(&server);
    config.max_concurrent_requests = 3;
    config.rate_limits.twin_reads = RateLimit::per_second(NonZeroU32::new(10_000).unwrap());
    let client = sas_client(config);

    let calls = (0..12).map(|i| {
        let client = client.clone();
        async move { client.get_device_twin::<Value>(&format!("gw-{i}")).await }
    });
    let results = join_all(calls).await;

    assert!(results.iter().all(Result::is_ok));
    assert_eq!(server.requests().len(), 12);
    assert_eq!(server.max_in_flight(), 3);
}
