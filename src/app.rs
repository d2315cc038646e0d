//! The application API: the one place that checks comments, which every adapter (gRPC now,
//! HTTP and Akismet later) calls, so they all speak with one voice.
//!
//! [`App`] is a cheap `Clone` handle over shared state: the model, the reputation store, the
//! identifier hasher, the sites and their keys. It knows nothing of transports; it takes domain
//! inputs ([`CheckInput`]), validates them against the configured limits (errors name the field
//! as the public API spells it), and returns domain outcomes or an [`AppError`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::comment::{Comment, Label};
use crate::config::{FeedbackSettings, Limits, Settings};
use crate::labels::{LabelLog, LabelRecord};
use crate::model::online::{LayerParams, SiteLayer};
use crate::model::Model;
use crate::policy::{decide, Decision, Signals, SitePolicy};
use crate::reputation::{IdentityHasher, ReputationStore};
use crate::text::Scratch;
use crate::verdict::{Thresholds, Verdict};

mod stats;
pub use stats::{StatsQuery, StatsReport};

/// The name of the single open site served when no keys are configured.
pub const OPEN_SITE: &str = "default";
/// Text reasons listed per check.
const TEXT_REASONS: usize = 6;

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

/// One comment to check, as every adapter hands it over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckInput {
    /// The comment and its sender's details.
    pub comment: Comment,
    /// The id of the comment it replies to.
    pub parent_id: String,
    /// The comment's language.
    pub language: String,
    /// The post's URL.
    pub permalink: String,
    /// When the post was published (seconds since the epoch, 0 = unknown).
    pub published_unix: i64,
    /// The client's Referer.
    pub referrer: String,
    /// The honeypot field's value.
    pub honeypot: String,
    /// The caller's own id for the comment.
    pub external_id: String,
    /// A test call: no reputation or training effects.
    pub is_test: bool,
}

/// The answer to one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// Verdict, probability, reasons, discard.
    pub decision: Decision,
    /// The model version that scored it.
    pub model_version: String,
    /// This check's id.
    pub check_id: String,
    /// Whether an optional part was unavailable.
    pub degraded: bool,
    /// The caller's id, echoed.
    pub external_id: String,
}

/// A moderator's label for a comment.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackInput {
    /// The comment it is for.
    pub target: FeedbackTarget,
    /// Spam or ham.
    pub label: Label,
    /// Who decided.
    pub moderator: String,
    /// Why.
    pub reason: String,
}

/// Which comment a label is for.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackTarget {
    /// A recent check of the caller's site, by the id its answer carried.
    CheckId(String),
    /// The comment itself, as it was (or would have been) sent to check.
    Comment(Box<CheckInput>),
}

/// What became of a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackOutcome {
    /// Its position in the label log.
    pub label_seq: u64,
    /// Whether the site's layer learned it now.
    pub learned: bool,
    /// What happened, for people.
    pub note: String,
}

/// A check kept for feedback by id.
#[derive(Debug, Clone)]
struct RecentCheck {
    site: String,
    comment: Comment,
    is_test: bool,
    at: u64,
    /// What was decided, so a label can be counted as a false positive or missed spam.
    verdict: Verdict,
}

/// Recent checks, bounded in count, bytes and age; oldest go first.
#[derive(Debug, Default)]
struct RecentChecks {
    by_id: HashMap<String, RecentCheck>,
    order: VecDeque<String>,
    bytes: usize,
}

impl RecentChecks {
    /// What one kept check costs in memory: its text plus the map and queue entries, the id
    /// twice, the site, the strings' headers and the allocator's rounding (measured: a budget
    /// of 24 MiB at 400 bytes each took 48 MB of resident memory).
    fn size(c: &Comment) -> usize {
        c.content.len()
            + c.author.len()
            + c.email.len()
            + c.url.len()
            + c.ip.len()
            + c.user_agent.len()
            + 640
    }

    fn insert(&mut self, id: String, check: RecentCheck, limits: &FeedbackSettings) {
        self.bytes += Self::size(&check.comment);
        self.order.push_back(id.clone());
        self.by_id.insert(id, check);
        while self.order.len() > limits.recent_checks || self.bytes > limits.recent_checks_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(c) = self.by_id.remove(&old) {
                self.bytes = self.bytes.saturating_sub(Self::size(&c.comment));
            }
        }
    }

    fn get(&self, id: &str, now: u64, max_age: u64) -> Option<&RecentCheck> {
        self.by_id
            .get(id)
            .filter(|c| now.saturating_sub(c.at) <= max_age)
    }
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
    policies: HashMap<String, SitePolicy>,
    default_policy: SitePolicy,
}

impl ModelSlot {
    fn new(settings: &Settings, model: Model, version: String) -> ModelSlot {
        let default_policy = SitePolicy {
            thresholds: model.thresholds(),
            max_links: settings.policy.max_links,
            reputation_cap: settings.policy.reputation_cap,
            discard_margin: settings.policy.discard_margin,
        };
        let mut policies = HashMap::new();
        for (name, site) in &settings.sites {
            let mut p = default_policy;
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
            policies.insert(name.clone(), p);
        }
        ModelSlot {
            model,
            version,
            policies,
            default_policy,
        }
    }

    fn policy(&self, site: &str) -> &SitePolicy {
        self.policies.get(site).unwrap_or(&self.default_policy)
    }
}

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
    /// Labels learned online by the sites' layers since this model was put in service.
    pub site_labels: u64,
}

struct Inner {
    slot: RwLock<Arc<ModelSlot>>,
    settings: Settings,
    store: Arc<dyn ReputationStore>,
    hasher: IdentityHasher,
    keys: HashMap<String, Caller>,
    open: bool,
    check_prefix: String,
    check_counter: AtomicU64,
    label_log: Arc<dyn LabelLog>,
    layers: RwLock<HashMap<String, SiteLayer>>,
    recent: Mutex<RecentChecks>,
    /// Stats: the store, its clock, this process's counters, whether serving.
    stats: stats::StatsParts,
    /// Labels each site's layer learned per hour of the labels' own time: the poisoning guard.
    budgets: Mutex<HashMap<(String, u64), u32>>,
    /// Whether there may be labels to replay into the sites' layers at start.
    replay: bool,
    /// Where model versions are published (Redis) or kept (a directory), if anywhere.
    model_store: Option<crate::model_store::ModelStore>,
    /// Whether the label log is shared by replicas (Redis): then every replica's layers learn
    /// by following the log, in log order, its own labels included, so all replicas' layers
    /// are the same.
    shared_log: bool,
    /// How far this replica has followed the shared log.
    follow: tokio::sync::Mutex<Follow>,
    /// The one clock everything time-dependent asks: stats buckets, hourly learning budgets,
    /// label and reputation times, label retention. The system clock unless a test sets one.
    clock: Arc<dyn Clock>,
}

/// The shared log as followed by this replica.
#[derive(Debug, Default)]
struct Follow {
    /// The last seq learned (or skipped).
    cursor: u64,
    /// Whether recent seqs were learned, so a feedback call can report on its own label when
    /// another call's catch-up learned it.
    learned: VecDeque<(u64, bool)>,
}

/// Outcomes of followed labels remembered for [`Follow::learned`].
const FOLLOW_MEMORY: usize = 4096;

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("model_version", &self.model_version())
            .field("store", &self.inner.store.name())
            .field("sites", &self.inner.settings.sites.len())
            .finish()
    }
}

/// Redis when the Redis backend is configured (replicas share it), else the model directory
/// when one is configured.
fn model_store_of(settings: &Settings) -> Option<crate::model_store::ModelStore> {
    use crate::model_store::{ModelStore, RedisModels};
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

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
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
                check_prefix: format!("{:08x}", crate::random_u64() as u32),
                check_counter: AtomicU64::new(0),
                label_log: Arc::clone(&label_log),
                layers: RwLock::new(HashMap::new()),
                recent: Mutex::new(RecentChecks::default()),
                stats: stats::StatsParts::default(),
                budgets: Mutex::new(HashMap::new()),
                replay: settings.reputation.backend == crate::config::ReputationBackend::Redis
                    || settings.feedback.label_log.exists(),
                model_store: model_store_of(settings),
                shared_log: label_log.name() == "redis",
                follow: tokio::sync::Mutex::new(Follow::default()),
                clock: Arc::new(SystemClock),
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

    /// The model version in service.
    pub fn model_version(&self) -> String {
        self.slot().version.clone()
    }

    /// What the model in service says about itself.
    pub fn model_info(&self) -> ModelInfo {
        let slot = self.slot();
        let h = slot.model.header();
        ModelInfo {
            version: slot.version.clone(),
            created_at: h.created_at,
            train_docs: h.train_docs,
            features: slot.model.counts().vocabulary(),
            accept_below: h.thresholds.accept_below_probability(),
            reject_at: h.thresholds.reject_at_probability(),
            metrics_json: h.metrics.to_string(),
            site_labels: self
                .inner
                .layers
                .read()
                .map(|l| l.values().map(SiteLayer::labels).sum())
                .unwrap_or(0),
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
        if let Ok(mut layers) = self.inner.layers.write() {
            layers.clear();
        }
        tracing::info!(model_version = %version, "model swapped in");
    }

    /// The input limits.
    pub fn limits(&self) -> Limits {
        self.inner.settings.limits
    }

    /// Whether the service runs one open site (no keys configured).
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

    /// Checks that `input` is within the limits; errors name the field.
    pub fn validate(&self, input: &CheckInput) -> Result<(), AppError> {
        let limits = &self.inner.settings.limits;
        let c = &input.comment;
        if c.content.trim().is_empty() {
            return Err(AppError::invalid("comment.content", "must not be empty"));
        }
        if c.content.len() > limits.max_content_bytes {
            return Err(AppError::invalid(
                "comment.content",
                format!(
                    "{} bytes is over the limit of {} bytes",
                    c.content.len(),
                    limits.max_content_bytes
                ),
            ));
        }
        let fields: [(&str, &str); 10] = [
            ("comment.author_name", &c.author),
            ("comment.author_email", &c.email),
            ("comment.author_url", &c.url),
            ("comment.parent_id", &input.parent_id),
            ("comment.language", &input.language),
            ("post.permalink", &input.permalink),
            ("client.ip", &c.ip),
            ("client.user_agent", &c.user_agent),
            ("client.referrer", &input.referrer),
            ("client.honeypot", &input.honeypot),
        ];
        for (field, value) in fields {
            if value.len() > limits.max_field_bytes {
                return Err(AppError::invalid(
                    field,
                    format!(
                        "{} bytes is over the limit of {} bytes",
                        value.len(),
                        limits.max_field_bytes
                    ),
                ));
            }
        }
        if input.external_id.len() > limits.max_field_bytes {
            return Err(AppError::invalid("external_id", "too long"));
        }
        if !c.ip.trim().is_empty() && c.ip.trim().parse::<std::net::IpAddr>().is_err() {
            return Err(AppError::invalid(
                "client.ip",
                "is not an IPv4 or IPv6 address",
            ));
        }
        Ok(())
    }

    /// Checks one comment for `caller`'s site.
    pub async fn check(
        &self,
        caller: &Caller,
        input: CheckInput,
    ) -> Result<CheckOutcome, AppError> {
        self.validate(&input)?;
        Ok(self.check_valid(caller, input).await)
    }

    /// Checks up to `limits.max_batch` comments; one invalid item fails the batch, naming it.
    pub async fn check_batch(
        &self,
        caller: &Caller,
        inputs: Vec<CheckInput>,
    ) -> Result<Vec<CheckOutcome>, AppError> {
        if inputs.is_empty() {
            return Err(AppError::invalid("requests", "must not be empty"));
        }
        if inputs.len() > self.inner.settings.limits.max_batch {
            return Err(AppError::invalid(
                "requests",
                format!(
                    "{} comments is over the limit of {} per batch",
                    inputs.len(),
                    self.inner.settings.limits.max_batch
                ),
            ));
        }
        for (i, input) in inputs.iter().enumerate() {
            self.validate(input)
                .map_err(|e| e.in_field(&format!("requests[{i}]")))?;
        }
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            out.push(self.check_valid(caller, input).await);
        }
        Ok(out)
    }

    fn layer_params(&self) -> LayerParams {
        LayerParams {
            weight: self.inner.settings.feedback.layer_weight,
        }
    }

    /// Labels the layer a site is scored with has learned (the site's own, or the one it
    /// shares), for reports and tests.
    pub fn site_labels_learned(&self, site: &str) -> u64 {
        let layer = self.inner.settings.layer_of(site);
        self.inner
            .layers
            .read()
            .map(|l| l.get(layer).map_or(0, SiteLayer::labels))
            .unwrap_or(0)
    }

    /// Removes labels older than `feedback.label_retention_days` from the label log (none when
    /// it is 0); returns how many went.
    pub async fn expire_labels(&self) -> Result<u64, AppError> {
        let days = self.inner.settings.feedback.label_retention_days;
        if days == 0 {
            return Ok(0);
        }
        let before = self.now().saturating_sub(days.saturating_mul(86_400));
        self.inner
            .label_log
            .expire_before(before)
            .await
            .map_err(|e| AppError::Unavailable(format!("expiring labels: {e}")))
    }

    async fn read_labels(&self) -> Result<Vec<crate::labels::LoggedLabel>, AppError> {
        self.inner
            .label_log
            .read_all()
            .await
            .map_err(|e| AppError::Unavailable(format!("reading the label log: {e}")))
    }

    fn admin_model_store(
        &self,
        caller: &Caller,
    ) -> Result<&crate::model_store::ModelStore, AppError> {
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
        let unavailable = |e: crate::model_store::ModelStoreError| {
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
        let unavailable = |e: crate::model_store::ModelStoreError| {
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

    /// Rebuilds the sites' online layers from the label log, so they survive a restart and a
    /// model swap: every label newer than the model in service (older ones are in the model, or
    /// were held back by the retrain that made it), within the same hourly per-site budget as
    /// online learning, counted by each label's own hour. Returns the labels learned. Does
    /// nothing when there is no log yet (the file log is never created just to read it).
    pub async fn restore_layers(&self) -> Result<u64, AppError> {
        if !self.inner.replay {
            return Ok(0);
        }
        let mut follow = self.inner.follow.lock().await;
        let labels = self.read_labels().await?;
        if let Ok(mut layers) = self.inner.layers.write() {
            layers.clear();
        }
        if let Ok(mut budgets) = self.inner.budgets.lock() {
            budgets.clear();
        }
        follow.cursor = 0;
        let learned = self.learn_logged(&labels, &mut follow);
        tracing::info!(
            labels = labels.len(),
            learned,
            "site layers restored from the label log"
        );
        Ok(learned)
    }

    /// Learns labels other replicas appended to the shared log since the last call (a no-op
    /// for a log only this process writes). Returns the labels learned.
    pub async fn follow_labels(&self) -> Result<u64, AppError> {
        if !self.inner.shared_log {
            return Ok(0);
        }
        let mut follow = self.inner.follow.lock().await;
        let labels = self.read_log_after(follow.cursor).await?;
        Ok(self.learn_logged(&labels, &mut follow))
    }

    async fn read_log_after(
        &self,
        cursor: u64,
    ) -> Result<Vec<crate::labels::LoggedLabel>, AppError> {
        self.inner
            .label_log
            .read_after(cursor)
            .await
            .map_err(|e| AppError::Unavailable(format!("reading the label log: {e}")))
    }

    /// Learns logged labels in log order into the sites' layers (labels older than the model in
    /// service, or over their site's hourly budget, are skipped), advancing the cursor.
    fn learn_logged(&self, labels: &[crate::labels::LoggedLabel], follow: &mut Follow) -> u64 {
        let slot = self.slot();
        // A retrained model knows the last label it learned; the labels after it (including
        // the ones its retrain held back) are the layers' to learn. For any other model, the
        // labels since it was made.
        let header = slot.model.header();
        let (through, since) = (header.labels_through, header.created_at);
        let is_new = |l: &crate::labels::LoggedLabel| {
            if through > 0 {
                l.seq > through
            } else {
                l.record.at >= since
            }
        };
        let mut scratch = Scratch::default();
        let mut learned = 0;
        for l in labels {
            if l.seq <= follow.cursor {
                continue;
            }
            let ok = is_new(l)
                && self.take_budget(&l.record.site, l.record.at)
                && self.learn_now(&slot.model, &l.record, &mut scratch);
            learned += u64::from(ok);
            follow.cursor = l.seq;
            follow.learned.push_back((l.seq, ok));
            if follow.learned.len() > FOLLOW_MEMORY {
                follow.learned.pop_front();
            }
        }
        learned
    }

    /// Counts one label against its site's budget for the label's hour; false when spent.
    fn take_budget(&self, site: &str, at: u64) -> bool {
        let hour = at / 3600;
        let Ok(mut budgets) = self.inner.budgets.lock() else {
            return false;
        };
        if budgets.len() > 4096 {
            // Hours long gone cannot be spent again.
            let now_hour = self.now() / 3600;
            budgets.retain(|(_, h), _| *h + 1 >= now_hour);
        }
        let used = budgets.entry((site.to_string(), hour)).or_insert(0);
        if *used < self.inner.settings.feedback.site_labels_per_hour {
            *used += 1;
            true
        } else {
            false
        }
    }

    fn learn_now(&self, model: &Model, record: &LabelRecord, scratch: &mut Scratch) -> bool {
        match self.inner.layers.write() {
            Ok(mut layers) => {
                let layer = self.inner.settings.layer_of(&record.site);
                layers.entry(layer.to_string()).or_default().learn(
                    model,
                    record.label,
                    &record.comment,
                    scratch,
                );
                true
            }
            Err(_) => false,
        }
    }

    /// Learns the shared log up to `seq` (the caller's own label) and says whether that label
    /// was learned.
    async fn catch_up_to(&self, seq: u64) -> Result<bool, AppError> {
        let mut follow = self.inner.follow.lock().await;
        if follow.cursor < seq {
            let labels = self.read_log_after(follow.cursor).await?;
            self.learn_logged(&labels, &mut follow);
        }
        Ok(follow
            .learned
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .is_some_and(|(_, ok)| *ok))
    }

    /// Takes a moderator's label: logs it durably, then updates reputation and the site's
    /// layer. Nothing is acknowledged before the log says the label is durable.
    pub async fn feedback(
        &self,
        caller: &Caller,
        input: FeedbackInput,
    ) -> Result<FeedbackOutcome, AppError> {
        let inner = &self.inner;
        let now = self.now();
        if input.moderator.len() > inner.settings.limits.max_field_bytes {
            return Err(AppError::invalid("moderator_id", "too long"));
        }
        if input.reason.len() > inner.settings.limits.max_field_bytes {
            return Err(AppError::invalid("reason", "too long"));
        }
        let (comment, check_id) = match input.target {
            FeedbackTarget::CheckId(id) if id.trim().is_empty() => {
                return Err(AppError::invalid(
                    "check_id",
                    "is empty: give the check_id of a recent check, or the check itself",
                ))
            }
            FeedbackTarget::Comment(c) => {
                self.validate(&c).map_err(|e| e.in_field("check"))?;
                if c.is_test {
                    return Err(AppError::FailedPrecondition(
                        "check.is_test: test comments never train".into(),
                    ));
                }
                (c.comment, String::new())
            }
            FeedbackTarget::CheckId(id) => {
                let id = id.trim();
                let found = inner
                    .recent
                    .lock()
                    .map_err(|_| AppError::Internal("recent checks lock poisoned".into()))?
                    .get(id, now, inner.settings.feedback.recent_check_secs)
                    .filter(|c| c.site == caller.site)
                    .cloned();
                let Some(check) = found else {
                    return Err(AppError::NotFound(format!(
                        "check_id `{id}` is not a recent check of this site; send the comment itself in `check`"
                    )));
                };
                if check.is_test {
                    return Err(AppError::FailedPrecondition(
                        "check_id: that check was a test (is_test); test comments never train"
                            .into(),
                    ));
                }
                (check.comment, id.to_string())
            }
        };

        // The log keeps what retraining needs and no more: the text, and stand-ins for the
        // identifiers that give the model the same tokens (no IP, no e-mail address, no URL
        // path). Reputation below learns from the comment as sent, as keyed hashes.
        let record = LabelRecord {
            site: caller.site.clone(),
            label: input.label,
            comment: crate::text::tokens::training_copy(&comment),
            check_id,
            moderator: input.moderator,
            reason: input.reason,
            at: now,
        };
        let label_seq = inner.label_log.append(record.clone()).await.map_err(|e| {
            tracing::error!(log = inner.label_log.name(), cause = %e, "label log append failed; label not acknowledged");
            AppError::Unavailable(format!("the label log is unavailable, the label was not recorded: {e}"))
        })?;
        self.count_label(&caller.site, input.label, &record.check_id, now);

        // The site's own reputation learns every label at once (keyed apart from other sites',
        // so one site's labels never move another's verdicts); a failure there does not undo
        // the label.
        let ids = inner.hasher.site_identities(&comment, &caller.site);
        if let Err(e) = inner
            .store
            .record(
                &ids,
                input.label,
                inner.settings.feedback.reputation_weight,
                now,
            )
            .await
        {
            tracing::warn!(store = inner.store.name(), cause = %e, "recording feedback reputation failed");
            self.count_reputation_error();
        }

        let learned = if inner.shared_log {
            // Learned in log order with every other replica's labels, as they all do.
            self.catch_up_to(label_seq).await.unwrap_or_else(|e| {
                tracing::warn!(cause = %e, "label logged; the site's layer learns it on the next follow");
                false
            })
        } else {
            self.take_budget(&caller.site, now)
                && self.learn_now(&self.slot().model, &record, &mut Scratch::default())
        };
        let note = if learned {
            "logged; reputation and this site's model learned it".to_string()
        } else {
            format!(
                "logged and learned by reputation; this site's model learns at most {} labels an hour online, the rest count at the next retrain",
                inner.settings.feedback.site_labels_per_hour
            )
        };
        tracing::info!(site = %caller.site, label = input.label.as_str(), seq = label_seq, learned, "feedback");
        Ok(FeedbackOutcome {
            label_seq,
            learned,
            note,
        })
    }

    async fn check_valid(&self, caller: &Caller, input: CheckInput) -> CheckOutcome {
        let started = std::time::Instant::now();
        let inner = &self.inner;
        let slot = self.slot();
        let mut scratch = Scratch::default();
        let mut feats = Vec::new();
        // A site with feedback of its own is scored on the global counts merged with its layer,
        // and its reasons weigh the tokens the same way.
        let global = |scratch: &mut Scratch, feats: &mut Vec<crate::text::FeatureId>| {
            let text = slot.model.score_with(&input.comment, scratch, feats);
            let reasons = slot
                .model
                .explain_features(&input.comment, feats, scratch, TEXT_REASONS);
            (text, reasons)
        };
        let (text, text_reasons) = match inner.layers.read() {
            Ok(layers) => match layers.get(inner.settings.layer_of(&caller.site)) {
                Some(layer) => {
                    let params = self.layer_params();
                    let text = slot.model.score_layered(
                        &input.comment,
                        layer,
                        params,
                        &mut scratch,
                        &mut feats,
                    );
                    let reasons = slot.model.explain_features_layered(
                        &input.comment,
                        &feats,
                        layer,
                        params,
                        &mut scratch,
                        TEXT_REASONS,
                    );
                    (text, reasons)
                }
                None => global(&mut scratch, &mut feats),
            },
            Err(_) => global(&mut scratch, &mut feats),
        };

        // Shared identities (every site's check verdicts) and this site's own (its moderators'
        // feedback), looked up together in one round trip.
        let ids = inner.hasher.identities(&input.comment);
        let site_ids = inner.hasher.scoped_to_site(&ids, &caller.site);
        let mut all_ids = ids.clone();
        all_ids.extend(site_ids.iter().cloned());
        let now = self.now();
        let (tallies, degraded) = match inner.store.lookup(&all_ids, now).await {
            Ok(t) => (Some(t), false),
            Err(e) => {
                tracing::warn!(store = inner.store.name(), cause = %e, "reputation lookup failed; answering without it");
                (None, true)
            }
        };
        let kinds: Vec<_> = all_ids.iter().map(|i| i.kind).collect();
        let paired: Option<Vec<_>> = tallies.map(|t| kinds.into_iter().zip(t).collect());
        let (reputation, site_reputation) = match &paired {
            Some(p) => {
                let (shared, own) = p.split_at(ids.len().min(p.len()));
                (Some(shared), Some(own))
            }
            None => (None, None),
        };
        let policy = slot.policy(&caller.site);
        let honeypot_filled = !input.honeypot.trim().is_empty();
        let decision = decide(
            policy,
            &Signals {
                text,
                text_reasons: &text_reasons,
                reputation,
                site_reputation,
                links: text.links,
                honeypot_filled,
            },
        );

        // What the verdict teaches the sender's identifiers (see `policy::teaches`); test
        // calls never teach.
        let text_verdict = policy.thresholds.decide(text.log_odds);
        let learned = crate::policy::teaches(&decision, text_verdict, honeypot_filled);
        if let (Some(label), false, false) = (learned, input.is_test, degraded) {
            // Both stores take this without waiting on the network: the embedded one updates
            // in place, the Redis one queues the write for its writer task.
            if let Err(e) = inner.store.record(&ids, label, 1.0, now).await {
                tracing::warn!(store = inner.store.name(), cause = %e, "recording reputation failed");
                self.count_reputation_error();
            }
        }

        let n = inner.check_counter.fetch_add(1, Ordering::Relaxed);
        let check_id = format!("{}-{:x}", inner.check_prefix, n);
        if inner.settings.feedback.recent_checks > 0 {
            if let Ok(mut recent) = inner.recent.lock() {
                recent.insert(
                    check_id.clone(),
                    RecentCheck {
                        site: caller.site.clone(),
                        comment: input.comment,
                        is_test: input.is_test,
                        at: now,
                        verdict: decision.verdict,
                    },
                    &inner.settings.feedback,
                );
            }
        }
        tracing::debug!(site = %caller.site, verdict = decision.verdict.as_str(), degraded, "checked");
        if !input.is_test {
            self.count_check(&caller.site, decision.verdict, degraded, started.elapsed());
        }
        CheckOutcome {
            decision,
            model_version: slot.version.clone(),
            check_id,
            degraded,
            external_id: input.external_id,
        }
    }
}
