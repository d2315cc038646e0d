//! Online learning: a site's own labels as a layer of counts on top of the global model.
//!
//! Moderators' feedback for one site goes into that site's [`SiteLayer`], a count table of the
//! same kind as the global one. Scoring for the site merges the two: every count of the layer
//! counts as `weight` counts of the global table (documents, token totals and per-token counts
//! alike), and naive Bayes runs on the merged counts. So one blog's moderation moves that blog's
//! verdicts quickly (a few dozen labels outweigh thousands of global comments on the tokens they
//! share) without touching any other site's, and learning a label is adding counts, visible to
//! the very next check.
//!
//! The calibration, thresholds and class prior stay the global model's; the merged log-odds is
//! calibrated with the same `a * raw + b`.

use serde::{Deserialize, Serialize};

use super::counts::CountTable;
use super::site_fit::{LabelScores, Targets};
use super::{Evidence, Familiarity, Model, TextScore, TokenEvidence, Variant};
use crate::comment::{Comment, Label};
use crate::text::{kind_slot, FeatureId, Scratch, KIND_SLOTS};
use crate::verdict::Thresholds;

/// The most one learned label may move a comment's calibrated log-odds away from the global
/// model's (in log-odds; `n` labels move it at most `n` times this). Without it one HAM label on
/// "Love it, thanks for sharing" moved the same text from p 0.44 to 0.0001.
pub const MAX_STEP_PER_LABEL: f64 = 1.0;

/// How much a site's own labels weigh against the global model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerParams {
    /// Each site count counts as this many global counts.
    pub weight: f64,
}

impl Default for LayerParams {
    fn default() -> Self {
        // The global counts weigh each (source, class) of the training data alike, several
        // counts a comment for the small ones, so a site's own count must weigh more than that
        // for its moderators to be heard: measured in docs/BENCHMARKS.md (`eval-adapt --weight`).
        LayerParams { weight: 100.0 }
    }
}

/// A site's own counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteLayer {
    /// The site's labelled comments, counted as the global model counts them.
    table: CountTable,
    /// Features of the layer the global model has never seen: they widen the merged
    /// vocabulary. Kept up to date by [`SiteLayer::learn`] so scoring never has to count them
    /// (a layer is cleared whenever the global model changes).
    new_features: usize,
    /// What each learned label scored just before it was learned: the site's own thresholds
    /// are fitted on these (see [`super::site_fit`]).
    scores: LabelScores,
}

impl SiteLayer {
    /// Learns one labelled comment, first recording what the site's next check would have
    /// scored it (with the main calibration, the one the site's own thresholds apply to).
    pub fn learn(
        &mut self,
        model: &Model,
        params: LayerParams,
        label: Label,
        comment: &Comment,
        scratch: &mut Scratch,
    ) {
        let mut feats = Vec::new();
        let before = model.score_layered(
            comment,
            self,
            params,
            Familiarity::Known,
            scratch,
            &mut feats,
        );
        self.scores.push(label, before.log_odds);
        let mut distinct = feats.clone();
        distinct.sort_unstable();
        distinct.dedup();
        self.new_features += distinct
            .iter()
            .filter(|f| {
                !model.table.features.contains_key(f) && !self.table.features.contains_key(f)
            })
            .count();
        self.table.add(label, &feats);
    }

    /// The layer's counts.
    pub fn counts(&self) -> &CountTable {
        &self.table
    }

    /// Labels learned so far per class, `[ham, spam]`.
    pub fn learned(&self) -> [u64; 2] {
        self.table.docs
    }

    /// Labels learned so far.
    pub fn labels(&self) -> u64 {
        self.table.docs[0] + self.table.docs[1]
    }

    /// The site's own thresholds for `targets`, fitted on its labels' scores and shrunk towards
    /// `model` (the main thresholds); `model` itself before it has labels of a class.
    pub fn thresholds(&self, targets: Targets, model: Thresholds) -> Thresholds {
        self.scores.fit(targets, model)
    }
}

impl Model {
    /// Naive Bayes evidence on the global counts merged with `layer` (see the module docs), and
    /// on the global counts alone, in one pass over the features (the check path needs both:
    /// the global score bounds how far the layer may move it). With an empty layer both equal
    /// [`Model::evidence`].
    fn evidence_layered_and_global(
        &self,
        features: &[FeatureId],
        layer: &SiteLayer,
        params: LayerParams,
    ) -> (Evidence, Evidence) {
        if layer.labels() == 0 || self.header.nb.variant == Variant::RobinsonFisher {
            let ev = self.evidence(features);
            return (ev, ev);
        }
        // The class prior stays the global one: the calibration was fitted with it, and a
        // site's first labels (mostly ham on most sites) would otherwise shift every score
        // towards ham and let spam under the accept threshold before the site has labels enough
        // to fit thresholds of its own (measured: 23% of spam accepted at k = 100 on the SMS
        // collection with the site's prior, 9% without; the AUC is the same).
        let empty = Evidence {
            prior: self.log_prior_ratio(),
            by_kind: [0.0; KIND_SLOTS],
        };
        let (mut layered, mut global) = (empty, empty);
        let ratio = self.layered_ratio(layer, params);
        let k = self.denominator_log_ratio();
        let (mut known_layered, mut known_global) = (0u32, 0u32);
        for f in features {
            let slot = kind_slot(*f);
            if let Some(r) = ratio(*f) {
                layered.by_kind[slot] += r;
                known_layered += 1;
            }
            // As `Model::evidence` counts it.
            if let Some(&[ham, spam]) = self.table.features.get(f) {
                global.by_kind[slot] += self.ln_plus_alpha(spam) - self.ln_plus_alpha(ham) - k;
                known_global += 1;
            }
        }
        for (ev, known) in [(&mut layered, known_layered), (&mut global, known_global)] {
            let scale = self.length_factor(known);
            for e in &mut ev.by_kind {
                *e *= scale;
            }
        }
        (layered, global)
    }

    /// One token's log-ratio on the global counts merged with `layer`, or `None` when neither
    /// has seen it.
    fn layered_ratio<'a>(
        &'a self,
        layer: &'a SiteLayer,
        params: LayerParams,
    ) -> impl Fn(FeatureId) -> Option<f64> + 'a {
        let w = params.weight;
        let alpha = self.header.nb.alpha;
        let g = &self.table;
        let s = &layer.table;
        // The merged vocabulary: global features plus the site's new ones.
        let v = (g.vocabulary() + layer.new_features) as f64;
        let total = |c: usize| g.totals[c] as f64 + w * s.totals[c] as f64 + alpha * v;
        let k = total(1).ln() - total(0).ln();
        move |f| {
            let gc = g.features.get(&f).copied();
            let sc = s.features.get(&f).copied();
            if gc.is_none() && sc.is_none() {
                return None;
            }
            let [gh, gs] = gc.unwrap_or([0, 0]);
            let [sh, ss] = sc.unwrap_or([0, 0]);
            let spam = f64::from(gs) + w * f64::from(ss) + alpha;
            let ham = f64::from(gh) + w * f64::from(sh) + alpha;
            Some(spam.ln() - ham.ln() - k)
        }
    }

    /// [`Model::explain_features`] for a site scored with its layer: the reasons weigh each
    /// token as the layered score did, so a token the site's moderators taught shows up.
    // Scratch buffers are passed in so the check path allocates nothing per call.
    #[allow(clippy::too_many_arguments)]
    pub fn explain_features_layered(
        &self,
        comment: &Comment,
        feats: &[FeatureId],
        layer: &SiteLayer,
        params: LayerParams,
        scratch: &mut Scratch,
        top: usize,
        familiarity: Familiarity,
    ) -> Vec<TokenEvidence> {
        if layer.labels() == 0 || self.header.nb.variant == Variant::RobinsonFisher {
            return self.explain_features(comment, feats, scratch, top, familiarity);
        }
        self.explain_with(
            comment,
            feats,
            scratch,
            top,
            &self.layered_ratio(layer, params),
            familiarity,
        )
    }

    /// Scores a comment for a site with its layer, calibrated as `familiarity` says.
    pub fn score_layered(
        &self,
        comment: &Comment,
        layer: &SiteLayer,
        params: LayerParams,
        familiarity: Familiarity,
        scratch: &mut Scratch,
        features: &mut Vec<FeatureId>,
    ) -> TextScore {
        let summary = self.features(comment, scratch, features);
        let (ev, global_ev) = self.evidence_layered_and_global(features, layer, params);
        let calibration = self.calibration_for(familiarity);
        let layered = calibration.apply_evidence(&ev);
        // A few labels may not swing a verdict from one end to the other: the layer moves the
        // global score at most `MAX_STEP_PER_LABEL` log-odds per label it has learned.
        let global = calibration.apply_evidence(&global_ev);
        let bound = MAX_STEP_PER_LABEL * layer.labels() as f64;
        TextScore {
            raw_log_odds: ev.raw(),
            log_odds: global + (layered - global).clamp(-bound, bound),
            links: summary.links,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_features_are_counted_once_as_they_are_learned() {
        let model = Model::embedded().expect("embedded model");
        let mut layer = SiteLayer::default();
        let mut scratch = Scratch::default();
        let c = Comment::from_content("zzqxv wwkrp zzqxv");
        layer.learn(
            &model,
            LayerParams::default(),
            Label::Spam,
            &c,
            &mut scratch,
        );
        layer.learn(
            &model,
            LayerParams::default(),
            Label::Spam,
            &c,
            &mut scratch,
        );
        let counted = layer
            .counts()
            .features
            .keys()
            .filter(|f| !model.counts().features.contains_key(f))
            .count();
        assert!(counted > 0);
        assert_eq!(layer.new_features, counted);
    }

    #[test]
    fn an_empty_layer_changes_nothing_and_a_label_moves_the_score() {
        let model = Model::embedded().expect("embedded model");
        let c = Comment::from_content("Text me on 07123456789 for a free ringtone prize");
        let mut scratch = Scratch::default();
        let mut feats = Vec::new();
        let base = model.score_with(&c, &mut scratch, &mut feats);
        let mut layer = SiteLayer::default();
        let p = LayerParams::default();
        let same = model.score_layered(&c, &layer, p, Familiarity::Known, &mut scratch, &mut feats);
        assert!((same.log_odds - base.log_odds).abs() < 1e-12);
        layer.learn(
            &model,
            LayerParams::default(),
            Label::Spam,
            &c,
            &mut scratch,
        );
        let after =
            model.score_layered(&c, &layer, p, Familiarity::Known, &mut scratch, &mut feats);
        assert!(
            after.log_odds > base.log_odds + 0.5,
            "{} -> {}",
            base.log_odds,
            after.log_odds
        );
        let mut ham_layer = SiteLayer::default();
        ham_layer.learn(&model, LayerParams::default(), Label::Ham, &c, &mut scratch);
        let hammed = model.score_layered(
            &c,
            &ham_layer,
            p,
            Familiarity::Known,
            &mut scratch,
            &mut feats,
        );
        assert!(hammed.log_odds < base.log_odds - 0.5);
    }

    #[test]
    fn one_label_moves_a_verdict_a_bounded_step() {
        let model = Model::embedded().expect("embedded model");
        let c = Comment::from_content("Love it, thanks for sharing");
        let mut scratch = Scratch::default();
        let mut feats = Vec::new();
        let p = LayerParams::default();
        let base = model.score_with(&c, &mut scratch, &mut feats).log_odds;
        let mut layer = SiteLayer::default();
        let mut previous = base;
        for n in 1..=3u32 {
            layer.learn(&model, LayerParams::default(), Label::Ham, &c, &mut scratch);
            let now =
                model.score_layered(&c, &layer, p, Familiarity::Known, &mut scratch, &mut feats);
            // Each label moves it towards ham, and never more than the bound per label.
            assert!(
                now.log_odds < previous,
                "label {n}: {previous} -> {}",
                now.log_odds
            );
            assert!(
                base - now.log_odds <= MAX_STEP_PER_LABEL * f64::from(n) + 1e-9,
                "label {n}: {base} -> {}",
                now.log_odds
            );
            previous = now.log_odds;
        }
    }
}
