//! The naive Bayes spam model: count table, scoring, calibration, training and the model file.
//!
//! The served model is our own sparse [`CountTable`] rather than linfa-bayes: linfa-bayes only
//! takes dense matrices (a 2^18-wide dense predict costs 84-730 µs per comment against well under
//! a microsecond for a sparse lookup), keeps its parameters private and prints to stderr while
//! fitting. linfa-bayes stays as the reference oracle in the tests (`tests/oracle.rs`).
//!
//! A score goes through three steps:
//! 1. the comment's tokens become feature ids ([`Model::features`]); the variant decides whether
//!    repeats count (multinomial) or only presence (binary);
//! 2. naive Bayes gives its evidence ([`Model::evidence`]): the class prior and, per token kind,
//!    the summed log-ratios of the comment's known tokens, length-normalised; their sum is the
//!    raw log-odds of spam ([`Model::raw_log_odds`]);
//! 3. a calibration fitted on out-of-fold scores at training time (one slope per token kind, or
//!    Platt's `a * raw + b`; see [`calibration`]) turns it into the calibrated log-odds whose
//!    logistic is the spam probability; two thresholds on it give accept / hold / reject
//!    ([`crate::policy`]).

pub mod calibration;
pub mod counts;
pub mod file;
pub mod online;
pub mod site_fit;
pub mod train;

use serde::{Deserialize, Serialize};

use crate::comment::Comment;
use crate::verdict::Thresholds;
// Kept at its old path: scoring code across the crate calls it `model::sigmoid`.
use crate::text::tokens::TokenSummary;
use crate::text::{kind_slot, tokenize, FeatureId, Scratch, KIND_SLOTS};
pub use crate::verdict::sigmoid;
pub use calibration::Calibration;
pub use counts::CountTable;
pub use file::{ModelFileError, ModelHeader};
pub use train::{train, TrainParams};

/// Which naive Bayes the model is. All share the count table; they differ in what is counted
/// and how counts combine. See docs/BENCHMARKS.md for how each scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Multinomial NB on token counts (a token twice in a comment counts twice).
    Multinomial,
    /// Multinomial NB on token presence (each distinct token once per comment).
    BinaryMultinomial,
    /// Robinson's per-token probabilities combined with Fisher's chi-square (as bogofilter and
    /// SpamBayes do), on presence counts.
    RobinsonFisher,
}

impl Variant {
    /// Whether a comment's features are deduplicated before counting and scoring.
    pub fn presence(self) -> bool {
        !matches!(self, Variant::Multinomial)
    }
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "multinomial" => Ok(Variant::Multinomial),
            "binary-multinomial" | "binary" => Ok(Variant::BinaryMultinomial),
            "robinson-fisher" | "robinson" => Ok(Variant::RobinsonFisher),
            other => Err(format!(
                "unknown variant `{other}` (multinomial, binary-multinomial, robinson-fisher)"
            )),
        }
    }
}

/// Naive Bayes hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NbParams {
    /// The variant.
    pub variant: Variant,
    /// Additive (Lidstone) smoothing for the multinomial variants; Robinson's strength `s` for
    /// Robinson-Fisher.
    pub alpha: f64,
    /// Length normalisation of the multinomial variants: the summed token evidence is divided by
    /// `n^length_norm`, `n` the number of known tokens. 0 is textbook naive Bayes (what the
    /// linfa-bayes oracle checks); without it a long, mildly hammy comment piles up more evidence
    /// than a short, clearly spammy one (Rennie et al. 2003, "Tackling the poor assumptions of
    /// naive Bayes text classifiers", section 4).
    #[serde(default)]
    pub length_norm: f64,
}

impl Default for NbParams {
    fn default() -> Self {
        NbParams {
            variant: Variant::BinaryMultinomial,
            alpha: 2.0,
            length_norm: 0.75,
        }
    }
}

impl NbParams {
    /// Checks the parameters (as linfa's `ParamGuard::check` does) before fitting.
    pub fn check(&self) -> Result<(), String> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!(
                "alpha must be a positive number, got {}",
                self.alpha
            ));
        }
        if !(self.length_norm.is_finite() && (0.0..=2.0).contains(&self.length_norm)) {
            return Err(format!(
                "length_norm must be in [0, 2], got {}",
                self.length_norm
            ));
        }
        Ok(())
    }
}

/// One feature's push towards spam (positive) or ham (negative), in calibrated log-odds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenEvidence {
    /// The token, e.g. `word:subscribe`.
    pub label: String,
    /// Its contribution to the calibrated log-odds of spam.
    pub log_odds: f64,
}

/// A comment's naive Bayes evidence, before calibration.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Evidence {
    /// The class prior's log-odds (for Robinson-Fisher, its whole log-odds).
    pub prior: f64,
    /// Per token kind (slots as [`crate::text::kind_slot`]), the summed log-ratios of the known
    /// tokens of that kind, times the length factor.
    pub by_kind: [f64; KIND_SLOTS],
}

impl Evidence {
    /// Naive Bayes' own log-odds: everything added up, as the textbook does.
    pub fn raw(&self) -> f64 {
        self.prior + self.by_kind.iter().sum::<f64>()
    }
}

/// How well the model knows a site's kind of text, which decides the calibration and thresholds
/// its comments are decided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Familiarity {
    /// A site that has not learned enough labels of its own: text of a kind the model may never
    /// have seen, scored with the calibration and thresholds fitted leave-one-source-out
    /// ([`file::UnseenFit`]), which hold rather than guess.
    #[default]
    NewSite,
    /// A site whose own labels have taught its layer enough: the main calibration and
    /// thresholds, fitted on held-out parts of the training sources.
    Known,
}

impl Familiarity {
    /// A site whose layer has learned `learned` (`[ham, spam]`) labels is [`Familiarity::Known`]
    /// once it has at least `min_learns` of each class (as rspamd's Bayes does not vote before
    /// `min_learns`): one class alone says nothing about where the site's line between them
    /// lies.
    pub fn of(learned: [u64; 2], min_learns: u64) -> Familiarity {
        if learned[0] >= min_learns && learned[1] >= min_learns {
            Familiarity::Known
        } else {
            Familiarity::NewSite
        }
    }
}

/// A text score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextScore {
    /// Naive Bayes' own log-odds of spam, before calibration.
    pub raw_log_odds: f64,
    /// Calibrated log-odds of spam.
    pub log_odds: f64,
    /// Links in the comment (for the policy's link limit).
    pub links: u32,
}

impl TextScore {
    /// The calibrated spam probability.
    pub fn probability(&self) -> f64 {
        sigmoid(self.log_odds)
    }
}

/// The shipped default model (`models/default.hgm`), built into the binary so `hamgate` needs no
/// files beside it. Rebuild it with the command in `models/README.md`.
pub const EMBEDDED_MODEL: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/default.hgm"));

/// Entries of the `ln(n + alpha)` table; counts above it fall back to computing the logarithm.
const LN_TABLE: usize = 4096;

/// A trained model: counts plus everything needed to turn them into verdicts.
#[derive(Debug, Clone)]
pub struct Model {
    header: ModelHeader,
    table: CountTable,
    /// `ln(n + alpha)` for small `n`: scoring is then one map lookup and two loads per token.
    ln_table: Vec<f64>,
}

impl Model {
    /// Builds a model from its header and counts.
    pub fn new(header: ModelHeader, table: CountTable) -> Self {
        let alpha = header.nb.alpha;
        let ln_table = (0..LN_TABLE).map(|n| (n as f64 + alpha).ln()).collect();
        Model {
            header,
            table,
            ln_table,
        }
    }

    /// The shipped default model ([`EMBEDDED_MODEL`]).
    pub fn embedded() -> Result<Model, ModelFileError> {
        Model::from_bytes(EMBEDDED_MODEL).map_err(|kind| ModelFileError {
            path: "<embedded default model>".into(),
            kind,
        })
    }

    /// The self-description stored in the model file.
    pub fn header(&self) -> &ModelHeader {
        &self.header
    }

    /// Mutable header, for training to fill in calibration, thresholds and metrics.
    pub fn header_mut(&mut self) -> &mut ModelHeader {
        &mut self.header
    }

    /// The count table.
    pub fn counts(&self) -> &CountTable {
        &self.table
    }

    /// The decision thresholds written into the model.
    pub fn thresholds(&self) -> Thresholds {
        self.header.thresholds
    }

    /// Approximate bytes of memory the model holds.
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes() + self.ln_table.capacity() * 8
    }

    /// Collects a comment's feature ids into `out` (cleared first), deduplicated when the
    /// variant counts presence.
    pub fn features(
        &self,
        comment: &Comment,
        scratch: &mut Scratch,
        out: &mut Vec<FeatureId>,
    ) -> TokenSummary {
        features_for(self.header.nb.variant, comment, scratch, out)
    }

    #[inline]
    fn ln_plus_alpha(&self, n: u32) -> f64 {
        match self.ln_table.get(n as usize) {
            Some(&v) => v,
            None => (f64::from(n) + self.header.nb.alpha).ln(),
        }
    }

    /// The per-token constant of the multinomial score: `ln(T_spam + aV) - ln(T_ham + aV)`.
    fn denominator_log_ratio(&self) -> f64 {
        let av = self.header.nb.alpha * self.table.vocabulary() as f64;
        (self.table.totals[1] as f64 + av).ln() - (self.table.totals[0] as f64 + av).ln()
    }

    /// `1 / n^length_norm` (1 when normalisation is off or no token is known).
    #[inline]
    fn length_factor(&self, known: u32) -> f64 {
        let g = self.header.nb.length_norm;
        if g == 0.0 || known <= 1 {
            1.0
        } else {
            f64::from(known).powf(-g)
        }
    }

    fn log_prior_ratio(&self) -> f64 {
        let [ham, spam] = self.table.docs;
        ((spam.max(1)) as f64).ln() - ((ham.max(1)) as f64).ln()
    }

    /// Naive Bayes' log-odds of spam for a comment's features (uncalibrated). Features never
    /// seen in training carry no evidence and are skipped, as with a fixed vocabulary.
    pub fn raw_log_odds(&self, features: &[FeatureId]) -> f64 {
        self.evidence(features).raw()
    }

    /// Naive Bayes' evidence for a comment's features, per token kind (see [`Evidence`]).
    pub fn evidence(&self, features: &[FeatureId]) -> Evidence {
        match self.header.nb.variant {
            Variant::Multinomial | Variant::BinaryMultinomial => {
                let k = self.denominator_log_ratio();
                let mut ev = Evidence {
                    prior: self.log_prior_ratio(),
                    by_kind: [0.0; KIND_SLOTS],
                };
                let mut known = 0u32;
                for f in features {
                    if let Some(&[ham, spam]) = self.table.features.get(f) {
                        ev.by_kind[kind_slot(*f)] +=
                            self.ln_plus_alpha(spam) - self.ln_plus_alpha(ham) - k;
                        known += 1;
                    }
                }
                let scale = self.length_factor(known);
                for e in &mut ev.by_kind {
                    *e *= scale;
                }
                ev
            }
            Variant::RobinsonFisher => Evidence {
                prior: self.robinson_fisher(features, |_, _| {}),
                by_kind: [0.0; KIND_SLOTS],
            },
        }
    }

    /// Robinson-Fisher combining; `each` sees every token that took part, with its own
    /// log-odds `ln(f / (1 - f))`.
    fn robinson_fisher(&self, features: &[FeatureId], mut each: impl FnMut(FeatureId, f64)) -> f64 {
        // Robinson's defaults as bogofilter ships them: unknown-word probability x, strength s
        // (our alpha), and a minimum deviation below which a token is ignored.
        const X: f64 = 0.5;
        const MIN_DEV: f64 = 0.1;
        let s = self.header.nb.alpha;
        let [ham_docs, spam_docs] = self.table.docs;
        let (ham_docs, spam_docs) = (ham_docs.max(1) as f64, spam_docs.max(1) as f64);
        let mut ln_f = 0.0;
        let mut ln_1f = 0.0;
        let mut n = 0u32;
        for &feat in features {
            let Some(&[ham, spam]) = self.table.features.get(&feat) else {
                continue;
            };
            let b = f64::from(spam) / spam_docs;
            let g = f64::from(ham) / ham_docs;
            let p = if b + g > 0.0 { b / (b + g) } else { X };
            let total = f64::from(spam) + f64::from(ham);
            let f = ((s * X + total * p) / (s + total)).clamp(1e-6, 1.0 - 1e-6);
            if (f - 0.5).abs() < MIN_DEV {
                continue;
            }
            ln_f += f.ln();
            ln_1f += (1.0 - f).ln();
            n += 1;
            each(feat, (f / (1.0 - f)).ln());
        }
        if n == 0 {
            return 0.0;
        }
        let spamminess = 1.0 - chi2_survival(-2.0 * ln_1f, 2 * n);
        let hamminess = 1.0 - chi2_survival(-2.0 * ln_f, 2 * n);
        let i = ((spamminess - hamminess + 1.0) / 2.0).clamp(1e-12, 1.0 - 1e-12);
        (i / (1.0 - i)).ln()
    }

    /// Scores a comment with the main calibration (scratch buffers passed in so hot loops
    /// allocate nothing).
    pub fn score_with(
        &self,
        comment: &Comment,
        scratch: &mut Scratch,
        features: &mut Vec<FeatureId>,
    ) -> TextScore {
        self.score_as(comment, Familiarity::Known, scratch, features)
    }

    /// Scores a comment as for a site that has not learned enough of its own to trust the
    /// main calibration: with the calibration fitted on unseen sources when the model has one
    /// (see [`file::UnseenFit`]). Decide on it with [`Model::new_site_thresholds`].
    pub fn score_new_site_with(
        &self,
        comment: &Comment,
        scratch: &mut Scratch,
        features: &mut Vec<FeatureId>,
    ) -> TextScore {
        self.score_as(comment, Familiarity::NewSite, scratch, features)
    }

    /// Scores a comment with the calibration `familiarity` chooses.
    pub fn score_as(
        &self,
        comment: &Comment,
        familiarity: Familiarity,
        scratch: &mut Scratch,
        features: &mut Vec<FeatureId>,
    ) -> TextScore {
        let summary = self.features(comment, scratch, features);
        let ev = self.evidence(features);
        TextScore {
            raw_log_odds: ev.raw(),
            log_odds: self.calibration_for(familiarity).apply_evidence(&ev),
            links: summary.links,
        }
    }

    /// The calibration for comments of a site as familiar as `familiarity` says.
    pub fn calibration_for(&self, familiarity: Familiarity) -> &Calibration {
        match familiarity {
            Familiarity::NewSite => self.new_site_calibration(),
            Familiarity::Known => &self.header.calibration,
        }
    }

    /// The thresholds for a site as familiar as `familiarity` says.
    pub fn thresholds_for(&self, familiarity: Familiarity) -> Thresholds {
        match familiarity {
            Familiarity::NewSite => self.new_site_thresholds(),
            Familiarity::Known => self.header.thresholds,
        }
    }

    /// The calibration for a new site: the unseen-source fit, else the main one.
    pub fn new_site_calibration(&self) -> &Calibration {
        self.header
            .unseen
            .as_ref()
            .map_or(&self.header.calibration, |u| &u.calibration)
    }

    /// The thresholds for a new site: the unseen-source fit's, else the main ones.
    pub fn new_site_thresholds(&self) -> Thresholds {
        self.header
            .unseen
            .as_ref()
            .map_or(self.header.thresholds, |u| u.thresholds)
    }

    /// Scores a comment.
    pub fn score(&self, comment: &Comment) -> TextScore {
        self.score_with(comment, &mut Scratch::default(), &mut Vec::new())
    }

    /// The `top` tokens that pushed the score most, with their calibrated log-odds, largest
    /// magnitude first. Ties break on the label so the order is stable.
    pub fn explain(&self, comment: &Comment, top: usize) -> Vec<TokenEvidence> {
        let mut scratch = Scratch::default();
        let mut feats = Vec::new();
        self.features(comment, &mut scratch, &mut feats);
        self.explain_features(comment, &feats, &mut scratch, top, Familiarity::Known)
    }

    /// [`Model::explain`] for a comment whose features (from [`Model::features`] or
    /// [`Model::score_with`]) are at hand, so the check path tokenises for scoring once and only
    /// once more to put names to the few strongest ids.
    pub fn explain_features(
        &self,
        comment: &Comment,
        feats: &[FeatureId],
        scratch: &mut Scratch,
        top: usize,
        familiarity: Familiarity,
    ) -> Vec<TokenEvidence> {
        if top == 0 {
            return Vec::new();
        }
        let k = self.denominator_log_ratio();
        let ratio = |f: FeatureId| {
            self.table
                .features
                .get(&f)
                .map(|&[ham, spam]| self.ln_plus_alpha(spam) - self.ln_plus_alpha(ham) - k)
        };
        self.explain_with(comment, feats, scratch, top, &ratio, familiarity)
    }

    /// The reasons, with `ratio` giving each token's raw log-ratio (`None`: unknown token).
    pub(crate) fn explain_with(
        &self,
        comment: &Comment,
        feats: &[FeatureId],
        scratch: &mut Scratch,
        top: usize,
        ratio: &dyn Fn(FeatureId) -> Option<f64>,
        familiarity: Familiarity,
    ) -> Vec<TokenEvidence> {
        if top == 0 {
            return Vec::new();
        }
        let calibration = self.calibration_for(familiarity);
        let mut weights: Vec<(FeatureId, f64)> = Vec::with_capacity(feats.len());
        match self.header.nb.variant {
            Variant::Multinomial | Variant::BinaryMultinomial => {
                let known: Vec<(FeatureId, f64)> =
                    feats.iter().filter_map(|&f| Some((f, ratio(f)?))).collect();
                let scale = self.length_factor(known.len() as u32);
                for (f, r) in known {
                    weights.push((f, calibration.token_scale(kind_slot(f)) * scale * r));
                }
            }
            Variant::RobinsonFisher => {
                let a = calibration.a;
                self.robinson_fisher(feats, |f, w| weights.push((f, a * w)));
            }
        }
        // Repeats (multinomial counts) add up per feature.
        weights.sort_unstable_by_key(|&(f, _)| f);
        weights.dedup_by(|later, first| {
            if later.0 == first.0 {
                first.1 += later.1;
                true
            } else {
                false
            }
        });
        // Keep the `top` strongest, plus any tied with the weakest of them, so the final order
        // (magnitude, then label) does not depend on hash values.
        weights.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()));
        if weights.len() > top {
            let cut = weights[top - 1].1.abs();
            let keep = weights.iter().take_while(|(_, w)| w.abs() >= cut).count();
            weights.truncate(keep.max(top));
        }
        weights.sort_unstable_by_key(|&(f, _)| f);

        // One more pass over the tokens to put names to those ids.
        let mut named: Vec<TokenEvidence> = Vec::with_capacity(weights.len());
        let mut found = vec![false; weights.len()];
        tokenize(comment, scratch, &mut |t| {
            let f = t.feature();
            if let Ok(i) = weights.binary_search_by_key(&f, |&(id, _)| id) {
                if !found[i] {
                    found[i] = true;
                    named.push(TokenEvidence {
                        label: t.label(),
                        log_odds: weights[i].1,
                    });
                }
            }
        });
        named.sort_by(|x, y| {
            y.log_odds
                .abs()
                .total_cmp(&x.log_odds.abs())
                .then_with(|| x.label.cmp(&y.label))
        });
        named.truncate(top);
        named
    }

    /// Per-class joint log-likelihoods `[ham, spam]` of the multinomial model, computed directly
    /// from the counts (`ln P(c) + sum ln P(t|c)`), the quantity linfa-bayes calls
    /// `joint_log_likelihood`. The oracle test compares them; scoring uses the faster
    /// [`Model::raw_log_odds`], whose value is their difference.
    pub fn class_log_likelihoods(&self, features: &[FeatureId]) -> [f64; 2] {
        let alpha = self.header.nb.alpha;
        let v = self.table.vocabulary() as f64;
        let n_docs = (self.table.docs[0] + self.table.docs[1]) as f64;
        let mut out = [0.0; 2];
        for (c, slot) in out.iter_mut().enumerate() {
            let denom = (self.table.totals[c] as f64 + alpha * v).ln();
            let mut jll = (self.table.docs[c] as f64 / n_docs).ln();
            for f in features {
                if let Some(counts) = self.table.features.get(f) {
                    jll += (f64::from(counts[c]) + alpha).ln() - denom;
                }
            }
            *slot = jll;
        }
        out
    }
}

/// Collects feature ids the way `variant` counts them.
pub fn features_for(
    variant: Variant,
    comment: &Comment,
    scratch: &mut Scratch,
    out: &mut Vec<FeatureId>,
) -> TokenSummary {
    out.clear();
    let summary = tokenize(comment, scratch, &mut |t| out.push(t.feature()));
    if variant.presence() {
        out.sort_unstable();
        out.dedup();
    }
    summary
}

/// Survival function of the chi-square distribution with an even number of degrees of freedom
/// (the closed form Robinson's combining uses).
fn chi2_survival(x2: f64, dof: u32) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..(dof / 2) {
        term *= m / f64::from(i);
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi2_survival_matches_known_values() {
        // P(chi2_2 > 2) = e^-1; P(chi2_4 > 4) = e^-2 * (1 + 2).
        assert!((chi2_survival(2.0, 2) - (-1.0f64).exp()).abs() < 1e-12);
        assert!((chi2_survival(4.0, 4) - 3.0 * (-2.0f64).exp()).abs() < 1e-12);
    }
}
