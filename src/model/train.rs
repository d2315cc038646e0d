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
use super::file::{ModelHeader, UnseenFit};
use super::{features_for, Evidence, Model, NbParams, Variant};
use crate::comment::Label;
use crate::corpus::{DedupStats, Example};
use crate::report::{report, Prediction};
use crate::text::{FeatureId, Scratch};
use crate::verdict::Thresholds;

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
    /// Weigh each (source, class) cell of the training data alike, so that a token common to
    /// one source's spam and ham alike (a mark of the source, not of spam) carries no evidence.
    pub balance_sources: bool,
    /// For text of an unseen kind: the largest fraction of any held-out source's ham the
    /// new-site reject threshold may reject.
    pub unseen_ham_reject: f64,
    /// For text of an unseen kind: the largest fraction of any held-out source's spam the
    /// new-site accept threshold may accept.
    pub unseen_spam_accept: f64,
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
            balance_sources: true,
            unseen_ham_reject: 0.005,
            unseen_spam_accept: 0.15,
            created_at: 0,
        }
    }
}

/// Counts of `examples` as `nb.variant` counts them.
pub fn fit_counts(nb: NbParams, examples: &[&Example]) -> CountTable {
    fit_counts_weighted(nb, examples, false)
}

/// How many times each example counts when `balance` is on: every (source, class) cell weighs
/// as much as the mean cell, in whole counts (at least one), so a source's size and spam share
/// do not decide what its tokens say. All ones when off or when there is a single source.
pub fn balance_weights(examples: &[&Example], balance: bool) -> Vec<u32> {
    let mut cells: std::collections::HashMap<(&str, bool), usize> = Default::default();
    for e in examples {
        *cells
            .entry((e.source.as_str(), e.label.is_spam()))
            .or_default() += 1;
    }
    let sources = cells
        .keys()
        .map(|(s, _)| *s)
        .collect::<std::collections::HashSet<_>>();
    if !balance || sources.len() < 2 {
        return vec![1; examples.len()];
    }
    let mean = examples.len() as f64 / cells.len() as f64;
    examples
        .iter()
        .map(|e| {
            let n = cells
                .get(&(e.source.as_str(), e.label.is_spam()))
                .copied()
                .unwrap_or(1)
                .max(1);
            (mean / n as f64).round().max(1.0) as u32
        })
        .collect()
}

/// Counts of `examples`, each weighted as [`balance_weights`] says.
pub fn fit_counts_weighted(nb: NbParams, examples: &[&Example], balance: bool) -> CountTable {
    let weights = balance_weights(examples, balance);
    let mut table = CountTable::default();
    let mut scratch = Scratch::default();
    let mut feats: Vec<FeatureId> = Vec::new();
    for (ex, &w) in examples.iter().zip(&weights) {
        features_for(nb.variant, &ex.comment, &mut scratch, &mut feats);
        table.add_times(ex.label, &feats, w);
    }
    table
}

/// A model fitted on `examples` with uncalibrated scores and default thresholds.
pub fn fit_model(nb: NbParams, examples: &[&Example]) -> Model {
    fit_model_weighted(nb, examples, false)
}

/// [`fit_model`] with the examples weighted as [`balance_weights`] says.
pub fn fit_model_weighted(nb: NbParams, examples: &[&Example], balance: bool) -> Model {
    let table = fit_counts_weighted(nb, examples, balance);
    let mut header = ModelHeader::new(nb);
    header.train_docs = table.docs;
    Model::new(header, table)
}

/// Assigns each example a fold: by group when there are at least three groups, as videos or
/// sites are, else `folds` folds by a stable hash of the normalised text (so a rerun gives the
/// same split). With several sources each source is split on its own that way, so that no fold
/// holds out a whole source: these folds measure text of kinds the model has seen (text of an
/// unseen kind is what [`leave_one_source_out_evidence`] measures).
pub fn fold_assignment(examples: &[Example], folds: usize) -> (Vec<usize>, usize) {
    let sources = crate::corpus::sources(examples);
    if sources.len() < 2 {
        return fold_assignment_within(examples, folds);
    }
    let mut assigned = vec![0; examples.len()];
    let mut n_folds = folds.max(2);
    let mut parts = Vec::new();
    for source in &sources {
        let idx: Vec<usize> = (0..examples.len())
            .filter(|&i| examples.get(i).is_some_and(|e| &e.source == source))
            .collect();
        let part: Vec<Example> = idx
            .iter()
            .filter_map(|&i| examples.get(i).cloned())
            .collect();
        let (a, n) = fold_assignment_within(&part, folds);
        n_folds = n_folds.max(n);
        parts.push((idx, a));
    }
    for (idx, a) in parts {
        for (i, f) in idx.into_iter().zip(a) {
            if let Some(slot) = assigned.get_mut(i) {
                *slot = f;
            }
        }
    }
    (assigned, n_folds)
}

fn fold_assignment_within(examples: &[Example], folds: usize) -> (Vec<usize>, usize) {
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
    balance: bool,
    progress: &dyn Fn(),
) -> Vec<Evidence> {
    let (assigned, n_folds) = fold_assignment(examples, folds);
    held_out_evidence(nb, examples, &assigned, n_folds, balance, progress)
}

/// Evidence of each example from a model fitted on the examples of the other folds
/// (`assigned[i]` is example i's fold).
fn held_out_evidence(
    nb: NbParams,
    examples: &[Example],
    assigned: &[usize],
    n_folds: usize,
    balance: bool,
    progress: &dyn Fn(),
) -> Vec<Evidence> {
    let mut raw = vec![Evidence::default(); examples.len()];
    let mut scratch = Scratch::default();
    let mut feats = Vec::new();
    for fold in 0..n_folds {
        let train: Vec<&Example> = examples
            .iter()
            .zip(assigned)
            .filter(|(_, &f)| f != fold)
            .map(|(e, _)| e)
            .collect();
        if train.len() == examples.len() {
            continue;
        }
        let model = fit_model_weighted(nb, &train, balance);
        for (i, ex) in examples.iter().enumerate() {
            if assigned.get(i) == Some(&fold) {
                model.features(&ex.comment, &mut scratch, &mut feats);
                if let Some(slot) = raw.get_mut(i) {
                    *slot = model.evidence(&feats);
                }
            }
        }
        progress();
    }
    raw
}

/// Evidence of each example from a model trained on the other sources, and the sources in
/// order; `None` with fewer than two sources.
pub fn leave_one_source_out_evidence(
    nb: NbParams,
    examples: &[Example],
    balance: bool,
    progress: &dyn Fn(),
) -> Option<(Vec<Evidence>, Vec<String>)> {
    let sources = crate::corpus::sources(examples);
    if sources.len() < 2 {
        return None;
    }
    let assigned: Vec<usize> = examples
        .iter()
        .map(|e| sources.iter().position(|s| *s == e.source).unwrap_or(0))
        .collect();
    let evidence = held_out_evidence(nb, examples, &assigned, sources.len(), balance, progress);
    Some((evidence, sources))
}

/// Fits the calibration and thresholds for text of an unseen kind on leave-one-source-out
/// evidence. The calibration is Platt's single slope on naive Bayes' own sum: the per-kind
/// slopes of the main calibration learn which kinds of token to trust *in the training
/// sources*, and on a source none of them saw that ranking turned out worse than no weighting at
/// all (measured in docs/BENCHMARKS.md). A slope that comes out zero or negative (the sources
/// disagree about what spam looks like) falls back to the plain sum. The thresholds keep within
/// the targets on every held-out source, not only on the pooled scores.
pub fn fit_unseen(
    evidence: &[(Evidence, Label)],
    source_of: &[usize],
    sources: &[String],
    params: &TrainParams,
) -> UnseenFit {
    let labelled: Vec<(f64, Label)> = evidence.iter().map(|(ev, l)| (ev.raw(), *l)).collect();
    let mut calibration = Calibration::fit(&labelled);
    if calibration.a.is_nan() || calibration.a <= 0.0 {
        calibration = Calibration::default();
    }
    let mut thresholds: Option<Thresholds> = None;
    for s in 0..sources.len() {
        let scores: Vec<(f64, Label)> = evidence
            .iter()
            .zip(source_of)
            .filter(|(_, &i)| i == s)
            .map(|((ev, l), _)| (calibration.apply_evidence(ev), *l))
            .collect();
        let has_both =
            scores.iter().any(|(_, l)| l.is_spam()) && scores.iter().any(|(_, l)| !l.is_spam());
        if !has_both {
            continue;
        }
        let t = choose_thresholds(&scores, params.unseen_ham_reject, params.unseen_spam_accept);
        thresholds = Some(match thresholds {
            None => t,
            Some(prev) => Thresholds {
                accept_below: prev.accept_below.min(t.accept_below),
                reject_at: prev.reject_at.max(t.reject_at),
            },
        });
    }
    let thresholds = thresholds.unwrap_or_default();
    UnseenFit {
        calibration,
        thresholds: Thresholds {
            accept_below: thresholds.accept_below.min(thresholds.reject_at),
            reject_at: thresholds.reject_at,
        },
        sources: sources.to_vec(),
    }
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
    let evidence: Vec<(Evidence, Label)> = out_of_fold_evidence(
        params.nb,
        examples,
        params.folds,
        params.balance_sources,
        progress,
    )
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

    let unseen =
        leave_one_source_out_evidence(params.nb, examples, params.balance_sources, progress).map(
            |(evidence, sources)| {
                let source_of: Vec<usize> = examples
                    .iter()
                    .map(|e| sources.iter().position(|s| *s == e.source).unwrap_or(0))
                    .collect();
                let labelled: Vec<(Evidence, Label)> = evidence
                    .into_iter()
                    .zip(examples)
                    .map(|(ev, e)| (ev, e.label))
                    .collect();
                fit_unseen(&labelled, &source_of, &sources, params)
            },
        );

    let all: Vec<&Example> = examples.iter().collect();
    let mut model = fit_model_weighted(params.nb, &all, params.balance_sources);
    progress();
    let header = model.header_mut();
    header.calibration = calibration;
    header.thresholds = thresholds;
    header.threshold_targets = [params.ham_reject_target, params.spam_accept_target];
    header.corpus_digest = corpus_digest.to_string();
    header.dedup = dedup;
    header.created_at = params.created_at;
    header.unseen = unseen;
    header.metrics = serde_json::json!({
        "measured_on": "out-of-fold predictions on the training corpus (the thresholds were chosen on these)",
        "out_of_fold": oof_report,
    });
    Ok(model)
}
