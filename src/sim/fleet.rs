//! The fleet: every simulated device, built from a scenario and/or generated from a seed.
//!
//! Each device sits behind its own lock so requests for different devices never wait
//! on each other; the map itself is fixed after start.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value};

use super::device::{DeviceSeed, SimDevice};
use super::scenario::{
    DeviceSpec, GenerateSpec, ModuleSpec, RestartPolicy, Scenario, default_modules,
};

/// All devices, by id.
#[derive(Debug)]
pub struct Fleet {
    devices: BTreeMap<String, Mutex<SimDevice>>,
}

/// A one-line picture of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSummary {
    pub devices: usize,
    pub online: usize,
    /// Devices IoT Hub reports `Connected` (it notices connection changes late).
    pub connected: usize,
    pub module_twins: usize,
    pub scheduled_events: usize,
}

impl Fleet {
    /// Builds the named devices of `scenario` plus `generate` devices, all booted before `start`.
    pub fn build(
        scenario: &Scenario,
        generate: Option<&GenerateSpec>,
        seed: u64,
        start: Timestamp,
    ) -> Result<Fleet, String> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut devices = BTreeMap::new();
        let mut scope = 639_000_000_000_000_000u64 + rng.random_range(0..1_000_000_000u64);
        let mut add = |spec: &DeviceSpec,
                       rng: &mut StdRng,
                       devices: &mut BTreeMap<String, Mutex<SimDevice>>| {
            scope += 1;
            let uptime = SignedDuration::from_secs(rng.random_range(3_600..72 * 3_600));
            let dev = SimDevice::new(DeviceSeed {
                id: &spec.id,
                tags: spec.tags.clone(),
                modules: &spec.modules,
                online: !spec.offline,
                boot: start - uptime,
                scope_suffix: scope,
                connection_state_lag: scenario.connection_state_lag_of(Some(spec)),
                rng_seed: device_seed(seed, &spec.id),
            });
            devices.insert(spec.id.clone(), Mutex::new(dev));
        };
        for spec in &scenario.devices {
            add(spec, &mut rng, &mut devices);
        }
        if let Some(g) = generate {
            for i in 0..g.count {
                let spec = generated_device(g, i, &mut rng);
                if devices.contains_key(&spec.id) {
                    return Err(format!(
                        "generated device id {} collides with a named device",
                        spec.id
                    ));
                }
                add(&spec, &mut rng, &mut devices);
            }
        }
        for event in &scenario.events {
            let dev = devices
                .get(&event.device)
                .ok_or_else(|| format!("event names unknown device {}", event.device))?;
            lock(dev).schedule(start + event.at, event.action.clone());
        }
        Ok(Fleet { devices })
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The device, brought up to `now`.
    pub fn device(&self, id: &str, now: Timestamp) -> Option<MutexGuard<'_, SimDevice>> {
        let mut guard = lock(self.devices.get(id)?);
        guard.advance_to(now);
        Some(guard)
    }

    /// Devices from `start` on, in id order.
    pub fn devices_from<'a>(
        &'a self,
        start: std::ops::Bound<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a Mutex<SimDevice>)> + 'a {
        self.devices
            .range::<str, _>((start, std::ops::Bound::Unbounded))
            .map(|(k, v)| (k.as_str(), v))
    }

    pub fn ids(&self) -> Vec<String> {
        self.devices.keys().cloned().collect()
    }

    pub fn summary(&self, now: Timestamp) -> FleetSummary {
        let mut s = FleetSummary {
            devices: self.devices.len(),
            online: 0,
            connected: 0,
            module_twins: 0,
            scheduled_events: 0,
        };
        for dev in self.devices.values() {
            let mut d = lock(dev);
            d.advance_to(now);
            s.online += usize::from(d.is_online());
            s.connected += usize::from(d.hub_sees_online());
            s.module_twins += d.module_twins().count();
            s.scheduled_events += d.scheduled_events();
        }
        s
    }
}

/// A device's own seed: the fleet seed mixed with its id (FNV-1a), so a device's draws do
/// not depend on how many devices come before it.
fn device_seed(seed: u64, id: &str) -> u64 {
    id.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Locks a device, recovering from a panic in another request.
pub fn lock(m: &Mutex<SimDevice>) -> MutexGuard<'_, SimDevice> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn generated_device(g: &GenerateSpec, i: usize, rng: &mut StdRng) -> DeviceSpec {
    let width = g.count.to_string().len().max(4);
    let id = format!("{}{:0width$}", g.id_prefix, i + 1);
    let mut tags = Map::new();
    let site = i % g.sites.max(1);
    tags.insert("site".into(), Value::from(format!("site-{site:02}")));
    tags.insert(
        "ring".into(),
        Value::from(if rng.random_bool(0.1) {
            "canary"
        } else {
            "broad"
        }),
    );
    tags.insert("environment".into(), Value::from("production"));
    let mut modules = default_modules();
    if i.is_multiple_of(3) {
        let mut props = Map::new();
        props.insert("TemperatureThreshold".into(), Value::from(25));
        modules.push(ModuleSpec {
            name: "filtermodule".into(),
            image: "example.azurecr.io/filtermodule:0.0.1-amd64".into(),
            status: Default::default(),
            restart_policy: RestartPolicy::Always,
            desired_properties: props,
        });
    }
    DeviceSpec {
        id,
        tags,
        modules,
        offline: false,
        connection_state_lag: None,
    }
}
