//! Model administration: what the model in service says about itself ([`App::model_info`]),
//! swapping a model in, and the admin-only versioned operations over the model store: retrain
//! from the base corpus plus the label log ([`App::retrain`], gated by [`crate::retrain`]),
//! rollback, and picking up a version another replica published ([`App::refresh_model`]).

use std::sync::Arc;

use super::{App, AppError, Caller, ModelSlot};
use crate::config::Settings;
use crate::model::{Familiarity, Model};
use crate::model_store::{ModelStore, ModelStoreError, RedisModels};

/// What the model in service says about itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    /// The version (first 12 hex digits of the SHA-256 of the model file).
    pub version: String,
    /// When it was trained, seconds since the epoch.
    pub created_at: u64,
    /// Training documents, ham and spam.
    pub train_docs: [u64; 2],
    /// Distinct features.
    pub features: usize,
    /// Accept below this probability.
    pub accept_below: f64,
    /// Reject from this probability.
    pub reject_at: f64,
    /// Metrics measured at training time, as JSON text.
    pub metrics_json: String,
    /// Labels learned online since this model was put in service: by the caller's site's
    /// layer, or by every site's for the admin key.
    pub site_labels: u64,
    /// The caller's site, or every configured site for the admin key.
    pub sites: Vec<SiteModelInfo>,
}

/// Where a site's thresholds come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdsSource {
    /// The model's stricter thresholds for a site still learning.
    NewSite,
    /// The model's main thresholds.
    Model,
    /// Fitted on the site's own labels (see `model::site_fit`).
    Fitted,
    /// Set in the site's configuration.
    Configured,
}

/// One site's learning state and the thresholds its checks are decided with now.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SiteModelInfo {
    /// The site.
    pub site: String,
    /// The layer it learns into.
    pub layer: String,
    /// Labels its layer has learned, ham and spam.
    pub labels_learned: [u64; 2],
    /// Labels of each class before it leaves the new-site thresholds.
    pub min_learns: u64,
    /// Still decided with the new-site thresholds.
    pub learning: bool,
    /// Where its thresholds come from.
    pub thresholds_source: ThresholdsSource,
    /// Accept below this probability.
    pub accept_below: f64,
    /// Reject from this probability.
    pub reject_at: f64,
}

/// Redis when the Redis backend is configured (replicas share it), else the model directory
/// when one is configured.
pub(super) fn model_store_of(settings: &Settings) -> Option<ModelStore> {
    // Settings are validated before the app is built; a bad Redis target was refused there.
    if let Ok(Some(target)) = settings.redis_target() {
        return Some(ModelStore::Redis(RedisModels::new(target)));
    }
    let dir = settings.model_dir.as_ref()?;
    match crate::retrain::ModelDir::open(dir) {
        Ok(d) => Some(ModelStore::Dir(d)),
        Err(e) => {
            tracing::warn!(cause = %e, "model directory unusable; retrain and rollback are off");
            None
        }
    }
}

impl App {
    /// The model version in service.
    pub fn model_version(&self) -> String {
        self.slot().version.clone()
    }

    /// What the model in service says about itself.
    pub fn model_info(&self, caller: &Caller) -> ModelInfo {
        let slot = self.slot();
        let h = slot.model.header();
        let sites: Vec<SiteModelInfo> = if caller.admin {
            let mut names: Vec<&String> = self.inner.settings.sites.keys().collect();
            names.sort();
            names
                .into_iter()
                .map(|s| self.site_model_info(&slot, s))
                .collect()
        } else {
            vec![self.site_model_info(&slot, &caller.site)]
        };
        let site_labels = if caller.admin {
            self.inner.layers.total_labels()
        } else {
            sites
                .iter()
                .map(|s| s.labels_learned.iter().sum::<u64>())
                .sum()
        };
        ModelInfo {
            version: slot.version.clone(),
            created_at: h.created_at,
            train_docs: h.train_docs,
            features: slot.model.counts().vocabulary(),
            accept_below: h.thresholds.accept_below_probability(),
            reject_at: h.thresholds.reject_at_probability(),
            metrics_json: h.metrics.to_string(),
            site_labels,
            sites,
        }
    }

    fn site_model_info(&self, slot: &ModelSlot, site: &str) -> SiteModelInfo {
        let settings = &self.inner.settings;
        let layer = settings.layer_of(site);
        let main = slot.main_thresholds();
        let fit = settings.targets_of(site).map(|t| (t, main));
        let (learned, fitted) = self.inner.layers.state(layer, fit);
        let min_learns = settings.min_learns_of(site);
        let familiarity = Familiarity::of(learned, min_learns);
        let (policy, source) = slot.site_policy(site, familiarity, fitted);
        let thresholds = policy.thresholds;
        SiteModelInfo {
            site: site.to_string(),
            layer: layer.to_string(),
            labels_learned: learned,
            min_learns,
            learning: familiarity == Familiarity::NewSite,
            thresholds_source: source,
            accept_below: thresholds.accept_below_probability(),
            reject_at: thresholds.reject_at_probability(),
        }
    }

    /// Puts another model in service, atomically: checks already running finish on the old one.
    /// The sites' online layers are cleared, because a retrained model has learned the labels
    /// they hold (they would count twice); the label log keeps every label.
    pub fn swap_model(&self, model: Model, version: String) {
        let slot = Arc::new(ModelSlot::new(&self.inner.settings, model, version.clone()));
        match self.inner.slot.write() {
            Ok(mut s) => *s = slot,
            Err(poisoned) => *poisoned.into_inner() = slot,
        }
        self.inner.layers.clear_layers();
        tracing::info!(model_version = %version, "model swapped in");
    }

    fn admin_model_store(&self, caller: &Caller) -> Result<&ModelStore, AppError> {
        if !caller.admin {
            return Err(AppError::PermissionDenied(
                "model administration needs the admin key".into(),
            ));
        }
        self.inner.model_store.as_ref().ok_or_else(|| {
            AppError::FailedPrecondition(
                "this service keeps no model versions: serve with a model directory (--model-dir DIR) or with Redis".into(),
            )
        })
    }

    /// Admin: retrains from the base corpus plus the label log and swaps the candidate in
    /// when the gate accepts it (see [`crate::retrain`]). Returns the report and the version
    /// in service afterwards.
    pub async fn retrain(
        &self,
        caller: &Caller,
    ) -> Result<(crate::retrain::RetrainReport, String), AppError> {
        let store = self.admin_model_store(caller)?;
        let labels = self.read_labels().await?;
        let slot = self.slot();
        let current = slot.model.clone();
        let base_paths = self.inner.settings.feedback.base_corpus.clone();
        let created_at = self.now();
        let unavailable = |e: ModelStoreError| {
            AppError::Unavailable(format!("the model store ({}): {e}", store.name()))
        };
        let first_version = store
            .current_version()
            .await
            .map_err(unavailable)?
            .is_none()
            .then(|| current.clone());
        // Training is seconds of CPU: off the async workers.
        let (candidate, report) = tokio::task::spawn_blocking(move || {
            let corpus = crate::corpus::read_corpus(&base_paths).map_err(|e| e.to_string())?;
            let digest = corpus.digest.clone();
            let (base, _) = crate::corpus::dedup(corpus.examples);
            let params = crate::retrain::RetrainParams {
                train: crate::model::TrainParams {
                    created_at,
                    ..crate::model::TrainParams::default()
                },
                ..crate::retrain::RetrainParams::default()
            };
            crate::retrain::retrain(&base, &labels, &current, &params, &digest)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(AppError::FailedPrecondition)?;
        if report.accepted {
            // Nothing is written unless a candidate goes in: then the model it replaces becomes
            // the store's first version, if it has none, so a rollback can return to it.
            if let Some(first) = &first_version {
                store.install(first).await.map_err(unavailable)?;
            }
            let version = store.install(&candidate).await.map_err(unavailable)?;
            self.swap_model(candidate, version);
            self.after_swap().await;
        }
        tracing::info!(
            accepted = report.accepted,
            current_auc = report.current_auc,
            candidate_auc = report.candidate_auc,
            "retrain"
        );
        Ok((report, self.model_version()))
    }

    /// Admin: puts the previous version of the model store back in service (on every
    /// replica, when the store is Redis).
    pub async fn rollback(&self, caller: &Caller) -> Result<String, AppError> {
        let store = self.admin_model_store(caller)?;
        store
            .rollback()
            .await
            .map_err(|e| AppError::FailedPrecondition(e.to_string()))?;
        let (model, version) = store
            .load_current()
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        self.swap_model(model, version.clone());
        self.after_swap().await;
        Ok(version)
    }

    /// Serves the store's current version if it is not the one in service (a retrain or
    /// rollback through another replica, or `hamgate retrain` on the directory). Returns
    /// whether the model changed. A bad published model is an error and the running one stays.
    pub async fn refresh_model(&self) -> Result<bool, AppError> {
        let Some(store) = self.inner.model_store.as_ref() else {
            return Ok(false);
        };
        let unavailable = |e: ModelStoreError| {
            AppError::Unavailable(format!("the model store ({}): {e}", store.name()))
        };
        match store.current_version().await.map_err(unavailable)? {
            Some(v) if v != self.model_version() => {
                let (model, version) = store.load_current().await.map_err(unavailable)?;
                self.swap_model(model, version);
                self.after_swap().await;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// After a swap the layers are empty: labels newer than the new model come back from the
    /// log.
    async fn after_swap(&self) {
        if let Err(e) = self.restore_layers().await {
            tracing::warn!(cause = %e, "could not restore the sites' layers after a model swap");
        }
    }
}
