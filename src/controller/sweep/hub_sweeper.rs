//! The production [`Sweeper`]: reads the watch's devices from IoT Hub, pings those due,
//! and judges each with the evaluator.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::api::EdgeDeviceWatchSpec;
use crate::health::report::DeviceReport;
use crate::health::{
    DeviceMemory, DeviceTwins, PingOutcome, Policy, PropertyCheck, PropertySelection,
    RestartLoopPolicy, evaluate,
};
use crate::twin::{EDGE_AGENT, EDGE_HUB, EdgeAgentTwin, EdgeHubTwin, ModuleTwin};

use super::{SweepOutput, SweepRequest, Sweeper};
use crate::controller::error::ReconcileError;
use crate::controller::key::WatchKey;
use crate::controller::prepare::settings::WatchSettings;
use crate::controller::state::WatchState;
use crate::controller::state::pings::PingLedger;
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
        request: SweepRequest<'_>,
        state: &mut WatchState,
    ) -> Result<SweepOutput, ReconcileError> {
        let key = request.key;
        let client = self.clients.client_for(key, request.credentials)?;
        let devices = resolve_devices(&client, request.spec).await?;
        if devices.dropped > 0 {
            tracing::warn!(
                watch = %key,
                dropped = devices.dropped,
                "watch covers more devices than one watch sweeps; split it"
            );
        }
        state.retain_devices(&devices.ids);
        let modules = module_ids(request.spec);
        let (mut reads, quota_time) =
            read_twins(&client, &devices.ids, &modules, &self.budget).await?;
        if request.settings.ping_enabled {
            let due: Vec<String> = state
                .pings
                .due(&devices.ids, request.now, request.settings.ping_interval)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let (records, stop) =
                ping_devices(&client, due, request.settings.ping_timeout, request.now).await;
            for (device, record) in records {
                state.pings.record(&device, record);
            }
            if let Some(error) = stop {
                return Err(error.into());
            }
        }
        let judge = Judge {
            policy: policy(request.spec, request.settings),
            ping_enabled: request.settings.ping_enabled,
            now: request.now,
        };
        let mut verdicts = judge.all(&devices.ids, &reads, state);
        let doubtful = doubtful_devices(&verdicts, &reads, state);
        if !doubtful.is_empty() {
            confirm_by_get(&client, &doubtful, &modules, &mut reads).await?;
            let confirmed = judge.all(&doubtful, &reads, state);
            replace_verdicts(&mut verdicts, confirmed);
        }
        let mut reports = Vec::with_capacity(verdicts.len());
        for (report, memory) in verdicts {
            if let Some(memory) = memory {
                state.restarts.insert(report.device_id.clone(), memory);
            }
            reports.push(report);
        }
        Ok(SweepOutput {
            hub: client.hub().to_owned(),
            reports,
            quota_time,
        })
    }

    fn retain_watches(&self, live: &std::collections::HashSet<WatchKey>) {
        self.clients.retain(live);
    }
}

/// The evaluator's policy from the watch's settings.
pub fn policy(spec: &EdgeDeviceWatchSpec, settings: &WatchSettings) -> Policy {
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

/// A verdict and the restart memory to keep (`None` when the previous verdict was kept).
type Verdict = (DeviceReport, Option<DeviceMemory>);

/// Judges devices with one policy at one instant.
struct Judge {
    policy: Policy,
    ping_enabled: bool,
    now: Timestamp,
}

impl Judge {
    fn all(
        &self,
        devices: &[String],
        reads: &HashMap<String, DeviceReads>,
        state: &WatchState,
    ) -> Vec<Verdict> {
        devices
            .iter()
            .map(|device| self.one(device, reads.get(device), state))
            .collect()
    }

    /// A device whose twins could not be read this sweep keeps its previous verdict
    /// when there is one.
    fn one(&self, device: &str, reads: Option<&DeviceReads>, state: &WatchState) -> Verdict {
        let failed = reads.is_none_or(|r| r.failure.is_some());
        if failed && let Some(previous) = state.reports.get(device) {
            return (previous.clone(), None);
        }
        let twins = device_twins(device, reads);
        let ping = match reads.and_then(|r| r.not_found.clone()) {
            Some(not_found) => PingOutcome::DeviceNotFound(not_found),
            None if self.ping_enabled => ping_for(&state.pings, device),
            None => PingOutcome::Skipped,
        };
        let evaluation = evaluate(
            &twins,
            &ping,
            state.restarts.get(device),
            &self.policy,
            self.now,
        );
        (evaluation.report, Some(evaluation.memory))
    }
}

/// The last ping of a device as the evaluator reads it; never pinged reads as skipped.
fn ping_for(pings: &PingLedger, device: &str) -> PingOutcome {
    pings
        .get(device)
        .map_or(PingOutcome::Skipped, |record| record.outcome.clone())
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
        .map(|(r, _)| r)
        .filter(|r| reads.get(&r.device_id).is_some_and(|x| x.from_query))
        .filter(|r| needs_confirmation(state.reports.get(&r.device_id), r))
        .map(|r| r.device_id.clone())
        .collect()
}

fn replace_verdicts(verdicts: &mut [Verdict], confirmed: Vec<Verdict>) {
    let mut by_id: HashMap<String, Verdict> = confirmed
        .into_iter()
        .map(|v| (v.0.device_id.clone(), v))
        .collect();
    for verdict in verdicts.iter_mut() {
        if let Some(newer) = by_id.remove(&verdict.0.device_id) {
            *verdict = newer;
        }
    }
}
