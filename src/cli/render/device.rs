//! The `edgewatch evaluate` view of one device report.

use std::fmt::Write as _;

use crate::health::report::{DeviceReport, DriftItem, ModuleReport};

use super::Layout;

/// Columns two spaces apart, not indented.
const DEVICE: Layout = Layout { indent: "", gap: 2 };

/// The `edgewatch evaluate` table: the device's conditions, then its modules, drift and
/// disconnected `$edgeHub` clients when there are any.
pub(crate) fn report(report: &DeviceReport) -> String {
    let mut out = String::new();
    let device = if report.device_id.is_empty() {
        "(unknown)"
    } else {
        &report.device_id
    };
    let _ = writeln!(out, "Device: {device}");
    if let Some(at) = report.reported_at {
        let _ = writeln!(out, "Reported at: {at}");
    }
    out.push('\n');
    let conditions = report
        .conditions
        .iter()
        .map(|c| {
            vec![
                c.type_.as_str().to_owned(),
                c.status.as_str().to_owned(),
                c.reason.as_str().to_owned(),
                c.message.clone(),
            ]
        })
        .collect();
    out.push_str(&DEVICE.table(&["CONDITION", "STATUS", "REASON", "MESSAGE"], conditions));
    if !report.modules.is_empty() {
        out.push('\n');
        let rows = report.modules.iter().map(module_row).collect();
        let headers = [
            "MODULE", "DESIRED", "RUNTIME", "EXIT", "RESTARTS", "VERDICT", "IMAGE",
        ];
        out.push_str(&DEVICE.table(&headers, rows));
    }
    if !report.drift.is_empty() {
        out.push('\n');
        let rows = report.drift.iter().map(drift_row).collect();
        out.push_str(&DEVICE.table(&["DRIFT", "MODULE", "MESSAGE"], rows));
    }
    if !report.disconnected_clients.is_empty() {
        out.push('\n');
        let rows = report
            .disconnected_clients
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.status.clone(),
                    optional(c.last_connected),
                    optional(c.last_disconnected),
                ]
            })
            .collect();
        let headers = ["CLIENT", "STATUS", "LAST CONNECTED", "LAST DISCONNECTED"];
        out.push_str(&DEVICE.table(&headers, rows));
    }
    out
}

fn module_row(m: &ModuleReport) -> Vec<String> {
    vec![
        m.name.clone(),
        m.desired_status.clone().unwrap_or_else(dash),
        m.runtime_status.clone().unwrap_or_else(dash),
        optional(m.exit_code),
        optional(m.restart_count),
        m.verdict.as_str().to_owned(),
        m.image_reported
            .clone()
            .or_else(|| m.image_desired.clone())
            .unwrap_or_else(dash),
    ]
}

fn drift_row(d: &DriftItem) -> Vec<String> {
    vec![
        d.reason.as_str().to_owned(),
        d.module.clone().unwrap_or_else(dash),
        d.message.clone(),
    ]
}

fn dash() -> String {
    "-".to_owned()
}

fn optional<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(dash, |v| v.to_string())
}
