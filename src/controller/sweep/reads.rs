//! The IoT Hub side of a sweep: which devices, their twins, their pings.

use std::collections::HashMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use serde_json::Value;

use crate::api::EdgeDeviceWatchSpec;
use crate::health::PingError;
use crate::iothub::{ErrorKind, IotHubClient, IotHubError};
use crate::twin;

use crate::controller::error::ReconcileError;
use crate::controller::state::pings::PingRecord;
use crate::controller::sweep::devices::{DeviceSet, resolve, selector_query};
use crate::controller::sweep::hub_errors::{
    ping_error, ping_outcome, selector_failure, stops_the_sweep,
};
use crate::controller::sweep::read_plan::{QuotaBudget, TwinKey, plan_reads};

/// The module twins read for every device, before the watch's custom modules.
pub(crate) const SYSTEM_MODULES: [&str; 2] = [twin::EDGE_AGENT, twin::EDGE_HUB];

/// Calls in flight at once for one sweep (the client paces and bounds them further).
const CONCURRENT_CALLS: usize = 16;

/// Module twins read for one device; a module absent from the map does not exist.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DeviceReads {
    pub twins: HashMap<String, Value>,
    /// True when the twins came from a query (eventually consistent) rather than GETs.
    pub from_query: bool,
    /// A failure that left this device's twins unknown this sweep.
    pub failure: Option<String>,
    /// IoT Hub's 404001 on one of the device's twins: the hub does not know the id.
    pub not_found: Option<PingError>,
}

/// The devices of the watch: explicit ids and the selector's matches.
pub(crate) async fn resolve_devices(
    client: &IotHubClient,
    spec: &EdgeDeviceWatchSpec,
) -> Result<DeviceSet, ReconcileError> {
    let Some(selector) = &spec.selector else {
        return Ok(resolve(&spec.devices, None));
    };
    let rows: Vec<Value> = client
        .query(selector_query(&selector.query))
        .try_collect()
        .await
        .map_err(|e| selector_failure(client.hub(), e))?;
    let selected: Vec<String> = rows
        .iter()
        .filter_map(|row| row.get("deviceId").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    Ok(resolve(&spec.devices, Some(&selected)))
}

/// The module ids read per device: the system modules and the watch's custom modules.
pub(crate) fn module_ids(spec: &EdgeDeviceWatchSpec) -> Vec<String> {
    let mut modules: Vec<String> = SYSTEM_MODULES.iter().map(|m| (*m).to_owned()).collect();
    for m in &spec.modules {
        if !modules.contains(&m.name) {
            modules.push(m.name.clone());
        }
    }
    modules
}

/// Reads the twins of `devices`, batched through queries when that is cheaper; also
/// returns how much of the hub's quota time the reads needed by the plan's estimate.
pub(crate) async fn read_twins(
    client: &IotHubClient,
    devices: &[String],
    modules: &[String],
    budget: &QuotaBudget,
) -> Result<(HashMap<String, DeviceReads>, Duration), ReconcileError> {
    let plan = plan_reads(devices, modules, budget);
    let mut reads: HashMap<String, DeviceReads> = devices
        .iter()
        .map(|d| (d.clone(), DeviceReads::default()))
        .collect();
    for batch in &plan.queries {
        let items: Vec<Value> = client
            .query(batch.query.clone())
            .try_collect()
            .await
            .map_err(|e| ReconcileError::from_hub(client.hub(), e))?;
        for id in &batch.device_ids {
            if let Some(r) = reads.get_mut(id) {
                r.from_query = true;
            }
        }
        for item in items {
            store_query_item(&mut reads, item);
        }
    }
    get_into(client, plan.gets, &mut reads).await?;
    Ok((reads, plan.estimated))
}

/// Re-reads the twins of `devices` by GET (authoritative), replacing query data.
pub(crate) async fn confirm_by_get(
    client: &IotHubClient,
    devices: &[String],
    modules: &[String],
    reads: &mut HashMap<String, DeviceReads>,
) -> Result<(), ReconcileError> {
    let keys: Vec<TwinKey> = devices
        .iter()
        .flat_map(|d| {
            modules.iter().map(move |m| TwinKey {
                device_id: d.clone(),
                module_id: m.clone(),
            })
        })
        .collect();
    for d in devices {
        reads.insert(d.clone(), DeviceReads::default());
    }
    get_into(client, keys, reads).await
}

fn store_query_item(reads: &mut HashMap<String, DeviceReads>, item: Value) {
    let device = item
        .get("deviceId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let module = item
        .get("moduleId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let (Some(device), Some(module)) = (device, module)
        && let Some(r) = reads.get_mut(&device)
    {
        r.twins.insert(module, item);
    }
}

async fn get_into(
    client: &IotHubClient,
    keys: Vec<TwinKey>,
    reads: &mut HashMap<String, DeviceReads>,
) -> Result<(), ReconcileError> {
    let mut results = futures::stream::iter(keys)
        .map(|key| async move {
            let twin = client
                .get_module_twin::<Value>(&key.device_id, &key.module_id)
                .await;
            (key, twin)
        })
        .buffer_unordered(CONCURRENT_CALLS);
    while let Some((key, twin)) = results.next().await {
        let Some(r) = reads.get_mut(&key.device_id) else {
            continue;
        };
        match twin {
            Ok(value) => {
                r.twins.insert(key.module_id, value);
            }
            Err(e) if stops_the_sweep(&e) => return Err(ReconcileError::from_hub(client.hub(), e)),
            Err(e) if e.kind() == ErrorKind::DeviceNotFound => r.not_found = Some(ping_error(&e)),
            Err(e) if e.kind() == ErrorKind::ModuleNotFound => {}
            Err(e) => r.failure = Some(e.to_string()),
        }
    }
    Ok(())
}

/// Pings `$edgeAgent` on each of `devices`, stamping the outcomes with the sweep's time
/// `at`; a hub-wide failure (401, throttling) stops the round and is returned after the
/// pings already made are recorded.
pub(crate) async fn ping_devices(
    client: &IotHubClient,
    devices: Vec<String>,
    timeout: Duration,
    at: Timestamp,
) -> (Vec<(String, PingRecord)>, Option<IotHubError>) {
    let mut results = futures::stream::iter(devices)
        .map(|device| {
            let client = client.clone();
            async move {
                let result = client.ping_edge_agent(&device, timeout).await;
                (device, result)
            }
        })
        .buffer_unordered(CONCURRENT_CALLS);
    let mut records = Vec::new();
    while let Some((device, result)) = results.next().await {
        if let Err(e) = &result
            && stops_the_sweep(e)
        {
            return (records, Some(e.clone()));
        }
        let record = PingRecord {
            at,
            outcome: ping_outcome(&result),
        };
        records.push((device, record));
    }
    (records, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_modules_follow_the_system_modules_once() {
        let spec: EdgeDeviceWatchSpec = serde_saphyr::from_str(
            "hub: {}\ndevices: [a]\nmodules: [{name: sensor}, {name: $edgeHub}]\n",
        )
        .unwrap();
        assert_eq!(module_ids(&spec), ["$edgeAgent", "$edgeHub", "sensor"]);
    }

    #[test]
    fn query_items_land_on_their_device_and_module() {
        let mut reads: HashMap<String, DeviceReads> =
            [("a".to_owned(), DeviceReads::default())].into();
        store_query_item(
            &mut reads,
            serde_json::json!({"deviceId": "a", "moduleId": "$edgeAgent"}),
        );
        store_query_item(
            &mut reads,
            serde_json::json!({"deviceId": "zz", "moduleId": "$edgeAgent"}),
        );
        store_query_item(&mut reads, serde_json::json!({"moduleId": "$edgeHub"}));
        assert_eq!(reads.len(), 1);
        assert!(reads["a"].twins.contains_key("$edgeAgent"));
    }
}
