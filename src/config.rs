//! Settings: one serde struct, layered as defaults, then a TOML file (`--config FILE`), then
//! `HAMGATE_...` environment variables (then command-line flags, applied by the CLI).
//!
//! Secrets are not stored in the clear: sites and the admin are named by the SHA-256 of their API
//! key (`hamgate hash-key KEY` prints it), and the reputation HMAC secret can come from the
//! environment rather than the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An environment variable of the `HAMGATE_SECTION__KEY` scheme names no setting or has a
    /// value the setting does not take.
    #[error("environment variable {name}: {message}")]
    EnvPath {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The settings contradict each other or are unsafe.
    #[error("{0}")]
    Invalid(String),
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which reputation store to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReputationBackend {
    /// In-process, bounded, per replica (the default).
    #[default]
    Embedded,
    /// Redis, shared by every replica.
    Redis,
}

/// All settings of `hamgate serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    /// Where the HTTP side listens: the stats API, the dashboard, `/metrics`, health.
    pub http_addr: SocketAddr,
    /// A separate address for `/metrics` only (then it is not served on `http_addr`).
    pub metrics_addr: Option<SocketAddr>,
    /// SHA-256 (hex) of a bearer key that `/metrics` requires; unset: `/metrics` is open.
    pub metrics_key_sha256: Option<String>,
    /// Allow serving without API keys on a non-loopback address.
    pub insecure_no_auth: bool,
    /// A model file to serve instead of the built-in one.
    pub model: Option<PathBuf>,
    /// A model directory (see `hamgate retrain`): its CURRENT version is served, and a change of
    /// CURRENT (a retrain or a rollback) is picked up while running.
    pub model_dir: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// SHA-256 (hex) of the admin API key.
    pub admin_key_sha256: Option<String>,
    /// Sites by name.
    pub sites: BTreeMap<String, SiteSettings>,
    /// Input limits.
    pub limits: Limits,
    /// Redis, for every Redis-backed store (reputation, the label log, stats, the model store).
    pub redis: RedisSettings,
    /// Reputation store.
    pub reputation: ReputationSettings,
    /// The decision policy's defaults (sites may override thresholds and link limits).
    pub policy: PolicySettings,
    /// Moderator feedback: the label log, recent checks, online learning.
    pub feedback: FeedbackSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_addr: None,
            metrics_key_sha256: None,
            insecure_no_auth: false,
            model: None,
            model_dir: None,
            log_format: LogFormat::Text,
            admin_key_sha256: None,
            sites: BTreeMap::new(),
            limits: Limits::default(),
            redis: RedisSettings::default(),
            reputation: ReputationSettings::default(),
            policy: PolicySettings::default(),
            feedback: FeedbackSettings::default(),
        }
    }
}

/// Feedback settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackSettings {
    /// The label log file (embedded mode), created on the first label.
    pub label_log: PathBuf,
    /// Most recent checks kept for feedback by `check_id`.
    pub recent_checks: usize,
    /// Most bytes of comment text those recent checks may hold.
    pub recent_checks_bytes: usize,
    /// How long a check can be referred to by its id, in seconds.
    pub recent_check_secs: u64,
    /// Labels per site per hour that the site's model layer learns at once; more are logged
    /// and wait for the next retrain (a bound on how fast anyone can steer a model).
    pub site_labels_per_hour: u32,
    /// How many global counts one of a site's own counts is worth.
    pub layer_weight: f64,
    /// How much reputation one label adds (a verdict adds 1).
    pub reputation_weight: f64,
    /// The base corpus a retrain starts from (besides the label log).
    pub base_corpus: Vec<PathBuf>,
    /// Days a label is kept in the label log (its text is personal data); older ones are
    /// removed at start and every hour. 0 keeps labels forever.
    pub label_retention_days: u64,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        FeedbackSettings {
            label_log: PathBuf::from("hamgate-labels.log"),
            recent_checks: 100_000,
            recent_checks_bytes: 16 << 20,
            recent_check_secs: 7 * 24 * 3600,
            site_labels_per_hour: 200,
            layer_weight: crate::model::online::LayerParams::default().weight,
            reputation_weight: 3.0,
            base_corpus: ["youtube", "sms", "spamassassin"]
                .iter()
                .map(|s| PathBuf::from(format!("models/corpus/{s}")))
                .collect(),
            label_retention_days: 365,
        }
    }
}

/// One site.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteSettings {
    /// SHA-256 (hex) of each API key that acts for this site.
    pub key_sha256: Vec<String>,
    /// Override of the model's accept threshold, as a probability.
    pub accept_below: Option<f64>,
    /// Override of the model's reject threshold, as a probability.
    pub reject_at: Option<f64>,
    /// Override of the policy's link limit.
    pub max_links: Option<u32>,
    /// Override of `policy.min_learns` for this site.
    pub min_learns: Option<u64>,
    /// Override of `policy.max_ham_rejected` for this site.
    pub max_ham_rejected: Option<f64>,
    /// Override of `policy.max_spam_accepted` for this site.
    pub max_spam_accepted: Option<f64>,
    /// The blogs this site's key may name in the Akismet API's `blog` field (compared without
    /// scheme, `www.`, case or trailing slash); empty: any.
    pub blogs: Vec<String>,
    /// What the Akismet API answers for a held comment (default `spam`: never published).
    pub akismet_hold: Option<AkismetHold>,
    /// The online layer this site's feedback trains and its checks are scored with. By default
    /// each site has its own, so one blog's moderation never moves another's verdicts; sites
    /// that name the same layer (a network of blogs with one moderation team) share what their
    /// moderators teach. Reputation and the hourly training budget stay per site.
    pub layer: Option<String>,
}

/// What the Akismet API, which has two answers, says of a comment hamgate holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AkismetHold {
    /// `true`: the blog files it as spam, where a moderator can rescue it; never published.
    /// (WordPress with `deploy/wordpress`'s plugin puts it in the moderation queue instead.)
    #[default]
    Spam,
    /// `false`: the blog's own moderation rules decide (it may be published).
    Ham,
}

/// A site's target error rate: a fraction in [0, 0.5).
fn check_target(key: &str, f: f64) -> Result<(), ConfigError> {
    if (0.0..0.5).contains(&f) {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "{key}: {f} is not a fraction in [0, 0.5) (0.005 is half a percent)"
        )))
    }
}

/// Input limits. Breaking one gets INVALID_ARGUMENT naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Longest comment content, in bytes.
    pub max_content_bytes: usize,
    /// Longest value of any other text field, in bytes.
    pub max_field_bytes: usize,
    /// Most comments in one CheckBatch.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 << 20,
            max_content_bytes: 64 << 10,
            max_field_bytes: 2048,
            max_batch: 1000,
        }
    }
}

/// Redis settings: where it is and how long each store waits for it. Setting `url` keeps
/// reputation, the label log, stats and the published model in Redis, shared by every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; with `cluster`, the seed nodes of a Redis Cluster separated by
    /// commas. Unset: every store is embedded.
    pub url: Option<String>,
    /// Whether `url` names the nodes of a Redis Cluster.
    pub cluster: bool,
    /// Connecting to a node, for the stores that need Redis to go on (the label log, the model
    /// store), in milliseconds.
    pub connect_timeout_ms: u64,
    /// Connecting to a node, for the stores that serve without Redis while it is down
    /// (reputation, stats) and keep trying in the background, in milliseconds.
    pub background_connect_timeout_ms: u64,
    /// The wait between two connection attempts in the background, and the longest back-off of
    /// a reconnection, in milliseconds.
    pub retry_ms: u64,
    /// One label-log command (a `Feedback` waits for its label to be durable), in milliseconds.
    pub label_log_timeout_ms: u64,
    /// One flush of the stats to Redis, in milliseconds.
    pub stats_timeout_ms: u64,
    /// One stats query (a month of hours is hundreds of hashes), in milliseconds.
    pub stats_query_timeout_ms: u64,
    /// Publishing or fetching a model (a few MB), in milliseconds.
    pub model_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            cluster: false,
            connect_timeout_ms: 2000,
            background_connect_timeout_ms: 500,
            retry_ms: 500,
            label_log_timeout_ms: 5000,
            stats_timeout_ms: 1000,
            stats_query_timeout_ms: 3000,
            model_timeout_ms: 30_000,
        }
    }
}

/// The longest timeout a setting takes: ten minutes (a longer one is a typo, not a plan).
const MAX_TIMEOUT_MS: u64 = 600_000;

impl RedisSettings {
    /// The timeouts by the name of their key, for checking and for the stores.
    fn timeouts(&self) -> [(&'static str, u64); 7] {
        [
            ("connect_timeout_ms", self.connect_timeout_ms),
            (
                "background_connect_timeout_ms",
                self.background_connect_timeout_ms,
            ),
            ("retry_ms", self.retry_ms),
            ("label_log_timeout_ms", self.label_log_timeout_ms),
            ("stats_timeout_ms", self.stats_timeout_ms),
            ("stats_query_timeout_ms", self.stats_query_timeout_ms),
            ("model_timeout_ms", self.model_timeout_ms),
        ]
    }
}

/// Reputation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReputationSettings {
    /// Embedded or Redis.
    pub backend: ReputationBackend,
    /// Deprecated alias of `redis.url` (read, with a warning; an error when both are set and
    /// differ). Not written by `config show`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Deprecated alias of `redis.cluster` (read, with a warning, when `true`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redis_cluster: bool,
    /// The install secret that keys the identifier HMACs. Required with Redis (every replica
    /// must share it); a random one per process is used when embedded and unset.
    pub secret: Option<String>,
    /// Half-life of the counts, in seconds.
    pub half_life_secs: u64,
    /// Most identifiers the embedded store keeps.
    pub max_entries: usize,
    /// How long a check waits for Redis before answering without it (degraded): the one
    /// command timeout of the reputation store.
    pub timeout_ms: u64,
}

impl Default for ReputationSettings {
    fn default() -> Self {
        ReputationSettings {
            backend: ReputationBackend::Embedded,
            redis_url: None,
            redis_cluster: false,
            secret: None,
            half_life_secs: 7 * 24 * 3600,
            max_entries: 200_000,
            timeout_ms: 50,
        }
    }
}

/// Policy defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// More links than this in a comment hold it for a moderator.
    pub max_links: u32,
    /// Most log-odds all reputation evidence together may add or remove.
    pub reputation_cap: f64,
    /// A rejected comment this many log-odds above the reject threshold is marked `discard`.
    pub discard_margin: f64,
    /// Labels of each class (ham and spam) a site's moderators must have taught before its
    /// comments are decided with the model's main thresholds; until then the stricter new-site
    /// thresholds, fitted on sources the model had not seen, decide (hold rather than guess).
    /// 0 trusts the main thresholds from the first check.
    pub min_learns: u64,
    /// Once familiar, each site's thresholds are fitted on its own labels (see
    /// `model::site_fit`) to reject at most this fraction of its ham...
    pub max_ham_rejected: f64,
    /// ...and accept at most this fraction of its spam. A site with `accept_below` or
    /// `reject_at` of its own keeps those instead.
    pub max_spam_accepted: f64,
    /// Whether sites fit their own thresholds at all (else the model's main ones hold).
    pub site_thresholds: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            max_links: 3,
            reputation_cap: 4.0,
            discard_margin: 3.0,
            min_learns: 10,
            max_ham_rejected: crate::model::site_fit::Targets::default().max_ham_rejected,
            max_spam_accepted: crate::model::site_fit::Targets::default().max_spam_accepted,
            site_thresholds: true,
        }
    }
}

impl Settings {
    /// Defaults, then the TOML file when given, then the environment. What the settings say
    /// that an operator should change (a deprecated key) is logged as a warning; callers that
    /// set up logging only after loading use [`Settings::load_with_notices`].
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let (settings, notices) = Settings::load_with_notices(file)?;
        for notice in notices {
            tracing::warn!("{notice}");
        }
        Ok(settings)
    }

    /// [`Settings::load`], returning the notices instead of logging them.
    pub fn load_with_notices(file: Option<&Path>) -> Result<(Settings, Vec<String>), ConfigError> {
        let mut notices = Vec::new();
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut s: Settings = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
                // Before the environment, so that `HAMGATE_REDIS_URL` overrides a file's
                // deprecated key as it overrides the file's `redis.url`.
                notices.extend(s.adopt_redis_aliases()?);
                s
            }
            None => Settings::default(),
        };
        settings.apply_env_paths(std::env::vars())?;
        settings.apply_env(|name| std::env::var(name).ok())?;
        notices.extend(settings.adopt_redis_aliases()?);
        // Redis for one store is Redis for all: the reputation backend follows `redis.url`.
        if settings.redis.url.is_some() {
            settings.reputation.backend = ReputationBackend::Redis;
        }
        Ok((settings, notices))
    }

    /// Moves the deprecated `reputation.redis_url` and `reputation.redis_cluster` to `[redis]`;
    /// returns a notice for each one found. Both URLs set and different is an error naming both
    /// keys: which one was meant cannot be guessed.
    fn adopt_redis_aliases(&mut self) -> Result<Vec<String>, ConfigError> {
        let mut notices = Vec::new();
        if let Some(old) = self.reputation.redis_url.take() {
            match &self.redis.url {
                Some(new) if *new != old => {
                    return Err(ConfigError::Invalid(format!(
                        "reputation.redis_url (`{}`, deprecated) and redis.url (`{}`) are both set and differ; keep redis.url only",
                        mask_url_password(&old),
                        mask_url_password(new)
                    )))
                }
                _ => self.redis.url = Some(old),
            }
            notices.push(
                "reputation.redis_url is deprecated; it is read as redis.url (move it to the [redis] section)"
                    .to_string(),
            );
        }
        if std::mem::take(&mut self.reputation.redis_cluster) {
            self.redis.cluster = true;
            notices.push(
                "reputation.redis_cluster is deprecated; it is read as redis.cluster (move it to the [redis] section)"
                    .to_string(),
            );
        }
        Ok(notices)
    }

    /// The Redis URL every Redis-backed store uses: `redis.url`, or the deprecated
    /// `reputation.redis_url` of settings built in code.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis
            .url
            .as_deref()
            .or(self.reputation.redis_url.as_deref())
    }

    /// Whether the stores are in Redis.
    pub fn uses_redis(&self) -> bool {
        self.redis_url().is_some()
    }

    /// Applies variables of the general scheme, one for every setting: `HAMGATE_` then the
    /// setting's path in upper case with `__` between the levels, e.g.
    /// `HAMGATE_FEEDBACK__SITE_LABELS_PER_HOUR=100`, `HAMGATE_LIMITS__MAX_BATCH=500`,
    /// `HAMGATE_SITES__BLOG__KEY_SHA256='["9f86..."]'` (site names in lower case). The value is
    /// read as a TOML value (a number, `true`, an array, a quoted string) and otherwise taken as a
    /// string. Variables without `__` are the named ones of [`Settings::apply_env`].
    pub fn apply_env_paths(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with("HAMGATE_") && name.contains("__"))
            .collect();
        vars.sort();
        for (name, value) in vars {
            let path: Vec<String> = name
                .trim_start_matches("HAMGATE_")
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            let err = |message: String| ConfigError::EnvPath {
                name: name.clone(),
                message,
            };
            if path.iter().any(String::is_empty) {
                return Err(err("an empty level in the setting's path".into()));
            }
            let typed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"));
            let candidates = typed
                .into_iter()
                .chain(std::iter::once(toml::Value::String(value.clone())));
            let mut last_error = String::new();
            let mut applied = false;
            for candidate in candidates {
                match self.with_path(&path, candidate) {
                    Ok(next) => {
                        *self = next;
                        applied = true;
                        break;
                    }
                    Err(e) => last_error = e,
                }
            }
            if !applied {
                return Err(err(format!(
                    "`{}` does not take `{value}`: {last_error}",
                    path.join(".")
                )));
            }
        }
        Ok(())
    }

    /// These settings with the one at `path` set to `value`, checked by deserialising the whole.
    fn with_path(&self, path: &[String], value: toml::Value) -> Result<Settings, String> {
        let mut root = toml::Value::try_from(self).map_err(|e| e.to_string())?;
        let (last, parents) = path.split_last().ok_or("an empty path")?;
        let mut node = &mut root;
        for key in parents {
            let table = node
                .as_table_mut()
                .ok_or_else(|| format!("`{key}` is not a section"))?;
            node = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        }
        let table = node
            .as_table_mut()
            .ok_or_else(|| format!("`{last}` is not in a section"))?;
        table.insert(last.clone(), value);
        root.try_into::<Settings>()
            .map_err(|e| e.message().to_string())
    }

    /// The settings as TOML, for `hamgate config show`, with the reputation secret and any
    /// password in the Redis URL masked (a deprecated Redis key is shown as its `[redis]` key).
    pub fn to_toml_masked(&self) -> Result<String, ConfigError> {
        let mut shown = self.clone();
        shown.adopt_redis_aliases()?;
        if shown.reputation.secret.is_some() {
            shown.reputation.secret = Some("********".into());
        }
        shown.redis.url = shown.redis.url.as_deref().map(mask_url_password);
        toml::to_string(&shown).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// Applies `HAMGATE_...` variables read through `get` (a parameter so tests need not touch
    /// the process environment).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                message: e.to_string(),
            })
        }
        if let Some(v) = get("HAMGATE_GRPC_ADDR") {
            self.grpc_addr = parse("HAMGATE_GRPC_ADDR", &v)?;
        }
        if let Some(v) = get("HAMGATE_HTTP_ADDR") {
            self.http_addr = parse("HAMGATE_HTTP_ADDR", &v)?;
        }
        if let Some(v) = get("HAMGATE_METRICS_ADDR") {
            self.metrics_addr = Some(parse("HAMGATE_METRICS_ADDR", &v)?);
        }
        if let Some(v) = get("HAMGATE_METRICS_KEY_SHA256") {
            self.metrics_key_sha256 = Some(v.trim().to_ascii_lowercase());
        }
        if let Some(v) = get("HAMGATE_INSECURE_NO_AUTH") {
            self.insecure_no_auth = parse("HAMGATE_INSECURE_NO_AUTH", &v)?;
        }
        if let Some(v) = get("HAMGATE_MODEL") {
            self.model = Some(PathBuf::from(v));
        }
        if let Some(v) = get("HAMGATE_MODEL_DIR") {
            self.model_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("HAMGATE_LOG_FORMAT") {
            self.log_format = match v.trim() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::Env {
                        name: "HAMGATE_LOG_FORMAT",
                        message: format!("`{other}` is not `text` or `json`"),
                    })
                }
            };
        }
        if let Some(v) = get("HAMGATE_ADMIN_KEY_SHA256") {
            self.admin_key_sha256 = Some(v.trim().to_ascii_lowercase());
        }
        // The short names of `HAMGATE_REDIS__URL` and `HAMGATE_REDIS__CLUSTER`, kept. Setting
        // the URL here replaces a deprecated `reputation.redis_url` too: the environment wins.
        if let Some(v) = get("HAMGATE_REDIS_URL") {
            self.redis.url = Some(v);
            self.reputation.redis_url = None;
        }
        if let Some(v) = get("HAMGATE_REDIS_CLUSTER") {
            self.redis.cluster = parse("HAMGATE_REDIS_CLUSTER", &v)?;
            self.reputation.redis_cluster = false;
        }
        if let Some(v) = get("HAMGATE_REPUTATION_SECRET") {
            self.reputation.secret = Some(v);
        }
        if let Some(v) = get("HAMGATE_LABEL_LOG") {
            self.feedback.label_log = PathBuf::from(v);
        }
        if let Some(v) = get("HAMGATE_LABEL_RETENTION_DAYS") {
            self.feedback.label_retention_days = parse("HAMGATE_LABEL_RETENTION_DAYS", &v)?;
        }
        if let Some(v) = get("HAMGATE_REPUTATION_TIMEOUT_MS") {
            self.reputation.timeout_ms = parse("HAMGATE_REPUTATION_TIMEOUT_MS", &v)?;
        }
        Ok(())
    }

    /// The `min_learns` that applies to `site`: its own, else `policy.min_learns`.
    pub fn min_learns_of(&self, site: &str) -> u64 {
        self.sites
            .get(site)
            .and_then(|s| s.min_learns)
            .unwrap_or(self.policy.min_learns)
    }

    /// The targets `site` fits its own thresholds to, or `None` when it does not fit them
    /// (fitting is off, or the site configured thresholds of its own).
    pub fn targets_of(&self, site: &str) -> Option<crate::model::site_fit::Targets> {
        let own = self.sites.get(site);
        if !self.policy.site_thresholds
            || own.is_some_and(|s| s.accept_below.is_some() || s.reject_at.is_some())
        {
            return None;
        }
        Some(crate::model::site_fit::Targets {
            max_ham_rejected: own
                .and_then(|s| s.max_ham_rejected)
                .unwrap_or(self.policy.max_ham_rejected),
            max_spam_accepted: own
                .and_then(|s| s.max_spam_accepted)
                .unwrap_or(self.policy.max_spam_accepted),
        })
    }

    /// What the Akismet API answers for `site`'s held comments.
    pub fn akismet_hold_of(&self, site: &str) -> AkismetHold {
        self.sites
            .get(site)
            .and_then(|s| s.akismet_hold)
            .unwrap_or_default()
    }

    /// The online layer `site` learns into and is scored with: its configured `layer`, else
    /// its own name.
    pub fn layer_of<'a>(&'a self, site: &'a str) -> &'a str {
        self.sites
            .get(site)
            .and_then(|s| s.layer.as_deref())
            .unwrap_or(site)
    }

    /// Checks the settings make sense together; called before serving.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let no_keys = self.sites.values().all(|s| s.key_sha256.is_empty());
        if no_keys && !self.grpc_addr.ip().is_loopback() && !self.insecure_no_auth {
            return Err(ConfigError::Invalid(format!(
                "no API keys are configured, so hamgate serves one open site; it refuses to do that on the non-loopback address {} unless --insecure-no-auth is given",
                self.grpc_addr
            )));
        }
        if no_keys && !self.http_addr.ip().is_loopback() && !self.insecure_no_auth {
            return Err(ConfigError::Invalid(format!(
                "no API keys are configured, so anyone reaching the HTTP address {} would see the open site's stats; use a loopback address, configure keys, or give --insecure-no-auth",
                self.http_addr
            )));
        }
        if let Some(k) = &self.metrics_key_sha256 {
            if k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::Invalid(format!(
                    "metrics_key_sha256: `{k}` is not a hex SHA-256 (use `hamgate hash-key KEY`)"
                )));
            }
        }
        for (name, site) in &self.sites {
            for k in &site.key_sha256 {
                if k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ConfigError::Invalid(format!(
                        "sites.{name}.key_sha256: `{k}` is not a hex SHA-256 (use `hamgate hash-key KEY`)"
                    )));
                }
            }
            if site.layer.as_deref().is_some_and(|l| l.trim().is_empty()) {
                return Err(ConfigError::Invalid(format!(
                    "sites.{name}.layer: must not be empty (leave it out for the site's own layer)"
                )));
            }
            for (field, p) in [
                ("accept_below", site.accept_below),
                ("reject_at", site.reject_at),
            ] {
                if let Some(p) = p {
                    if !(p > 0.0 && p < 1.0) {
                        return Err(ConfigError::Invalid(format!(
                            "sites.{name}.{field}: {p} is not a probability in (0, 1)"
                        )));
                    }
                }
            }
            for (field, f) in [
                ("max_ham_rejected", site.max_ham_rejected),
                ("max_spam_accepted", site.max_spam_accepted),
            ] {
                if let Some(f) = f {
                    check_target(&format!("sites.{name}.{field}"), f)?;
                }
            }
        }
        check_target("policy.max_ham_rejected", self.policy.max_ham_rejected)?;
        check_target("policy.max_spam_accepted", self.policy.max_spam_accepted)?;
        for (key, ms) in self.redis.timeouts() {
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(ConfigError::Invalid(format!(
                    "redis.{key}: {ms} is not a timeout in milliseconds (1 to {MAX_TIMEOUT_MS})"
                )));
            }
        }
        if self.reputation.backend == ReputationBackend::Redis && !self.uses_redis() {
            return Err(ConfigError::Invalid(
                "reputation.backend = redis needs redis.url (or HAMGATE_REDIS_URL)".into(),
            ));
        }
        if self.uses_redis() {
            self.redis_target()?;
            if self.reputation.secret.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::Invalid(
                    "the Redis reputation store needs reputation.secret (or HAMGATE_REPUTATION_SECRET), shared by every replica".into(),
                ));
            }
        }
        if self.reputation.half_life_secs == 0 {
            return Err(ConfigError::Invalid(
                "reputation.half_life_secs must be positive".into(),
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// Where Redis is and how long each store waits for it, when a Redis URL is set.
    pub fn redis_target(&self) -> Result<Option<crate::redis_conn::RedisTarget>, ConfigError> {
        if let (Some(old), Some(new)) = (&self.reputation.redis_url, &self.redis.url) {
            if old != new {
                return Err(ConfigError::Invalid(
                    "reputation.redis_url (deprecated) and redis.url are both set and differ; keep redis.url only".into(),
                ));
            }
        }
        let Some(url) = self.redis_url() else {
            return Ok(None);
        };
        let cluster = self.redis.cluster || self.reputation.redis_cluster;
        let mut target = crate::redis_conn::RedisTarget::parse(url, cluster)
            .map_err(|e| ConfigError::Invalid(format!("redis.url: {e}")))?;
        let ms = std::time::Duration::from_millis;
        let r = &self.redis;
        target.timeouts = crate::redis_conn::RedisTimeouts {
            connect: ms(r.connect_timeout_ms),
            background_connect: ms(r.background_connect_timeout_ms),
            retry: ms(r.retry_ms),
            label_log: ms(r.label_log_timeout_ms),
            stats: ms(r.stats_timeout_ms),
            stats_query: ms(r.stats_query_timeout_ms),
            model: ms(r.model_timeout_ms),
        };
        Ok(Some(target))
    }
}

/// `url` (or a comma-separated list of them) with the password of each masked: a Redis URL
/// may carry one (`redis://:PASSWORD@host:6379`).
pub fn mask_url_password(url: &str) -> String {
    url.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &u[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{user}:********{}", &u[..scheme + 3], &u[at..])
            }
            _ => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The SHA-256 (hex) of an API key, as the settings store it.
pub fn hash_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::corpus::hex(&Sha256::digest(key.as_bytes()))
}

/// Why an `authorization` value (gRPC metadata or HTTP header) carries no bearer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// Bytes outside visible ASCII.
    #[error("authorization is not valid ASCII")]
    NotAscii,
    /// Not of the form `Bearer <key>`.
    #[error("authorization must be `Bearer <key>`")]
    NotBearer,
}

/// The API key in an `authorization` value, `Bearer <key>` (or `bearer <key>`), trimmed: the
/// wire form of the keys whose hashes the settings hold, read the same way by the gRPC and the
/// HTTP adapter. Visible ASCII only, as HTTP header values are.
pub fn bearer_key(value: &[u8]) -> Result<&str, BearerError> {
    if !value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err(BearerError::NotAscii);
    }
    let value = std::str::from_utf8(value).map_err(|_| BearerError::NotAscii)?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or(BearerError::NotBearer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_file_then_environment() {
        let text = format!(
            "grpc_addr = \"127.0.0.1:6000\"\n[sites.blog]\nkey_sha256 = [\"{}\"]\n",
            hash_key("k")
        );
        let mut s: Settings = toml::from_str(&text).unwrap();
        assert_eq!(s.grpc_addr.port(), 6000);
        s.apply_env(|n| (n == "HAMGATE_GRPC_ADDR").then(|| "127.0.0.1:7000".to_string()))
            .unwrap();
        assert_eq!(s.grpc_addr.port(), 7000);
        assert_eq!(s.sites["blog"].key_sha256, vec![hash_key("k")]);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn the_example_config_file_parses_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/hamgate.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let s: Settings = toml::from_str(&text).unwrap();
        assert_eq!(s, Settings::default());
        // Complete: every setting with a default value is written out in the example (the
        // unset optional ones are there as comments, which no parser sees).
        fn keys(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
            if let toml::Value::Table(t) = v {
                for (k, v) in t {
                    let path = format!("{prefix}{k}");
                    if v.is_table() {
                        keys(&format!("{path}."), v, out);
                    } else {
                        out.push(path);
                    }
                }
            }
        }
        let (mut want, mut have) = (Vec::new(), Vec::new());
        keys(
            "",
            &toml::Value::try_from(Settings::default()).unwrap(),
            &mut want,
        );
        keys(
            "",
            &toml::Value::Table(toml::from_str(&text).unwrap()),
            &mut have,
        );
        let missing: Vec<_> = want.iter().filter(|k| !have.contains(k)).collect();
        assert!(missing.is_empty(), "not in the example file: {missing:?}");
    }

    #[test]
    fn the_redis_section_and_its_deprecated_aliases() {
        // The deprecated key is read as redis.url and selects Redis, with a notice.
        let mut s: Settings =
            toml::from_str("[reputation]\nredis_url = \"redis://127.0.0.1:1/0\"\n").unwrap();
        let notices = s.adopt_redis_aliases().unwrap();
        assert_eq!(s.redis.url.as_deref(), Some("redis://127.0.0.1:1/0"));
        assert!(notices[0].contains("deprecated"), "{notices:?}");
        assert!(s.redis_target().unwrap().is_some());
        // Both set and different: an error naming both keys.
        let mut s: Settings = toml::from_str(
            "[redis]\nurl = \"redis://a:1\"\n[reputation]\nredis_url = \"redis://b:2\"\n",
        )
        .unwrap();
        let e = s.adopt_redis_aliases().unwrap_err().to_string();
        assert!(
            e.contains("reputation.redis_url") && e.contains("redis.url"),
            "{e}"
        );
        // The timeouts reach the stores through the target.
        let mut s = Settings::default();
        s.redis.url = Some("redis://127.0.0.1:1/0".into());
        s.redis.model_timeout_ms = 1234;
        let t = s.redis_target().unwrap().unwrap();
        assert_eq!(t.timeouts.model, std::time::Duration::from_millis(1234));
        assert_eq!(
            crate::redis_conn::RedisTimeouts {
                model: std::time::Duration::from_secs(30),
                ..t.timeouts
            },
            crate::redis_conn::RedisTimeouts::default()
        );
        // The environment: the general scheme and the short name.
        let mut s = Settings::default();
        s.apply_env_paths([("HAMGATE_REDIS__URL".to_string(), "redis://x:1".to_string())])
            .unwrap();
        assert_eq!(s.redis.url.as_deref(), Some("redis://x:1"));
        s.apply_env(|n| (n == "HAMGATE_REDIS_URL").then(|| "redis://y:2".to_string()))
            .unwrap();
        assert_eq!(s.redis.url.as_deref(), Some("redis://y:2"));
        // A password is never shown.
        assert_eq!(
            mask_url_password("redis://:hunter2@h:6379/0,redis://u:pw@g:1"),
            "redis://:********@h:6379/0,redis://u:********@g:1"
        );
    }

    #[test]
    fn bearer_keys_are_read_from_either_case_and_trimmed() {
        assert_eq!(bearer_key(b"Bearer k1 "), Ok("k1"));
        assert_eq!(bearer_key(b"bearer k2"), Ok("k2"));
        assert_eq!(bearer_key(b"Basic a2V5"), Err(BearerError::NotBearer));
        assert_eq!(bearer_key(b"Bearer \xff"), Err(BearerError::NotAscii));
    }

    #[test]
    fn site_targets_are_fractions_and_configured_thresholds_switch_fitting_off() {
        let mut s = Settings::default();
        s.sites.insert(
            "blog".into(),
            SiteSettings {
                max_ham_rejected: Some(0.7),
                ..SiteSettings::default()
            },
        );
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("sites.blog.max_ham_rejected"), "{err}");
        s.sites.get_mut("blog").unwrap().max_ham_rejected = Some(0.01);
        s.validate().unwrap();
        let t = s.targets_of("blog").unwrap();
        assert_eq!((t.max_ham_rejected, t.max_spam_accepted), (0.01, 0.05));
        assert_eq!(s.targets_of("other").unwrap().max_ham_rejected, 0.005);
        s.sites.get_mut("blog").unwrap().reject_at = Some(0.95);
        assert_eq!(s.targets_of("blog"), None);
        s.policy.site_thresholds = false;
        assert_eq!(s.targets_of("other"), None);
        s.policy.max_spam_accepted = -0.1;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("policy.max_spam_accepted"), "{err}");
    }

    #[test]
    fn refuses_open_service_off_loopback() {
        let s = Settings {
            grpc_addr: "0.0.0.0:50051".parse().unwrap(),
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--insecure-no-auth"));
        let s = Settings {
            insecure_no_auth: true,
            ..s
        };
        assert!(s.validate().is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_env_are_errors() {
        assert!(toml::from_str::<Settings>("grpc_adr = \"x\"").is_err());
        let mut s = Settings::default();
        let err = s
            .apply_env(|n| (n == "HAMGATE_GRPC_ADDR").then(|| "nope".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("HAMGATE_GRPC_ADDR"));
    }
}
