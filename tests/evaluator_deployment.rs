//! `InSync`: deployment processing, module comparison, `$edgeHub` and custom module
//! property drift.

mod common;

use common::*;
use edgewatch::health::report::ConditionStatus::{False, True, Unknown};
use edgewatch::health::report::ConditionType::{InSync, Ready};
use edgewatch::health::report::Reason;
use edgewatch::health::{
    DeviceTwins, PingOutcome, Policy, PropertyCheck, PropertySelection, evaluate,
};
use serde_json::{Value, json};

const DESIRED_UPDATED: &str = "/properties/desired/$metadata/$lastUpdated";

/// The healthy variant with a desired `$version` the agent has not processed, changed
/// `minutes_ago` before [`NOW`].
fn unprocessed(minutes_ago: i64) -> Value {
    let mut doc = fixture(HEALTHY_AGENT);
    set(&mut doc, "/properties/desired/$version", json!(3));
    let changed = now() - jiff::SignedDuration::from_mins(minutes_ago);
    set(&mut doc, DESIRED_UPDATED, json!(changed.to_string()));
    doc
}

fn with_status(code: i64, description: &str) -> Value {
    let mut doc = fixture(HEALTHY_AGENT);
    set(
        &mut doc,
        "/properties/reported/lastDesiredStatus",
        json!({"code": code, "description": description}),
    );
    doc
}

#[test]
fn applied_deployment_is_in_sync() {
    let r = report(&fixture(HEALTHY_AGENT), PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (True, Reason::InSync));
    assert!(r.drift.is_empty(), "{:?}", r.drift);
}

#[test]
fn untagged_desired_image_matches_reported_latest() {
    // Real twin: desired image has no tag, the agent reports `:latest`.
    let doc = fixture(HEALTHY_AGENT);
    let simtemp = agent(&doc);
    let desired = simtemp
        .desired_module("simtemp")
        .unwrap()
        .image
        .clone()
        .unwrap();
    let reported = simtemp
        .reported_module("simtemp")
        .unwrap()
        .image
        .clone()
        .unwrap();
    assert_ne!(desired, reported);
    assert_eq!(
        cond(&report(&doc, PingOutcome::Skipped), InSync),
        (True, Reason::InSync)
    );
}

#[test]
fn unprocessed_version_within_grace_is_in_progress() {
    let r = report(&unprocessed(5), PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (Unknown, Reason::DeploymentInProgress));
    let text = message(&r, InSync);
    assert!(
        text.contains("desired $version 3") && text.contains("lastDesiredVersion 2"),
        "{text}"
    );
    assert_eq!(r.drift[0].desired.as_deref(), Some("3"));
    assert_eq!(r.drift[0].reported.as_deref(), Some("2"));
}

#[test]
fn unprocessed_version_beyond_grace_is_pending() {
    let r = report(&unprocessed(11), PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (False, Reason::DeploymentPending));
    assert_eq!(cond(&r, Ready), (False, Reason::DeploymentPending));
}

#[test]
fn pending_deployment_skips_module_comparison() {
    // While the new deployment is not applied, module differences are expected.
    let mut doc = unprocessed(11);
    set(
        &mut doc,
        &format!("{SIMTEMP}/settings/image"),
        json!("other:1"),
    );
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(r.drift.len(), 1);
}

#[test]
fn grace_period_follows_the_policy() {
    let policy = Policy {
        deployment_grace: std::time::Duration::from_secs(30 * 60),
        ..Policy::default()
    };
    let eval = evaluate(
        &twins(&unprocessed(11)),
        &PingOutcome::Skipped,
        None,
        &policy,
        now(),
    );
    assert_eq!(
        cond(&eval.report, InSync),
        (Unknown, Reason::DeploymentInProgress)
    );
}

#[test]
fn codes_400_412_417_are_rejected() {
    for code in [400, 412, 417] {
        let r = report(&with_status(code, "bad manifest"), PingOutcome::Skipped);
        assert_eq!(
            cond(&r, InSync),
            (False, Reason::DeploymentRejected),
            "code {code}"
        );
        assert!(message(&r, InSync).contains(&format!("code {code}: bad manifest")));
    }
}

#[test]
fn code_500_is_failed() {
    let r = report(&with_status(500, "image pull failed"), PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (False, Reason::DeploymentFailed));
    assert!(message(&r, InSync).contains("image pull failed"));
}

#[test]
fn code_500_within_grace_is_in_progress_and_failed_after_it() {
    // A slow image pull ends in a transient 500 "The operation was canceled": within
    // deploymentGracePeriod of the desired change it is in progress, after it failed.
    let mut doc = with_status(500, "The operation was canceled");
    let changed = now() - jiff::SignedDuration::from_mins(3);
    set(&mut doc, DESIRED_UPDATED, json!(changed.to_string()));
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (Unknown, Reason::DeploymentInProgress));
    assert_eq!(cond(&r, Ready), (Unknown, Reason::DeploymentInProgress));
    let text = message(&r, InSync);
    assert!(text.contains("The operation was canceled"), "{text}");
    assert!(text.contains("within the 10m grace period"), "{text}");

    let changed = now() - jiff::SignedDuration::from_mins(11);
    set(&mut doc, DESIRED_UPDATED, json!(changed.to_string()));
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (False, Reason::DeploymentFailed));
    assert!(message(&r, InSync).contains("beyond the 10m grace period"));

    // Without a change time the grace cannot be granted.
    remove(&mut doc, DESIRED_UPDATED);
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (False, Reason::DeploymentFailed));
}

#[test]
fn desired_module_not_reported_is_missing() {
    let mut doc = fixture(HEALTHY_AGENT);
    set(
        &mut doc,
        "/properties/desired/modules/filter",
        json!({"settings": {"image": "contoso.azurecr.io/filter:1.0"}, "status": "running"}),
    );
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (False, Reason::ModuleMissing));
    assert_eq!(r.drift[0].module.as_deref(), Some("filter"));
}

#[test]
fn reported_module_not_desired_is_unexpected() {
    let mut doc = fixture(HEALTHY_AGENT);
    remove(&mut doc, "/properties/desired/modules/simtemp");
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (False, Reason::ModuleUnexpected));
    assert!(message(&r, InSync).contains("module simtemp runs on the device"));
}

#[test]
fn different_image_is_image_drift() {
    let mut doc = fixture(HEALTHY_AGENT);
    set(
        &mut doc,
        &format!("{SIMTEMP}/settings/image"),
        json!("mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0"),
    );
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (False, Reason::ImageDrift));
    let item = &r.drift[0];
    assert_eq!(
        item.reported.as_deref(),
        Some("mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0")
    );
    assert_eq!(
        item.desired.as_deref(),
        Some("mcr.microsoft.com/azureiotedge-simulated-temperature-sensor")
    );
}

#[test]
fn missing_outranks_image_drift_and_the_rest_is_counted() {
    let mut doc = fixture(HEALTHY_AGENT);
    set(&mut doc, &format!("{SIMTEMP}/settings/image"), json!("x:2"));
    set(
        &mut doc,
        "/properties/desired/modules/filter",
        json!({"settings": {"image": "f:1"}}),
    );
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (False, Reason::ModuleMissing));
    assert!(message(&r, InSync).ends_with("; 1 more difference"));
    assert_eq!(r.drift.len(), 2);
}

#[test]
fn agent_not_running_is_unknown_for_in_sync() {
    let r = report(&fixture(FULL_AGENT), PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (Unknown, Reason::AgentNotRunning));
}

#[test]
fn no_reported_state_is_unknown_for_in_sync() {
    let doc = fixture("edgeAgent-properties_v1.2-deployment_iotedge.json");
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, InSync), (Unknown, Reason::NoReportedState));
}

// ---- $edgeHub ----

fn with_hub(hub_doc: &Value) -> DeviceTwins {
    let mut twins = twins(&fixture(HEALTHY_AGENT));
    twins.edge_hub = Some(hub(hub_doc));
    twins
}

#[test]
fn hub_in_sync_keeps_device_in_sync() {
    let eval = run(
        &with_hub(&fixture(HEALTHY_HUB)),
        &PingOutcome::Skipped,
        None,
    );
    assert_eq!(cond(&eval.report, InSync), (True, Reason::InSync));
}

#[test]
fn hub_desired_version_not_applied_is_pending() {
    let mut doc = fixture(HEALTHY_HUB);
    set(
        &mut doc,
        "/properties/reported/lastDesiredVersion",
        json!(1),
    );
    let eval = run(&with_hub(&doc), &PingOutcome::Skipped, None);
    assert_eq!(
        cond(&eval.report, InSync),
        (False, Reason::DeploymentPending)
    );
    assert_eq!(eval.report.drift[0].module.as_deref(), Some("$edgeHub"));
}

#[test]
fn hub_rejecting_its_routes_is_rejected() {
    let mut doc = fixture(HEALTHY_HUB);
    set(
        &mut doc,
        "/properties/reported/lastDesiredStatus",
        json!({"code": 400, "description": "Error while parsing desired properties - route"}),
    );
    let eval = run(&with_hub(&doc), &PingOutcome::Skipped, None);
    assert_eq!(
        cond(&eval.report, InSync),
        (False, Reason::DeploymentRejected)
    );
    assert!(message(&eval.report, InSync).starts_with("$edgeHub rejected"));
}

#[test]
fn disconnected_hub_clients_are_listed_but_change_nothing() {
    let eval = run(&with_hub(&fixture(HEALTHY_HUB)), &responded(), None);
    let clients = &eval.report.disconnected_clients;
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].name, "linux2/opcPublisher");
    assert_eq!(clients[0].status, "Disconnected");
    assert_eq!(
        clients[0].last_disconnected,
        Some(ts("2021-06-28T21:02:42.1398325Z"))
    );
    assert!(eval.report.is_ready());
}

// ---- custom module properties ----

fn with_module(module_doc: &Value, policy: &Policy) -> edgewatch::health::report::DeviceReport {
    let mut twins = twins(&fixture(HEALTHY_AGENT));
    twins.modules.push(module(module_doc));
    evaluate(&twins, &PingOutcome::Skipped, None, policy, now()).report
}

#[test]
fn real_module_twin_that_never_reported_drifts_on_every_desired_key() {
    let r = with_module(&fixture(TEMP_SENSOR), &Policy::default());
    assert_eq!(cond(&r, InSync), (False, Reason::PropertyDrift));
    let keys: Vec<&str> = r
        .drift
        .iter()
        .filter_map(|d| d.property.as_deref())
        .collect();
    assert_eq!(keys, ["SendData", "SendInterval"]);
    assert!(
        r.drift[1]
            .message
            .contains("module tempSensor property SendInterval: desired 30")
    );
    assert!(r.drift[1].message.contains("not reported"));
}

#[test]
fn equal_properties_are_in_sync_numbers_by_value() {
    let mut doc = fixture(TEMP_SENSOR);
    set(&mut doc, "/properties/reported/SendData", json!(true));
    set(&mut doc, "/properties/reported/SendInterval", json!(30.0));
    let r = with_module(&doc, &Policy::default());
    assert_eq!(cond(&r, InSync), (True, Reason::InSync));
}

#[test]
fn only_listed_properties_are_compared() {
    let mut doc = fixture(TEMP_SENSOR);
    set(&mut doc, "/properties/reported/SendInterval", json!(10));
    let policy = Policy {
        property_checks: vec![PropertyCheck {
            module: "tempSensor".to_owned(),
            keys: PropertySelection::Keys(vec!["SendInterval".to_owned(), "NotDesired".to_owned()]),
        }],
        ..Policy::default()
    };
    let r = with_module(&doc, &policy);
    assert_eq!(cond(&r, InSync), (False, Reason::PropertyDrift));
    assert_eq!(r.drift.len(), 1);
    assert_eq!(r.drift[0].reported.as_deref(), Some("10"));
    assert_eq!(r.drift[0].desired.as_deref(), Some("30"));
}

#[test]
fn property_changed_within_grace_is_in_progress() {
    let mut doc = fixture(TEMP_SENSOR);
    set(&mut doc, "/properties/reported/SendData", json!(true));
    let changed = (now() - jiff::SignedDuration::from_mins(2)).to_string();
    set(
        &mut doc,
        "/properties/desired/$metadata/SendInterval/$lastUpdated",
        json!(changed),
    );
    let r = with_module(&doc, &Policy::default());
    assert_eq!(cond(&r, InSync), (Unknown, Reason::DeploymentInProgress));
}
