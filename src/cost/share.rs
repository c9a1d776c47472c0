//! A hub's daily budget split between the watches that read that hub.

/// What one watch asks of its hub's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchDemand {
    /// Devices the watch covers (its weight in the split).
    pub devices: u64,
    /// The watch's own cap (`spec.budget.messagesPerDay`), if it has one.
    pub own_budget: Option<u64>,
}

/// Each watch's daily budget: the hub's budget shared in proportion to devices, and
/// never more than the watch's own cap.
///
/// A watch with no devices yet still weighs as one device, so it can afford the query
/// that finds its devices. What a capped watch leaves unused is not handed to the
/// others: each watch's budget then depends only on its own size and the hub's fleet,
/// which keeps it predictable when someone else adds a small capped watch.
pub fn share_budget(hub_budget: u64, demands: &[WatchDemand]) -> Vec<u64> {
    let weights: Vec<u128> = demands
        .iter()
        .map(|d| u128::from(d.devices.max(1)))
        .collect();
    let total: u128 = weights.iter().sum();
    demands
        .iter()
        .zip(weights)
        .map(|(demand, weight)| {
            let share = u128::from(hub_budget) * weight / total.max(1);
            let share = u64::try_from(share).unwrap_or(u64::MAX);
            demand.own_budget.map_or(share, |own| own.min(share))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(devices: u64, own_budget: Option<u64>) -> WatchDemand {
        WatchDemand {
            devices,
            own_budget,
        }
    }

    #[test]
    fn one_watch_gets_the_whole_hub_budget() {
        assert_eq!(share_budget(40_000, &[demand(10_000, None)]), [40_000]);
    }

    #[test]
    fn watches_share_in_proportion_to_devices() {
        let shares = share_budget(40_000, &[demand(3_000, None), demand(1_000, None)]);
        assert_eq!(shares, [30_000, 10_000]);
    }

    #[test]
    fn a_watch_budget_caps_its_share_and_is_not_redistributed() {
        let shares = share_budget(40_000, &[demand(1_000, Some(5_000)), demand(1_000, None)]);
        assert_eq!(shares, [5_000, 20_000]);
    }

    #[test]
    fn a_watch_budget_never_raises_the_share() {
        assert_eq!(share_budget(1_000, &[demand(10, Some(1_000_000))]), [1_000]);
    }

    #[test]
    fn a_watch_without_devices_still_gets_something() {
        let shares = share_budget(40_000, &[demand(0, None), demand(999, None)]);
        assert_eq!(shares, [40, 39_960]);
    }

    #[test]
    fn shares_never_add_up_to_more_than_the_hub_budget() {
        let demands: Vec<WatchDemand> = (1..=7).map(|d| demand(d * 13, None)).collect();
        let shares = share_budget(40_001, &demands);
        assert!(shares.iter().sum::<u64>() <= 40_001);
    }

    #[test]
    fn no_watches_no_shares() {
        assert!(share_budget(40_000, &[]).is_empty());
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let shares = share_budget(u64::MAX, &[demand(u64::MAX, None), demand(u64::MAX, None)]);
        assert_eq!(shares[0], u64::MAX / 2);
    }
}
