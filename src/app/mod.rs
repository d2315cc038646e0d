//! The application API: the one place that checks comments, takes moderators' labels, counts
//! and administers the model, which every adapter (gRPC, HTTP, later Akismet) calls, so they all
//! speak with one voice.
//!
//! [`App`] is a cheap `Clone` handle over shared state. It knows nothing of transports; it takes
//! domain inputs, validates them against the configured limits (errors name the field as the
//! public API spells it), and returns domain outcomes or an [`AppError`]. A file per use case:
//!
//! - this file: the [`App`] handle, its construction, authentication ([`App::authenticate`]),
//!   the model slot and the shared state every use case reads;
//! - `check`: [`App::check`] and [`App::check_batch`], the recent checks kept
//!   for feedback by id;
//! - `feedback`: [`App::feedback`], and how the sites' layers follow the
//!   label log (restore at start, follow other replicas, expire old labels);
//! - `layers`: the sites' online layers and their hourly learning budgets;
//! - `import`: [`App::import_labels`], a site's history as labels (idempotent by import key);
//! - `admin`: model administration (info, retrain, rollback, refresh);
//! - `stats`: what checks and labels count, and who may read which counts.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::config::{Limits, Settings};
use crate::labels::LabelLog;
use crate::model::online::LayerParams;
use crate::model::{Familiarity, Model};
use crate::model_store::ModelStore;
use crate::policy::SitePolicy;
use crate::reputation::{IdentityHasher, ReputationStore};
use crate::verdict::Thresholds;

mod admin;
mod check;
mod feedback;
mod import;
mod layers;
mod stats;

pub use admin::{ModelInfo, SiteModelInfo, ThresholdsSource};
pub use check::{CheckInput, CheckOutcome};
pub use feedback::{FeedbackInput, FeedbackOutcome, FeedbackTarget};
pub use import::{ImportItem, ImportOutcome};
pub use stats::{StatsQuery, StatsReport};

/// The name of the single open site served when no keys are configured.
pub const OPEN_SITE: &str = "default";

/// Why a call failed. Adapters map each kind to their own status once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    /// The input is bad; `field` names it as the public API does (`comment.content`).
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No key, or a key no site has.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid key that may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The thing referred to does not exist (or not for this caller).
    #[error("{0}")]
    NotFound(String),
    /// A part needed for this call is down; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The call is valid but cannot be done in the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Something that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with `prefix.` in front of the field (for batch items).
    pub fn in_field(self, prefix: &str) -> AppError {
        match self {
            AppError::InvalidArgument { field, message } => AppError::InvalidArgument {
                field: format!("{prefix}.{field}"),
                message,
            },
            other => other,
        }
    }
}

/// Who is calling: the site their key acts for, and whether it is the admin key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The site.
    pub site: String,
    /// Whether this is the admin key.
    pub admin: bool,
}

/// The application. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

/// The model in service with everything derived from it. Swapped whole, atomically: a check
/// holds one `Arc` for its whole run, so it never sees half of a swap.
struct ModelSlot {
    model: Model,
    version: String,
    /// Per configured site: its policy once it is familiar, and while it is new; and whether
    /// its thresholds are set in its configuration.
    policies: HashMap<String, ([SitePolicy; 2], bool)>,
    default_policy: [SitePolicy; 2],
}

impl ModelSlot {
    fn new(settings: &Settings, model: Model, version: String) -> ModelSlot {
        let base = |thresholds| SitePolicy {
            thresholds,
            max_links: settings.policy.max_links,
            reputation_cap: settings.policy.reputation_cap,
            discard_margin: settings.policy.discard_margin,
        };
        let default_policy = [
            base(model.thresholds_for(Familiarity::Known)),
            base(model.thresholds_for(Familiarity::NewSite)),
        ];
        let mut policies = HashMap::new();
        for (name, site) in &settings.sites {
            // A site's own thresholds, when configured, hold whether it is new or familiar.
            let policies_of_site = default_policy.map(|mut p| {
                if let Some(a) = site.accept_below {
                    p.thresholds.accept_below = logit(a);
                }
                if let Some(r) = site.reject_at {
                    p.thresholds.reject_at = logit(r);
                }
                if p.thresholds.accept_below > p.thresholds.reject_at {
                    p.thresholds = Thresholds {
                        accept_below: p.thresholds.reject_at,
                        reject_at: p.thresholds.reject_at,
                    };
                }
                if let Some(m) = site.max_links {
                    p.max_links = m;
                }
                p
            });
            let configured = site.accept_below.is_some() || site.reject_at.is_some();
            policies.insert(name.clone(), (policies_of_site, configured));
        }
        ModelSlot {
            model,
            version,
            policies,
            default_policy,
        }
    }

    /// The model's main thresholds (for a familiar site), before any site's own.
    fn main_thresholds(&self) -> Thresholds {
        self.default_policy[0].thresholds
    }

    /// The policy a check of `site` is decided with, and where its thresholds come from: set
    /// in its configuration; else the stricter new-site ones while it is learning; else its
    /// own, `fitted` on its labels (see `model::site_fit`; `None` when it fits none); else the
    /// model's main ones. The check path and `GetModelInfo` both ask here.
    fn site_policy(
        &self,
        site: &str,
        familiarity: Familiarity,
        fitted: Option<Thresholds>,
    ) -> (SitePolicy, ThresholdsSource) {
        let (policies, configured) = self
            .policies
            .get(site)
            .map_or((&self.default_policy, false), |(p, c)| (p, *c));
        let [known, new] = *policies;
        match (familiarity, configured, fitted) {
            (Familiarity::Known, true, _) => (known, ThresholdsSource::Configured),
            (Familiarity::NewSite, true, _) => (new, ThresholdsSource::Configured),
            (Familiarity::NewSite, false, _) => (new, ThresholdsSource::NewSite),
            (Familiarity::Known, false, Some(t)) if t != known.thresholds => (
                SitePolicy {
                    thresholds: t,
                    ..known
                },
                ThresholdsSource::Fitted,
            ),
            (Familiarity::Known, false, _) => (known, ThresholdsSource::Model),
        }
    }
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The state every use case shares. Each use case keeps its own parts in a struct of its own
/// file (`checks`, `labels`, `layers`, `stats`), so this stays a list of rooms, not of things.
struct Inner {
    /// The model in service, swapped whole (see [`ModelSlot`]).
    slot: RwLock<Arc<ModelSlot>>,
    settings: Settings,
    store: Arc<dyn ReputationStore>,
    hasher: IdentityHasher,
    /// Hashed API key to caller.
    keys: HashMap<String, Caller>,
    /// Whether no keys are configured: every call acts for [`OPEN_SITE`].
    open: bool,
    /// The one clock everything time-dependent asks: stats buckets, hourly learning budgets,
    /// label and reputation times, label retention. The system clock unless a test sets one.
    clock: Arc<dyn Clock>,
    /// Check ids and the recent checks kept for feedback by id.
    checks: check::CheckParts,
    /// The label log and how far this replica has followed it.
    labels: feedback::LabelParts,
    /// The sites' online layers and their hourly budgets.
    layers: layers::SiteLayers,
    /// The import keys each site's log holds.
    imports: import::ImportParts,
    /// Stats: the store, this process's counters, whether serving.
    stats: stats::StatsParts,
    /// Where model versions are published (Redis) or kept (a directory), if anywhere.
    model_store: Option<ModelStore>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("model_version", &self.model_version())
            .field("store", &self.inner.store.name())
            .field("sites", &self.inner.settings.sites.len())
            .finish()
    }
}

impl App {
    /// Builds the application from validated settings, a model and a reputation store.
    pub fn new(
        settings: &Settings,
        model: Model,
        model_version: String,
        store: Arc<dyn ReputationStore>,
        hasher: IdentityHasher,
        label_log: Arc<dyn LabelLog>,
    ) -> App {
        let mut keys = HashMap::new();
        for (name, site) in &settings.sites {
            for k in &site.key_sha256 {
                keys.insert(
                    k.to_ascii_lowercase(),
                    Caller {
                        site: name.clone(),
                        admin: false,
                    },
                );
            }
        }
        if let Some(admin) = &settings.admin_key_sha256 {
            keys.insert(
                admin.to_ascii_lowercase(),
                Caller {
                    site: OPEN_SITE.into(),
                    admin: true,
                },
            );
        }
        let open = settings.sites.values().all(|s| s.key_sha256.is_empty());
        App {
            inner: Arc::new(Inner {
                slot: RwLock::new(Arc::new(ModelSlot::new(settings, model, model_version))),
                settings: settings.clone(),
                store,
                hasher,
                keys,
                open,
                clock: Arc::new(SystemClock),
                checks: check::CheckParts::new(),
                labels: feedback::LabelParts::new(settings, label_log),
                layers: layers::SiteLayers::new(
                    LayerParams {
                        weight: settings.feedback.layer_weight,
                    },
                    settings.feedback.site_labels_per_hour,
                ),
                imports: import::ImportParts::default(),
                stats: stats::StatsParts::default(),
                model_store: admin::model_store_of(settings),
            }),
        }
    }

    /// Now, seconds since the epoch, by the application's clock.
    pub fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    fn slot(&self) -> Arc<ModelSlot> {
        match self.inner.slot.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The input limits.
    pub fn limits(&self) -> Limits {
        self.inner.settings.limits
    }

    /// The settings it runs with (adapters read their own sections).
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Whether no keys are configured (one open site).
    pub fn is_open(&self) -> bool {
        self.inner.open
    }

    /// Resolves a bearer token to a caller. With no keys configured every call acts for the
    /// open site `default`.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, AppError> {
        match bearer {
            Some(key) if !key.is_empty() => {
                let hash = crate::config::hash_key(key);
                if let Some(caller) = self.inner.keys.get(&hash) {
                    return Ok(caller.clone());
                }
                if self.inner.open {
                    return Ok(Caller {
                        site: OPEN_SITE.into(),
                        admin: false,
                    });
                }
                Err(AppError::Unauthenticated("unknown API key".into()))
            }
            _ if self.inner.open => Ok(Caller {
                site: OPEN_SITE.into(),
                admin: false,
            }),
            _ => Err(AppError::Unauthenticated(
                "missing API key: send `authorization: Bearer <key>`".into(),
            )),
        }
    }
}
