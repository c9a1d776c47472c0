//! Cadences that fit a daily message budget.
//!
//! A watch's reads fall into four groups, from most to least important:
//! 1. reads that run every interval (the changes query, the disconnected-devices query):
//!    they set how soon a change reaches the status, which is what the user asked for;
//! 2. work driven by the fleet (fetching changed twins, confirming a verdict change by
//!    GET, a ping confirming a connection report), which the plan cannot postpone;
//! 3. slow background reads (re-resolving the selector, the full resync), each with a
//!    preferred and a longest cadence;
//! 4. heartbeat pings, which catch an agent that stopped answering while the hub still
//!    reports it connected: they get what the rest leaves, between the shortest period
//!    the spec allows and a longest period that is always paid for.
//!
//! The plan aims at [`PLANNING_SHARE`] of the budget, leaving room for estimates that
//! run low; the [`DailyLedger`](super::DailyLedger) guard is what makes the budget a
//! hard ceiling.

use std::time::Duration;

use super::SECONDS_PER_DAY;

/// The share of the budget the plan aims at.
pub const PLANNING_SHARE: f64 = 0.9;

/// The longest interval the planner stretches a watch to.
pub const LONGEST_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Slow recurring reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackgroundKind {
    /// Re-resolving which devices the selector matches.
    Selector,
    /// Re-reading every watched twin, to catch what the change queries missed.
    Resync,
}

impl BackgroundKind {
    fn label(self) -> &'static str {
        match self {
            BackgroundKind::Selector => "selector",
            BackgroundKind::Resync => "resync",
        }
    }
}

/// One slow recurring read and how often it may run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Background {
    pub kind: BackgroundKind,
    /// Billed messages of one run.
    pub per_run: f64,
    /// The cadence wanted when the budget allows.
    pub preferred: Duration,
    /// The slowest acceptable cadence.
    pub longest: Duration,
}

/// Liveness pings across the watch's devices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heartbeat {
    pub devices: u64,
    /// Billed messages of one ping (2 for an empty `ping`).
    pub per_ping: f64,
    /// No device is pinged more often than this (`spec.ping.interval`).
    pub shortest: Duration,
    /// Every device is pinged at least this often; always paid for.
    pub longest: Duration,
}

/// What the planner is asked to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    /// Messages per UTC day the watch may spend.
    pub budget_per_day: u64,
    /// The interval the spec asks for.
    pub interval: Duration,
    /// Billed messages of the reads that run every interval, per interval.
    pub per_interval: f64,
    /// Billed messages per day of fleet-driven work.
    pub events_per_day: f64,
    pub background: Vec<Background>,
    pub heartbeat: Option<Heartbeat>,
}

/// Whether the requested interval fits the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    Fits,
    /// The interval was stretched; the plan's `explanation` gives the arithmetic.
    TooSmall {
        requested: Duration,
    },
}

/// Cadences for one watch, and what they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// How often the per-interval reads run (the requested interval when it fits).
    pub interval: Duration,
    /// How often each background read runs.
    pub background: Vec<(BackgroundKind, Duration)>,
    /// How often each device gets a heartbeat ping.
    pub heartbeat: Option<Duration>,
    /// Billed messages per day at these cadences.
    pub forecast_per_day: u64,
    pub budget_per_day: u64,
    pub fit: Fit,
    /// The arithmetic behind the plan, for the `WithinBudget` condition's message.
    pub explanation: String,
}

impl Plan {
    /// The cadence planned for a background read.
    pub fn background_cadence(&self, kind: BackgroundKind) -> Option<Duration> {
        self.background
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, cadence)| *cadence)
    }
}

/// Fits the cadences into the budget (see the module documentation for the order).
pub fn plan(input: &PlanInput) -> Plan {
    let target = input.budget_per_day as f64 * PLANNING_SHARE;
    let costs = Costs::of(input);
    let fixed = costs.per_interval_at(input.interval) + costs.events + costs.heartbeat_floor;
    let background = fit_background(input, target - fixed);
    let background_cost = costs.background_at(&background);
    let (interval, fit) = if fixed + background_cost <= target {
        (input.interval, Fit::Fits)
    } else {
        let left = target - costs.events - costs.heartbeat_floor - background_cost;
        let stretched = stretch_interval(input.per_interval, left, input.interval);
        (
            stretched,
            Fit::TooSmall {
                requested: input.interval,
            },
        )
    };
    let spent = costs.per_interval_at(interval) + costs.events + background_cost;
    let heartbeat = input
        .heartbeat
        .map(|hb| heartbeat_period(&hb, target - spent));
    let heartbeat_cost = match (input.heartbeat, heartbeat) {
        (Some(hb), Some(period)) => per_day(hb.devices as f64 * hb.per_ping, period),
        _ => 0.0,
    };
    let forecast = spent + heartbeat_cost;
    let mut plan = Plan {
        interval,
        background,
        heartbeat,
        forecast_per_day: round(forecast),
        budget_per_day: input.budget_per_day,
        fit,
        explanation: String::new(),
    };
    plan.explanation = explain(input, &plan, &costs);
    plan
}

/// Per-day costs of the parts of a plan, given its cadences.
struct Costs<'a> {
    per_interval: f64,
    events: f64,
    heartbeat_floor: f64,
    background: &'a [Background],
}

impl<'a> Costs<'a> {
    fn of(input: &'a PlanInput) -> Self {
        Self {
            per_interval: input.per_interval.max(0.0),
            events: input.events_per_day.max(0.0),
            heartbeat_floor: input.heartbeat.map_or(0.0, |hb| {
                per_day(hb.devices as f64 * hb.per_ping, hb.longest.max(hb.shortest))
            }),
            background: &input.background,
        }
    }

    fn per_interval_at(&self, interval: Duration) -> f64 {
        per_day(self.per_interval, interval)
    }

    fn background_at(&self, cadences: &[(BackgroundKind, Duration)]) -> f64 {
        self.background
            .iter()
            .zip(cadences)
            .map(|(b, (_, cadence))| per_day(b.per_run, *cadence))
            .sum()
    }
}

/// Background cadences: preferred when `available` pays for them, slowed down
/// together (each at most to its longest) when it does not.
fn fit_background(input: &PlanInput, available: f64) -> Vec<(BackgroundKind, Duration)> {
    let preferred_cost: f64 = input
        .background
        .iter()
        .map(|b| per_day(b.per_run, b.preferred))
        .sum();
    let slowdown = if preferred_cost <= available || preferred_cost <= 0.0 {
        1.0
    } else if available <= 0.0 {
        f64::INFINITY
    } else {
        preferred_cost / available
    };
    input
        .background
        .iter()
        .map(|b| {
            let longest = b.longest.max(b.preferred);
            let slowed = b.preferred.as_secs_f64() * slowdown;
            let cadence = if slowed >= longest.as_secs_f64() {
                longest
            } else {
                whole_seconds(slowed)
            };
            (b.kind, cadence)
        })
        .collect()
}

/// The shortest interval whose per-interval reads cost at most `available` a day,
/// never shorter than the requested interval nor longer than [`LONGEST_INTERVAL`].
fn stretch_interval(per_interval: f64, available: f64, requested: Duration) -> Duration {
    if per_interval <= 0.0 {
        return requested;
    }
    if available <= 0.0 {
        return LONGEST_INTERVAL.max(requested);
    }
    let seconds = per_interval * SECONDS_PER_DAY / available;
    whole_seconds(seconds).clamp(requested, LONGEST_INTERVAL.max(requested))
}

/// The heartbeat period `available` messages a day pay for, within the spec's bounds.
fn heartbeat_period(hb: &Heartbeat, available: f64) -> Duration {
    let longest = hb.longest.max(hb.shortest);
    let per_round = hb.devices as f64 * hb.per_ping;
    if per_round <= 0.0 {
        return hb.shortest;
    }
    if available <= 0.0 {
        return longest;
    }
    whole_seconds(per_round * SECONDS_PER_DAY / available).clamp(hb.shortest, longest)
}

/// Messages a day of something costing `per_run` every `cadence`.
fn per_day(per_run: f64, cadence: Duration) -> f64 {
    let seconds = cadence.as_secs_f64();
    if seconds <= 0.0 {
        return f64::INFINITY;
    }
    per_run.max(0.0) * SECONDS_PER_DAY / seconds
}

/// Cadences are whole seconds, rounded up so a cadence never costs more than planned.
fn whole_seconds(seconds: f64) -> Duration {
    if !seconds.is_finite() || seconds >= u64::MAX as f64 {
        return Duration::from_secs(u64::MAX);
    }
    Duration::from_secs(seconds.max(0.0).ceil() as u64)
}

/// The arithmetic of a plan, in one line a person can check.
fn explain(input: &PlanInput, plan: &Plan, costs: &Costs<'_>) -> String {
    let mut parts = vec![format!(
        "reads every {} ~{}/day",
        seconds(plan.interval),
        round(costs.per_interval_at(plan.interval))
    )];
    if costs.events > 0.0 {
        parts.push(format!("fleet changes ~{}/day", round(costs.events)));
    }
    for (b, (_, cadence)) in input.background.iter().zip(&plan.background) {
        parts.push(format!(
            "{} every {} ~{}/day",
            b.kind.label(),
            seconds(*cadence),
            round(per_day(b.per_run, *cadence))
        ));
    }
    if let (Some(hb), Some(period)) = (input.heartbeat, plan.heartbeat) {
        parts.push(format!(
            "heartbeat pings of {} devices every {} ~{}/day",
            hb.devices,
            seconds(period),
            round(per_day(hb.devices as f64 * hb.per_ping, period))
        ));
    }
    let breakdown = parts.join(", ");
    match plan.fit {
        Fit::Fits => format!(
            "forecast {} of {} messages/day: {breakdown}",
            plan.forecast_per_day, plan.budget_per_day
        ),
        Fit::TooSmall { requested } => format!(
            "budget {} messages/day cannot pay for an interval of {}: fleet changes, background reads and the slowest heartbeat need ~{}/day before any interval reads, and reads every {} would add ~{}/day; running every {} instead (forecast {}/day: {breakdown})",
            plan.budget_per_day,
            seconds(requested),
            round(costs.events + costs.heartbeat_floor + costs.background_at(&plan.background)),
            seconds(requested),
            round(costs.per_interval_at(requested)),
            seconds(plan.interval),
            plan.forecast_per_day
        ),
    }
}

/// A cadence as people write it (`60s`, `5m`, `18h`, `1h30m`).
fn seconds(cadence: Duration) -> String {
    let total = cadence.as_secs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut text = String::new();
    if h > 0 {
        text += &h.to_string();
        text.push('h');
    }
    if m > 0 {
        text += &m.to_string();
        text.push('m');
    }
    if s > 0 || text.is_empty() {
        text += &s.to_string();
        text.push('s');
    }
    text
}

fn round(messages: f64) -> u64 {
    messages.ceil().clamp(0.0, u64::MAX as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);

    /// A quiet fleet of `devices`: two cheap queries per interval, a change per device
    /// every 100 hours confirmed by a 3-message GET, selector and resync in the
    /// background, a heartbeat of one 2-message ping per device at least daily.
    fn quiet(devices: u64, budget: u64) -> PlanInput {
        PlanInput {
            budget_per_day: budget,
            interval: MIN,
            per_interval: 2.0,
            events_per_day: devices as f64 * 0.24 * 3.0,
            background: vec![
                Background {
                    kind: BackgroundKind::Selector,
                    per_run: devices as f64 / 100.0,
                    preferred: HOUR,
                    longest: DAY,
                },
                Background {
                    kind: BackgroundKind::Resync,
                    per_run: devices as f64 / 2.0,
                    preferred: DAY,
                    longest: 7 * DAY,
                },
            ],
            heartbeat: Some(Heartbeat {
                devices,
                per_ping: 2.0,
                shortest: 5 * MIN,
                longest: DAY,
            }),
        }
    }

    #[test]
    fn a_quiet_fleet_of_1000_fits_with_frequent_heartbeats() {
        let plan = plan(&quiet(1_000, 40_000));
        assert_eq!(plan.fit, Fit::Fits);
        assert_eq!(plan.interval, MIN);
        assert_eq!(
            plan.background_cadence(BackgroundKind::Selector),
            Some(HOUR)
        );
        assert_eq!(plan.background_cadence(BackgroundKind::Resync), Some(DAY));
        // 36000 target - 2880 interval reads - 720 changes - 240 selector - 500 resync
        // = 31660 for 2000 messages a round: a round every 5458 s.
        assert_eq!(plan.heartbeat, Some(Duration::from_secs(5458)));
        assert!(plan.forecast_per_day <= 36_000);
        assert!(plan.forecast_per_day >= 35_990);
    }

    #[test]
    fn a_quiet_fleet_of_10000_fits_by_slowing_the_background_and_the_heartbeat() {
        let plan = plan(&quiet(10_000, 40_000));
        assert_eq!(plan.fit, Fit::Fits);
        assert_eq!(plan.interval, MIN);
        // Fixed: 2880 + 7200 + a daily ping of every device (20000) = 30080, leaving
        // 5920 for a background that wants 2400 + 5000: slowed by 1.25.
        assert_eq!(
            plan.background_cadence(BackgroundKind::Selector),
            Some(Duration::from_secs(4500))
        );
        assert_eq!(
            plan.background_cadence(BackgroundKind::Resync),
            Some(Duration::from_secs(108_000))
        );
        assert_eq!(plan.heartbeat, Some(DAY));
        assert!(plan.forecast_per_day <= 36_000, "{}", plan.forecast_per_day);
    }

    #[test]
    fn a_generous_budget_runs_everything_at_its_preferred_cadence() {
        let plan = plan(&quiet(100, 400_000));
        assert_eq!(plan.fit, Fit::Fits);
        assert_eq!(plan.heartbeat, Some(5 * MIN));
        assert_eq!(plan.background_cadence(BackgroundKind::Resync), Some(DAY));
        // 2880 + 72 + 24 + 50 + 100 devices * 2 * 288 rounds.
        assert_eq!(plan.forecast_per_day, 2_880 + 72 + 24 + 50 + 57_600);
    }

    #[test]
    fn a_budget_too_small_for_the_interval_stretches_it_and_says_why() {
        let plan = plan(&quiet(10_000, 32_000));
        assert_eq!(plan.fit, Fit::TooSmall { requested: MIN });
        // Target 28800; changes 7200, daily heartbeat 20000, background at its
        // slowest 100 + 715: 786 left for reads of 2 messages, one every 220 s.
        assert_eq!(plan.interval, Duration::from_secs(220));
        assert_eq!(
            plan.background_cadence(BackgroundKind::Resync),
            Some(7 * DAY)
        );
        assert!(plan.forecast_per_day <= 28_800, "{}", plan.forecast_per_day);
        assert!(
            plan.explanation
                .starts_with("budget 32000 messages/day cannot pay for an interval of 1m:"),
            "{}",
            plan.explanation
        );
        assert!(
            plan.explanation.contains("running every 3m40s instead"),
            "{}",
            plan.explanation
        );
    }

    #[test]
    fn when_even_the_floor_does_not_fit_the_ledger_guard_is_what_holds() {
        // Changes and the daily heartbeat alone pass the 27000 target: the plan runs
        // as slowly as it can and forecasts honestly above its target.
        let plan = plan(&quiet(10_000, 30_000));
        assert_eq!(plan.interval, LONGEST_INTERVAL);
        assert!(plan.forecast_per_day > 27_000);
    }

    #[test]
    fn no_budget_at_all_runs_as_slowly_as_possible_and_still_reports() {
        let plan = plan(&quiet(10, 0));
        assert_eq!(plan.fit, Fit::TooSmall { requested: MIN });
        assert_eq!(plan.interval, LONGEST_INTERVAL);
        assert_eq!(plan.heartbeat, Some(DAY));
        assert!(plan.forecast_per_day > 0);
    }

    #[test]
    fn without_ping_there_is_no_heartbeat() {
        let mut input = quiet(1_000, 40_000);
        input.heartbeat = None;
        let plan = plan(&input);
        assert_eq!(plan.heartbeat, None);
        assert!(!plan.explanation.contains("heartbeat"));
        // 2880 + 720 + 240 + 500: everything at its preferred cadence.
        assert_eq!(plan.forecast_per_day, 4_340);
    }

    #[test]
    fn a_fitting_plan_explains_its_forecast() {
        let plan = plan(&quiet(1_000, 40_000));
        assert_eq!(
            plan.explanation,
            format!(
                "forecast {} of 40000 messages/day: reads every 1m ~2880/day, fleet changes ~720/day, selector every 1h ~240/day, resync every 24h ~500/day, heartbeat pings of 1000 devices every 1h30m58s ~31660/day",
                plan.forecast_per_day
            )
        );
    }

    #[test]
    fn free_reads_never_stretch_anything() {
        let input = PlanInput {
            budget_per_day: 0,
            interval: MIN,
            per_interval: 0.0,
            events_per_day: 0.0,
            background: vec![],
            heartbeat: None,
        };
        let plan = plan(&input);
        assert_eq!(plan.fit, Fit::Fits);
        assert_eq!(plan.interval, MIN);
        assert_eq!(plan.forecast_per_day, 0);
    }

    #[test]
    fn cadences_read_as_people_write_them() {
        assert_eq!(seconds(Duration::ZERO), "0s");
        assert_eq!(seconds(MIN), "1m");
        assert_eq!(seconds(Duration::from_secs(5458)), "1h30m58s");
        assert_eq!(seconds(DAY), "24h");
    }

    proptest::proptest! {
        /// More budget never makes anything slower, and a plan that fits never
        /// forecasts more than the share of the budget it aims at.
        #[test]
        fn more_budget_is_never_slower(devices in 1u64..50_000, budget in 0u64..2_000_000, extra in 0u64..1_000_000) {
            let small = plan(&quiet(devices, budget));
            let large = plan(&quiet(devices, budget + extra));
            proptest::prop_assert!(large.interval <= small.interval);
            proptest::prop_assert!(large.heartbeat <= small.heartbeat);
            for ((_, a), (_, b)) in large.background.iter().zip(&small.background) {
                proptest::prop_assert!(a <= b);
            }
            if large.fit == Fit::Fits {
                proptest::prop_assert!(large.forecast_per_day as f64 <= (budget + extra) as f64 * PLANNING_SHARE + 1.0);
            }
        }
    }
}
