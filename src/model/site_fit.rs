//! A site's own thresholds, fitted on its own labels.
//!
//! The model's thresholds were chosen on its training sources; a blog's scores sit elsewhere
//! (its ham may score higher than any training ham did, its spam lower). So each site's layer
//! keeps, for the last [`WINDOW`] labels it learned, the score the site's next check would
//! have given that comment just *before* the layer learned it: an out-of-sample score, so the
//! thresholds are never fitted on labels that shaped the scores they are judged by
//! (cross-fitting by construction, with nothing to refit). From those scores [`LabelScores::fit`]
//! picks the loosest thresholds that meet the site's targets (`max_ham_rejected`,
//! `max_spam_accepted`) and shrinks them towards the model's: at once when the site's own
//! labels say "be more careful", slowly when they say "be bolder", so a few lucky labels cannot
//! open the gates. With few labels the highest seen ham is a poor guard for a 0.5% tail, so the
//! fit also extrapolates an exponential tail and keeps the more careful of the two.
//!
//! Every replica learns the same labels in the same order (the shared label log), so every
//! replica fits the same thresholds: they are shared in Redis mode as the layers are.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::comment::Label;
use crate::verdict::Thresholds;

/// Labels whose scores a site keeps: the latest ones, as a site's mix drifts.
pub const WINDOW: usize = 2000;

/// Labels of a class that count as much as the model's own threshold when the site's labels
/// ask for a bolder one (a lower reject or a higher accept threshold).
pub const BOLD_PRIOR_LABELS: f64 = 60.0;

/// Labels of a class before that class's threshold moves at all.
pub const MIN_LABELS: usize = 5;

/// What a site asks of its thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// Most of its ham it accepts to see rejected (a fraction).
    pub max_ham_rejected: f64,
    /// Most of its spam it accepts to see published (a fraction).
    pub max_spam_accepted: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            max_ham_rejected: 0.005,
            max_spam_accepted: 0.05,
        }
    }
}

/// The out-of-sample scores (calibrated log-odds) of a site's latest labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelScores {
    /// In the order learned, to forget the oldest.
    order: VecDeque<(f64, Label)>,
    /// Per class (`[ham, spam]`), ascending.
    sorted: [Vec<f64>; 2],
}

fn class(label: Label) -> usize {
    match label {
        Label::Ham => 0,
        Label::Spam => 1,
    }
}

fn insert_sorted(v: &mut Vec<f64>, x: f64) {
    let at = v.partition_point(|y| y.total_cmp(&x).is_lt());
    v.insert(at, x);
}

fn remove_sorted(v: &mut Vec<f64>, x: f64) {
    let at = v.partition_point(|y| y.total_cmp(&x).is_lt());
    if v.get(at).is_some_and(|y| y.total_cmp(&x).is_eq()) {
        v.remove(at);
    }
}

impl LabelScores {
    /// Records the score a label's comment had before it was learned (non-finite scores are
    /// ignored), forgetting the oldest beyond [`WINDOW`].
    pub fn push(&mut self, label: Label, log_odds: f64) {
        if !log_odds.is_finite() {
            return;
        }
        if self.order.len() >= WINDOW {
            if let Some((old, l)) = self.order.pop_front() {
                remove_sorted(&mut self.sorted[class(l)], old);
            }
        }
        self.order.push_back((log_odds, label));
        insert_sorted(&mut self.sorted[class(label)], log_odds);
    }

    /// Scores kept per class, `[ham, spam]`.
    pub fn counts(&self) -> [usize; 2] {
        [self.sorted[0].len(), self.sorted[1].len()]
    }

    /// The site's thresholds: see the module docs. With no labels, `model`'s.
    pub fn fit(&self, targets: Targets, model: Thresholds) -> Thresholds {
        let ham = &self.sorted[0];
        let spam = &self.sorted[1];
        let mut reject_at = model.reject_at;
        if ham.len() >= MIN_LABELS {
            // Reject above all but the `allowed` highest-scoring ham: halfway to the next one up,
            // or as far above the highest as the gap below it, so a threshold is never exactly
            // on a seen score.
            let n = ham.len();
            let allowed = (targets.max_ham_rejected * n as f64).floor() as usize;
            let i = n - 1 - allowed.min(n - 1);
            let mut own = match ham.get(i + 1) {
                Some(next) => (ham[i] + next) / 2.0,
                None => ham[i] + (ham[i] - ham[i.saturating_sub(1)]).clamp(0.1, 1.0),
            };
            if let Some(tail) = tail_quantile(ham, targets.max_ham_rejected, Tail::Upper) {
                own = own.max(tail);
            }
            reject_at = shrink(own, model.reject_at, n, own > model.reject_at);
        }
        let mut accept_below = model.accept_below;
        if spam.len() >= MIN_LABELS {
            let n = spam.len();
            let allowed = (targets.max_spam_accepted * n as f64).floor() as usize;
            let i = allowed.min(n - 1);
            let mut own = match i.checked_sub(1).and_then(|j| spam.get(j)) {
                Some(prev) => (prev + spam[i]) / 2.0,
                None => spam[i] - (spam[(i + 1).min(n - 1)] - spam[i]).clamp(0.1, 1.0),
            };
            if let Some(tail) = tail_quantile(spam, targets.max_spam_accepted, Tail::Lower) {
                own = own.min(tail);
            }
            accept_below = shrink(own, model.accept_below, n, own < model.accept_below);
        }
        if accept_below > reject_at {
            // The site's classes do not overlap as far as its labels show: split between them
            // (each threshold moves to the careful side), nothing held.
            let mid = (accept_below + reject_at) / 2.0;
            accept_below = mid;
            reject_at = mid;
        }
        Thresholds {
            accept_below,
            reject_at,
        }
    }
}

/// Which end of the scores a tail is.
#[derive(Clone, Copy)]
enum Tail {
    Upper,
    Lower,
}

/// Where an exponential tail fitted to the highest (or lowest) scores of `sorted` (ascending)
/// leaves a fraction `q` beyond: `u ± mean excess * ln(P(beyond u) / q)`, with `u` the score
/// next to the outer tenth (at least [`MIN_LABELS`] scores). `None` when that tenth is already
/// rarer than `q` (the empirical quantile knows better) or there are too few scores. With few
/// labels the highest seen score is a poor guard for a rare tail (the highest of 90 ham is
/// about its 99th percentile, not its 99.5th): the extrapolation keeps the fit careful there.
/// Allocates nothing: it runs on the check path.
fn tail_quantile(sorted: &[f64], q: f64, tail: Tail) -> Option<f64> {
    let n = sorted.len();
    let t = (n / 10).max(MIN_LABELS);
    if n <= t || q <= 0.0 {
        return None;
    }
    let p_tail = t as f64 / n as f64;
    if p_tail <= q {
        return None;
    }
    let stretch = (p_tail / q).ln();
    match tail {
        Tail::Upper => {
            let u = sorted[n - t - 1];
            let excess = sorted[n - t..].iter().map(|x| x - u).sum::<f64>() / t as f64;
            Some(u + excess * stretch)
        }
        Tail::Lower => {
            let u = sorted[t];
            let excess = sorted[..t].iter().map(|x| u - x).sum::<f64>() / t as f64;
            Some(u - excess * stretch)
        }
    }
}

/// `own` (fitted on `n` labels) pulled towards `model`'s when it is the bolder of the two; a
/// more careful one is taken whole (the site's ham scoring above the model's reject threshold
/// is news to act on at once; measured with `eval-adapt`, docs/BENCHMARKS.md).
fn shrink(own: f64, model: f64, n: usize, careful: bool) -> f64 {
    if careful {
        return own;
    }
    let w = n as f64 / (n as f64 + BOLD_PRIOR_LABELS);
    w * own + (1.0 - w) * model
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Thresholds {
        Thresholds {
            accept_below: -2.0,
            reject_at: 2.0,
        }
    }

    #[test]
    fn few_labels_keep_the_model_thresholds() {
        let mut s = LabelScores::default();
        for i in 0..(MIN_LABELS - 1) {
            s.push(Label::Ham, 5.0 + i as f64);
            s.push(Label::Spam, -5.0);
        }
        assert_eq!(s.fit(Targets::default(), model()), model());
    }

    #[test]
    fn ham_scoring_high_raises_the_reject_threshold_quickly() {
        let mut s = LabelScores::default();
        for i in 0..20 {
            s.push(Label::Ham, 3.0 + 0.01 * f64::from(i));
        }
        let t = s.fit(Targets::default(), model());
        // Careful moves are taken whole: above the highest ham.
        assert!(t.reject_at > 3.19 && t.reject_at < 3.5, "{t:?}");
        assert_eq!(t.accept_below, model().accept_below);
    }

    #[test]
    fn bolder_thresholds_need_many_labels() {
        let mut few = LabelScores::default();
        let mut many = LabelScores::default();
        for i in 0..1000 {
            let x = f64::from(i % 100) / 100.0;
            if i < 20 {
                few.push(Label::Ham, -4.0 - x);
                few.push(Label::Spam, 4.0 + x);
            }
            many.push(Label::Ham, -4.0 - x);
            many.push(Label::Spam, 4.0 + x);
        }
        let few = few.fit(Targets::default(), model());
        let many = many.fit(Targets::default(), model());
        // Both bolder than the model, the one with many labels much more so.
        assert!(
            few.reject_at < 2.0 && many.reject_at < few.reject_at,
            "{few:?} {many:?}"
        );
        assert!(few.accept_below > -2.0 && many.accept_below > few.accept_below);
        // Well separated classes: nothing held, the split between them.
        assert!(many.accept_below <= many.reject_at);
        assert!(many.reject_at > -4.0 && many.reject_at < 4.0);
    }

    #[test]
    fn the_targets_bound_the_fitted_error_rates() {
        // Overlapping classes: ham ~ U(-4, 1), spam ~ U(-1, 4).
        let mut s = LabelScores::default();
        let mut ham = Vec::new();
        let mut spam = Vec::new();
        for i in 0..WINDOW / 2 {
            let u = (i * 7919 % 1000) as f64 / 1000.0;
            ham.push(-4.0 + 5.0 * u);
            spam.push(-1.0 + 5.0 * u);
            s.push(Label::Ham, -4.0 + 5.0 * u);
            s.push(Label::Spam, -1.0 + 5.0 * u);
        }
        let targets = Targets::default();
        let t = s.fit(targets, model());
        let rejected = ham.iter().filter(|&&x| x >= t.reject_at).count() as f64;
        let accepted = spam.iter().filter(|&&x| x < t.accept_below).count() as f64;
        assert!(
            rejected / ham.len() as f64 <= targets.max_ham_rejected,
            "{t:?}"
        );
        assert!(
            accepted / spam.len() as f64 <= targets.max_spam_accepted,
            "{t:?}"
        );
        assert!(t.accept_below < t.reject_at);
    }

    #[test]
    fn the_window_forgets_the_oldest_labels() {
        let strict = Targets {
            max_ham_rejected: 0.0,
            ..Targets::default()
        };
        let mut s = LabelScores::default();
        s.push(Label::Ham, 9.0);
        for _ in 0..WINDOW - 1 {
            s.push(Label::Ham, -1.0);
        }
        assert_eq!(s.counts(), [WINDOW, 0]);
        assert!(s.fit(strict, model()).reject_at > 8.0);
        s.push(Label::Ham, -1.0);
        assert_eq!(s.counts(), [WINDOW, 0]);
        assert!(s.fit(strict, model()).reject_at < 2.0);
        s.push(Label::Spam, f64::NAN);
        assert_eq!(s.counts(), [WINDOW, 0]);
    }
}
