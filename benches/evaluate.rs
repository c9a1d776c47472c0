//! Parse + evaluate of one realistic device: an `$edgeAgent` twin with five custom
//! modules (plus edgeAgent and edgeHub, with their `$metadata` trees) and an `$edgeHub`
//! twin with three clients. This is the per-device CPU cost of a sweep.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use edgewatch::health::{DeviceTwins, PingOutcome, Policy, evaluate};
use edgewatch::twin::{EdgeAgentTwin, EdgeHubTwin};
use jiff::Timestamp;

fn read(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/variants")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(agent: &[u8], hub: &[u8]) -> DeviceTwins {
    let mut twins = DeviceTwins::new(EdgeAgentTwin::from_slice(agent).expect("agent twin"));
    twins.edge_hub = Some(EdgeHubTwin::from_slice(hub).expect("hub twin"));
    twins
}

fn bench(c: &mut Criterion) {
    let agent = read("edgeAgent-five-modules_linux2.json");
    let hub = read("edgeHub-healthy_linux2.json");
    let now: Timestamp = "2021-06-28T21:55:00Z".parse().unwrap();
    let policy = Policy::default();
    let ping = PingOutcome::Responded { latency_ms: 40 };

    let twins = parse(&agent, &hub);
    let check = evaluate(&twins, &ping, None, &policy, now);
    assert!(
        check.report.is_ready(),
        "the benchmark device must be judged fully"
    );
    assert_eq!(check.report.modules.len(), 7);

    c.bench_function("parse+evaluate device (5 modules + hub)", |b| {
        b.iter(|| {
            let twins = parse(black_box(&agent), black_box(&hub));
            evaluate(&twins, &ping, None, &policy, now)
        })
    });
    c.bench_function("parse only (agent + hub)", |b| {
        b.iter(|| parse(black_box(&agent), black_box(&hub)))
    });
    // The same views built from a full `serde_json::Value` (as the IoT Hub client has
    // them from a query page): the price of the `$metadata` trees `from_slice` skips.
    c.bench_function("parse only, via a full serde_json::Value", |b| {
        b.iter(|| {
            let agent: serde_json::Value = serde_json::from_slice(black_box(&agent)).unwrap();
            let hub: serde_json::Value = serde_json::from_slice(black_box(&hub)).unwrap();
            let mut twins = DeviceTwins::new(EdgeAgentTwin::from_value(&agent).unwrap());
            twins.edge_hub = Some(EdgeHubTwin::from_value(&hub).unwrap());
            twins
        })
    });
    c.bench_function("evaluate only (parsed twins)", |b| {
        b.iter(|| evaluate(black_box(&twins), &ping, None, &policy, now))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
