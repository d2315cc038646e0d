//! Training: counts, then calibration and thresholds from out-of-fold scores.
//!
//! [`train`] never fits calibration or thresholds on scores of data the scoring model saw: it
//! splits the (deduplicated) training data into folds (by group when there are at least three
//! groups, as videos or sites are, else five folds by a stable hash of the text), scores each
//! fold with a model fitted on the others, and fits the calibration (Platt's slope, then one
//! slope per token kind pulled towards it) and the two thresholds on those out-of-fold scores.
//! The served model is then fitted on all the data.

use serde::{Deserialize, Serialize};

use super::calibration::{choose_thresholds, Calibration, KindScaling};
use super::counts::CountTable;
use super::file::ModelHeader;
use super::{features_for, Evidence, Model, NbParams, Variant};
use crate::comment::Label;
use crate::corpus::{DedupStats, Example};
use crate::report::{report, Prediction};
use crate::text::{FeatureId, Scratch};

/// Everything that decides what [`train`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    /// Naive Bayes variant and smoothing.
    pub nb: NbParams,
    /// Largest fraction of validation ham the reject threshold may reject.
    pub ham_reject_target: f64,
    /// Largest fraction of validation spam the accept threshold may accept.
    pub spam_accept_target: f64,
    /// Folds when the data has fewer than three groups.
    pub folds: usize,
    /// Creation time written into the model (seconds since the Unix epoch).
    pub created_at: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            nb: NbParams::default(),
            ham_reject_target: 0.005,
            spam_accept_target: 0.04,
            folds: 5,
            created_at: 0,
        }
    }
}

/// Counts of `examples` as `nb.variant` counts them.
pub fn fit_counts(nb: NbParams, examples: &[&Example]) -> CountTable {
    let mut table = CountTable::default();
    let mut scratch = Scratch::default();
    let mut feats: Vec<FeatureId> = Vec::new();
    for ex in examples {
        features_for(nb.variant, &ex.comment, &mut scratch, &mut feats);
        table.add(ex.label, &feats);
    }
    table
}

/// A model fitted on `examples` with uncalibrated scores and default thresholds.
pub fn fit_model(nb: NbParams, examples: &[&Example]) -> Model {
    let table = fit_counts(nb, examples);
    let mut header = ModelHeader::new(nb);
    header.train_docs = table.docs;
    Model::new(header, table)
}

/// Assigns each example a fold: by group when there are at least three groups, else `folds`
/// folds by a stable hash of the normalised text (so a rerun gives the same split).
pub fn fold_assignment(examples: &[Example], folds: usize) -> (Vec<usize>, usize) {
    let groups = crate::corpus::groups(examples);
    if groups.len() >= 3 {
        let index: std::collections::HashMap<&str, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.as_str(), i))
            .collect();
        let assigned = examples
            .iter()
            .map(|e| index.get(e.group.as_str()).copied().unwrap_or(0))
            .collect();
        (assigned, groups.len())
    } else {
        let folds = folds.max(2);
        let assigned = examples
            .iter()
            .map(|e| {
                let key = crate::text::dedup_key(&e.comment.content);
                let t = crate::text::Token {
                    kind: crate::text::TokenKind::Word,
                    text: &key,
                    second: "",
                };
                (t.feature() % folds as u64) as usize
            })
            .collect();
        (assigned, folds)
    }
}

/// Out-of-fold evidence of `examples` (in their order), each from a model fitted on the other
/// folds. `progress` is called once per fitted fold.
pub fn out_of_fold_evidence(
    nb: NbParams,
    examples: &[Example],
    folds: usize,
    progress: &dyn Fn(),
) -> Vec<Evidence> {
    let (assigned, n_folds) = fold_assignment(examples, folds);
    let mut raw = vec![Evidence::default(); examples.len()];
    let mut scratch = Scratch::default();
    let mut feats = Vec::new();
    for fold in 0..n_folds {
        let train: Vec<&Example> = examples
            .iter()
            .zip(&assigned)
            .filter(|(_, &f)| f != fold)
            .map(|(e, _)| e)
            .collect();
        if train.len() == examples.len() {
            continue;
        }
        let model = fit_model(nb, &train);
        for (i, ex) in examples.iter().enumerate() {
            if assigned[i] == fold {
                model.features(&ex.comment, &mut scratch, &mut feats);
                raw[i] = model.evidence(&feats);
            }
        }
        progress();
    }
    raw
}

/// Trains a model on deduplicated `examples`: see the module docs. `corpus_digest` and `dedup`
/// are recorded in the header as they are.
pub fn train(
    examples: &[Example],
    params: &TrainParams,
    corpus_digest: &str,
    dedup: DedupStats,
    progress: &dyn Fn(),
) -> Result<Model, String> {
    params.nb.check()?;
    let spam = examples.iter().filter(|e| e.label.is_spam()).count();
    if spam == 0 || spam == examples.len() {
        return Err("training data needs both spam and ham examples".into());
    }
    let evidence: Vec<(Evidence, Label)> =
        out_of_fold_evidence(params.nb, examples, params.folds, progress)
            .into_iter()
            .zip(examples)
            .map(|(ev, e)| (ev, e.label))
            .collect();
    let labelled: Vec<(f64, Label)> = evidence.iter().map(|(ev, l)| (ev.raw(), *l)).collect();
    let mut calibration = Calibration::fit(&labelled);
    if params.nb.variant != Variant::RobinsonFisher {
        calibration.by_kind = KindScaling::fit(&evidence, calibration.a);
    }
    let calibrated: Vec<(f64, Label)> = evidence
        .iter()
        .map(|(ev, l)| (calibration.apply_evidence(ev), *l))
        .collect();
    let thresholds = choose_thresholds(
        &calibrated,
        params.ham_reject_target,
        params.spam_accept_target,
    );
    let oof: Vec<Prediction> = calibrated
        .iter()
        .map(|&(log_odds, label)| Prediction {
            log_odds,
            verdict: thresholds.decide(log_odds),
            label,
        })
        .collect();
    let oof_report = report(&oof);

    let all: Vec<&Example> = examples.iter().collect();
    let mut model = fit_model(params.nb, &all);
    progress();
    let header = model.header_mut();
    header.calibration = calibration;
    header.thresholds = thresholds;
    header.threshold_targets = [params.ham_reject_target, params.spam_accept_target];
    header.corpus_digest = corpus_digest.to_string();
    header.dedup = dedup;
    header.created_at = params.created_at;
    header.metrics = serde_json::json!({
        "measured_on": "out-of-fold predictions on the training corpus (the thresholds were chosen on these)",
        "out_of_fold": oof_report,
    });
    Ok(model)
}
