//! Calibration and thresholds, both fitted on out-of-fold scores (never on the data the scores
//! came from).
//!
//! Naive Bayes log-odds are famously over-confident: they add up evidence from correlated tokens
//! as if it were independent. A Platt scaling `a * raw + b`, fitted by logistic regression on
//! out-of-fold raw scores, shrinks them into probabilities that mean what they say.

use serde::{Deserialize, Serialize};

use crate::comment::Label;
use crate::model::sigmoid;
use crate::policy::Thresholds;

/// A Platt scaling of raw naive Bayes log-odds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Slope.
    pub a: f64,
    /// Intercept.
    pub b: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration { a: 1.0, b: 0.0 }
    }
}

impl Calibration {
    /// The calibrated log-odds of a raw score.
    pub fn apply(&self, raw: f64) -> f64 {
        self.a * raw + self.b
    }

    /// Fits `a` and `b` by Newton's method on the log loss, with Platt's smoothed targets
    /// (`(N+ + 1) / (N+ + 2)` and `1 / (N- + 2)`) so that perfectly separated training scores do
    /// not push the slope to infinity. Deterministic: same inputs, same bits.
    pub fn fit(scores: &[(f64, Label)]) -> Calibration {
        let n_pos = scores.iter().filter(|(_, l)| l.is_spam()).count() as f64;
        let n_neg = scores.len() as f64 - n_pos;
        if n_pos == 0.0 || n_neg == 0.0 {
            return Calibration::default();
        }
        let hi = (n_pos + 1.0) / (n_pos + 2.0);
        let lo = 1.0 / (n_neg + 2.0);
        let target = |l: Label| if l.is_spam() { hi } else { lo };
        let loss = |a: f64, b: f64| -> f64 {
            scores
                .iter()
                .map(|&(s, l)| {
                    let z = a * s + b;
                    let t = target(l);
                    // log(1 + e^z) - t z, computed without overflow.
                    let softplus = if z > 0.0 {
                        z + (-z).exp().ln_1p()
                    } else {
                        z.exp().ln_1p()
                    };
                    softplus - t * z
                })
                .sum()
        };
        let (mut a, mut b) = (1.0, 0.0);
        let mut current = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
            for &(s, l) in scores {
                let p = sigmoid(a * s + b);
                let d = p - target(l);
                let w = p * (1.0 - p);
                ga += d * s;
                gb += d;
                haa += w * s * s;
                hab += w * s;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-300 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            let mut step = 1.0;
            let mut improved = false;
            while step > 1e-10 {
                let (na, nb) = (a - step * da, b - step * db);
                let l = loss(na, nb);
                if l < current {
                    a = na;
                    b = nb;
                    improved = current - l > 1e-12 * current.abs().max(1.0);
                    current = l;
                    break;
                }
                step /= 2.0;
            }
            if !improved {
                break;
            }
        }
        Calibration { a, b }
    }
}

/// Chooses the two thresholds on validation scores (calibrated log-odds): `reject_at` as low as
/// it can be with at most `ham_reject` of the ham at or above it, `accept_below` as high as it
/// can be with at most `spam_accept` of the spam below it, so that as little as possible is held.
/// Each threshold sits halfway between the last allowed score and the next, rather than on a
/// training score, which leaves a margin for scores the model has not seen. When the two cross
/// there is no hold zone and both meet in the middle.
pub fn choose_thresholds(scores: &[(f64, Label)], ham_reject: f64, spam_accept: f64) -> Thresholds {
    let mut ham: Vec<f64> = scores
        .iter()
        .filter(|(_, l)| !l.is_spam())
        .map(|&(s, _)| s)
        .collect();
    let mut spam: Vec<f64> = scores
        .iter()
        .filter(|(_, l)| l.is_spam())
        .map(|&(s, _)| s)
        .collect();
    if ham.is_empty() || spam.is_empty() {
        return Thresholds::default();
    }
    ham.sort_by(|a, b| b.total_cmp(a)); // highest first
    spam.sort_by(|a, b| a.total_cmp(b)); // lowest first

    // k hams may be rejected: the threshold goes above the (k+1)-th highest ham.
    let k = ((ham_reject * ham.len() as f64).floor() as usize).min(ham.len() - 1);
    let reject_at = if k == 0 {
        ham[0] + 0.5
    } else {
        (ham[k] + ham[k - 1]) / 2.0
    };
    let k = ((spam_accept * spam.len() as f64).floor() as usize).min(spam.len() - 1);
    let accept_below = if k == 0 {
        spam[0] - 0.5
    } else {
        (spam[k] + spam[k - 1]) / 2.0
    };
    if accept_below > reject_at {
        let mid = (accept_below + reject_at) / 2.0;
        Thresholds {
            accept_below: mid,
            reject_at: mid,
        }
    } else {
        Thresholds {
            accept_below,
            reject_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_fit_recovers_a_known_logistic() {
        // Scores whose empirical spam rate at s is sigmoid(0.5 s - 1): the fit must come close.
        let mut scores = Vec::new();
        for i in -40..=40 {
            let s = i as f64 / 4.0;
            let p = sigmoid(0.5 * s - 1.0);
            let n_spam = (p * 200.0).round() as usize;
            for j in 0..200 {
                scores.push((s, if j < n_spam { Label::Spam } else { Label::Ham }));
            }
        }
        let c = Calibration::fit(&scores);
        assert!((c.a - 0.5).abs() < 0.02, "{c:?}");
        assert!((c.b + 1.0).abs() < 0.05, "{c:?}");
    }

    #[test]
    fn thresholds_respect_both_targets_on_the_validation_scores() {
        // 200 ham at 0..200, 100 spam at 150..250 (overlap 150..200).
        let mut scores: Vec<(f64, Label)> = (0..200).map(|i| (i as f64, Label::Ham)).collect();
        scores.extend((150..250).map(|i| (i as f64, Label::Spam)));
        let t = choose_thresholds(&scores, 0.005, 0.05);
        // 0.5% of 200 ham = 1 may be rejected: threshold between ham 198 and 199.
        assert_eq!(t.reject_at, 198.5);
        // 5% of 100 spam = 5 may be accepted: threshold between spam 154 and 155.
        assert_eq!(t.accept_below, 154.5);
    }

    #[test]
    fn crossing_thresholds_meet_in_the_middle() {
        let mut scores: Vec<(f64, Label)> = (0..100).map(|i| (i as f64, Label::Ham)).collect();
        scores.extend((200..300).map(|i| (i as f64, Label::Spam)));
        let t = choose_thresholds(&scores, 0.005, 0.05);
        assert_eq!(t.accept_below, t.reject_at);
        assert!(t.reject_at > 99.0 && t.reject_at < 200.0);
    }
}
