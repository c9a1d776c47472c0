//! The hub's message meter: what every answer costs by IoT Hub's billing rules
//! ([`crate::iothub::billing`]), totals per operation kind and per simulated UTC day, the
//! daily quota that turns billable requests into 403002 once used up, and the fleet's
//! own telemetry consuming the same quota in the background.
//!
//! Fleet telemetry accrues evenly with simulated time and is brought up to date before
//! every request is admitted or counted, so on a manual clock the interleaving of
//! monitoring and telemetry is exact: whatever the fleet sent before a request is
//! already on the day's tally when that request is judged.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::faults::OpCategory;
use crate::iothub::billing::{Meter, next_quota_reset};

/// A hub's daily message quota and the chunk size its tier bills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyQuota {
    /// Messages per UTC day, all units together.
    pub messages: u64,
    /// Free hubs bill in 0.5 KB chunks, the standard tiers in 4 KB chunks.
    pub meter: Meter,
}

/// Messages per unit per day on the standard tiers.
const S1_UNIT: u64 = 400_000;
const S2_UNIT: u64 = 6_000_000;
const S3_UNIT: u64 = 300_000_000;
/// The Free tier: one unit of 8,000 messages.
const FREE_QUOTA: u64 = 8_000;

impl DailyQuota {
    /// Parses `free`, `s1[:UNITS]`, `s2[:UNITS]`, `s3[:UNITS]` or a number of messages.
    pub fn parse(text: &str) -> Result<DailyQuota, String> {
        let text = text.trim();
        let usage =
            "expected free, s1[:UNITS], s2[:UNITS], s3[:UNITS] or a number of messages per day";
        let lower = text.to_ascii_lowercase();
        let (tier, units) = match lower.split_once(':') {
            Some((tier, units)) => {
                let units: u64 = units.parse().ok().filter(|u| *u >= 1).ok_or_else(|| {
                    format!("{text:?}: units must be a whole number of at least 1")
                })?;
                (tier, Some(units))
            }
            None => (lower.as_str(), None),
        };
        let per_unit = match tier {
            "free" if units.is_some() => {
                return Err(format!("{text:?}: a Free hub has exactly one unit"));
            }
            "free" => {
                return Ok(DailyQuota {
                    messages: FREE_QUOTA,
                    meter: Meter::FREE,
                });
            }
            "s1" => S1_UNIT,
            "s2" => S2_UNIT,
            "s3" => S3_UNIT,
            number if units.is_none() => {
                let messages: u64 = number
                    .parse()
                    .map_err(|_| format!("{text:?} is not a daily quota: {usage}"))?;
                if messages == 0 {
                    return Err(format!(
                        "{text:?}: the daily quota must be at least 1 message"
                    ));
                }
                return Ok(DailyQuota {
                    messages,
                    meter: Meter::STANDARD,
                });
            }
            _ => return Err(format!("{text:?} is not a daily quota: {usage}")),
        };
        Ok(DailyQuota {
            messages: per_unit.saturating_mul(units.unwrap_or(1)),
            meter: Meter::STANDARD,
        })
    }
}

/// One number per operation kind, plus their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerKind {
    pub twin_reads: u64,
    pub queries: u64,
    pub methods: u64,
    pub registry: u64,
    pub total: u64,
}

impl PerKind {
    fn add(&mut self, cat: OpCategory, n: u64) {
        let slot = match cat {
            OpCategory::TwinRead => &mut self.twin_reads,
            OpCategory::Query => &mut self.queries,
            OpCategory::Method => &mut self.methods,
            OpCategory::Registry => &mut self.registry,
        };
        *slot += n;
        self.total += n;
    }
}

/// What one simulated UTC day used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayCounts {
    /// `YYYY-MM-DD` (UTC).
    pub date: Date,
    /// Billed messages of answered service requests, by kind.
    pub messages: PerKind,
    /// Background telemetry of the fleet the hub accepted.
    pub fleet_messages: u64,
    /// Background telemetry refused because the quota was used up.
    pub fleet_refused: u64,
    /// Requests answered 403002, by kind.
    pub quota_exceeded: PerKind,
    /// `messages.total + fleetMessages`: what counts against the quota.
    pub used: u64,
    /// What is left of the day's quota (`null` without a quota).
    pub remaining: Option<u64>,
}

/// Billing counters as `/_sim/counts` reports them under `billing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingCounts {
    /// Bytes per billed message (4096, or 512 on a Free hub).
    pub chunk_bytes: u64,
    /// Messages per day, or `null` when no quota is enforced.
    pub daily_quota: Option<u64>,
    pub fleet_messages_per_device_day: u64,
    /// Billed messages of answered service requests since start, by kind.
    pub messages: PerKind,
    /// Service requests answered (any status), by kind.
    pub requests: PerKind,
    /// Response body bytes sent (any status), by kind.
    pub response_bytes: PerKind,
    /// Requests answered 403002 IotHubQuotaExceeded, by kind.
    pub quota_exceeded: PerKind,
    /// Fleet telemetry accepted / refused since start.
    pub fleet_messages: u64,
    pub fleet_refused: u64,
    /// One entry per simulated UTC day with any use, oldest first.
    pub days: Vec<DayCounts>,
}

/// Why a billable request is refused: the day's quota is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub limit: u64,
    pub used: u64,
    /// The next 00:00 UTC, when the quota resets.
    pub resets_at: Timestamp,
}

/// The quota settings the admin API reads and replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSettings {
    pub daily_quota: Option<DailyQuota>,
    pub fleet_messages_per_device_day: u64,
}

/// The meter shared by all requests.
#[derive(Debug)]
pub struct HubMeter {
    state: Mutex<MeterState>,
}

#[derive(Debug)]
struct MeterState {
    settings: QuotaSettings,
    devices: u64,
    /// Fleet telemetry is accounted up to this instant.
    fleet_until: Timestamp,
    /// Fractions of a message (in message-nanoseconds per day) not yet accounted.
    fleet_carry: u128,
    messages: PerKind,
    requests: PerKind,
    response_bytes: PerKind,
    quota_exceeded: PerKind,
    days: BTreeMap<Date, DayCounts>,
}

const DAY_NANOS: u128 = 86_400 * 1_000_000_000;

fn utc_date(at: Timestamp) -> Date {
    at.to_zoned(TimeZone::UTC).date()
}

impl HubMeter {
    /// A meter for a fleet of `devices`, starting to account fleet telemetry at `start`.
    pub fn new(settings: QuotaSettings, devices: usize, start: Timestamp) -> Self {
        HubMeter {
            state: Mutex::new(MeterState {
                settings,
                devices: devices as u64,
                fleet_until: start,
                fleet_carry: 0,
                messages: PerKind::default(),
                requests: PerKind::default(),
                response_bytes: PerKind::default(),
                quota_exceeded: PerKind::default(),
                days: BTreeMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The billing rules of the configured tier.
    pub fn meter(&self) -> Meter {
        self.state().meter()
    }

    pub fn settings(&self) -> QuotaSettings {
        self.state().settings
    }

    /// Replaces quota and fleet rate from `now` on (what accrued before stays).
    pub fn set_settings(&self, settings: QuotaSettings, now: Timestamp) {
        let mut s = self.state();
        s.accrue_fleet(now);
        s.settings = settings;
    }

    /// Lets a request of `cat` through, or refuses it because today's quota is used up.
    /// Registry operations are never refused.
    pub fn admit(&self, cat: OpCategory, now: Timestamp) -> Result<(), QuotaExceeded> {
        let mut s = self.state();
        s.accrue_fleet(now);
        let Some(quota) = s.settings.daily_quota else {
            return Ok(());
        };
        if cat == OpCategory::Registry {
            return Ok(());
        }
        let used = s.days.get(&utc_date(now)).map_or(0, |d| d.used);
        if used < quota.messages {
            return Ok(());
        }
        s.quota_exceeded.add(cat, 1);
        s.day(utc_date(now)).quota_exceeded.add(cat, 1);
        Err(QuotaExceeded {
            limit: quota.messages,
            used,
            resets_at: next_quota_reset(now),
        })
    }

    /// Counts one answered request: its billed messages and response body bytes.
    pub fn record(&self, cat: OpCategory, now: Timestamp, messages: u64, response_bytes: u64) {
        let mut s = self.state();
        s.accrue_fleet(now);
        s.requests.add(cat, 1);
        s.response_bytes.add(cat, response_bytes);
        s.messages.add(cat, messages);
        let day = s.day(utc_date(now));
        day.messages.add(cat, messages);
        day.used += messages;
    }

    /// Everything counted, with fleet telemetry brought up to `now`.
    pub fn snapshot(&self, now: Timestamp) -> BillingCounts {
        let mut s = self.state();
        s.accrue_fleet(now);
        let quota = s.settings.daily_quota.map(|q| q.messages);
        let days: Vec<DayCounts> = s
            .days
            .values()
            .map(|d| DayCounts {
                remaining: quota.map(|q| q.saturating_sub(d.used)),
                ..*d
            })
            .collect();
        BillingCounts {
            chunk_bytes: s.meter().chunk_bytes(),
            daily_quota: quota,
            fleet_messages_per_device_day: s.settings.fleet_messages_per_device_day,
            messages: s.messages,
            requests: s.requests,
            response_bytes: s.response_bytes,
            quota_exceeded: s.quota_exceeded,
            fleet_messages: days.iter().map(|d| d.fleet_messages).sum(),
            fleet_refused: days.iter().map(|d| d.fleet_refused).sum(),
            days,
        }
    }
}

impl MeterState {
    fn meter(&self) -> Meter {
        self.settings
            .daily_quota
            .map_or(Meter::STANDARD, |q| q.meter)
    }

    fn day(&mut self, date: Date) -> &mut DayCounts {
        self.days.entry(date).or_insert_with(|| DayCounts {
            date,
            ..DayCounts::default()
        })
    }

    /// Adds the fleet's telemetry from `fleet_until` to `now`, day by day; what does not
    /// fit in a day's quota is refused, as the hub refuses device messages over quota.
    fn accrue_fleet(&mut self, now: Timestamp) {
        let per_day =
            u128::from(self.settings.fleet_messages_per_device_day) * u128::from(self.devices);
        while self.fleet_until < now {
            let date = utc_date(self.fleet_until);
            let segment_end = next_quota_reset(self.fleet_until).min(now);
            let nanos = segment_end
                .duration_since(self.fleet_until)
                .as_nanos()
                .max(0) as u128;
            self.fleet_until = segment_end;
            if per_day == 0 {
                continue;
            }
            let scaled = per_day * nanos + self.fleet_carry;
            self.fleet_carry = scaled % DAY_NANOS;
            let offered = u64::try_from(scaled / DAY_NANOS).unwrap_or(u64::MAX);
            if offered == 0 {
                continue;
            }
            let quota = self.settings.daily_quota.map(|q| q.messages);
            let day = self.day(date);
            let room = quota.map_or(offered, |q| q.saturating_sub(day.used));
            let accepted = offered.min(room);
            day.fleet_messages += accepted;
            day.fleet_refused += offered - accepted;
            day.used += accepted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn quota_specs_parse_like_the_tiers() {
        let q = |s: &str| DailyQuota::parse(s).map(|q| (q.messages, q.meter.chunk_bytes()));
        assert_eq!(q("free"), Ok((8_000, 512)));
        assert_eq!(q("S1"), Ok((400_000, 4096)));
        assert_eq!(q("s1:3"), Ok((1_200_000, 4096)));
        assert_eq!(q("s2:2"), Ok((12_000_000, 4096)));
        assert_eq!(q("s3"), Ok((300_000_000, 4096)));
        assert_eq!(q("250"), Ok((250, 4096)));
        for bad in ["free:2", "s1:0", "s1:x", "s4", "0", "-5", "", "s1:"] {
            assert!(DailyQuota::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    fn settings(quota: Option<u64>, fleet: u64) -> QuotaSettings {
        QuotaSettings {
            daily_quota: quota.map(|messages| DailyQuota {
                messages,
                meter: Meter::STANDARD,
            }),
            fleet_messages_per_device_day: fleet,
        }
    }

    #[test]
    fn billable_requests_are_refused_once_the_day_is_used_up_and_again_welcome_at_midnight() {
        let start = t("2026-03-01T23:00:00Z");
        let m = HubMeter::new(settings(Some(5), 0), 10, start);
        assert!(m.admit(OpCategory::TwinRead, start).is_ok());
        m.record(OpCategory::TwinRead, start, 3, 9_000);
        assert!(m.admit(OpCategory::Method, start).is_ok());
        m.record(OpCategory::Method, start, 2, 30);
        let refused = m.admit(OpCategory::Query, start).unwrap_err();
        assert_eq!((refused.limit, refused.used), (5, 5));
        assert_eq!(refused.resets_at, t("2026-03-02T00:00:00Z"));
        assert!(
            m.admit(OpCategory::Registry, start).is_ok(),
            "registry is free"
        );
        let after = t("2026-03-02T00:00:00Z");
        assert!(m.admit(OpCategory::Query, after).is_ok());
        let c = m.snapshot(after);
        assert_eq!(c.messages.total, 5);
        assert_eq!(c.quota_exceeded.queries, 1);
        assert_eq!(c.days.len(), 1);
        assert_eq!(c.days[0].remaining, Some(0));
    }

    #[test]
    fn fleet_telemetry_accrues_with_time_split_at_midnight_and_capped_by_the_quota() {
        let start = t("2026-03-01T18:00:00Z");
        // 2 devices × 1,200 messages a day = 100 an hour.
        let m = HubMeter::new(settings(Some(450), 1_200), 2, start);
        let c = m.snapshot(t("2026-03-02T03:00:00Z"));
        assert_eq!(c.days.len(), 2);
        assert_eq!(
            (c.days[0].fleet_messages, c.days[0].fleet_refused),
            (450, 150),
            "6 hours offered 600, the quota took 450"
        );
        assert_eq!((c.days[1].fleet_messages, c.days[1].used), (300, 300));
        let refused = m.admit(OpCategory::TwinRead, t("2026-03-02T04:30:00Z"));
        assert!(refused.is_err(), "the fleet used up the new day by 04:30");
    }

    #[test]
    fn accrual_does_not_depend_on_how_often_the_meter_is_read() {
        let start = t("2026-03-01T00:00:00Z");
        let once = HubMeter::new(settings(None, 7), 3, start);
        let often = HubMeter::new(settings(None, 7), 3, start);
        for minute in 1..=24 * 60 {
            often.snapshot(start + jiff::SignedDuration::from_mins(minute));
        }
        let end = start + jiff::SignedDuration::from_hours(24);
        assert_eq!(once.snapshot(end).fleet_messages, 21);
        assert_eq!(often.snapshot(end).fleet_messages, 21);
    }
}
