//! Calibration and thresholds, both fitted on out-of-fold scores (never on the data the scores
//! came from).
//!
//! Naive Bayes log-odds are famously over-confident: they add up evidence from correlated tokens
//! as if it were independent. A Platt scaling `a * raw + b`, fitted by logistic regression on
//! out-of-fold raw scores, shrinks them into probabilities that mean what they say.
//!
//! The correlation is not the same for every kind of token: a long word is counted as the word,
//! as its 5- and 7-character prefixes and again in two word pairs, while a link's host is counted
//! once. So the multinomial models carry a [`KindScaling`] as well: one slope per token kind on
//! that kind's summed evidence, fitted the same way (out-of-fold, by logistic regression). It is
//! still naive Bayes underneath, the same counts and the same online learning; only the
//! combining step learns how much to trust each kind. Measured in docs/BENCHMARKS.md.

use serde::{Deserialize, Serialize};

use crate::comment::Label;
use crate::model::{sigmoid, Evidence};
use crate::text::KIND_SLOTS;
use crate::verdict::Thresholds;

/// A calibration of naive Bayes evidence into log-odds of spam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Platt slope on the raw log-odds (used when there is no `by_kind`).
    pub a: f64,
    /// Platt intercept.
    pub b: f64,
    /// One slope per token kind; when present it replaces `a` and `b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_kind: Option<KindScaling>,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            a: 1.0,
            b: 0.0,
            by_kind: None,
        }
    }
}

/// Slopes on each token kind's evidence ([`Evidence::by_kind`], slots as
/// [`crate::text::kind_slot`]) and an intercept, which also absorbs the class prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KindScaling {
    /// Slope per token kind.
    pub slopes: [f64; KIND_SLOTS],
    /// Intercept.
    pub intercept: f64,
}

/// Ridge penalty pulling the kind slopes towards the common Platt slope: small next to the loss
/// of ~1,000 training comments, it only decides the slope of a kind that is nearly or wholly
/// absent from the training data (e-mail domains in YouTube comments), which then weighs as
/// plain Platt scaling would weigh it, so a site's own labels of that kind still count.
const KIND_RIDGE: f64 = 0.01;

impl Calibration {
    /// The calibrated log-odds of a raw score (Platt only).
    pub fn apply(&self, raw: f64) -> f64 {
        self.a * raw + self.b
    }

    /// The calibrated log-odds of a comment's evidence.
    pub fn apply_evidence(&self, ev: &Evidence) -> f64 {
        match &self.by_kind {
            Some(k) => {
                k.intercept
                    + k.slopes
                        .iter()
                        .zip(&ev.by_kind)
                        .map(|(w, e)| w * e)
                        .sum::<f64>()
            }
            None => self.apply(ev.raw()),
        }
    }

    /// The factor by which one token's raw log-ratio (already length-normalised) enters the
    /// calibrated log-odds.
    pub fn token_scale(&self, slot: usize) -> f64 {
        match &self.by_kind {
            Some(k) => k.slopes.get(slot).copied().unwrap_or(self.a),
            None => self.a,
        }
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
        Calibration {
            a,
            b,
            by_kind: None,
        }
    }
}

impl KindScaling {
    /// Fits the slopes and intercept by Newton's method on the log loss with Platt's smoothed
    /// targets (as [`Calibration::fit`]) plus a light ridge pulling each slope towards `toward`
    /// (the Platt slope). Deterministic: same inputs, same bits. `None` when one class is
    /// missing or the system is singular.
    pub fn fit(evidence: &[(Evidence, Label)], toward: f64) -> Option<KindScaling> {
        const D: usize = KIND_SLOTS + 1; // slopes, then the intercept
        let n_pos = evidence.iter().filter(|(_, l)| l.is_spam()).count() as f64;
        let n_neg = evidence.len() as f64 - n_pos;
        if n_pos == 0.0 || n_neg == 0.0 {
            return None;
        }
        let hi = (n_pos + 1.0) / (n_pos + 2.0);
        let lo = 1.0 / (n_neg + 2.0);
        let target = |l: Label| if l.is_spam() { hi } else { lo };
        let x = |ev: &Evidence| -> [f64; D] {
            let mut x = [1.0; D];
            x[..KIND_SLOTS].copy_from_slice(&ev.by_kind);
            x
        };
        let z = |w: &[f64; D], x: &[f64; D]| -> f64 { w.iter().zip(x).map(|(a, b)| a * b).sum() };
        let loss = |w: &[f64; D]| -> f64 {
            let data: f64 = evidence
                .iter()
                .map(|(ev, l)| {
                    let z = z(w, &x(ev));
                    let softplus = if z > 0.0 {
                        z + (-z).exp().ln_1p()
                    } else {
                        z.exp().ln_1p()
                    };
                    softplus - target(*l) * z
                })
                .sum();
            let ridge: f64 = w[..KIND_SLOTS].iter().map(|v| (v - toward).powi(2)).sum();
            data + 0.5 * KIND_RIDGE * ridge
        };
        // Start from one common slope: Platt scaling.
        let mut w = [toward; D];
        w[KIND_SLOTS] = 0.0;
        let mut current = loss(&w);
        for _ in 0..100 {
            let mut grad = [0.0; D];
            let mut hess = [[0.0; D]; D];
            for (ev, l) in evidence {
                let xi = x(ev);
                let p = sigmoid(z(&w, &xi));
                let d = p - target(*l);
                let h = p * (1.0 - p);
                for r in 0..D {
                    grad[r] += d * xi[r];
                    for c in 0..D {
                        hess[r][c] += h * xi[r] * xi[c];
                    }
                }
            }
            for r in 0..D {
                let ridge = if r < KIND_SLOTS { KIND_RIDGE } else { 1e-9 };
                grad[r] += if r < KIND_SLOTS {
                    KIND_RIDGE * (w[r] - toward)
                } else {
                    0.0
                };
                hess[r][r] += ridge;
            }
            let step_dir = solve(hess, grad)?;
            let mut step = 1.0;
            let mut improved = false;
            while step > 1e-10 {
                let mut next = w;
                for (n, d) in next.iter_mut().zip(&step_dir) {
                    *n -= step * d;
                }
                let l = loss(&next);
                if l < current {
                    improved = current - l > 1e-12 * current.abs().max(1.0);
                    w = next;
                    current = l;
                    break;
                }
                step /= 2.0;
            }
            if !improved {
                break;
            }
        }
        let mut slopes = [0.0; KIND_SLOTS];
        slopes.copy_from_slice(&w[..KIND_SLOTS]);
        Some(KindScaling {
            slopes,
            intercept: w[KIND_SLOTS],
        })
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve<const D: usize>(mut a: [[f64; D]; D], mut b: [f64; D]) -> Option<[f64; D]> {
    for col in 0..D {
        let pivot = (col..D).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..D {
            let f = a[row][col] / pivot_row[col];
            for (v, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *v -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; D];
    for row in (0..D).rev() {
        let s: f64 = (row + 1..D).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
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
    fn kind_scaling_recovers_known_slopes() {
        // Two kinds carry evidence with true slopes 2 and 0.5 (intercept -1); the others are
        // absent. Labels are drawn deterministically from the true probabilities.
        let mut data = Vec::new();
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..20_000 {
            let mut ev = Evidence::default();
            ev.by_kind[0] = next() * 4.0 - 2.0;
            ev.by_kind[1] = next() * 8.0 - 4.0;
            let p = sigmoid(2.0 * ev.by_kind[0] + 0.5 * ev.by_kind[1] - 1.0);
            let label = if next() < p { Label::Spam } else { Label::Ham };
            data.push((ev, label));
        }
        let k = KindScaling::fit(&data, 0.8).expect("a fit");
        assert!((k.slopes[0] - 2.0).abs() < 0.15, "{k:?}");
        assert!((k.slopes[1] - 0.5).abs() < 0.05, "{k:?}");
        assert!((k.intercept + 1.0).abs() < 0.1, "{k:?}");
        // Kinds with no evidence keep the common slope they are pulled towards.
        assert!(
            k.slopes[2..].iter().all(|w| (w - 0.8).abs() < 1e-6),
            "{k:?}"
        );
        let c = Calibration {
            by_kind: Some(k),
            ..Calibration::default()
        };
        let mut ev = Evidence::default();
        ev.by_kind[0] = 1.0;
        assert!((c.apply_evidence(&ev) - (k.slopes[0] + k.intercept)).abs() < 1e-12);
        assert_eq!(KindScaling::fit(&data[..0], 1.0), None);
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
