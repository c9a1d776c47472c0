//! What one run of a recurring read costs, learned from what the hub billed.

/// A running estimate of the billed messages of one kind of run (a changes query, a
/// resync, a confirmation GET): starts from a prior computed from typical twin sizes
/// and follows what the meter reports, so the plan adapts to the fleet's real twins.
///
/// The estimate is an exponentially weighted average that rises at once to a costlier
/// observation and decays slowly after it: underestimating a cost is what breaks a
/// budget, overestimating it only leaves some of the budget unused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningCost {
    estimate: f64,
    observations: u64,
}

/// Weight of a new observation that is cheaper than the estimate.
const DECAY: f64 = 0.2;

impl RunningCost {
    /// An estimate that starts at `prior` messages per run.
    pub fn with_prior(prior: f64) -> Self {
        Self {
            estimate: sanitise(prior),
            observations: 0,
        }
    }

    /// Folds in what one run was billed.
    pub fn observe(&mut self, messages: f64) {
        let messages = sanitise(messages);
        self.estimate = if messages >= self.estimate {
            messages
        } else {
            self.estimate + DECAY * (messages - self.estimate)
        };
        self.observations += 1;
    }

    /// Messages one run is expected to cost.
    pub fn per_run(&self) -> f64 {
        self.estimate
    }

    /// How many runs were observed (0: the estimate is still the prior).
    pub fn observations(&self) -> u64 {
        self.observations
    }
}

/// Costs are never negative and never NaN.
fn sanitise(messages: f64) -> f64 {
    if messages.is_finite() {
        messages.max(0.0)
    } else if messages == f64::INFINITY {
        f64::MAX
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_near(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
    }

    #[test]
    fn starts_at_the_prior() {
        let cost = RunningCost::with_prior(3.0);
        assert_near(cost.per_run(), 3.0);
        assert_eq!(cost.observations(), 0);
    }

    #[test]
    fn a_costlier_run_is_believed_at_once() {
        let mut cost = RunningCost::with_prior(1.0);
        cost.observe(5.0);
        assert_near(cost.per_run(), 5.0);
    }

    #[test]
    fn a_cheaper_run_lowers_the_estimate_slowly() {
        let mut cost = RunningCost::with_prior(10.0);
        cost.observe(0.0);
        assert!((cost.per_run() - 8.0).abs() < 1e-9);
        for _ in 0..100 {
            cost.observe(2.0);
        }
        assert!((cost.per_run() - 2.0).abs() < 1e-6);
        assert_eq!(cost.observations(), 101);
    }

    #[test]
    fn nonsense_observations_do_not_poison_the_estimate() {
        let mut cost = RunningCost::with_prior(f64::NAN);
        assert_near(cost.per_run(), 0.0);
        cost.observe(-4.0);
        assert_near(cost.per_run(), 0.0);
        cost.observe(f64::NAN);
        assert_near(cost.per_run(), 0.0);
        cost.observe(2.0);
        assert_near(cost.per_run(), 2.0);
    }
}
