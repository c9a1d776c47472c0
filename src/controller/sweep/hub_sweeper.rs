//! The production [`Sweeper`]: reads the watch's devices from IoT Hub, pings those due,
//! and judges each with the evaluator.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::api::EdgeDeviceWatchSpec;
use crate::health::{
    DeviceTwins, PingOutcome, Policy, PropertyCheck, PropertySelection, RestartLoopPolicy, evaluate,
};
use crate::iothub::IotHubClient;
use crate::twin::{EDGE_AGENT, EDGE_HUB, EdgeAgentTwin, EdgeHubTwin, ModuleTwin};

use super::{Observations, PreparedWatch, SweepCost, SweepFailure, Sweeper, Verdict};
use crate::controller::error::ReconcileError;
use crate::controller::key::WatchKey;
use crate::controller::prepare::settings::WatchSettings;
use crate::controller::state::WatchState;
use crate::controller::sweep::hub_clients::{HubClientTemplate, HubClients};
use crate::controller::sweep::read_plan::{QuotaBudget, needs_confirmation};
use crate::controller::sweep::reads::{
    DeviceReads, confirm_by_get, module_ids, ping_devices, read_twins, resolve_devices,
};

/// Sweeps watches against their IoT Hubs.
pub struct HubSweeper {
    clients: HubClients,
    budget: QuotaBudget,
}

impl HubSweeper {
    pub fn new(template: HubClientTemplate, budget: QuotaBudget) -> Self {
        Self {
            clients: HubClients::new(template),
            budget,
        }
    }
}

impl Sweeper for HubSweeper {
    async fn sweep(
        &self,
        watch: &PreparedWatch<'_>,
        state: &WatchState,
    ) -> Result<Observations, SweepFailure> {
        let client = self.clients.client_for(watch.key, watch.credentials)?;
        let devices = resolve_devices(&client, watch.spec).await?;
        if devices.dropped > 0 {
            tracing::warn!(
                watch = %watch.key,
                dropped = devices.dropped,
                "watch covers more devices than one watch sweeps; split it"
            );
        }
        let modules = module_ids(watch.spec);
        let (mut reads, quota_time) =
            read_twins(&client, &devices.ids, &modules, &self.budget).await?;
        let pings = if watch.settings.ping_enabled {
            let due: Vec<String> = state
                .pings
                .due(&devices.ids, watch.now, watch.settings.ping_interval)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let (pings, stop) =
                ping_devices(&client, due, watch.settings.ping_timeout, watch.now).await;
            if let Some(error) = stop {
                return Err(SweepFailure {
                    error: ReconcileError::from_hub(client.hub(), error),
                    pings,
                });
            }
            pings
        } else {
            Vec::new()
        };
        let judged = Judge {
            policy: policy(watch.spec, watch.settings),
            ping_enabled: watch.settings.ping_enabled,
            now: watch.now,
            state,
            fresh_pings: pings
                .iter()
                .map(|(d, r)| (d.as_str(), &r.outcome))
                .collect(),
        }
        .confirmed(&client, &devices.ids, &modules, &mut reads)
        .await;
        let verdicts = match judged {
            Ok(verdicts) => verdicts,
            Err(error) => return Err(SweepFailure { error, pings }),
        };
        Ok(Observations {
            hub: client.hub().to_owned(),
            devices: devices.ids,
            pings,
            verdicts,
            cost: SweepCost { quota_time },
        })
    }

    fn retain_watches(&self, live: &std::collections::HashSet<WatchKey>) {
        self.clients.retain(live);
    }
}

/// The evaluator's policy from the watch's settings.
pub(crate) fn policy(spec: &EdgeDeviceWatchSpec, settings: &WatchSettings) -> Policy {
    Policy {
        stale_after: settings.stale_after,
        deployment_grace: settings.deployment_grace_period,
        restart_loop: RestartLoopPolicy {
            restarts: settings.restart_loop_restarts,
            window: settings.restart_loop_window,
        },
        property_checks: spec
            .modules
            .iter()
            .map(|m| PropertyCheck {
                module: m.name.clone(),
                keys: if m.compare_properties.is_empty() {
                    PropertySelection::AllDesired
                } else {
                    PropertySelection::Keys(m.compare_properties.clone())
                },
            })
            .collect(),
    }
}

/// Judges devices with one policy at one instant, from the watch's state and the pings
/// of this sweep.
struct Judge<'a> {
    policy: Policy,
    ping_enabled: bool,
    now: Timestamp,
    state: &'a WatchState,
    fresh_pings: HashMap<&'a str, &'a PingOutcome>,
}

impl Judge<'_> {
    /// The verdicts on `devices`; those judged from query data that would change are
    /// judged again after a confirming GET.
    async fn confirmed(
        &self,
        client: &IotHubClient,
        devices: &[String],
        modules: &[String],
        reads: &mut HashMap<String, DeviceReads>,
    ) -> Result<Vec<Verdict>, ReconcileError> {
        let mut verdicts = self.all(devices, reads);
        let doubtful = doubtful_devices(&verdicts, reads, self.state);
        if !doubtful.is_empty() {
            confirm_by_get(client, &doubtful, modules, reads).await?;
            let confirmed = self.all(&doubtful, reads);
            replace_verdicts(&mut verdicts, confirmed);
        }
        Ok(verdicts)
    }

    fn all(&self, devices: &[String], reads: &HashMap<String, DeviceReads>) -> Vec<Verdict> {
        devices
            .iter()
            .map(|device| self.one(device, reads.get(device)))
            .collect()
    }

    /// A device whose twins could not be read this sweep keeps its previous verdict
    /// when there is one.
    fn one(&self, device: &str, reads: Option<&DeviceReads>) -> Verdict {
        let failed = reads.is_none_or(|r| r.failure.is_some());
        if failed && let Some(previous) = self.state.reports.get(device) {
            return Verdict {
                report: previous.clone(),
                memory: None,
            };
        }
        let twins = device_twins(device, reads);
        let ping = match reads.and_then(|r| r.not_found.clone()) {
            Some(not_found) => PingOutcome::DeviceNotFound(not_found),
            None if self.ping_enabled => self.last_ping(device),
            None => PingOutcome::Skipped,
        };
        let evaluation = evaluate(
            &twins,
            &ping,
            self.state.restarts.get(device),
            &self.policy,
            self.now,
        );
        Verdict {
            report: evaluation.report,
            memory: Some(evaluation.memory),
        }
    }

    /// This sweep's ping of the device, else the last one known; never pinged reads as
    /// skipped.
    fn last_ping(&self, device: &str) -> PingOutcome {
        if let Some(outcome) = self.fresh_pings.get(device) {
            return (*outcome).clone();
        }
        self.state
            .pings
            .get(device)
            .map_or(PingOutcome::Skipped, |record| record.outcome.clone())
    }
}

fn device_twins(device: &str, reads: Option<&DeviceReads>) -> DeviceTwins {
    let twin = |module: &str| reads.and_then(|r| r.twins.get(module));
    let edge_agent = twin(EDGE_AGENT)
        .and_then(|v| parse(device, EDGE_AGENT, EdgeAgentTwin::from_value(v)))
        .unwrap_or_default();
    let edge_hub = twin(EDGE_HUB).and_then(|v| parse(device, EDGE_HUB, EdgeHubTwin::from_value(v)));
    let modules = reads
        .map(|r| {
            r.twins
                .iter()
                .filter(|(m, _)| !m.starts_with('$'))
                .filter_map(|(m, v)| parse(device, m, ModuleTwin::from_value(v)))
                .collect()
        })
        .unwrap_or_default();
    DeviceTwins {
        device_id: device.to_owned(),
        edge_agent,
        edge_hub,
        modules,
    }
}

fn parse<T, E: std::fmt::Display>(device: &str, module: &str, parsed: Result<T, E>) -> Option<T> {
    parsed
        .map_err(|e| tracing::warn!(device, module, error = %e, "unreadable twin ignored"))
        .ok()
}

/// Devices judged from query data whose verdict would change: confirm them by GET.
fn doubtful_devices(
    verdicts: &[Verdict],
    reads: &HashMap<String, DeviceReads>,
    state: &WatchState,
) -> Vec<String> {
    verdicts
        .iter()
        .map(|v| &v.report)
        .filter(|r| reads.get(&r.device_id).is_some_and(|x| x.from_query))
        .filter(|r| needs_confirmation(state.reports.get(&r.device_id), r))
        .map(|r| r.device_id.clone())
        .collect()
}

fn replace_verdicts(verdicts: &mut [Verdict], confirmed: Vec<Verdict>) {
    let mut by_id: HashMap<String, Verdict> = confirmed
        .into_iter()
        .map(|v| (v.report.device_id.clone(), v))
        .collect();
    for verdict in verdicts.iter_mut() {
        if let Some(newer) = by_id.remove(&verdict.report.device_id) {
            *verdict = newer;
        }
    }
}
