//! The application's stats: what checks and feedback count, and who may read which site's
//! counts. The adapters (`GetStats`, `/api/v1/stats`, `/metrics`) call [`App::stats`] and
//! [`App::process_counters`]; the counting itself lives in [`crate::stats`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{App, AppError, Caller, ModelInfo};
use crate::clock::Clock;
use crate::comment::Label;
use crate::stats::memory::MemoryStats;
use crate::stats::{Counts, Event, ProcessCounters, Range, StatsStore, Step};
use crate::verdict::Verdict;

/// The longest site name a stats query may carry.
const MAX_SITE_BYTES: usize = 256;

/// The stats parts of the application state.
pub(super) struct StatsParts {
    store: Arc<dyn StatsStore>,
    counters: ProcessCounters,
    /// Whether the service is up and serving (set by the server, read by `/readyz`).
    serving: AtomicBool,
}

impl Default for StatsParts {
    fn default() -> Self {
        StatsParts {
            store: Arc::new(MemoryStats::new()),
            counters: ProcessCounters::default(),
            serving: AtomicBool::new(false),
        }
    }
}

/// A stats query as the adapters hand it over; `None` means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsQuery {
    /// One site, or `None`: the caller's own site (a site key) or all sites (the admin key).
    pub site: Option<String>,
    /// Start, seconds since the epoch (default: an hour before `to`).
    pub from: Option<u64>,
    /// End, seconds since the epoch, exclusive (default: the end of the current second).
    pub to: Option<u64>,
    /// Bucket width in seconds: 60, 3600 or 86400 (default 60).
    pub step: Option<u64>,
}

/// The answer to a stats query.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsReport {
    /// The site counted, or `None` for all the caller may see.
    pub site: Option<String>,
    /// The sites the caller may see.
    pub sites: Vec<String>,
    /// The range, its start floored to the step.
    pub range: Range,
    /// The model in service.
    pub model: ModelInfo,
    /// `(start, counts)` for every bucket of the range, contiguous, zero-filled.
    pub buckets: Vec<(u64, Counts)>,
    /// The whole range.
    pub totals: Counts,
}

impl App {
    /// Replaces the stats store and the application's one clock (Redis-backed stats in
    /// `build_app`; a manual clock in tests), which stats, budgets, labels and reputation all
    /// run by. Call it on a freshly built app: it changes nothing once the app has been cloned
    /// (and says so in the log).
    pub fn with_stats(mut self, store: Arc<dyn StatsStore>, clock: Arc<dyn Clock>) -> App {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.stats.store = store;
                inner.clock = clock;
            }
            None => tracing::error!("with_stats called on a shared app; stats store unchanged"),
        }
        self
    }

    /// Counts one answered check (test checks are not counted: they change no statistics).
    pub(super) fn count_check(&self, site: &str, verdict: Verdict, degraded: bool, took: Duration) {
        let s = &self.inner.stats;
        let event = Event::Check {
            verdict,
            degraded,
            latency: took,
        };
        s.store.record(site, &event, self.now());
        s.counters.record(site, &event);
        if degraded {
            s.counters.reputation_error();
        }
    }

    /// Counts one logged label. A label for a recent check is compared with that check's
    /// `verdict`; a label sent with the full comment (`None`) counts as a label only.
    pub(super) fn count_label(&self, site: &str, label: Label, verdict: Option<Verdict>) {
        let s = &self.inner.stats;
        let event = Event::label(label, verdict);
        s.store.record(site, &event, self.now());
        s.counters.record(site, &event);
    }

    /// Counts a reputation-store call that failed.
    pub(super) fn count_reputation_error(&self) {
        self.inner.stats.counters.reputation_error();
    }

    /// This process's counters since start (for Prometheus).
    pub fn process_counters(&self) -> &ProcessCounters {
        &self.inner.stats.counters
    }

    /// Whether the stats store works (always, in memory; connected and answering, in Redis).
    /// The Redis stats store shares the reputation store's Redis, so this is also the
    /// readiness signal for Redis.
    pub fn stats_healthy(&self) -> bool {
        self.inner.stats.store.healthy()
    }

    /// Round trips of the stats store that failed since start.
    pub fn stats_store_errors(&self) -> u64 {
        self.inner.stats.store.errors()
    }

    /// Whether the Redis backend is configured.
    pub fn uses_redis(&self) -> bool {
        self.inner.settings.uses_redis()
    }

    /// What an operator should know that does not stop the service (damage found in the label
    /// log and set aside), for `/readyz`.
    pub fn notices(&self) -> Vec<String> {
        self.inner.labels.notices()
    }

    /// Marks the service as serving (model loaded, listeners up) or not (shutting down).
    pub fn set_serving(&self, serving: bool) {
        self.inner.stats.serving.store(serving, Ordering::SeqCst);
    }

    /// Whether the service is serving.
    pub fn is_serving(&self) -> bool {
        self.inner.stats.serving.load(Ordering::SeqCst)
    }

    /// Sends stats deltas queued for a shared store now (at shutdown, and in tests).
    pub async fn flush_stats(&self) -> Result<(), AppError> {
        self.inner
            .stats
            .store
            .flush()
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }

    /// The sites `caller` may see: its own, or for the admin key every configured site and
    /// every site with stats.
    async fn visible_sites(&self, caller: &Caller) -> Result<Vec<String>, AppError> {
        if !caller.admin {
            return Ok(vec![caller.site.clone()]);
        }
        let mut sites: Vec<String> = self.inner.settings.sites.keys().cloned().collect();
        if self.inner.open {
            sites.push(super::OPEN_SITE.to_string());
        }
        let stored = self
            .inner
            .stats
            .store
            .sites()
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        sites.extend(stored);
        sites.sort();
        sites.dedup();
        Ok(sites)
    }

    /// Counts per bucket for one site or all the caller may see. A site key sees only its
    /// own site (another site is PERMISSION_DENIED); the admin key sees any site, or all of
    /// them when none is named; with no keys configured, the open site `default`.
    pub async fn stats(&self, caller: &Caller, query: StatsQuery) -> Result<StatsReport, AppError> {
        let site = query.site.filter(|s| !s.trim().is_empty());
        if let Some(s) = &site {
            if s.len() > MAX_SITE_BYTES {
                return Err(AppError::invalid("site", "too long"));
            }
        }
        let step = match query.step {
            None => Step::Minute,
            Some(secs) => Step::from_secs(secs).ok_or_else(|| {
                AppError::invalid(
                    "step",
                    format!("{secs} is not 60 (minute), 3600 (hour) or 86400 (day)"),
                )
            })?,
        };
        // `to` is exclusive: by default it ends just after this second, so a check made in
        // the second that starts a new bucket is in the answer.
        let to = match query.to {
            None => self.now() + 1,
            Some(t) => t,
        };
        let from = match query.from {
            None => to.saturating_sub(3600),
            Some(f) => f,
        };
        let range =
            Range::new(from, to, step).map_err(|e| AppError::invalid(e.field, e.message))?;

        let site = match site {
            None if caller.admin => None,
            None => Some(caller.site.clone()),
            Some(s) if caller.admin || s == caller.site => Some(s),
            Some(s) => {
                return Err(AppError::PermissionDenied(format!(
                    "site `{s}`: this key may see only site `{}`",
                    caller.site
                )))
            }
        };
        let sites = self.visible_sites(caller).await?;
        let counted: Vec<String> = match &site {
            Some(s) => vec![s.clone()],
            None => sites.clone(),
        };
        let per_bucket = self
            .inner
            .stats
            .store
            .query(&counted, range)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        let mut totals = Counts::default();
        for c in &per_bucket {
            totals.merge(c);
        }
        Ok(StatsReport {
            site,
            sites,
            range,
            model: self.model_info(caller),
            buckets: range.starts().zip(per_bucket).collect(),
            totals,
        })
    }
}
