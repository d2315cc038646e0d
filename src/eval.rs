//! Evaluation: the numbers we report about a model, computed honestly.
//!
//! - [`predict`] scores data with a trained model (the caller makes sure the model never saw it).
//! - [`cross_validate_groups`] is leave-one-group-out cross-validation: for each group, a model is
//!   trained on all other groups with [`crate::model::train`] (whose thresholds come from inner
//!   cross-validation on those groups only) and predicts the held-out group; the predictions are
//!   pooled.
//! - [`report`] turns predictions into AUC, precision/recall/F1 of the spam class at p = 0.5
//!   (linfa's ROC and confusion matrix) and the three-way view: which fraction of ham and of spam
//!   was accepted, held, rejected, and how much of everything was held.

use linfa::prelude::*;
use ndarray::Array1;
use serde::Serialize;

use crate::comment::Label;
use crate::corpus::{DedupStats, Example};
use crate::model::{train, Model, TrainParams};
use crate::policy::Verdict;
use crate::text::Scratch;

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

/// Which of a model's calibrations and thresholds decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deciding {
    /// As the service decides for a site with too few labels of its own: the calibration and
    /// thresholds fitted on unseen sources (when the model has them).
    #[default]
    NewSite,
    /// With the main calibration and thresholds, fitted on held-out parts of the training
    /// sources (text of a kind the model has seen).
    Trained,
}

/// Scores `examples` with `model` as a new site would see them ([`Deciding::NewSite`]).
pub fn predict(model: &Model, examples: &[Example]) -> Vec<Prediction> {
    predict_as(model, examples, Deciding::NewSite)
}

/// Scores `examples` with `model`, deciding as `deciding` says.
pub fn predict_as(model: &Model, examples: &[Example], deciding: Deciding) -> Vec<Prediction> {
    let mut scratch = Scratch::default();
    let mut feats = Vec::new();
    let thresholds = match deciding {
        Deciding::NewSite => model.new_site_thresholds(),
        Deciding::Trained => model.thresholds(),
    };
    examples
        .iter()
        .map(|ex| {
            let s = match deciding {
                Deciding::NewSite => {
                    model.score_new_site_with(&ex.comment, &mut scratch, &mut feats)
                }
                Deciding::Trained => model.score_with(&ex.comment, &mut scratch, &mut feats),
            };
            Prediction {
                log_odds: s.log_odds,
                verdict: thresholds.decide(s.log_odds),
                label: ex.label,
            }
        })
        .collect()
}

/// What leave-one-out cross-validation holds out at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldOut {
    /// One group (a video, a site, a month): data of the same kind was seen in training.
    Group,
    /// One source (a collection, a blog): the model never saw text of its kind, as a new site.
    Source,
}

impl HoldOut {
    /// The key an example is held out by.
    pub fn key(self, example: &Example) -> &str {
        match self {
            HoldOut::Group => &example.group,
            HoldOut::Source => &example.source,
        }
    }

    /// The distinct keys of `examples`, in order of first appearance.
    pub fn keys(self, examples: &[Example]) -> Vec<String> {
        match self {
            HoldOut::Group => crate::corpus::groups(examples),
            HoldOut::Source => crate::corpus::sources(examples),
        }
    }

    fn name(self) -> &'static str {
        match self {
            HoldOut::Group => "group",
            HoldOut::Source => "source",
        }
    }
}

/// Leave-one-group-out cross-validation on deduplicated `examples`; see the module docs.
/// Returns the pooled predictions in the examples' order, or an error when there are fewer than
/// two groups or a training split lacks a class.
pub fn cross_validate_groups(
    examples: &[Example],
    params: &TrainParams,
    progress: &dyn Fn(),
) -> Result<Vec<Prediction>, String> {
    cross_validate(
        examples,
        params,
        HoldOut::Group,
        Deciding::Trained,
        progress,
    )
}

/// Leave-one-out cross-validation by `hold_out`: for each key, a model trained with
/// [`crate::model::train`] on all other keys predicts the held-out one, deciding as `deciding`
/// says; the predictions come back in the examples' order.
pub fn cross_validate(
    examples: &[Example],
    params: &TrainParams,
    hold_out: HoldOut,
    deciding: Deciding,
    progress: &dyn Fn(),
) -> Result<Vec<Prediction>, String> {
    let keys = hold_out.keys(examples);
    if keys.len() < 2 {
        return Err(format!(
            "--cv {} needs at least two {}s in the corpus, found {}",
            hold_out.name(),
            hold_out.name(),
            keys.len()
        ));
    }
    let mut out: Vec<Option<Prediction>> = vec![None; examples.len()];
    for key in &keys {
        let train_set: Vec<Example> = examples
            .iter()
            .filter(|e| hold_out.key(e) != key)
            .cloned()
            .collect();
        let test_idx: Vec<usize> = (0..examples.len())
            .filter(|&i| examples.get(i).is_some_and(|e| hold_out.key(e) == key))
            .collect();
        let model = train(&train_set, params, "", DedupStats::default(), progress)
            .map_err(|e| format!("{} `{key}`: {e}", hold_out.name()))?;
        let test: Vec<Example> = test_idx
            .iter()
            .filter_map(|&i| examples.get(i).cloned())
            .collect();
        for (i, p) in test_idx.iter().zip(predict_as(&model, &test, deciding)) {
            if let Some(slot) = out.get_mut(*i) {
                *slot = Some(p);
            }
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// The report of one held-out key (a source or a group).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartReport {
    /// The source (or group) these predictions are of.
    pub source: String,
    /// The report of its predictions.
    #[serde(flatten)]
    pub report: Report,
}

/// One [`Report`] per key of `hold_out`, in order of first appearance; `preds` are in the
/// examples' order.
pub fn report_by(examples: &[Example], preds: &[Prediction], hold_out: HoldOut) -> Vec<PartReport> {
    hold_out
        .keys(examples)
        .into_iter()
        .map(|key| {
            let part: Vec<Prediction> = examples
                .iter()
                .zip(preds)
                .filter(|(e, _)| hold_out.key(e) == key)
                .map(|(_, p)| *p)
                .collect();
            PartReport {
                source: key,
                report: report(&part),
            }
        })
        .collect()
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

/// One point of [`eval_adapt`]: the means over seeds after `k` labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdaptPoint {
    /// Labels learned.
    pub k: usize,
    /// Seeds averaged.
    pub seeds: u64,
    /// Mean AUC on the comments not learned.
    pub auc: f64,
    /// Mean F1 at p = 0.5.
    pub f1: f64,
    /// Mean fraction of ham rejected.
    pub ham_rejected: f64,
    /// Mean fraction of spam accepted.
    pub spam_accepted: f64,
    /// Mean fraction of everything held.
    pub held: f64,
}

/// A small deterministic generator (SplitMix64) for reproducible samples.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// How fast a new site is learned: for each seed, shuffle `examples`, learn the first `k` of
/// them into a fresh [`crate::model::online::SiteLayer`] (the code the Feedback RPC uses) and
/// evaluate on all the others, for every `k` in `steps`; report the means over seeds.
pub fn eval_adapt(
    model: &Model,
    examples: &[Example],
    steps: &[usize],
    seeds: u64,
    params: crate::model::online::LayerParams,
) -> Vec<AdaptPoint> {
    use crate::model::online::SiteLayer;
    let thresholds = model.thresholds();
    let mut sums: Vec<[f64; 5]> = vec![[0.0; 5]; steps.len()];
    for seed in 0..seeds {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = SplitMix(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x0068_616d_6761_7465);
        for i in (1..order.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut scratch = Scratch::default();
        let mut feats = Vec::new();
        for (si, &k) in steps.iter().enumerate() {
            let k = k.min(examples.len());
            let mut layer = SiteLayer::default();
            for &i in &order[..k] {
                layer.learn(model, examples[i].label, &examples[i].comment, &mut scratch);
            }
            let preds: Vec<Prediction> = order[k..]
                .iter()
                .map(|&i| {
                    let s = model.score_layered(
                        &examples[i].comment,
                        &layer,
                        params,
                        &mut scratch,
                        &mut feats,
                    );
                    Prediction {
                        log_odds: s.log_odds,
                        verdict: thresholds.decide(s.log_odds),
                        label: examples[i].label,
                    }
                })
                .collect();
            let r = report(&preds);
            for (slot, v) in
                sums[si]
                    .iter_mut()
                    .zip([r.auc, r.f1, r.ham_rejected, r.spam_accepted, r.held])
            {
                *slot += v;
            }
        }
    }
    let n = seeds.max(1) as f64;
    steps
        .iter()
        .zip(sums)
        .map(|(&k, s)| AdaptPoint {
            k,
            seeds,
            auc: s[0] / n,
            f1: s[1] / n,
            ham_rejected: s[2] / n,
            spam_accepted: s[3] / n,
            held: s[4] / n,
        })
        .collect()
}
