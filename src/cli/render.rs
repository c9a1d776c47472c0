//! Text views of an `EdgeDeviceWatch` as `kubectl get edw -o wide` and `kubectl describe
//! edw` show it, for `edgewatch demo` and `edgewatch check` (no cluster involved).

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::api::{AspectState, DeviceEntry, EdgeDeviceWatch, EdgeDeviceWatchStatus};
use crate::health::report::DeviceReport;

/// The `kubectl get edw -o wide` table of the given watches (the CRD's printer columns).
pub fn get_table(watches: &[&EdgeDeviceWatch], now: Timestamp) -> String {
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
    table(&headers, rows, "")
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
pub fn describe<'a>(
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
    out.push_str(&table(
        &["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"],
        rows,
        "    ",
    ));
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
    out.push_str(&table(
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
        "    ",
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
        aspect(&entry.ready),
        aspect(&entry.reachable),
        aspect(&entry.modules_healthy),
        aspect(&entry.in_sync),
        aspect(&entry.fresh),
        entry
            .ping_latency_ms
            .map_or_else(|| "-".into(), |ms| format!("{ms}ms")),
    ]
}

/// `True` for a healthy aspect, otherwise the reason (what a reader scans for).
fn aspect(state: &AspectState) -> String {
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

/// kubectl's short age: `45s`, `3m12s`, `2h5m`, `4d`.
pub fn short_age(then: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(then).max(SignedDuration::ZERO).as_secs();
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Left-aligned columns separated by three spaces, every line prefixed with `indent`.
fn table(headers: &[&str], rows: Vec<Vec<String>>, indent: &str) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header_row).chain(rows.iter()) {
        let last = row.len().saturating_sub(1);
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = at("2026-01-02T00:00:00Z");
        assert_eq!(short_age(at("2026-01-01T23:59:15Z"), now), "45s");
        assert_eq!(short_age(at("2026-01-01T23:56:48Z"), now), "3m12s");
        assert_eq!(short_age(at("2026-01-01T22:00:00Z"), now), "120m");
        assert_eq!(short_age(at("2026-01-01T19:55:00Z"), now), "4h5m");
        assert_eq!(short_age(at("2025-12-29T00:00:00Z"), now), "4d");
        // A clock behind the object never shows a negative age.
        assert_eq!(short_age(at("2026-01-02T00:01:00Z"), now), "0s");
    }

    #[test]
    fn columns_align_and_the_last_is_not_padded() {
        let text = table(
            &["A", "BB"],
            vec![
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
            "  ",
        );
        assert_eq!(text, "  A      BB\n  long   x\n  s      y\n");
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
