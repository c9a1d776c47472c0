//! Client-side evaluation of every CEL rule in the CRD, accepting and refusing. The cases
//! are shared with `tests/kube_crd.rs`, which sends each to the real API server.

#[path = "support/cel_cases.rs"]
mod cel_cases;

use cel_cases::{cel_cases, crd_rule_messages};
use edgewatch::api::EdgeDeviceWatch;

#[test]
fn every_case_gets_its_answer_from_client_side_cel() {
    let mut wrong = Vec::new();
    for case in cel_cases() {
        let answer = EdgeDeviceWatch::new("w", case.spec.clone()).validate_cel();
        match (case.refusal, answer) {
            (None, Ok(())) => {}
            (None, Err(errors)) => wrong.push(format!("{}: refused: {errors:?}", case.name)),
            (Some(message), Ok(())) => {
                wrong.push(format!("{}: accepted, expected {message:?}", case.name));
            }
            (Some(message), Err(errors)) => {
                let text = format!("{errors:?}");
                if !text.contains(message) || !case.names_its_field(&text) {
                    wrong.push(format!("{}: expected {message:?} in {text}", case.name));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_rule_of_the_crd_has_a_refusal_case() {
    let messages = crd_rule_messages();
    assert_eq!(messages.len(), 7, "{messages:#?}");
    let refusals: Vec<&str> = cel_cases().iter().filter_map(|c| c.refusal).collect();
    for message in &messages {
        assert!(
            refusals.contains(&message.as_str()),
            "no case in tests/support/cel_cases.rs is refused by the rule {message:?}"
        );
    }
}
