//! `ModulesHealthy`: every module state rule and reason, on the real `$edgeAgent` twin
//! and variants derived from it.

mod common;

use common::*;
use edgewatch::health::report::ConditionStatus::{False, True, Unknown};
use edgewatch::health::report::ConditionType::{InSync, ModulesHealthy, Ready};
use edgewatch::health::report::Reason;
use edgewatch::health::{DeviceMemory, PingOutcome, Policy, RestartLoopPolicy, evaluate};
use serde_json::json;

fn with_simtemp(changes: &[(&str, serde_json::Value)]) -> serde_json::Value {
    let mut doc = fixture(HEALTHY_AGENT);
    for (key, value) in changes {
        set(&mut doc, &format!("{SIMTEMP}/{key}"), value.clone());
    }
    doc
}

fn desire_simtemp_stopped(doc: &mut serde_json::Value) {
    set(
        doc,
        "/properties/desired/modules/simtemp/status",
        json!("stopped"),
    );
}

#[test]
fn real_full_agent_twin_after_shutdown_is_agent_not_running() {
    let r = report(&fixture(FULL_AGENT), PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (Unknown, Reason::AgentNotRunning));
    assert_eq!(cond(&r, InSync), (Unknown, Reason::AgentNotRunning));
    assert!(message(&r, ModulesHealthy).contains("Agent is not running"));
    // Module states are void, not failures: edgeHub's exit code 139 is not ModuleFailed.
    assert_eq!(module_verdict(&r, "edgeHub"), Reason::AgentNotRunning);
    assert_eq!(module_verdict(&r, "simtemp"), Reason::AgentNotRunning);
    assert_eq!(r.modules.len(), 3);
    assert_eq!(r.device_id, "linux2");
}

#[test]
fn healthy_variant_is_all_modules_healthy() {
    let r = report(&fixture(HEALTHY_AGENT), PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (True, Reason::AllModulesHealthy));
    assert!(message(&r, ModulesHealthy).starts_with("3 modules"));
    let names: Vec<&str> = r.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["edgeAgent", "edgeHub", "simtemp"]);
}

#[test]
fn failed_module_names_exit_code_restarts_and_last_exit() {
    let r = report(&fixture(FAILED_AGENT), PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleFailed));
    assert_eq!(
        message(&r, ModulesHealthy),
        "module simtemp failed with exit code 1, restarted 4 times, last exit 2021-06-28T21:48:30.1234567Z"
    );
    let simtemp = r.modules.iter().find(|m| m.name == "simtemp").unwrap();
    assert_eq!(simtemp.exit_code, Some(1));
    assert_eq!(simtemp.restart_count, Some(4));
    assert_eq!(simtemp.runtime_status.as_deref(), Some("failed"));
}

#[test]
fn dead_is_failed() {
    let r = report(
        &with_simtemp(&[("runtimeStatus", json!("dead"))]),
        PingOutcome::Skipped,
    );
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleFailed));
    assert!(message(&r, ModulesHealthy).contains("is dead"));
}

#[test]
fn backoff_is_module_backoff() {
    let doc = with_simtemp(&[("runtimeStatus", json!("backoff")), ("exitCode", json!(2))]);
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleBackoff));
    assert!(message(&r, ModulesHealthy).contains("exit code 2"));
}

#[test]
fn unhealthy_is_module_unhealthy() {
    let r = report(
        &with_simtemp(&[("runtimeStatus", json!("unhealthy"))]),
        PingOutcome::Skipped,
    );
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleUnhealthy));
}

#[test]
fn stopped_while_desired_running_is_module_stopped() {
    let r = report(
        &with_simtemp(&[("runtimeStatus", json!("stopped"))]),
        PingOutcome::Skipped,
    );
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleStopped));
}

#[test]
fn running_while_desired_stopped_is_module_not_stopped() {
    let mut doc = fixture(HEALTHY_AGENT);
    desire_simtemp_stopped(&mut doc);
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleNotStopped));
    let simtemp = r.modules.iter().find(|m| m.name == "simtemp").unwrap();
    assert_eq!(simtemp.desired_status.as_deref(), Some("stopped"));
}

#[test]
fn deliberate_stop_with_137_or_143_is_healthy() {
    for code in [137, 143] {
        let mut doc = with_simtemp(&[
            ("runtimeStatus", json!("failed")),
            ("exitCode", json!(code)),
        ]);
        desire_simtemp_stopped(&mut doc);
        let r = report(&doc, PingOutcome::Skipped);
        assert_eq!(
            cond(&r, ModulesHealthy),
            (True, Reason::AllModulesHealthy),
            "exit {code}"
        );
    }
}

#[test]
fn exit_137_is_a_failure_when_the_module_should_run() {
    let doc = with_simtemp(&[("runtimeStatus", json!("failed")), ("exitCode", json!(137))]);
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleFailed));
}

#[test]
fn other_exit_codes_fail_even_when_stopped_on_purpose() {
    let mut doc = with_simtemp(&[("runtimeStatus", json!("failed")), ("exitCode", json!(1))]);
    desire_simtemp_stopped(&mut doc);
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleFailed));
}

#[test]
fn stopped_as_desired_is_healthy() {
    let mut doc = with_simtemp(&[("runtimeStatus", json!("stopped"))]);
    desire_simtemp_stopped(&mut doc);
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (True, Reason::AllModulesHealthy));
}

#[test]
fn missing_desired_status_means_running() {
    let mut doc = with_simtemp(&[("runtimeStatus", json!("stopped"))]);
    remove(&mut doc, "/properties/desired/modules/simtemp/status");
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleStopped));
}

#[test]
fn unknown_runtime_status_with_agent_running_is_module_status_unknown() {
    for status in ["unknown", "hibernating"] {
        let r = report(
            &with_simtemp(&[("runtimeStatus", json!(status))]),
            PingOutcome::Skipped,
        );
        assert_eq!(
            cond(&r, ModulesHealthy),
            (Unknown, Reason::ModuleStatusUnknown),
            "{status}"
        );
        assert!(message(&r, ModulesHealthy).contains(status));
    }
}

#[test]
fn empty_reported_section_is_no_reported_state() {
    // Real document: desired deployment, reported holds only `$version`.
    let mut doc = fixture("edgeAgent-properties_v1.2-deployment_iotedge.json");
    set(&mut doc, "/moduleId", json!("$edgeAgent"));
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (Unknown, Reason::NoReportedState));
    assert!(message(&r, ModulesHealthy).contains("reported $version 83"));
}

#[test]
fn worst_module_wins_and_the_rest_are_counted() {
    let mut doc = with_simtemp(&[("runtimeStatus", json!("backoff"))]);
    set(
        &mut doc,
        "/properties/reported/systemModules/edgeHub/runtimeStatus",
        json!("failed"),
    );
    set(
        &mut doc,
        "/properties/reported/systemModules/edgeHub/exitCode",
        json!(139),
    );
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleFailed));
    let text = message(&r, ModulesHealthy);
    assert!(
        text.starts_with("module edgeHub failed with exit code 139"),
        "{text}"
    );
    assert!(
        text.ends_with("; 1 more module not healthy (simtemp)"),
        "{text}"
    );
}

#[test]
fn module_in_deployment_but_not_reported_is_status_unknown() {
    let mut doc = fixture(HEALTHY_AGENT);
    set(
        &mut doc,
        "/properties/desired/modules/filter",
        json!({"settings": {"image": "contoso.azurecr.io/filter:1.0"}, "type": "docker", "status": "running"}),
    );
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(module_verdict(&r, "filter"), Reason::ModuleStatusUnknown);
    assert_eq!(
        cond(&r, ModulesHealthy),
        (Unknown, Reason::ModuleStatusUnknown)
    );
}

// ---- restart loops ----

fn restarting(count: i64, last_restart: &str) -> serde_json::Value {
    with_simtemp(&[
        ("restartCount", json!(count)),
        ("lastRestartTimeUtc", json!(last_restart)),
    ])
}

#[test]
fn restart_count_at_threshold_within_window_is_restart_loop_even_while_running() {
    let r = report(
        &restarting(3, "2021-06-28T21:47:05.702732Z"),
        PingOutcome::Skipped,
    );
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::RestartLoop));
    let text = message(&r, ModulesHealthy);
    assert!(text.contains("module simtemp restarted 3 times"), "{text}");
    assert!(text.contains("now running"), "{text}");
}

#[test]
fn restart_count_below_threshold_is_not_a_loop() {
    let r = report(
        &restarting(2, "2021-06-28T21:47:05.702732Z"),
        PingOutcome::Skipped,
    );
    assert_eq!(cond(&r, ModulesHealthy), (True, Reason::AllModulesHealthy));
}

#[test]
fn old_restarts_outside_the_window_are_not_a_loop() {
    let r = report(&restarting(9, "2021-06-28T21:20:00Z"), PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (True, Reason::AllModulesHealthy));
}

#[test]
fn failed_outranks_restart_loop() {
    let mut doc = restarting(5, "2021-06-28T21:47:05Z");
    set(
        &mut doc,
        &format!("{SIMTEMP}/runtimeStatus"),
        json!("failed"),
    );
    set(&mut doc, &format!("{SIMTEMP}/exitCode"), json!(1));
    let r = report(&doc, PingOutcome::Skipped);
    assert_eq!(cond(&r, ModulesHealthy), (False, Reason::ModuleFailed));
}

#[test]
fn restart_loop_is_seen_across_counter_resets_through_memory() {
    // The agent clears restartCount after a module ran 10 minutes; a module crashing every
    // 11 minutes therefore always shows restartCount 1. Only memory sees the loop.
    let policy = Policy::default();
    let mut memory: Option<DeviceMemory> = None;
    let mut reasons = Vec::new();
    for (restart, now) in [
        ("2021-06-28T21:20:00Z", "2021-06-28T21:21:00Z"),
        ("2021-06-28T21:31:00Z", "2021-06-28T21:32:00Z"),
        ("2021-06-28T21:42:00Z", "2021-06-28T21:43:00Z"),
    ] {
        let twins = twins(&restarting(1, restart));
        let eval = evaluate(&twins, &responded(), memory.as_ref(), &policy, ts(now));
        reasons.push(cond(&eval.report, ModulesHealthy).1);
        memory = Some(eval.memory);
    }
    assert_eq!(
        reasons,
        [
            Reason::AllModulesHealthy,
            Reason::AllModulesHealthy,
            Reason::RestartLoop
        ]
    );
    let memory = memory.unwrap();
    assert_eq!(memory.recent_restarts("simtemp"), 3);
}

#[test]
fn counter_growth_between_observations_counts_every_restart() {
    let policy = Policy::default();
    let first = evaluate(
        &twins(&restarting(1, "2021-06-28T21:40:00Z")),
        &responded(),
        None,
        &policy,
        now(),
    );
    assert_eq!(first.memory.recent_restarts("simtemp"), 1);
    let second = evaluate(
        &twins(&restarting(3, "2021-06-28T21:50:00Z")),
        &responded(),
        Some(&first.memory),
        &policy,
        now(),
    );
    assert_eq!(second.memory.recent_restarts("simtemp"), 3);
    assert_eq!(
        cond(&second.report, ModulesHealthy),
        (False, Reason::RestartLoop)
    );
}

#[test]
fn re_evaluating_the_same_twin_does_not_count_restarts_twice() {
    let policy = Policy::default();
    let twins = twins(&restarting(1, "2021-06-28T21:50:00Z"));
    let mut memory = None;
    for _ in 0..5 {
        let eval = evaluate(&twins, &responded(), memory.as_ref(), &policy, now());
        assert_eq!(
            cond(&eval.report, ModulesHealthy),
            (True, Reason::AllModulesHealthy)
        );
        memory = Some(eval.memory);
    }
    assert_eq!(memory.unwrap().recent_restarts("simtemp"), 1);
}

#[test]
fn memory_forgets_restarts_outside_the_window_and_stays_small() {
    let policy = Policy::default();
    let first = evaluate(
        &twins(&restarting(20, "2021-06-28T21:50:00Z")),
        &responded(),
        None,
        &policy,
        now(),
    );
    // At most `restarts` timestamps are kept per module.
    assert_eq!(first.memory.recent_restarts("simtemp"), 3);
    let json = serde_json::to_string(&first.memory).unwrap();
    assert!(json.len() < 250, "memory is {} bytes: {json}", json.len());
    let later = evaluate(
        &twins(&restarting(20, "2021-06-28T21:50:00Z")),
        &responded(),
        Some(&first.memory),
        &policy,
        ts("2021-06-28T23:00:00Z"),
    );
    assert_eq!(later.memory, DeviceMemory::default());
    assert_eq!(serde_json::to_string(&later.memory).unwrap(), "{}");
}

#[test]
fn memory_survives_a_serde_round_trip() {
    let eval = run(
        &twins(&restarting(2, "2021-06-28T21:50:00Z")),
        &responded(),
        None,
    );
    let json = serde_json::to_string(&eval.memory).unwrap();
    let back: DeviceMemory = serde_json::from_str(&json).unwrap();
    assert_eq!(back, eval.memory);
}

#[test]
fn restart_loop_rule_can_be_switched_off() {
    let policy = Policy {
        restart_loop: RestartLoopPolicy {
            restarts: 0,
            ..RestartLoopPolicy::default()
        },
        ..Policy::default()
    };
    let eval = evaluate(
        &twins(&restarting(10, "2021-06-28T21:50:00Z")),
        &responded(),
        None,
        &policy,
        now(),
    );
    assert_eq!(
        cond(&eval.report, ModulesHealthy),
        (True, Reason::AllModulesHealthy)
    );
    assert_eq!(eval.memory, DeviceMemory::default());
}

#[test]
fn ready_reports_the_module_reason() {
    let r = report(&fixture(FAILED_AGENT), responded());
    assert_eq!(cond(&r, Ready), (False, Reason::ModuleFailed));
}

#[test]
fn memory_has_a_json_schema_for_the_crd_status() {
    let schema = serde_json::to_value(schemars::schema_for!(DeviceMemory)).unwrap();
    let text = schema.to_string();
    assert!(
        text.contains("restarts") && text.contains("lastRestart"),
        "{text}"
    );
}
