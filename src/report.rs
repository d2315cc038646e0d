//! The numbers we report about a set of scored examples: AUC, precision/recall/F1 of the spam
//! class at p = 0.5 (linfa's ROC and confusion matrix) and the three-way view: which fraction of
//! ham and of spam was accepted, held, rejected, and how much of everything was held.
//!
//! It sits below the model because training reports its own out-of-fold scores with it;
//! [`crate::eval`] (above the model) produces predictions honestly and reports them here.

use linfa::prelude::*;
use ndarray::Array1;
use serde::Serialize;

use crate::comment::Label;
use crate::verdict::Verdict;

/// One scored example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Calibrated log-odds of spam.
    pub log_odds: f64,
    /// The verdict the thresholds gave.
    pub verdict: Verdict,
    /// The true label.
    pub label: Label,
}

/// What an evaluation measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Report {
    /// Examples evaluated.
    pub n: usize,
    /// Spam among them.
    pub n_spam: usize,
    /// Ham among them.
    pub n_ham: usize,
    /// Area under the ROC curve of the scores.
    pub auc: f64,
    /// Precision of the spam class at p >= 0.5.
    pub precision: f64,
    /// Recall of the spam class at p >= 0.5.
    pub recall: f64,
    /// F1 of the spam class at p >= 0.5.
    pub f1: f64,
    /// Spam predicted spam at p >= 0.5.
    pub true_positives: usize,
    /// Ham predicted spam at p >= 0.5.
    pub false_positives: usize,
    /// Ham predicted ham.
    pub true_negatives: usize,
    /// Spam predicted ham.
    pub false_negatives: usize,
    /// Fraction of ham accepted.
    pub ham_accepted: f64,
    /// Fraction of ham held.
    pub ham_held: f64,
    /// Fraction of ham rejected.
    pub ham_rejected: f64,
    /// Fraction of spam accepted.
    pub spam_accepted: f64,
    /// Fraction of spam held.
    pub spam_held: f64,
    /// Fraction of spam rejected.
    pub spam_rejected: f64,
    /// Fraction of all examples held.
    pub held: f64,
}

/// Computes the [`Report`] of a set of predictions.
pub fn report(preds: &[Prediction]) -> Report {
    let n = preds.len();
    let n_spam = preds.iter().filter(|p| p.label.is_spam()).count();
    let n_ham = n - n_spam;
    let frac = |label: Label, verdict: Verdict| {
        let total = if label.is_spam() { n_spam } else { n_ham };
        let k = preds
            .iter()
            .filter(|p| p.label == label && p.verdict == verdict)
            .count();
        if total == 0 {
            0.0
        } else {
            k as f64 / total as f64
        }
    };
    let held = if n == 0 {
        0.0
    } else {
        preds.iter().filter(|p| p.verdict == Verdict::Hold).count() as f64 / n as f64
    };

    let truth: Vec<bool> = preds.iter().map(|p| p.label.is_spam()).collect();
    let predicted: Array1<bool> = preds.iter().map(|p| p.log_odds >= 0.0).collect();
    let count = |t: bool, p: bool| {
        truth
            .iter()
            .zip(predicted.iter())
            .filter(|(&a, &b)| a == t && b == p)
            .count()
    };
    let (tp, fp, tn, fneg) = (
        count(true, true),
        count(false, true),
        count(false, false),
        count(true, false),
    );
    // linfa 0.8.1's binary `precision()` is `m00 / (m00 + m10)` on a matrix indexed
    // [self, argument]; called as documented (`prediction.confusion_matrix(truth)`) that is the
    // recall. Calling it on the truth with the predictions as the argument makes its precision
    // and recall mean what their names say; the hand-computed fixture below pins this.
    let truth_array = Array1::from(truth.clone());
    let (precision, recall, f1) = match truth_array.confusion_matrix(&predicted) {
        Ok(cm) if tp + fp > 0 && tp + fneg > 0 => (
            f64::from(cm.precision()),
            f64::from(cm.recall()),
            f64::from(cm.f1_score()),
        ),
        _ => (0.0, 0.0, 0.0),
    };

    Report {
        n,
        n_spam,
        n_ham,
        auc: auc(preds),
        precision,
        recall,
        f1,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fneg,
        ham_accepted: frac(Label::Ham, Verdict::Accept),
        ham_held: frac(Label::Ham, Verdict::Hold),
        ham_rejected: frac(Label::Ham, Verdict::Reject),
        spam_accepted: frac(Label::Spam, Verdict::Accept),
        spam_held: frac(Label::Spam, Verdict::Hold),
        spam_rejected: frac(Label::Spam, Verdict::Reject),
        held,
    }
}

/// ROC AUC through linfa. linfa takes `f32` probabilities, in which naive Bayes scores near 0 or
/// 1 collapse into ties, so it is given each score's rank (ties share a rank) scaled into [0, 1]:
/// a monotone transform, which leaves the AUC unchanged and loses no ordering.
pub fn auc(preds: &[Prediction]) -> f64 {
    let n_spam = preds.iter().filter(|p| p.label.is_spam()).count();
    if n_spam == 0 || n_spam == preds.len() {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..preds.len()).collect();
    order.sort_by(|&a, &b| preds[a].log_odds.total_cmp(&preds[b].log_odds));
    let mut rank = vec![0usize; preds.len()];
    let mut r = 0;
    for w in 0..order.len() {
        if w > 0 && preds[order[w]].log_odds != preds[order[w - 1]].log_odds {
            r += 1;
        }
        rank[order[w]] = r;
    }
    let scale = r.max(1) as f32;
    let probs: Vec<Pr> = rank.iter().map(|&k| Pr::new(k as f32 / scale)).collect();
    let truth: Vec<bool> = preds.iter().map(|p| p.label.is_spam()).collect();
    match probs.as_slice().roc(&truth) {
        Ok(roc) => f64::from(roc.area_under_curve()),
        Err(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(log_odds: f64, verdict: Verdict, label: Label) -> Prediction {
        Prediction {
            log_odds,
            verdict,
            label,
        }
    }

    /// A fixture whose numbers are worked out by hand:
    /// spam scores 3, 2, 0.5, -1, -1.5 (verdicts reject, reject, hold, accept, accept);
    /// ham scores 1, -0.5, -2, -3 (verdicts reject, hold, accept, accept).
    #[test]
    fn report_matches_a_hand_computed_confusion_matrix() {
        let preds = vec![
            p(3.0, Verdict::Reject, Label::Spam),
            p(2.0, Verdict::Reject, Label::Spam),
            p(0.5, Verdict::Hold, Label::Spam),
            p(-1.0, Verdict::Accept, Label::Spam),
            p(-1.5, Verdict::Accept, Label::Spam),
            p(1.0, Verdict::Reject, Label::Ham),
            p(-0.5, Verdict::Hold, Label::Ham),
            p(-2.0, Verdict::Accept, Label::Ham),
            p(-3.0, Verdict::Accept, Label::Ham),
        ];
        let r = report(&preds);
        // At p >= 0.5 (log-odds >= 0): spam 3, 2, 0.5 are TP, spam -1 and -1.5 are FN;
        // ham 1 is FP. Precision 3/4, recall 3/5, F1 2PR/(P+R) = 2/3.
        assert_eq!(
            (
                r.true_positives,
                r.false_positives,
                r.true_negatives,
                r.false_negatives
            ),
            (3, 1, 3, 2)
        );
        assert!(
            (r.precision - 0.75).abs() < 1e-6,
            "precision {}",
            r.precision
        );
        assert!((r.recall - 0.6).abs() < 1e-6, "recall {}", r.recall);
        assert!((r.f1 - 2.0 / 3.0).abs() < 1e-6);
        // Pairs (spam, ham) ranked right: spam 3 and 2 beat all 4 ham (8); 0.5 beats 3 ham (3);
        // -1 and -1.5 beat 2 ham each (4). 15 of 20.
        assert!((r.auc - 15.0 / 20.0).abs() < 1e-6, "auc {}", r.auc);
        assert_eq!(
            (r.spam_rejected, r.spam_held, r.spam_accepted),
            (0.4, 0.2, 0.4)
        );
        assert_eq!(
            (r.ham_rejected, r.ham_held, r.ham_accepted),
            (0.25, 0.25, 0.5)
        );
        assert_eq!(r.held, 2.0 / 9.0);
        assert_eq!(r.n, 9);
    }

    #[test]
    fn auc_counts_ties_as_half() {
        let preds = vec![
            p(1.0, Verdict::Hold, Label::Spam),
            p(1.0, Verdict::Hold, Label::Ham),
            p(2.0, Verdict::Hold, Label::Spam),
            p(0.0, Verdict::Hold, Label::Ham),
        ];
        // Pairs: (1 vs 1) tie 0.5, (1 vs 0) 1, (2 vs 1) 1, (2 vs 0) 1 => 3.5 / 4.
        assert!((auc(&preds) - 0.875).abs() < 1e-6);
    }
}
