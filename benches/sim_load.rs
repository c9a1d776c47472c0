//! Load generator for the simulator: 10,000 devices in one process, then timed rounds of
//! module-twin GETs and query pages over loopback HTTP. Prints RSS and medians.
//!
//! `cargo bench --bench sim_load` (env: SIM_LOAD_DEVICES, SIM_LOAD_ROUNDS, SIM_LOAD_GETS,
//! SIM_LOAD_CONCURRENCY). Every loop is bounded in count; the run stops by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewatch::iothub::sas;
use edgewatch::sim::{self, SimConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of this process in MiB (Linux `/proc/self/status`).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

struct Target {
    http: reqwest::Client,
    base: String,
    auth: String,
}

async fn get_round(
    t: Arc<Target>,
    ids: Arc<Vec<String>>,
    total: usize,
    concurrency: usize,
) -> (f64, Vec<f64>) {
    let started = Instant::now();
    let per_worker = total / concurrency;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (t, ids) = (t.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for i in 0..per_worker {
                let id = &ids[(w * 7919 + i * 104_729) % ids.len()];
                let url = format!(
                    "{}/twins/{id}/modules/%24edgeAgent?api-version=2021-04-12",
                    t.base
                );
                let begin = Instant::now();
                let resp = t
                    .http
                    .get(url)
                    .header("Authorization", &t.auth)
                    .send()
                    .await
                    .expect("GET");
                assert!(resp.status().is_success(), "{}", resp.status());
                let body = resp.bytes().await.expect("body");
                assert!(body.len() > 1000);
                latencies.push(begin.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("worker"));
    }
    let secs = started.elapsed().as_secs_f64();
    (all.len() as f64 / secs, all)
}

async fn query_sweep(t: &Target, page: usize) -> (usize, usize, f64) {
    let started = Instant::now();
    let mut token: Option<String> = None;
    let (mut pages, mut items) = (0, 0);
    loop {
        let mut req = t
            .http
            .post(format!("{}/devices/query?api-version=2021-04-12", t.base))
            .header("Authorization", &t.auth)
            .header("x-ms-max-item-count", page.to_string())
            .json(&serde_json::json!({"query": "SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent'"}));
        if let Some(c) = &token {
            req = req.header("x-ms-continuation", c);
        }
        let resp = req.send().await.expect("query");
        assert!(resp.status().is_success());
        token = resp
            .headers()
            .get("x-ms-continuation")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Vec<serde_json::Value> = resp.json().await.expect("page");
        pages += 1;
        items += body.len();
        if token.is_none() || pages > 100_000 {
            break;
        }
    }
    (pages, items, started.elapsed().as_secs_f64())
}

fn main() {
    let devices = env_or("SIM_LOAD_DEVICES", 10_000);
    let rounds = env_or("SIM_LOAD_ROUNDS", 5);
    let gets = env_or("SIM_LOAD_GETS", 20_000);
    let concurrency = env_or("SIM_LOAD_CONCURRENCY", 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let rss_before = rss_mib();
        let build = Instant::now();
        let handle = sim::start(SimConfig {
            devices,
            seed: 2026,
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let build_secs = build.elapsed().as_secs_f64();
        let rss_fleet = rss_mib();
        let summary = handle.fleet_summary();
        println!(
            "fleet: {} devices, {} module twins, built in {build_secs:.2}s; RSS {rss_before:.1} MiB before, {rss_fleet:.1} MiB with the fleet (+{:.1} MiB)",
            summary.devices,
            summary.module_twins,
            rss_fleet - rss_before
        );
        let policy = &handle.policies()[0];
        let expiry = (jiff::Timestamp::now().as_second() + 3600) as u64;
        let target = Arc::new(Target {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(concurrency)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: handle.base_url(),
            auth: sas::token(handle.host_name(), &policy.key, &policy.name, expiry).expect("token"),
        });
        let ids = Arc::new(handle.device_ids());

        // Warm-up: connections and caches.
        let _ = get_round(target.clone(), ids.clone(), concurrency * 50, concurrency).await;
        let mut rates = Vec::new();
        let mut latencies = Vec::new();
        for r in 0..rounds {
            let (rate, lat) = get_round(target.clone(), ids.clone(), gets, concurrency).await;
            println!("GET round {r}: {rate:.0} module-twin GETs/s");
            rates.push(rate);
            latencies.extend(lat);
        }
        println!(
            "module-twin GETs ($edgeAgent, concurrency {concurrency}, {rounds}×{gets}): median {:.0}/s (min {:.0}, max {:.0}); latency median {:.2} ms, p99 {:.2} ms",
            median(rates.clone()),
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
            median(latencies.clone()),
            percentile(latencies, 0.99)
        );

        let mut page_rates = Vec::new();
        let mut sweep_secs = Vec::new();
        for r in 0..rounds {
            let (pages, items, secs) = query_sweep(&target, 100).await;
            assert_eq!(items, devices, "a sweep sees every $edgeAgent twin once");
            println!("query sweep {r}: {pages} pages of 100 in {secs:.2}s");
            page_rates.push(pages as f64 / secs);
            sweep_secs.push(secs);
        }
        println!(
            "query pages (SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent', 100 per page, sequential): median {:.1} pages/s = {:.0} twins/s; full sweep median {:.2}s",
            median(page_rates.clone()),
            median(page_rates) * 100.0,
            median(sweep_secs)
        );
        println!("RSS after load: {:.1} MiB", rss_mib());
        handle.shutdown().await;
    });
}
