//! The simulator's notion of "now".
//!
//! Every time-driven behaviour (restart back-off, deployment delays, scripted events,
//! throttling windows) reads this clock, so tests can run hours of fleet life in
//! milliseconds by advancing a manual clock instead of sleeping.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// How the simulator's clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Follows the machine's clock.
    Wall,
    /// Stands still at `start` until advanced through [`SimClock::advance`] or the admin API.
    Manual { start: Timestamp },
}

impl ClockMode {
    /// A manual clock starting at the current wall time, truncated to whole seconds.
    pub fn manual_from_now() -> Self {
        let now = Timestamp::now();
        let start = Timestamp::from_second(now.as_second()).unwrap_or(now);
        ClockMode::Manual { start }
    }
}

/// Why the clock refused to move.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClockError {
    #[error("the simulator runs on the wall clock; only a manual clock can be advanced")]
    NotManual,
    #[error("the clock can only move forward")]
    Backwards,
    #[error("advancing by that much leaves the representable time range")]
    OutOfRange,
}

/// A cheaply clonable handle to the simulator's clock.
#[derive(Debug, Clone)]
pub struct SimClock {
    manual: Option<Arc<Mutex<Timestamp>>>,
}

impl SimClock {
    pub fn new(mode: ClockMode) -> Self {
        match mode {
            ClockMode::Wall => SimClock { manual: None },
            ClockMode::Manual { start } => SimClock {
                manual: Some(Arc::new(Mutex::new(start))),
            },
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            None => Timestamp::now(),
            Some(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// True when time only moves through [`SimClock::advance`].
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Moves a manual clock forward and returns the new time.
    pub fn advance(&self, by: SignedDuration) -> Result<Timestamp, ClockError> {
        let Some(t) = &self.manual else {
            return Err(ClockError::NotManual);
        };
        if by.is_negative() {
            return Err(ClockError::Backwards);
        }
        let mut guard = t.lock().unwrap_or_else(|p| p.into_inner());
        let next = guard.checked_add(by).map_err(|_| ClockError::OutOfRange)?;
        *guard = next;
        Ok(next)
    }
}

/// The simulator's clock drives an in-process client too, so a test that advances the
/// manual clock past midnight moves the client's notion of "the quota has reset" with it.
impl crate::iothub::Clock for SimClock {
    fn now(&self) -> Timestamp {
        SimClock::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = SimClock::new(ClockMode::Manual { start });
        assert_eq!(clock.now(), start);
        let later = clock.advance(SignedDuration::from_secs(90)).unwrap();
        assert_eq!(later, "2026-01-01T00:01:30Z".parse::<Timestamp>().unwrap());
        assert_eq!(clock.now(), later);
    }

    #[test]
    fn wall_clock_and_backwards_moves_are_refused() {
        let wall = SimClock::new(ClockMode::Wall);
        assert_eq!(
            wall.advance(SignedDuration::from_secs(1)),
            Err(ClockError::NotManual)
        );
        let manual = SimClock::new(ClockMode::manual_from_now());
        assert_eq!(
            manual.advance(SignedDuration::from_secs(-1)),
            Err(ClockError::Backwards)
        );
    }
}
