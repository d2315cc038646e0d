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
            base_corpus: vec![PathBuf::from("models/corpus/youtube")],
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
    /// The online layer this site's feedback trains and its checks are scored with. By default
    /// each site has its own, so one blog's moderation never moves another's verdicts; sites
    /// that name the same layer (a network of blogs with one moderation team) share what their
    /// moderators teach. Reputation and the hourly training budget stay per site.
    pub layer: Option<String>,
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

/// Reputation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReputationSettings {
    /// Embedded or Redis.
    pub backend: ReputationBackend,
    /// Redis URL (`redis://host:port/db`); setting it selects the Redis backend. With
    /// `redis_cluster`, the seed nodes of a Redis Cluster, separated by commas.
    pub redis_url: Option<String>,
    /// Whether `redis_url` names the nodes of a Redis Cluster.
    pub redis_cluster: bool,
    /// The install secret that keys the identifier HMACs. Required with Redis (every replica
    /// must share it); a random one per process is used when embedded and unset.
    pub secret: Option<String>,
    /// Half-life of the counts, in seconds.
    pub half_life_secs: u64,
    /// Most identifiers the embedded store keeps.
    pub max_entries: usize,
    /// How long a check waits for Redis before answering without it (degraded).
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
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            max_links: 3,
            reputation_cap: 4.0,
            discard_margin: 3.0,
        }
    }
}

impl Settings {
    /// Defaults, then the TOML file when given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => Settings::default(),
        };
        settings.apply_env_paths(std::env::vars())?;
        settings.apply_env(|name| std::env::var(name).ok())?;
        Ok(settings)
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

    /// The settings as TOML, for `hamgate config show`, with the reputation secret masked.
    pub fn to_toml_masked(&self) -> Result<String, ConfigError> {
        let mut shown = self.clone();
        if shown.reputation.secret.is_some() {
            shown.reputation.secret = Some("********".into());
        }
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
        if let Some(v) = get("HAMGATE_REDIS_URL") {
            self.reputation.redis_url = Some(v);
            self.reputation.backend = ReputationBackend::Redis;
        }
        if let Some(v) = get("HAMGATE_REDIS_CLUSTER") {
            self.reputation.redis_cluster = parse("HAMGATE_REDIS_CLUSTER", &v)?;
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
        }
        if self.reputation.backend == ReputationBackend::Redis {
            if self.reputation.redis_url.is_none() {
                return Err(ConfigError::Invalid(
                    "reputation.backend = redis needs reputation.redis_url (or HAMGATE_REDIS_URL)"
                        .into(),
                ));
            }
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
    /// Where Redis is, when the Redis backend is selected.
    pub fn redis_target(&self) -> Result<Option<crate::redis_conn::RedisTarget>, ConfigError> {
        match (&self.reputation.backend, &self.reputation.redis_url) {
            (ReputationBackend::Redis, Some(url)) => {
                crate::redis_conn::RedisTarget::parse(url, self.reputation.redis_cluster)
                    .map(Some)
                    .map_err(|e| ConfigError::Invalid(format!("reputation.redis_url: {e}")))
            }
            _ => Ok(None),
        }
    }
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
    }

    #[test]
    fn bearer_keys_are_read_from_either_case_and_trimmed() {
        assert_eq!(bearer_key(b"Bearer k1 "), Ok("k1"));
        assert_eq!(bearer_key(b"bearer k2"), Ok("k2"));
        assert_eq!(bearer_key(b"Basic a2V5"), Err(BearerError::NotBearer));
        assert_eq!(bearer_key(b"Bearer \xff"), Err(BearerError::NotAscii));
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
