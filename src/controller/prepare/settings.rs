//! A watch's spec turned into the values the controller works with.
//!
//! CEL refuses most bad specs at the API server; this is the second line for anything that
//! slipped past (an older CRD, a spec written while validation was off) and the first for
//! `edgewatch check`. Failing here gives `Stalled`/`InvalidSpec` instead of a crash loop,
//! with every problem on its own line as `spec.<field>: <message>`; where a rule is also
//! a CEL rule of the CRD, the message is the rule's.

use std::fmt;
use std::time::Duration;

use crate::api::{EdgeDeviceWatchSpec, parse_duration};

use super::credentials::HubAuth;

/// The shortest interval a watch may ask for (the CRD says the same in CEL).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// The message of the CRD's rule that at least one device is named.
pub(crate) const NO_DEVICES: &str = "name at least one device in devices or a selector query";

/// The watch spec, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    /// Where the hub's credential comes from.
    pub auth: HubAuth,
    pub interval: Duration,
    pub ping_enabled: bool,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub stale_after: Duration,
    pub deployment_grace_period: Duration,
    pub restart_loop_restarts: u32,
    pub restart_loop_window: Duration,
    pub suspend: bool,
}

/// One problem with one field of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, `spec.interval`; `spec` for rules about the whole spec.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `spec.interval: must be at least 10s`.
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A spec the controller cannot act on: every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidSpec {
    pub problems: Vec<FieldError>,
}

impl InvalidSpec {
    /// A spec with one problem.
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![FieldError::new(field, message)],
        }
    }
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl WatchSettings {
    /// Parses every duration and checks the rules CEL also enforces; reports every
    /// problem, not only the first.
    pub fn from_spec(spec: &EdgeDeviceWatchSpec) -> Result<Self, InvalidSpec> {
        let mut problems = Problems::default();
        let auth = problems.keep(HubAuth::of(&spec.hub));
        let devices = problems.keep(if spec.devices.is_empty() && spec.selector.is_none() {
            Err(FieldError::new("spec", NO_DEVICES))
        } else {
            Ok(())
        });
        let interval = problems.keep(minimum_duration("spec.interval", &spec.interval));
        let ping_interval =
            problems.keep(minimum_duration("spec.ping.interval", &spec.ping.interval));
        let ping_timeout = problems.keep(at_least_one(
            "spec.ping.timeoutSeconds",
            spec.ping.timeout_seconds,
        ));
        let stale_after = problems.keep(duration("spec.staleAfter", &spec.stale_after));
        let grace = problems.keep(duration(
            "spec.deploymentGracePeriod",
            &spec.deployment_grace_period,
        ));
        let restarts = problems.keep(at_least_one(
            "spec.restartLoop.restarts",
            spec.restart_loop.restarts,
        ));
        let window = problems.keep(duration(
            "spec.restartLoop.window",
            &spec.restart_loop.window,
        ));
        match (
            auth,
            devices,
            interval,
            ping_interval,
            ping_timeout,
            stale_after,
            grace,
            restarts,
            window,
        ) {
            (
                Some(auth),
                Some(()),
                Some(interval),
                Some(ping_interval),
                Some(ping_timeout),
                Some(stale_after),
                Some(deployment_grace_period),
                Some(restart_loop_restarts),
                Some(restart_loop_window),
            ) => Ok(Self {
                auth,
                interval,
                ping_enabled: spec.ping.enabled,
                ping_interval,
                ping_timeout: Duration::from_secs(u64::from(ping_timeout)),
                stale_after,
                deployment_grace_period,
                restart_loop_restarts,
                restart_loop_window,
                suspend: spec.suspend,
            }),
            _ => Err(InvalidSpec {
                problems: problems.0,
            }),
        }
    }
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    /// The value, or `None` after noting its problem.
    fn keep<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }
}

fn duration(field: &str, value: &str) -> Result<Duration, FieldError> {
    parse_duration(value).map_err(|e| FieldError::new(field, e.to_string()))
}

/// A duration of at least [`MIN_INTERVAL`] (the CRD's CEL rule says the same).
fn minimum_duration(field: &str, value: &str) -> Result<Duration, FieldError> {
    let parsed = duration(field, value)?;
    if parsed < MIN_INTERVAL {
        return Err(FieldError::new(
            field,
            format!("must be at least {}s", MIN_INTERVAL.as_secs()),
        ));
    }
    Ok(parsed)
}

fn at_least_one(field: &str, value: u32) -> Result<u32, FieldError> {
    if value == 0 {
        return Err(FieldError::new(field, "must be at least 1"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> EdgeDeviceWatchSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const SAS: &str = "hub: {connectionStringSecretRef: {name: s, key: k}}\ndevices: [gw]\n";

    #[test]
    fn defaults_parse_into_durations() {
        let settings = WatchSettings::from_spec(&spec(SAS)).unwrap();
        assert_eq!(settings.interval, Duration::from_secs(60));
        assert_eq!(settings.ping_interval, Duration::from_secs(300));
        assert_eq!(settings.ping_timeout, Duration::from_secs(10));
        assert_eq!(settings.stale_after, Duration::from_secs(900));
        assert_eq!(settings.deployment_grace_period, Duration::from_secs(600));
        assert_eq!(settings.restart_loop_window, Duration::from_secs(1800));
        assert!(settings.ping_enabled && !settings.suspend);
    }

    #[test]
    fn what_slipped_past_cel_is_an_invalid_spec_naming_the_field() {
        let cases = [
            (
                format!("{SAS}interval: 5s\n"),
                "spec.interval: must be at least 10s",
            ),
            (
                format!("{SAS}interval: soon\n"),
                "spec.interval: \"soon\" is not a duration",
            ),
            (format!("{SAS}staleAfter: 3d\n"), "spec.staleAfter: \"3d\""),
            (
                "hub: {}\ndevices: [gw]\n".to_owned(),
                "spec.hub: set exactly one credential source",
            ),
            (
                "hub: {connectionStringSecretRef: {name: s, key: k}}\n".to_owned(),
                "spec: name at least one device",
            ),
            (
                "hub: {workloadIdentity: {}}\ndevices: [gw]\n".to_owned(),
                "spec.hub: workloadIdentity needs hostName",
            ),
        ];
        for (yaml, needle) in cases {
            let error = WatchSettings::from_spec(&spec(&yaml)).unwrap_err();
            assert!(error.to_string().contains(needle), "{yaml}: {error}");
        }
    }

    #[test]
    fn every_problem_is_its_own_line_with_the_accepted_forms() {
        let error = WatchSettings::from_spec(&spec(
            "hub: {}\ninterval: abc\nping: {interval: 1s, timeoutSeconds: 0}\n",
        ))
        .unwrap_err();
        let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
        assert_eq!(
            lines,
            [
                "spec.hub: set exactly one credential source: connectionStringSecretRef or workloadIdentity",
                "spec: name at least one device in devices or a selector query",
                "spec.interval: \"abc\" is not a duration (a unit has no number); use 90s, 5m, 1h30m or 500ms (h, m, s, ms, largest first), or ISO 8601 such as PT15M or PT1H30M",
                "spec.ping.interval: must be at least 10s",
                "spec.ping.timeoutSeconds: must be at least 1",
            ]
        );
    }
}
