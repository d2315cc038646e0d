//! Evaluation: the numbers we report about a model, computed honestly.
//!
//! - [`predict`] scores data with a trained model (the caller makes sure the model never saw it).
//! - [`cross_validate_groups`] is leave-one-group-out cross-validation: for each group, a model is
//!   trained on all other groups with [`crate::model::train`] (whose thresholds come from inner
//!   cross-validation on those groups only) and predicts the held-out group; the predictions are
//!   pooled.
//! - [`report`] (in [`crate::report`], below the model, which reports its out-of-fold scores with
//!   it) turns predictions into AUC, F1 and the three-way view.

use serde::Serialize;

use crate::corpus::{DedupStats, Example};
use crate::model::{train, Familiarity, Model, TrainParams};
// Re-exported: the CLI and retraining name these by their old path.
pub use crate::report::{auc, report, Prediction, Report};
use crate::text::Scratch;

/// Scores `examples` with `model` as a new site would see them ([`Familiarity::NewSite`]).
pub fn predict(model: &Model, examples: &[Example]) -> Vec<Prediction> {
    predict_as(model, examples, Familiarity::NewSite)
}

/// Scores `examples` with `model`, deciding as `deciding` says.
pub fn predict_as(model: &Model, examples: &[Example], deciding: Familiarity) -> Vec<Prediction> {
    let mut scratch = Scratch::default();
    let mut feats = Vec::new();
    let thresholds = model.thresholds_for(deciding);
    examples
        .iter()
        .map(|ex| {
            let s = model.score_as(&ex.comment, deciding, &mut scratch, &mut feats);
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
        Familiarity::Known,
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
    deciding: Familiarity,
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

/// How fast a new site is learned: for each seed, shuffle `examples` and learn them one by one
/// into a fresh [`crate::model::online::SiteLayer`] (the code the Feedback RPC uses, which
/// records each label's score before learning it); after the first `k` of them, for every `k`
/// in `steps`, evaluate on all the others, decided as the service decides for that site: the
/// new-site thresholds until it has `min_learns` labels of each class, then its own thresholds
/// fitted to `targets` on the scores of the labels learned (the model's main ones when
/// `targets` is `None`). Reports the means over seeds.
pub fn eval_adapt(
    model: &Model,
    examples: &[Example],
    steps: &[usize],
    seeds: u64,
    params: crate::model::online::LayerParams,
    min_learns: u64,
    targets: Option<crate::model::site_fit::Targets>,
) -> Vec<AdaptPoint> {
    use crate::model::online::SiteLayer;
    let mut sums: Vec<[f64; 5]> = vec![[0.0; 5]; steps.len()];
    let mut sorted_steps: Vec<(usize, usize)> = steps
        .iter()
        .enumerate()
        .map(|(si, &k)| (k.min(examples.len()), si))
        .collect();
    sorted_steps.sort_unstable();
    for seed in 0..seeds {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = SplitMix(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x0068_616d_6761_7465);
        for i in (1..order.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut scratch = Scratch::default();
        let mut feats = Vec::new();
        let mut layer = SiteLayer::default();
        let mut learned = 0;
        for &(k, si) in &sorted_steps {
            for &i in &order[learned..k] {
                let e = &examples[i];
                layer.learn(model, params, e.label, &e.comment, &mut scratch);
            }
            learned = k;
            // Decided as the service decides for a site that has learned these labels.
            let familiarity = Familiarity::of(layer.learned(), min_learns);
            let thresholds = match (familiarity, targets) {
                (Familiarity::Known, Some(t)) => {
                    layer.thresholds(t, model.thresholds_for(Familiarity::Known))
                }
                _ => model.thresholds_for(familiarity),
            };
            let preds: Vec<Prediction> = order[k..]
                .iter()
                .map(|&i| {
                    let s = model.score_layered(
                        &examples[i].comment,
                        &layer,
                        params,
                        familiarity,
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
