//! The shared words of a decision: the [`Verdict`] (accept / hold / reject), the two
//! [`Thresholds`] that turn calibrated log-odds into one, and [`sigmoid`] from log-odds to a
//! probability.
//!
//! They sit on the ground floor because several floors speak them: the model file stores
//! thresholds, the policy decides verdicts, stats count them, evaluation measures them. Keeping
//! them here means none of those modules has to import another for a word.

use serde::{Deserialize, Serialize};

/// What to do with a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Publish it.
    Accept,
    /// Hold it for a moderator.
    Hold,
    /// Reject it as spam.
    Reject,
}

impl Verdict {
    /// The verdict's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Hold => "hold",
            Verdict::Reject => "reject",
        }
    }
}

/// The two decision thresholds, in calibrated log-odds of spam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Comments whose log-odds is below this are accepted.
    pub accept_below: f64,
    /// Comments whose log-odds is at or above this are rejected.
    pub reject_at: f64,
}

impl Default for Thresholds {
    /// Accept under p = 0.2, reject from p = 0.9: used only before a model has chosen its own.
    fn default() -> Self {
        Thresholds {
            accept_below: (0.2f64 / 0.8).ln(),
            reject_at: (0.9f64 / 0.1).ln(),
        }
    }
}

impl Thresholds {
    /// The verdict for a calibrated log-odds of spam.
    pub fn decide(&self, log_odds: f64) -> Verdict {
        if log_odds >= self.reject_at {
            Verdict::Reject
        } else if log_odds < self.accept_below {
            Verdict::Accept
        } else {
            Verdict::Hold
        }
    }

    /// The accept threshold as a probability.
    pub fn accept_below_probability(&self) -> f64 {
        sigmoid(self.accept_below)
    }

    /// The reject threshold as a probability.
    pub fn reject_at_probability(&self) -> f64 {
        sigmoid(self.reject_at)
    }
}

/// The logistic function, safe at both extremes.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_stable_at_extremes() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(800.0) <= 1.0 && sigmoid(800.0) > 0.999);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(-800.0) < 1e-300);
    }

    #[test]
    fn decide_splits_three_ways_at_the_boundaries() {
        let t = Thresholds {
            accept_below: -1.0,
            reject_at: 2.0,
        };
        assert_eq!(t.decide(-1.5), Verdict::Accept);
        assert_eq!(t.decide(-1.0), Verdict::Hold);
        assert_eq!(t.decide(1.9), Verdict::Hold);
        assert_eq!(t.decide(2.0), Verdict::Reject);
    }
}
