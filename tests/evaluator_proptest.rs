//! Malformed input never panics: arbitrary bytes and arbitrary JSON through every twin
//! parser, and real twins with arbitrary values planted anywhere through the evaluator.

mod common;

use common::*;
use edgewatch::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};
use edgewatch::health::{DeviceMemory, DeviceTwins, PingError, PingOutcome, Policy, evaluate};
use edgewatch::twin::{DeviceTwin, EdgeAgentTwin, EdgeHubTwin, ModuleTwin};
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys the parsers look for, so generated objects reach deep code paths.
const KEYS: &[&str] = &[
    "deviceId",
    "moduleId",
    "etag",
    "version",
    "properties",
    "desired",
    "reported",
    "$version",
    "$metadata",
    "$lastUpdated",
    "modules",
    "systemModules",
    "edgeAgent",
    "edgeHub",
    "simtemp",
    "settings",
    "image",
    "status",
    "runtimeStatus",
    "exitCode",
    "restartCount",
    "lastRestartTimeUtc",
    "lastStartTimeUtc",
    "lastExitTimeUtc",
    "lastDesiredVersion",
    "lastDesiredStatus",
    "code",
    "description",
    "clients",
    "lastConnectedTimeUtc",
    "tags",
    "capabilities",
    "iotEdge",
    "SendInterval",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::from("$edgeAgent")),
        Just(Value::from("$edgeHub")),
        Just(Value::from("0001-01-01T00:00:00")),
        Just(Value::from("2021-06-28T21:46:40.4869405")),
        Just(Value::from("9999-12-31T23:59:59.9999999Z")),
        prop::sample::select(vec![
            "running", "failed", "stopped", "backoff", "dead", "unknown"
        ])
        .prop_map(Value::from),
        prop::sample::select(vec![200i64, 400, 406, 412, 417, 500]).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn ping() -> impl Strategy<Value = PingOutcome> {
    prop_oneof![
        any::<u64>().prop_map(|latency_ms| PingOutcome::Responded { latency_ms }),
        ".{0,10}".prop_map(|m| PingOutcome::NotOnline(PingError::new(Some(404_103), None, m))),
        ".{0,10}".prop_map(|m| PingOutcome::Timeout(PingError::new(None, None, m))),
        ".{0,10}".prop_map(|m| PingOutcome::DeviceNotFound(PingError::new(Some(404_001), None, m))),
        Just(PingOutcome::Skipped),
        (any::<Option<u32>>(), ".{0,10}")
            .prop_map(|(code, m)| PingOutcome::Failed(PingError::new(code, None, m))),
    ]
}

fn instant() -> impl Strategy<Value = Timestamp> {
    (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second())
        .prop_map(|s| Timestamp::from_second(s).expect("in range"))
}

/// Every JSON pointer inside a document.
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        _ => {}
    }
}

/// A real twin with one node anywhere replaced by arbitrary JSON.
fn mutated(name: &'static str) -> impl Strategy<Value = Value> {
    let doc = fixture(name);
    let mut paths = Vec::new();
    pointers(&doc, String::new(), &mut paths);
    (prop::sample::select(paths), json()).prop_map(move |(path, value)| {
        let mut doc = doc.clone();
        *doc.pointer_mut(&path).expect("path exists") = value;
        doc
    })
}

/// What any report must satisfy, whatever went in.
fn check_invariants(report: &DeviceReport, memory: &DeviceMemory, policy: &Policy) {
    let types: Vec<ConditionType> = report.conditions.iter().map(|c| c.type_).collect();
    assert_eq!(
        types,
        [
            ConditionType::Ready,
            ConditionType::Reachable,
            ConditionType::ModulesHealthy,
            ConditionType::InSync,
            ConditionType::Fresh
        ]
    );
    let aspects = &report.conditions[1..];
    let ready = &report.conditions[0];
    let any_false = aspects.iter().any(|c| c.status == ConditionStatus::False);
    assert_eq!(ready.status == ConditionStatus::False, any_false);
    if ready.status == ConditionStatus::True {
        assert!(
            aspects
                .iter()
                .all(|c| c.status == ConditionStatus::True || c.reason == Reason::PingSkipped)
        );
    }
    for c in &report.conditions {
        assert!(!c.message.is_empty());
    }
    for m in &memory.restarts {
        assert!(!m.recent.is_empty() && m.recent.len() <= policy.restart_loop.restarts as usize);
    }
    serde_json::to_string(report).expect("report serialises");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = EdgeAgentTwin::from_slice(&bytes);
        let _ = EdgeHubTwin::from_slice(&bytes);
        let _ = ModuleTwin::from_slice(&bytes);
        let _ = DeviceTwin::from_slice(&bytes);
    }

    #[test]
    fn parsers_survive_arbitrary_json(value in json()) {
        let as_bytes = serde_json::to_vec(&value).unwrap();
        // Bytes (parsed with metadata pruning) and values read the same views of the same
        // document. The document is the one the bytes hold: serde_json does not promise
        // that every float survives a text round trip bit for bit.
        let document: Value = serde_json::from_slice(&as_bytes).unwrap();
        let agent = EdgeAgentTwin::from_value(&document);
        let agent_from_bytes = EdgeAgentTwin::from_slice(&as_bytes);
        prop_assert_eq!(agent.as_ref().ok(), agent_from_bytes.as_ref().ok());
        prop_assert_eq!(
            EdgeHubTwin::from_value(&document).ok(),
            EdgeHubTwin::from_slice(&as_bytes).ok()
        );
        prop_assert_eq!(
            ModuleTwin::from_value(&document).ok(),
            ModuleTwin::from_slice(&as_bytes).ok()
        );
        prop_assert_eq!(
            DeviceTwin::from_value(&document).ok(),
            DeviceTwin::from_slice(&as_bytes).ok()
        );
        // Only non-objects and foreign module ids are refused.
        if let Value::Object(map) = &value {
            let module_id = map.get("moduleId").and_then(Value::as_str);
            prop_assert_eq!(agent.is_ok(), module_id.is_none_or(|id| id == "$edgeAgent"));
        } else {
            prop_assert!(agent.is_err());
        }
    }

    #[test]
    fn evaluator_survives_arbitrary_json_twins(
        agent in json(), hub in json(), module in json(), ping in ping(), now in instant(),
    ) {
        let mut twins = DeviceTwins::new(EdgeAgentTwin::from_value(&agent).unwrap_or_default());
        twins.edge_hub = EdgeHubTwin::from_value(&hub).ok();
        twins.modules.extend(ModuleTwin::from_value(&module).ok());
        let policy = Policy::default();
        let eval = evaluate(&twins, &ping, None, &policy, now);
        check_invariants(&eval.report, &eval.memory, &policy);
    }

    #[test]
    fn evaluator_survives_real_twins_with_planted_garbage(
        agent in mutated(HEALTHY_AGENT),
        hub in mutated(HEALTHY_HUB),
        module in mutated("variants/module-twin-tempSensor-drifted_linux2.json"),
        ping in ping(),
        now in instant(),
    ) {
        let mut twins = DeviceTwins::new(EdgeAgentTwin::from_value(&agent).unwrap_or_default());
        twins.edge_hub = EdgeHubTwin::from_value(&hub).ok();
        twins.modules.extend(ModuleTwin::from_value(&module).ok());
        let policy = Policy::default();
        let first = evaluate(&twins, &ping, None, &policy, now);
        check_invariants(&first.report, &first.memory, &policy);
        let second = evaluate(&twins, &ping, Some(&first.memory), &policy, now);
        check_invariants(&second.report, &second.memory, &policy);
        // Seeing the same twin again changes nothing.
        prop_assert_eq!(&second.memory, &first.memory);
        prop_assert_eq!(&second.report, &first.report);
    }

    #[test]
    fn evaluator_survives_restart_garbage_across_observations(
        counts in prop::collection::vec(any::<i64>(), 1..6),
        times in prop::collection::vec(instant(), 1..6),
        now in instant(),
    ) {
        let policy = Policy::default();
        let mut memory: Option<DeviceMemory> = None;
        for (count, time) in counts.iter().zip(&times) {
            let mut doc = fixture(HEALTHY_AGENT);
            set(&mut doc, &format!("{SIMTEMP}/restartCount"), Value::from(*count));
            set(&mut doc, &format!("{SIMTEMP}/lastRestartTimeUtc"), Value::from(time.to_string()));
            let eval = evaluate(&twins(&doc), &PingOutcome::Skipped, memory.as_ref(), &policy, now);
            check_invariants(&eval.report, &eval.memory, &policy);
            memory = Some(eval.memory);
        }
    }
}
