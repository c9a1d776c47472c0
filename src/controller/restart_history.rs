//! Restarts seen per module across polls, for the restart-loop rule.
//!
//! `restartCount` alone cannot say *when* restarts happened; comparing it between two
//! observations can. Each increase is stamped (the agent's `lastRestartTimeUtc` for the
//! newest restart, the observation time otherwise) and kept while inside the window. Only
//! modules with restarts inside the window are persisted (`memory.restarts`).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::RestartObservation;

use super::ping_schedule::age;

/// Never keep more stamps per module than this, whatever the threshold.
const MAX_STAMPS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct ModuleHistory {
    restart_count: i64,
    restarts_at: Vec<Timestamp>,
}

/// What one observation of a module's restart counters says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartSample {
    pub restart_count: i64,
    pub last_restart_time: Option<Timestamp>,
}

/// Restart stamps per (device, module) of one watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartHistory {
    modules: BTreeMap<(String, String), ModuleHistory>,
}

impl RestartHistory {
    /// Rebuilds the history a previous run persisted.
    pub fn from_memory(observations: &[RestartObservation]) -> Self {
        let modules = observations
            .iter()
            .map(|o| {
                let key = (o.device_id.clone(), o.module.clone());
                let history = ModuleHistory {
                    restart_count: o.restart_count,
                    restarts_at: o.restarts_at.clone(),
                };
                (key, history)
            })
            .collect();
        Self { modules }
    }

    /// Records an observation and returns how many restarts fall inside `window`.
    pub fn observe(
        &mut self,
        device_id: &str,
        module: &str,
        sample: RestartSample,
        now: Timestamp,
        window: Duration,
    ) -> usize {
        let key = (device_id.to_owned(), module.to_owned());
        let first_seen = !self.modules.contains_key(&key);
        let history = self.modules.entry(key).or_default();
        let increase = sample.restart_count - history.restart_count;
        if first_seen {
            stamp_first_sight(history, sample);
        } else if increase > 0 {
            stamp_increase(history, increase, sample.last_restart_time.unwrap_or(now));
        }
        history.restart_count = sample.restart_count;
        history.restarts_at.retain(|t| age(*t, now) <= window);
        history.restarts_at.len()
    }

    /// Forgets modules not observed any more and histories with nothing inside the window.
    pub fn prune(&mut self, now: Timestamp, window: Duration) {
        for history in self.modules.values_mut() {
            history.restarts_at.retain(|t| age(*t, now) <= window);
        }
        self.modules
            .retain(|_, h| !h.restarts_at.is_empty() || h.restart_count > 0);
    }

    /// Forgets devices that left the watch.
    pub fn retain_devices(&mut self, devices: &[String]) {
        self.modules
            .retain(|(d, _), _| devices.binary_search(d).is_ok());
    }

    /// Modules with restarts inside the window, for `memory.restarts`.
    pub fn to_memory(&self) -> Vec<RestartObservation> {
        self.modules
            .iter()
            .filter(|(_, h)| !h.restarts_at.is_empty())
            .map(|((device_id, module), h)| RestartObservation {
                device_id: device_id.clone(),
                module: module.clone(),
                restart_count: h.restart_count,
                restarts_at: h.restarts_at.clone(),
            })
            .collect()
    }
}

/// On first sight only the agent's own `lastRestartTimeUtc` dates a restart.
fn stamp_first_sight(history: &mut ModuleHistory, sample: RestartSample) {
    if sample.restart_count > 0
        && let Some(t) = sample.last_restart_time
    {
        history.restarts_at.push(t);
    }
}

fn stamp_increase(history: &mut ModuleHistory, increase: i64, newest: Timestamp) {
    let count = usize::try_from(increase)
        .unwrap_or(usize::MAX)
        .min(MAX_STAMPS);
    history
        .restarts_at
        .extend(std::iter::repeat_n(newest, count));
    history.restarts_at.sort();
    let excess = history.restarts_at.len().saturating_sub(MAX_STAMPS);
    history.restarts_at.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const WINDOW: Duration = Duration::from_secs(1800);

    fn sample(count: i64, last: Option<&str>) -> RestartSample {
        RestartSample {
            restart_count: count,
            last_restart_time: last.map(at),
        }
    }

    #[test]
    fn increases_between_observations_count_as_restarts() {
        let mut h = RestartHistory::default();
        let seen = |h: &mut RestartHistory, count, now| {
            h.observe("gw", "sensor", sample(count, None), at(now), WINDOW)
        };
        assert_eq!(seen(&mut h, 0, "2026-01-01T00:00:00Z"), 0);
        assert_eq!(seen(&mut h, 1, "2026-01-01T00:01:00Z"), 1);
        assert_eq!(seen(&mut h, 3, "2026-01-01T00:02:00Z"), 3);
        assert_eq!(seen(&mut h, 3, "2026-01-01T00:03:00Z"), 3);
        // Thirty minutes after the last restart all have left the window.
        assert_eq!(seen(&mut h, 3, "2026-01-01T00:32:01Z"), 0);
    }

    #[test]
    fn first_sight_uses_the_agents_last_restart_time() {
        let mut h = RestartHistory::default();
        let n = h.observe(
            "gw",
            "sensor",
            sample(5, Some("2026-01-01T00:00:00Z")),
            at("2026-01-01T00:10:00Z"),
            WINDOW,
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn a_counter_reset_is_not_a_restart() {
        let mut h = RestartHistory::default();
        h.observe(
            "gw",
            "m",
            sample(4, None),
            at("2026-01-01T00:00:00Z"),
            WINDOW,
        );
        let n = h.observe(
            "gw",
            "m",
            sample(0, None),
            at("2026-01-01T00:01:00Z"),
            WINDOW,
        );
        assert_eq!(n, 0);
        let n = h.observe(
            "gw",
            "m",
            sample(1, None),
            at("2026-01-01T00:02:00Z"),
            WINDOW,
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn history_survives_a_restart_through_memory() {
        let mut h = RestartHistory::default();
        h.observe(
            "gw",
            "m",
            sample(0, None),
            at("2026-01-01T00:00:00Z"),
            WINDOW,
        );
        h.observe(
            "gw",
            "m",
            sample(2, None),
            at("2026-01-01T00:01:00Z"),
            WINDOW,
        );
        h.observe(
            "gw",
            "quiet",
            sample(0, None),
            at("2026-01-01T00:01:00Z"),
            WINDOW,
        );
        let memory = h.to_memory();
        assert_eq!(
            memory.len(),
            1,
            "only modules with restarts in the window persist"
        );
        let mut restored = RestartHistory::from_memory(&memory);
        let n = restored.observe(
            "gw",
            "m",
            sample(3, None),
            at("2026-01-01T00:02:00Z"),
            WINDOW,
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn huge_jumps_are_bounded() {
        let mut h = RestartHistory::default();
        h.observe(
            "gw",
            "m",
            sample(0, None),
            at("2026-01-01T00:00:00Z"),
            WINDOW,
        );
        let n = h.observe(
            "gw",
            "m",
            sample(i64::MAX, None),
            at("2026-01-01T00:01:00Z"),
            WINDOW,
        );
        assert_eq!(n, MAX_STAMPS);
    }

    #[test]
    fn pruning_and_device_removal_forget_old_entries() {
        let mut h = RestartHistory::default();
        h.observe(
            "a",
            "m",
            sample(0, None),
            at("2026-01-01T00:00:00Z"),
            WINDOW,
        );
        h.observe(
            "a",
            "m",
            sample(1, None),
            at("2026-01-01T00:01:00Z"),
            WINDOW,
        );
        h.observe(
            "b",
            "m",
            sample(0, None),
            at("2026-01-01T00:01:00Z"),
            WINDOW,
        );
        h.retain_devices(&["a".to_owned()]);
        h.prune(at("2026-01-01T01:00:00Z"), WINDOW);
        assert!(h.to_memory().is_empty());
    }
}
