//! Text views of an `EdgeDeviceWatch` as `kubectl get edw -o wide` and `kubectl describe
//! edw` show it, for `edgewatch demo` and `edgewatch check` (no cluster involved).

use std::fmt::Write as _;

use jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{AspectState, DeviceEntry, EdgeDeviceWatch, EdgeDeviceWatchStatus};
use crate::health::report::DeviceReport;

use super::{Layout, short_age};

/// kubectl's `get`: columns three spaces apart.
const GET: Layout = Layout { indent: "", gap: 3 };

/// The tables inside kubectl's `describe`, indented under their heading.
const DESCRIBE: Layout = Layout {
    indent: "    ",
    gap: 3,
};

/// The `kubectl get edw -o wide` table of the given watches (the CRD's printer columns).
pub(crate) fn get_table(watches: &[&EdgeDeviceWatch], now: Timestamp) -> String {
    let headers = [
        "NAME",
        "HUB",
        "DEVICES",
        "READY",
        "UNREACHABLE",
        "UNHEALTHY",
        "DRIFTED",
        "STATUS",
        "AGE",
    ];
    let rows = watches.iter().map(|w| get_row(w, now)).collect();
    GET.table(&headers, rows)
}

fn get_row(watch: &EdgeDeviceWatch, now: Timestamp) -> Vec<String> {
    let status = watch.status.as_ref();
    let summary = status.map(|s| s.summary).unwrap_or_default();
    let age = watch
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(|| "<unknown>".to_owned(), |t| short_age(t.0, now));
    vec![
        watch.name_any(),
        status
            .and_then(|s| s.hub.clone())
            .unwrap_or_else(|| "<none>".into()),
        summary.devices.to_string(),
        summary.ready.to_string(),
        summary.unreachable.to_string(),
        summary.unhealthy.to_string(),
        summary.drifted.to_string(),
        status
            .and_then(|s| s.condition("Ready"))
            .map_or_else(|| "<none>".into(), |c| c.reason.clone()),
        age,
    ]
}

/// The `kubectl describe edw` view: conditions, counts and per-device findings. `report`
/// looks up what only the evaluator's reports carry: `$edgeHub`'s disconnected
/// downstream clients.
pub(crate) fn describe<'a>(
    watch: &EdgeDeviceWatch,
    report: impl Fn(&str) -> Option<&'a DeviceReport>,
    now: Timestamp,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Name:         {}", watch.name_any());
    let _ = writeln!(
        out,
        "Namespace:    {}",
        watch.namespace().unwrap_or_else(|| "default".into())
    );
    let _ = writeln!(out, "API Version:  edgewatch.dev/v1alpha1");
    let _ = writeln!(out, "Kind:         EdgeDeviceWatch");
    let Some(status) = watch.status.as_ref() else {
        let _ = writeln!(out, "Status:       <none> (no reconcile has finished yet)");
        return out;
    };
    let _ = writeln!(out, "Status:");
    let _ = writeln!(
        out,
        "  Hub:                  {}",
        status.hub.as_deref().unwrap_or("<none>")
    );
    let _ = writeln!(
        out,
        "  Observed Generation:  {}",
        status
            .observed_generation
            .map_or_else(|| "<none>".into(), |g| g.to_string())
    );
    describe_summary(&mut out, status);
    describe_conditions(&mut out, status, now);
    describe_devices(&mut out, status, &report);
    out
}

fn describe_summary(out: &mut String, status: &EdgeDeviceWatchStatus) {
    let s = status.summary;
    let _ = writeln!(
        out,
        "  Summary:              devices {}, ready {}, unreachable {}, unhealthy {}, drifted {}, stale {}",
        s.devices, s.ready, s.unreachable, s.unhealthy, s.drifted, s.stale
    );
}

fn describe_conditions(out: &mut String, status: &EdgeDeviceWatchStatus, now: Timestamp) {
    let _ = writeln!(out, "  Conditions:");
    let rows = status
        .conditions
        .iter()
        .map(|c| {
            vec![
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                short_age(c.last_transition_time.0, now),
                c.message.clone(),
            ]
        })
        .collect();
    out.push_str(&DESCRIBE.table(&["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], rows));
}

fn describe_devices<'a>(
    out: &mut String,
    status: &EdgeDeviceWatchStatus,
    report: &impl Fn(&str) -> Option<&'a DeviceReport>,
) {
    let truncated = if status.devices_truncated {
        " (truncated: worst first)"
    } else {
        ""
    };
    let _ = writeln!(out, "  Devices:{truncated}");
    let rows = status.devices.iter().map(device_row).collect();
    out.push_str(&DESCRIBE.table(
        &[
            "DEVICE",
            "READY",
            "REACHABLE",
            "MODULES",
            "IN SYNC",
            "FRESH",
            "PING",
        ],
        rows,
    ));
    let findings: Vec<String> = status
        .devices
        .iter()
        .flat_map(|entry| device_findings(entry, report(&entry.device_id)))
        .collect();
    if !findings.is_empty() {
        let _ = writeln!(out, "  Findings:");
        for line in findings {
            let _ = writeln!(out, "    {line}");
        }
    }
}

fn device_row(entry: &DeviceEntry) -> Vec<String> {
    vec![
        entry.device_id.clone(),
        aspect(entry.ready),
        aspect(entry.reachable),
        aspect(entry.modules_healthy),
        aspect(entry.in_sync),
        aspect(entry.fresh),
        entry
            .ping_latency_ms
            .map_or_else(|| "-".into(), |ms| format!("{ms}ms")),
    ]
}

/// `True` for a healthy aspect, otherwise the reason (what a reader scans for).
fn aspect(state: AspectState) -> String {
    match state.status {
        crate::health::report::ConditionStatus::True => "True".into(),
        other => format!("{}/{}", other.as_str(), state.reason.as_str()),
    }
}

/// One line per finding of a device: its message, failing modules, drift and
/// disconnected downstream clients.
fn device_findings(entry: &DeviceEntry, report: Option<&DeviceReport>) -> Vec<String> {
    let id = &entry.device_id;
    let mut lines = Vec::new();
    if !entry.message.is_empty() {
        lines.push(format!("{id}: {}", entry.message));
    }
    for m in &entry.failing_modules {
        let mut detail = vec![format!("module {} {}", m.name, m.reason.as_str())];
        if let Some(s) = &m.runtime_status {
            detail.push(format!("runtimeStatus={s}"));
        }
        if let Some(code) = m.exit_code {
            detail.push(format!("exitCode={code}"));
        }
        if let Some(n) = m.restart_count {
            detail.push(format!("restartCount={n}"));
        }
        lines.push(format!("{id}: {}", detail.join(" ")));
    }
    for d in &entry.drift {
        let mut detail = vec![d.reason.as_str().to_owned()];
        if let Some(m) = &d.module {
            detail.push(format!("module={m}"));
        }
        if let Some(p) = &d.property {
            detail.push(format!("property={p}"));
        }
        if let Some(v) = &d.desired {
            detail.push(format!("desired={v}"));
        }
        if let Some(v) = &d.reported {
            detail.push(format!("reported={v}"));
        }
        lines.push(format!("{id}: drift {}", detail.join(" ")));
    }
    for client in report.map_or(&[][..], |r| r.disconnected_clients.as_slice()) {
        lines.push(format!(
            "{id}: $edgeHub client {} {}",
            client.name, client.status
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_watch_without_status_says_so() {
        let spec: crate::api::EdgeDeviceWatchSpec =
            serde_saphyr::from_str("hub: {connectionStringSecretRef: {name: s, key: k}}\n")
                .unwrap();
        let watch = EdgeDeviceWatch::new("w", spec);
        let now = at("2026-01-01T00:00:00Z");
        assert!(describe(&watch, |_| None, now).contains("no reconcile has finished yet"));
        let get = get_table(&[&watch], now);
        assert!(get.lines().nth(1).unwrap().starts_with("w "), "{get}");
        assert!(get.contains("<none>"), "{get}");
    }
}
