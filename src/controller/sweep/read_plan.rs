//! How to read a sweep's twins at the lowest quota cost.
//!
//! IoT Hub meters twin GETs (per second) and queries (per minute) separately. A query
//! `SELECT * FROM devices.modules WHERE deviceId IN [...] AND moduleId IN [...]` returns
//! a page of many twins for one query unit; a GET returns one twin for one read unit. The
//! planner estimates how long each way takes under the hub's quota and picks the cheaper,
//! and never puts ids into query text that it cannot quote safely.

use std::time::Duration;

use crate::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};

/// The share of a hub's quota edgewatch may use, per metered operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaBudget {
    /// Twin reads per second (S1: 100 hub-wide; S3: 500 per unit).
    pub twin_reads_per_second: f64,
    /// Queries per minute (S1/S2: 20 per unit; S3: 1000 per unit).
    pub queries_per_minute: f64,
    /// Twins requested per query page (`x-ms-max-item-count`).
    pub page_size: usize,
    /// Longest query text IoT Hub accepts.
    pub max_query_chars: usize,
}

impl Default for QuotaBudget {
    /// One S1 unit, with the recommended page size of 100.
    fn default() -> Self {
        Self {
            twin_reads_per_second: 100.0,
            queries_per_minute: 20.0,
            page_size: 100,
            max_query_chars: 8192,
        }
    }
}

/// One module twin to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TwinKey {
    pub device_id: String,
    pub module_id: String,
}

/// One batched query and the devices it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryBatch {
    pub query: String,
    pub device_ids: Vec<String>,
}

/// The reads of one sweep.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ReadPlan {
    /// Batched queries (empty when GETs are cheaper).
    pub queries: Vec<QueryBatch>,
    /// Twins read one by one.
    pub gets: Vec<TwinKey>,
    /// The estimated quota time of the plan.
    pub estimated: Duration,
}

/// Plans the reads of `modules` (e.g. `$edgeAgent`, `$edgeHub`, custom modules) on each
/// of `device_ids`.
pub(crate) fn plan_reads(
    device_ids: &[String],
    modules: &[String],
    budget: &QuotaBudget,
) -> ReadPlan {
    let (quotable, unquotable): (Vec<&String>, Vec<&String>) = device_ids
        .iter()
        .partition(|id| quotable_literal(id) && modules.iter().all(|m| quotable_literal(m)));
    let batches = query_batches(&quotable, modules, budget.max_query_chars);
    let get_time = get_cost(quotable.len() * modules.len(), budget);
    let query_time = query_cost(&batches, modules.len(), budget);
    let extra_gets = twin_keys(&unquotable, modules);
    if !batches.is_empty() && query_time < get_time {
        ReadPlan {
            estimated: query_time + get_cost(extra_gets.len(), budget),
            queries: batches,
            gets: extra_gets,
        }
    } else {
        let mut gets = twin_keys(&quotable, modules);
        gets.extend(extra_gets);
        ReadPlan {
            estimated: get_cost(gets.len(), budget),
            queries: Vec::new(),
            gets,
        }
    }
}

/// Quota time of `twins` GETs.
pub(crate) fn get_cost(twins: usize, budget: &QuotaBudget) -> Duration {
    Duration::from_secs_f64(twins as f64 / budget.twin_reads_per_second.max(f64::MIN_POSITIVE))
}

fn query_cost(batches: &[QueryBatch], modules: usize, budget: &QuotaBudget) -> Duration {
    let pages: usize = batches
        .iter()
        .map(|b| (b.device_ids.len() * modules).div_ceil(budget.page_size.max(1)))
        .sum();
    let per_second = budget.queries_per_minute.max(f64::MIN_POSITIVE) / 60.0;
    Duration::from_secs_f64(pages as f64 / per_second)
}

fn twin_keys(device_ids: &[&String], modules: &[String]) -> Vec<TwinKey> {
    device_ids
        .iter()
        .flat_map(|d| {
            modules.iter().map(move |m| TwinKey {
                device_id: (*d).clone(),
                module_id: m.clone(),
            })
        })
        .collect()
}

/// Ids IoT Hub allows but that would need escaping inside a query string literal; they
/// are read by GET instead of guessing the service's escaping rules.
fn quotable_literal(id: &str) -> bool {
    !id.contains(['\'', '"', '\\'])
}

fn query_batches(device_ids: &[&String], modules: &[String], max_chars: usize) -> Vec<QueryBatch> {
    let empty_len = query_text(&[], modules).len();
    let mut batches = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut length = empty_len;
    for id in device_ids {
        // `'id'` plus a separating comma after the first id.
        let added = id.len() + 2 + usize::from(!current.is_empty());
        if !current.is_empty() && length + added > max_chars {
            batches.push(batch(std::mem::take(&mut current), modules));
            length = empty_len;
        }
        length += id.len() + 2 + usize::from(!current.is_empty());
        current.push((*id).clone());
    }
    if !current.is_empty() {
        batches.push(batch(current, modules));
    }
    batches
        .into_iter()
        .filter(|b| b.query.len() <= max_chars)
        .collect()
}

fn batch(device_ids: Vec<String>, modules: &[String]) -> QueryBatch {
    QueryBatch {
        query: query_text(&device_ids, modules),
        device_ids,
    }
}

fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    quoted.join(",")
}

/// The batched twin query for `device_ids` × `modules`.
pub(crate) fn query_text(device_ids: &[String], modules: &[String]) -> String {
    format!(
        "SELECT * FROM devices.modules WHERE deviceId IN [{}] AND moduleId IN [{}]",
        quoted_list(device_ids),
        quoted_list(modules)
    )
}

/// Whether a verdict judged from query data must be confirmed by GETs before it is
/// published. Query results may lag by minutes (Microsoft documents up to ~30); a GET is
/// authoritative. A verdict that keeps the previous one needs no confirmation; a device
/// seen for the first time needs it only when it looks bad.
pub(crate) fn needs_confirmation(
    previous: Option<&DeviceReport>,
    from_query: &DeviceReport,
) -> bool {
    match previous {
        None => !from_query.is_ready(),
        Some(previous) => verdict(previous) != verdict(from_query),
    }
}

fn verdict(report: &DeviceReport) -> Vec<(ConditionType, ConditionStatus, Reason)> {
    report
        .conditions
        .iter()
        .map(|c| (c.type_, c.status, c.reason))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_reports::{healthy, module_bad};

    #[test]
    fn only_changed_or_bad_first_verdicts_need_a_confirming_get() {
        let ok = healthy("a");
        let bad = module_bad("a", "m", Reason::ModuleFailed);
        assert!(!needs_confirmation(None, &ok));
        assert!(needs_confirmation(None, &bad));
        assert!(!needs_confirmation(Some(&ok), &ok));
        assert!(!needs_confirmation(Some(&bad), &bad));
        assert!(needs_confirmation(Some(&ok), &bad));
        assert!(needs_confirmation(Some(&bad), &ok));
        let backoff = module_bad("a", "m", Reason::ModuleBackoff);
        assert!(needs_confirmation(Some(&bad), &backoff));
    }

    fn devices(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("gw-{i:05}")).collect()
    }

    fn system_modules() -> Vec<String> {
        vec!["$edgeAgent".into(), "$edgeHub".into()]
    }

    #[test]
    fn small_fleets_on_s1_read_by_get() {
        let plan = plan_reads(&devices(10), &system_modules(), &QuotaBudget::default());
        assert!(plan.queries.is_empty());
        assert_eq!(plan.gets.len(), 20);
        assert_eq!(plan.estimated, Duration::from_millis(200));
    }

    #[test]
    fn large_pages_and_generous_query_quota_make_queries_cheaper() {
        // S3: 1000 queries/min and 500 reads/s per unit; a page of 1000 twins.
        let budget = QuotaBudget {
            twin_reads_per_second: 500.0,
            queries_per_minute: 1000.0,
            page_size: 1000,
            ..QuotaBudget::default()
        };
        let plan = plan_reads(&devices(5000), &system_modules(), &budget);
        assert!(!plan.queries.is_empty());
        assert!(plan.gets.is_empty());
        let covered: usize = plan.queries.iter().map(|b| b.device_ids.len()).sum();
        assert_eq!(covered, 5000);
        assert!(plan.estimated < get_cost(10_000, &budget));
    }

    #[test]
    fn every_batch_fits_the_query_length_limit() {
        let budget = QuotaBudget {
            queries_per_minute: 1e9,
            page_size: 1000,
            ..QuotaBudget::default()
        };
        let plan = plan_reads(&devices(3000), &system_modules(), &budget);
        assert!(
            plan.queries.len() > 1,
            "3000 ids cannot fit one 8 KiB query"
        );
        for batch in &plan.queries {
            assert!(batch.query.len() <= budget.max_query_chars);
            assert_eq!(
                batch.query,
                query_text(&batch.device_ids, &system_modules())
            );
        }
    }

    #[test]
    fn ids_needing_escapes_are_read_by_get_even_in_query_plans() {
        let budget = QuotaBudget {
            queries_per_minute: 1e9,
            page_size: 1000,
            ..QuotaBudget::default()
        };
        let mut ids = devices(100);
        ids.push("o'brien".into());
        let plan = plan_reads(&ids, &system_modules(), &budget);
        assert!(!plan.queries.is_empty());
        assert!(plan.queries.iter().all(|b| !b.query.contains("o'brien")));
        assert_eq!(plan.gets.len(), 2);
        assert!(plan.gets.iter().all(|k| k.device_id == "o'brien"));
    }

    #[test]
    fn query_text_names_devices_and_modules() {
        assert_eq!(
            query_text(&["a".into(), "b".into()], &["$edgeAgent".into()]),
            "SELECT * FROM devices.modules WHERE deviceId IN ['a','b'] AND moduleId IN ['$edgeAgent']"
        );
    }

    #[test]
    fn no_devices_means_no_reads() {
        let plan = plan_reads(&[], &system_modules(), &QuotaBudget::default());
        assert_eq!(plan, ReadPlan::default());
    }
}
