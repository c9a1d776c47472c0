//! Which devices a watch covers: the explicit ids united with what the selector query
//! finds, deduplicated and in a stable order.

use std::collections::BTreeSet;

/// More devices than one watch should sweep; beyond it the watch says so and splits are
/// needed (the quota, not memory, is what makes larger watches useless).
pub(crate) const MAX_DEVICES_PER_WATCH: usize = 20_000;

/// The IoT Hub query that finds the devices a selector matches. Non-Edge devices have no
/// `$edgeAgent` to judge, so they are never selected. It selects whole device twins
/// rather than projecting `deviceId`: pages cost the same query quota either way, and
/// the simulator (like other IoT Hub stand-ins) supports only `SELECT *`.
pub(crate) fn selector_query(condition: &str) -> String {
    format!("SELECT * FROM devices WHERE ({condition}) AND capabilities.iotEdge = true")
}

/// The resolved device set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DeviceSet {
    /// Sorted, unique device ids.
    pub ids: Vec<String>,
    /// How many ids were dropped to respect [`MAX_DEVICES_PER_WATCH`].
    pub dropped: usize,
}

/// Unites the explicit ids with the selector's result (when the watch has a selector).
pub(crate) fn resolve(explicit: &[String], selected: Option<&[String]>) -> DeviceSet {
    let all: BTreeSet<&String> = explicit
        .iter()
        .chain(selected.into_iter().flatten())
        .filter(|id| !id.is_empty())
        .collect();
    let dropped = all.len().saturating_sub(MAX_DEVICES_PER_WATCH);
    DeviceSet {
        ids: all
            .into_iter()
            .take(MAX_DEVICES_PER_WATCH)
            .cloned()
            .collect(),
        dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn explicit_and_selected_ids_unite_sorted_and_unique() {
        let set = resolve(&ids(&["gw-2", "gw-1"]), Some(&ids(&["gw-3", "gw-1"])));
        assert_eq!(set.ids, ids(&["gw-1", "gw-2", "gw-3"]));
        assert_eq!(set.dropped, 0);
    }

    #[test]
    fn without_selector_only_explicit_ids_count() {
        assert_eq!(resolve(&ids(&["b", "a", "a"]), None).ids, ids(&["a", "b"]));
        assert!(resolve(&[], Some(&[])).ids.is_empty());
    }

    #[test]
    fn ids_are_case_sensitive() {
        assert_eq!(resolve(&ids(&["GW", "gw"]), None).ids.len(), 2);
    }

    #[test]
    fn huge_selections_are_capped_and_counted() {
        let many: Vec<String> = (0..MAX_DEVICES_PER_WATCH + 5)
            .map(|i| format!("d{i:06}"))
            .collect();
        let set = resolve(&[], Some(&many));
        assert_eq!(set.ids.len(), MAX_DEVICES_PER_WATCH);
        assert_eq!(set.dropped, 5);
    }

    #[test]
    fn selector_query_keeps_only_edge_devices() {
        assert_eq!(
            selector_query("tags.site = 'a'"),
            "SELECT * FROM devices WHERE (tags.site = 'a') AND capabilities.iotEdge = true"
        );
    }
}
