//! The sites' online layers and their hourly learning budgets.
//!
//! Each layer ([`SiteLayer`]) holds the labels one site (or a group of sites that share a layer,
//! see `Settings::layer_of`) taught since the model in service was made; checks of that site are
//! scored on the global counts merged with it. The budget is the poisoning guard: a site's layer
//! learns at most `labels_per_hour` labels per hour of the labels' own time, so a burst of bad
//! labels cannot steer it; the rest wait for the next retrain (the label log keeps them all).
//!
//! Time is passed in (the application's one clock), so tests set it instead of waiting for it.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use crate::comment::{Comment, Label};
use crate::model::online::{LayerParams, SiteLayer};
use crate::model::site_fit::Targets;
use crate::model::{Familiarity, Model, TextScore, TokenEvidence};
use crate::text::{FeatureId, Scratch};
use crate::verdict::Thresholds;

/// Budget entries kept before hours long gone are dropped.
const BUDGET_ENTRIES: usize = 4096;

/// The layers of all sites and what each site has spent of its hourly budget. Std locks are
/// fine: each is held for a lookup or one label's counts, never across an await.
#[derive(Debug)]
pub(super) struct SiteLayers {
    params: LayerParams,
    labels_per_hour: u32,
    layers: RwLock<HashMap<String, SiteLayer>>,
    /// Labels each site's layer learned per hour of the labels' own time.
    budgets: Mutex<HashMap<(String, u64), u32>>,
}

impl SiteLayers {
    /// No layers yet; each learns at most `labels_per_hour` labels an hour.
    pub(super) fn new(params: LayerParams, labels_per_hour: u32) -> SiteLayers {
        SiteLayers {
            params,
            labels_per_hour,
            layers: RwLock::new(HashMap::new()),
            budgets: Mutex::new(HashMap::new()),
        }
    }

    /// The most labels a site's layer learns an hour.
    pub(super) fn labels_per_hour(&self) -> u32 {
        self.labels_per_hour
    }

    /// Counts one label of `site` made at `at` against the budget of that hour; false when the
    /// hour's budget is spent (or the lock is poisoned: then nothing is learned). `now` only
    /// decides which old hours can be forgotten.
    pub(super) fn take_budget(&self, site: &str, at: u64, now: u64) -> bool {
        let hour = at / 3600;
        let Ok(mut budgets) = self.budgets.lock() else {
            return false;
        };
        if budgets.len() > BUDGET_ENTRIES {
            // Hours long gone cannot be spent again.
            let now_hour = now / 3600;
            budgets.retain(|(_, h), _| *h + 1 >= now_hour);
        }
        let used = budgets.entry((site.to_string(), hour)).or_insert(0);
        if *used < self.labels_per_hour {
            *used += 1;
            true
        } else {
            false
        }
    }

    /// Teaches `layer` one labelled comment (counted as `model` counts it); false when the lock
    /// is poisoned.
    pub(super) fn learn(
        &self,
        layer: &str,
        model: &Model,
        label: Label,
        comment: &Comment,
        scratch: &mut Scratch,
    ) -> bool {
        match self.layers.write() {
            Ok(mut layers) => {
                layers.entry(layer.to_string()).or_default().learn(
                    model,
                    self.params,
                    label,
                    comment,
                    scratch,
                );
                true
            }
            Err(_) => false,
        }
    }

    /// The text score of `comment` and its `top` reasons: on the global counts merged with
    /// `layer` when that layer has learned anything, else on the global counts alone; how
    /// familiar the site is ([`Familiarity::of`] its layer's labels and `min_learns`), which
    /// chose the calibration and chooses the thresholds; and, for a familiar site that fits its
    /// own (`fit` is its targets and the main thresholds), its fitted thresholds.
    // Scratch buffers are passed in so the check path allocates nothing per call.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn score(
        &self,
        layer: &str,
        model: &Model,
        comment: &Comment,
        min_learns: u64,
        fit: Option<(Targets, Thresholds)>,
        top: usize,
        scratch: &mut Scratch,
        feats: &mut Vec<FeatureId>,
    ) -> (
        TextScore,
        Vec<TokenEvidence>,
        Familiarity,
        Option<Thresholds>,
    ) {
        if let Ok(layers) = self.layers.read() {
            if let Some(l) = layers.get(layer) {
                let params = self.params;
                let fam = Familiarity::of(l.learned(), min_learns);
                let text = model.score_layered(comment, l, params, fam, scratch, feats);
                let reasons =
                    model.explain_features_layered(comment, feats, l, params, scratch, top, fam);
                let fitted = match (fam, fit) {
                    (Familiarity::Known, Some((targets, main))) => {
                        Some(l.thresholds(targets, main))
                    }
                    _ => None,
                };
                return (text, reasons, fam, fitted);
            }
        }
        let fam = Familiarity::of([0, 0], min_learns);
        let text = model.score_as(comment, fam, scratch, feats);
        let reasons = model.explain_features(comment, feats, scratch, top, fam);
        (text, reasons, fam, None)
    }

    /// What `layer` has learned, `[ham, spam]`, and, given `fit` (targets and the main
    /// thresholds), the thresholds it has fitted.
    pub(super) fn state(
        &self,
        layer: &str,
        fit: Option<(Targets, Thresholds)>,
    ) -> ([u64; 2], Option<Thresholds>) {
        self.layers
            .read()
            .ok()
            .and_then(|layers| {
                layers.get(layer).map(|l| {
                    let fitted = fit.map(|(targets, main)| l.thresholds(targets, main));
                    (l.learned(), fitted)
                })
            })
            .unwrap_or(([0, 0], None))
    }

    /// Labels `layer` has learned.
    pub(super) fn labels(&self, layer: &str) -> u64 {
        self.layers
            .read()
            .map(|l| l.get(layer).map_or(0, SiteLayer::labels))
            .unwrap_or(0)
    }

    /// Labels all layers have learned.
    pub(super) fn total_labels(&self) -> u64 {
        self.layers
            .read()
            .map(|l| l.values().map(SiteLayer::labels).sum())
            .unwrap_or(0)
    }

    /// Forgets every layer (a new model has learned what they held; they would count twice).
    /// The budgets stay: the labels were learned in their hours.
    pub(super) fn clear_layers(&self) {
        if let Ok(mut layers) = self.layers.write() {
            layers.clear();
        }
    }

    /// Forgets every layer and every budget, before the layers are rebuilt from the label log
    /// (which spends the budgets again, hour by hour).
    pub(super) fn reset(&self) {
        self.clear_layers();
        if let Ok(mut budgets) = self.budgets.lock() {
            budgets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of an hour (seconds since the epoch, a multiple of 3600).
    const HOUR_START: u64 = 1_763_470_800;

    fn layers(per_hour: u32) -> SiteLayers {
        SiteLayers::new(LayerParams::default(), per_hour)
    }

    fn model() -> Model {
        Model::embedded().expect("the shipped model loads")
    }

    const PROBE: &str = "I made a similar video, have a look at my channel please";

    fn probability(l: &SiteLayers, layer: &str, model: &Model) -> f64 {
        let (text, _, _, _) = l.score(
            layer,
            model,
            &Comment::from_content(PROBE),
            0,
            None,
            3,
            &mut Scratch::default(),
            &mut Vec::new(),
        );
        text.probability()
    }

    #[test]
    fn a_budget_is_spent_within_its_hour_and_resets_at_the_next() {
        let l = layers(2);
        let now = HOUR_START + 10;
        assert!(l.take_budget("blog", HOUR_START, now));
        assert!(l.take_budget("blog", HOUR_START + 3599, now));
        assert!(!l.take_budget("blog", HOUR_START + 1800, now), "spent");
        assert!(l.take_budget("blog", HOUR_START + 3600, now), "a new hour");
    }

    #[test]
    fn each_site_has_its_own_budget() {
        let l = layers(1);
        assert!(l.take_budget("blog", HOUR_START, HOUR_START));
        assert!(!l.take_budget("blog", HOUR_START, HOUR_START));
        assert!(l.take_budget("shop", HOUR_START, HOUR_START));
    }

    #[test]
    fn a_zero_budget_learns_nothing() {
        assert!(!layers(0).take_budget("blog", HOUR_START, HOUR_START));
    }

    #[test]
    fn old_hours_are_forgotten_when_the_budgets_grow_but_the_current_hour_is_kept() {
        let l = layers(1);
        let now = HOUR_START + 10 * 3600;
        // The current hour is spent, then BUDGET_ENTRIES old hours fill the map past its bound.
        assert!(l.take_budget("blog", now, now));
        for h in 0..BUDGET_ENTRIES {
            assert!(l.take_budget(&format!("site-{h}"), HOUR_START, now));
        }
        // The next label prunes: the old hours go, the current hour's spending stays.
        assert!(!l.take_budget("blog", now, now));
        let kept = l.budgets.lock().expect("not poisoned").len();
        assert_eq!(kept, 1, "only this hour's entry is left");
    }

    #[test]
    fn a_layer_learns_and_moves_only_its_own_scores() {
        let model = model();
        let l = layers(10);
        let before = probability(&l, "blog", &model);
        assert_eq!(before, probability(&l, "shop", &model), "no layers yet");
        let mut scratch = Scratch::default();
        for _ in 0..5 {
            let spam = Comment::from_content(PROBE);
            assert!(l.learn("blog", &model, Label::Spam, &spam, &mut scratch));
        }
        assert_eq!(l.labels("blog"), 5);
        assert_eq!(l.labels("shop"), 0);
        assert_eq!(l.total_labels(), 5);
        let after = probability(&l, "blog", &model);
        assert!(
            after > before,
            "the blog's layer learned spam: {before} -> {after}"
        );
        assert_eq!(
            probability(&l, "shop", &model),
            before,
            "another site's layer must not move"
        );
    }

    #[test]
    fn clearing_forgets_the_layers_and_reset_also_the_budgets() {
        let model = model();
        let l = layers(1);
        let spam = Comment::from_content(PROBE);
        assert!(l.take_budget("blog", HOUR_START, HOUR_START));
        assert!(l.learn("blog", &model, Label::Spam, &spam, &mut Scratch::default()));
        l.clear_layers();
        assert_eq!(l.total_labels(), 0);
        assert!(
            !l.take_budget("blog", HOUR_START, HOUR_START),
            "budget kept"
        );
        l.reset();
        assert!(
            l.take_budget("blog", HOUR_START, HOUR_START),
            "budget reset"
        );
    }
}
