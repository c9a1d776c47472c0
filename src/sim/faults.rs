//! Chaos on demand: per-category throttling like IoT Hub's tier quotas, injected server
//! errors, slow answers and dropped connections, plus the request counters tests read.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// IoT Hub's throttling categories the simulator meters separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCategory {
    /// Device and module twin GETs.
    TwinRead,
    /// `POST /devices/query` pages.
    Query,
    /// Direct method invocations.
    Method,
    /// Identity registry reads (`GET /devices/{id}/modules`).
    Registry,
}

/// Quotas; `None` means unlimited. Windows are fixed and read the simulator's clock,
/// so a manual clock makes throttling deterministic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThrottleQuotas {
    #[serde(default)]
    pub twin_reads_per_second: Option<u32>,
    #[serde(default)]
    pub queries_per_minute: Option<u32>,
    #[serde(default)]
    pub methods_per_second: Option<u32>,
    #[serde(default)]
    pub registry_per_minute: Option<u32>,
}

impl ThrottleQuotas {
    /// The S1 tier with `units` units: 100 twin reads/s, 20 queries/min/unit,
    /// about 40 small direct methods/s/unit, 100 registry operations/min/unit.
    pub fn s1(units: u32) -> Self {
        let units = units.max(1);
        ThrottleQuotas {
            twin_reads_per_second: Some(100),
            queries_per_minute: Some(20 * units),
            methods_per_second: Some(40 * units),
            registry_per_minute: Some(100 * units),
        }
    }

    fn limit(&self, cat: OpCategory) -> Option<(u32, i64)> {
        match cat {
            OpCategory::TwinRead => self.twin_reads_per_second.map(|n| (n, 1)),
            OpCategory::Query => self.queries_per_minute.map(|n| (n, 60)),
            OpCategory::Method => self.methods_per_second.map(|n| (n, 1)),
            OpCategory::Registry => self.registry_per_minute.map(|n| (n, 60)),
        }
    }
}

/// Probabilities (0..=1) of injected faults per hub request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRates {
    /// Answer 500 `ServerError` instead of serving.
    #[serde(default)]
    pub server_error: f64,
    /// Delay the answer by `slowDelayMs` (real time: this is about the network).
    #[serde(default)]
    pub slow: f64,
    #[serde(default = "default_slow_ms")]
    pub slow_delay_ms: u64,
    /// Cut the connection after the headers instead of sending the body.
    #[serde(default)]
    pub drop_connection: f64,
}

fn default_slow_ms() -> u64 {
    200
}

impl FaultRates {
    /// Checks every rate is a probability.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("serverError", self.server_error),
            ("slow", self.slow),
            ("dropConnection", self.drop_connection),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "fault rate {name} must be between 0 and 1, got {v}"
                ));
            }
        }
        Ok(())
    }
}

/// What fault, if any, to inject into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    None,
    ServerError,
    Drop,
    Slow(Duration),
}

/// Counters of what the simulator served, by category and outcome.
#[derive(Debug, Default)]
pub struct Counters {
    twin_reads: AtomicU64,
    queries: AtomicU64,
    methods: AtomicU64,
    registry: AtomicU64,
    admin: AtomicU64,
    unauthorized: AtomicU64,
    throttled: AtomicU64,
    injected_errors: AtomicU64,
    dropped: AtomicU64,
    slowed: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCounts {
    pub twin_reads: u64,
    pub queries: u64,
    pub methods: u64,
    pub registry: u64,
    pub admin: u64,
    pub unauthorized: u64,
    pub throttled: u64,
    pub injected_errors: u64,
    pub dropped: u64,
    pub slowed: u64,
    /// Other error answers (not found, bad request, 404103, 504101, ...).
    pub errors: u64,
}

/// What to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Request(OpCategory),
    Admin,
    Unauthorized,
    Throttled,
    Injected(Injection),
    Error,
}

impl Counters {
    pub fn count(&self, e: Event) {
        let c = match e {
            Event::Request(OpCategory::TwinRead) => &self.twin_reads,
            Event::Request(OpCategory::Query) => &self.queries,
            Event::Request(OpCategory::Method) => &self.methods,
            Event::Request(OpCategory::Registry) => &self.registry,
            Event::Admin => &self.admin,
            Event::Unauthorized => &self.unauthorized,
            Event::Throttled => &self.throttled,
            Event::Injected(Injection::ServerError) => &self.injected_errors,
            Event::Injected(Injection::Drop) => &self.dropped,
            Event::Injected(Injection::Slow(_)) => &self.slowed,
            Event::Injected(Injection::None) => return,
            Event::Error => &self.errors,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RequestCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RequestCounts {
            twin_reads: g(&self.twin_reads),
            queries: g(&self.queries),
            methods: g(&self.methods),
            registry: g(&self.registry),
            admin: g(&self.admin),
            unauthorized: g(&self.unauthorized),
            throttled: g(&self.throttled),
            injected_errors: g(&self.injected_errors),
            dropped: g(&self.dropped),
            slowed: g(&self.slowed),
            errors: g(&self.errors),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    index: i64,
    used: u32,
}

/// Throttle windows and fault dice, shared by all requests.
#[derive(Debug)]
pub struct Chaos {
    inner: Mutex<ChaosState>,
}

#[derive(Debug)]
struct ChaosState {
    quotas: ThrottleQuotas,
    rates: FaultRates,
    windows: [Window; 4],
    rng: StdRng,
}

impl Chaos {
    pub fn new(quotas: ThrottleQuotas, rates: FaultRates, seed: u64) -> Self {
        Chaos {
            inner: Mutex::new(ChaosState {
                quotas,
                rates,
                windows: [Window::default(); 4],
                rng: StdRng::seed_from_u64(seed),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ChaosState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_quotas(&self, quotas: ThrottleQuotas) {
        let mut s = self.state();
        s.quotas = quotas;
        s.windows = [Window::default(); 4];
    }

    pub fn set_rates(&self, rates: FaultRates) {
        self.state().rates = rates;
    }

    pub fn quotas(&self) -> ThrottleQuotas {
        self.state().quotas
    }

    pub fn rates(&self) -> FaultRates {
        self.state().rates
    }

    /// Takes one unit of the category's quota; false when the window is used up.
    pub fn admit(&self, cat: OpCategory, now: Timestamp) -> bool {
        let mut s = self.state();
        let Some((limit, window_secs)) = s.quotas.limit(cat) else {
            return true;
        };
        let index = now.as_second().div_euclid(window_secs);
        let w = &mut s.windows[cat as usize];
        if w.index != index {
            *w = Window { index, used: 0 };
        }
        if w.used >= limit {
            return false;
        }
        w.used += 1;
        true
    }

    /// Rolls the dice for one request.
    pub fn roll(&self) -> Injection {
        let mut s = self.state();
        let rates = s.rates;
        if rates.server_error > 0.0 && s.rng.random_bool(rates.server_error) {
            return Injection::ServerError;
        }
        if rates.drop_connection > 0.0 && s.rng.random_bool(rates.drop_connection) {
            return Injection::Drop;
        }
        if rates.slow > 0.0 && s.rng.random_bool(rates.slow) {
            return Injection::Slow(Duration::from_millis(rates.slow_delay_ms));
        }
        Injection::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_windows_reset_with_the_clock() {
        let chaos = Chaos::new(
            ThrottleQuotas {
                queries_per_minute: Some(2),
                ..Default::default()
            },
            FaultRates::default(),
            1,
        );
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(chaos.admit(OpCategory::Query, t0));
        assert!(chaos.admit(OpCategory::Query, t0));
        assert!(!chaos.admit(OpCategory::Query, t0));
        assert!(
            chaos.admit(OpCategory::TwinRead, t0),
            "other categories are separate"
        );
        let t1 = t0 + jiff::SignedDuration::from_secs(60);
        assert!(chaos.admit(OpCategory::Query, t1));
    }

    #[test]
    fn rates_of_one_and_zero_are_certain() {
        let chaos = Chaos::new(ThrottleQuotas::default(), FaultRates::default(), 1);
        assert!((0..100).all(|_| chaos.roll() == Injection::None));
        chaos.set_rates(FaultRates {
            server_error: 1.0,
            ..Default::default()
        });
        assert_eq!(chaos.roll(), Injection::ServerError);
        assert!(
            FaultRates {
                slow: 1.5,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
