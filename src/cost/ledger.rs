//! Billed messages per UTC day, the unit IoT Hub's quota is counted in.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// What one watch was billed today and in its last sweep.
///
/// The day is the UTC calendar day: IoT Hub resets its daily quota at 00:00 UTC, so a
/// budget counted over any other window would drift against the hub's own count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DailyLedger {
    day: Option<Date>,
    today: u64,
    last_sweep: u64,
    this_sweep: u64,
}

impl DailyLedger {
    /// A ledger resumed from a persisted count (e.g. `status.cost`), so an operator
    /// restart does not forget what the hub already billed today.
    pub fn resume(day: Date, today: u64, last_sweep: u64) -> Self {
        Self {
            day: Some(day),
            today,
            last_sweep,
            this_sweep: 0,
        }
    }

    /// Records `messages` billed at `at`; a new UTC day starts from zero.
    pub fn charge(&mut self, at: Timestamp, messages: u64) {
        self.roll_over(at);
        self.today = self.today.saturating_add(messages);
        self.this_sweep = self.this_sweep.saturating_add(messages);
    }

    /// Closes the current sweep: its total becomes [`last_sweep`](Self::last_sweep).
    pub fn finish_sweep(&mut self) {
        self.last_sweep = std::mem::take(&mut self.this_sweep);
    }

    /// Messages billed on the UTC day of `at` (0 once that day is over).
    pub fn today(&self, at: Timestamp) -> u64 {
        if self.day == Some(utc_day(at)) {
            self.today
        } else {
            0
        }
    }

    /// Messages billed by the last finished sweep.
    pub fn last_sweep(&self) -> u64 {
        self.last_sweep
    }

    /// The UTC day the ledger counts, if anything was charged yet.
    pub fn day(&self) -> Option<Date> {
        self.day
    }

    /// What is left of `budget` on the UTC day of `at`.
    pub fn remaining(&self, at: Timestamp, budget: u64) -> u64 {
        budget.saturating_sub(self.today(at))
    }

    /// Whether work estimated at `messages` may start without the day's total passing
    /// `budget`: the guard that keeps a budget a ceiling rather than a target.
    pub fn allows(&self, at: Timestamp, budget: u64, messages: u64) -> bool {
        messages <= self.remaining(at, budget)
    }

    fn roll_over(&mut self, at: Timestamp) {
        let day = utc_day(at);
        if self.day != Some(day) {
            self.day = Some(day);
            self.today = 0;
        }
    }
}

/// The UTC calendar day of an instant.
pub(crate) fn utc_day(at: Timestamp) -> Date {
    at.to_zoned(TimeZone::UTC).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn charges_add_up_within_one_utc_day() {
        let mut ledger = DailyLedger::default();
        ledger.charge(at("2026-12-01T00:00:00Z"), 3);
        ledger.charge(at("2026-12-01T23:59:59.999Z"), 4);
        assert_eq!(ledger.today(at("2026-12-01T12:00:00Z")), 7);
    }

    #[test]
    fn a_new_utc_day_starts_from_zero() {
        let mut ledger = DailyLedger::default();
        ledger.charge(at("2026-12-01T23:59:00Z"), 10);
        assert_eq!(ledger.today(at("2026-12-02T00:00:00Z")), 0);
        ledger.charge(at("2026-12-02T00:00:01Z"), 2);
        assert_eq!(ledger.today(at("2026-12-02T00:00:02Z")), 2);
        assert_eq!(ledger.day(), Some(jiff::civil::date(2026, 12, 2)));
    }

    #[test]
    fn sweeps_are_totalled_when_they_finish() {
        let mut ledger = DailyLedger::default();
        let now = at("2026-12-01T10:00:00Z");
        ledger.charge(now, 5);
        assert_eq!(ledger.last_sweep(), 0);
        ledger.finish_sweep();
        assert_eq!(ledger.last_sweep(), 5);
        ledger.charge(now, 1);
        ledger.finish_sweep();
        assert_eq!(ledger.last_sweep(), 1);
        assert_eq!(ledger.today(now), 6);
    }

    #[test]
    fn a_sweep_across_midnight_counts_in_full_but_today_restarts() {
        let mut ledger = DailyLedger::default();
        ledger.charge(at("2026-12-01T23:59:59Z"), 4);
        ledger.charge(at("2026-12-02T00:00:00Z"), 1);
        ledger.finish_sweep();
        assert_eq!(ledger.last_sweep(), 5);
        assert_eq!(ledger.today(at("2026-12-02T00:00:00Z")), 1);
    }

    #[test]
    fn the_guard_refuses_work_that_would_pass_the_budget() {
        let now = at("2026-12-01T10:00:00Z");
        let mut ledger = DailyLedger::default();
        ledger.charge(now, 95);
        assert_eq!(ledger.remaining(now, 100), 5);
        assert!(ledger.allows(now, 100, 5));
        assert!(!ledger.allows(now, 100, 6));
        // Over budget already (a resumed count, or a budget lowered mid-day).
        assert_eq!(ledger.remaining(now, 50), 0);
        assert!(ledger.allows(now, 50, 0));
        // Tomorrow the whole budget is back.
        assert!(ledger.allows(at("2026-12-02T00:00:00Z"), 100, 100));
    }

    #[test]
    fn a_resumed_ledger_keeps_counting_the_same_day_only() {
        let ledger = DailyLedger::resume(jiff::civil::date(2026, 12, 1), 1234, 17);
        assert_eq!(ledger.today(at("2026-12-01T18:00:00Z")), 1234);
        assert_eq!(ledger.last_sweep(), 17);
        assert_eq!(ledger.today(at("2026-12-02T00:00:00Z")), 0);
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let now = at("2026-12-01T10:00:00Z");
        let mut ledger = DailyLedger::default();
        ledger.charge(now, u64::MAX);
        ledger.charge(now, 1);
        assert_eq!(ledger.today(now), u64::MAX);
    }
}
