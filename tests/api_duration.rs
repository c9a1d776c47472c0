//! The duration grammar is one: the CRD's `pattern` (what the API server accepts) and
//! `parse_duration` (what the operator and every CLI flag parse) agree on every string,
//! and the CRD's CEL rules evaluate both forms.

use std::time::Duration;

use edgewatch::api::{DURATION_PATTERN, EdgeDeviceWatch, EdgeDeviceWatchSpec, parse_duration};
use kube::CustomResourceExt;
use proptest::prelude::*;
use regex::Regex;

fn pattern() -> Regex {
    Regex::new(DURATION_PATTERN).expect("the CRD pattern compiles")
}

/// Accepted strings with their value, and refused ones: both sides must agree on each.
const ACCEPTED: &[(&str, u64)] = &[
    ("10s", 10_000),
    ("90s", 90_000),
    ("5m", 300_000),
    ("1h", 3_600_000),
    ("1h30m", 5_400_000),
    ("2m30s", 150_000),
    ("1h0m0s", 3_600_000),
    ("500ms", 500),
    ("1s500ms", 1_500),
    ("0s", 0),
    ("999999h", 999_999 * 3_600_000),
    ("PT15M", 900_000),
    ("PT1H30M", 5_400_000),
    ("PT10S", 10_000),
    ("PT1H", 3_600_000),
    ("PT1M30S", 90_000),
];

const REFUSED: &[&str] = &[
    "",
    "abc",
    "10",
    "s",
    "-10s",
    "1.5h",
    "1d",
    "10S",
    "1H",
    "1h 30m",
    " 5m",
    "5m ",
    "30m1h",
    "1m1m",
    "1ms1s",
    "PT",
    "pt15m",
    "PT15m",
    "PT1.5H",
    "P1D",
    "P1DT1H",
    "PT1M1H",
    "PT500MS",
    "1234567s",
    "PT1234567S",
    "5mins",
    "1hr",
];

#[test]
fn the_pattern_and_the_parser_agree_on_a_table_of_cases() {
    let re = pattern();
    for (text, millis) in ACCEPTED {
        assert!(re.is_match(text), "the pattern refuses {text:?}");
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(*millis)),
            "{text}"
        );
    }
    for text in REFUSED {
        assert!(!re.is_match(text), "the pattern accepts {text:?}");
        let error = parse_duration(text).expect_err(text).to_string();
        assert!(
            error.contains("1h30m") && error.contains("PT15M"),
            "the message names the accepted forms: {error}"
        );
    }
}

#[test]
fn every_duration_field_of_the_crd_carries_the_pattern() {
    let crd = serde_json::to_value(EdgeDeviceWatch::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for field in [
        &spec["interval"],
        &spec["staleAfter"],
        &spec["deploymentGracePeriod"],
        &spec["ping"]["properties"]["interval"],
        &spec["restartLoop"]["properties"]["window"],
    ] {
        assert_eq!(field["pattern"], DURATION_PATTERN, "{field}");
    }
}

fn spec_with(interval: &str, ping_interval: &str) -> EdgeDeviceWatchSpec {
    serde_saphyr::from_str(&format!(
        "hub: {{connectionStringSecretRef: {{name: s, key: k}}}}\ndevices: [gw]\ninterval: {interval}\nping: {{interval: {ping_interval}}}\n"
    ))
    .unwrap()
}

#[test]
fn cel_minimums_evaluate_both_forms() {
    for (interval, ping) in [
        ("10s", "PT10S"),
        ("PT15M", "5m"),
        ("PT1H30M", "PT1H"),
        ("1h30m", "PT5M"),
    ] {
        if let Err(errors) = EdgeDeviceWatch::new("w", spec_with(interval, ping)).validate_cel() {
            panic!("{interval}/{ping} refused: {errors}");
        }
    }
    for (interval, ping, needle) in [
        ("PT5S", "5m", "spec.interval: must be at least 10s"),
        ("9s", "5m", "spec.interval: must be at least 10s"),
        ("1m", "PT9S", "spec.ping.interval: must be at least 10s"),
        ("1m", "500ms", "spec.ping.interval: must be at least 10s"),
    ] {
        let errors = EdgeDeviceWatch::new("w", spec_with(interval, ping))
            .validate_cel()
            .expect_err("below the minimum");
        assert!(
            errors.to_string().contains(needle),
            "{interval}/{ping}: {errors}"
        );
    }
}

/// Strings over the grammar's alphabet, so both accepted and refused shapes come up.
fn near_durations() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9hmsPTHMS]{0,14}",
        "(PT)?([0-9]{1,7}[hmsHMS]{1,2}){1,4}",
        "[0-9]{1,7}(h|m|s|ms)([0-9]{1,7}(h|m|s|ms)){0,3}",
    ]
}

proptest! {
    #[test]
    fn a_value_the_pattern_accepts_parses_and_vice_versa(text in near_durations()) {
        let re = pattern();
        prop_assert_eq!(
            re.is_match(&text),
            parse_duration(&text).is_ok(),
            "pattern and parser disagree on {:?}", text
        );
    }

    #[test]
    fn any_string_agrees_too(text in "\\PC{0,12}") {
        prop_assert_eq!(pattern().is_match(&text), parse_duration(&text).is_ok(), "{:?}", text);
    }
}
