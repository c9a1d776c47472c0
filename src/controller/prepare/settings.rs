//! A watch's spec turned into the values the controller works with.
//!
//! CEL refuses most bad specs at the API server; this is the second line for anything that
//! slipped past (an older CRD, a spec written while validation was off). Failing here
//! gives `Stalled`/`InvalidSpec` instead of a crash loop.

use std::time::Duration;

use crate::api::{EdgeDeviceWatchSpec, parse_duration};

/// The shortest interval a watch may ask for (the CRD says the same in CEL).
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// The watch spec, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
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

/// A spec the controller cannot act on; the message names the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec: {0}")]
pub struct InvalidSpec(pub String);

impl WatchSettings {
    /// Parses every duration and checks the rules CEL also enforces.
    pub fn from_spec(spec: &EdgeDeviceWatchSpec) -> Result<Self, InvalidSpec> {
        check_credentials(spec)?;
        if spec.devices.is_empty() && spec.selector.is_none() {
            return Err(InvalidSpec(
                "name at least one device in spec.devices or a spec.selector query".into(),
            ));
        }
        let interval = duration_field("spec.interval", &spec.interval)?;
        let ping_interval = duration_field("spec.ping.interval", &spec.ping.interval)?;
        at_least("spec.interval", interval, MIN_INTERVAL)?;
        at_least("spec.ping.interval", ping_interval, MIN_INTERVAL)?;
        if spec.ping.timeout_seconds == 0 {
            return Err(InvalidSpec(
                "spec.ping.timeoutSeconds must be at least 1".into(),
            ));
        }
        if spec.restart_loop.restarts == 0 {
            return Err(InvalidSpec(
                "spec.restartLoop.restarts must be at least 1".into(),
            ));
        }
        Ok(Self {
            interval,
            ping_enabled: spec.ping.enabled,
            ping_interval,
            ping_timeout: Duration::from_secs(u64::from(spec.ping.timeout_seconds)),
            stale_after: duration_field("spec.staleAfter", &spec.stale_after)?,
            deployment_grace_period: duration_field(
                "spec.deploymentGracePeriod",
                &spec.deployment_grace_period,
            )?,
            restart_loop_restarts: spec.restart_loop.restarts,
            restart_loop_window: duration_field(
                "spec.restartLoop.window",
                &spec.restart_loop.window,
            )?,
            suspend: spec.suspend,
        })
    }
}

fn check_credentials(spec: &EdgeDeviceWatchSpec) -> Result<(), InvalidSpec> {
    let hub = &spec.hub;
    match (&hub.connection_string_secret_ref, &hub.workload_identity) {
        (Some(_), None) if hub.host_name.is_none() => Ok(()),
        (Some(_), None) => Err(InvalidSpec(
            "spec.hub.hostName comes from the connection string; do not set both".into(),
        )),
        (None, Some(_)) if hub.host_name.is_some() => Ok(()),
        (None, Some(_)) => Err(InvalidSpec(
            "spec.hub.workloadIdentity needs spec.hub.hostName".into(),
        )),
        _ => Err(InvalidSpec(
            "set exactly one of spec.hub.connectionStringSecretRef or spec.hub.workloadIdentity"
                .into(),
        )),
    }
}

fn duration_field(field: &str, value: &str) -> Result<Duration, InvalidSpec> {
    parse_duration(value).map_err(|e| InvalidSpec(format!("{field}: {e}")))
}

fn at_least(field: &str, value: Duration, min: Duration) -> Result<(), InvalidSpec> {
    if value < min {
        return Err(InvalidSpec(format!(
            "{field} must be at least {}s",
            min.as_secs()
        )));
    }
    Ok(())
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
                "spec.interval must be at least 10s",
            ),
            (format!("{SAS}interval: soon\n"), "spec.interval"),
            (format!("{SAS}staleAfter: 3d\n"), "spec.staleAfter"),
            ("hub: {}\ndevices: [gw]\n".to_owned(), "exactly one of"),
            (
                "hub: {connectionStringSecretRef: {name: s, key: k}}\n".to_owned(),
                "at least one device",
            ),
            (
                "hub: {workloadIdentity: {}}\ndevices: [gw]\n".to_owned(),
                "needs spec.hub.hostName",
            ),
        ];
        for (yaml, needle) in cases {
            let error = WatchSettings::from_spec(&spec(&yaml)).unwrap_err();
            assert!(error.0.contains(needle), "{yaml}: {error}");
        }
    }
}
