//! The evaluator's per-device restart memory, kept per watch and persisted compactly in
//! `status.memory.restarts` (only modules with restarts inside the window).

use std::collections::HashMap;

use crate::api::RestartObservation;
use crate::health::{DeviceMemory, ModuleRestarts};

/// Per-device memories from the persisted observations.
pub(crate) fn from_status(observations: &[RestartObservation]) -> HashMap<String, DeviceMemory> {
    let mut memories: HashMap<String, DeviceMemory> = HashMap::new();
    for o in observations {
        memories
            .entry(o.device_id.clone())
            .or_default()
            .restarts
            .push(ModuleRestarts {
                module: o.module.clone(),
                restart_count: o.restart_count,
                last_restart: o.last_restart,
                recent: o.restarts_at.clone(),
            });
    }
    memories
}

/// The observations to persist, sorted by device and module.
pub(crate) fn to_status(memories: &HashMap<String, DeviceMemory>) -> Vec<RestartObservation> {
    let mut observations: Vec<RestartObservation> = memories
        .iter()
        .flat_map(|(device, memory)| {
            memory.restarts.iter().map(move |m| RestartObservation {
                device_id: device.clone(),
                module: m.module.clone(),
                restart_count: m.restart_count,
                last_restart: m.last_restart,
                restarts_at: m.recent.clone(),
            })
        })
        .filter(|o| !o.restarts_at.is_empty())
        .collect();
    observations.sort_by(|a, b| (&a.device_id, &a.module).cmp(&(&b.device_id, &b.module)));
    observations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_round_trip_through_the_status() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let mut memories = HashMap::new();
        memories.insert(
            "gw-2".to_owned(),
            DeviceMemory {
                restarts: vec![ModuleRestarts {
                    module: "sensor".into(),
                    restart_count: 3,
                    last_restart: t("2026-01-01T00:10:00Z"),
                    recent: vec![t("2026-01-01T00:05:00Z"), t("2026-01-01T00:10:00Z")],
                }],
            },
        );
        memories.insert("gw-1".to_owned(), DeviceMemory::default());
        let persisted = to_status(&memories);
        assert_eq!(persisted.len(), 1);
        assert_eq!(persisted[0].device_id, "gw-2");
        let restored = from_status(&persisted);
        assert_eq!(restored["gw-2"], memories["gw-2"]);
        assert!(!restored.contains_key("gw-1"));
    }
}
