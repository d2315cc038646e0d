//! Stats: what the filter decided, per site and per minute, rolled up to hours and days.
//!
//! Every counted check adds one verdict (accept / hold / reject), whether it was degraded, and
//! its latency; every logged moderator label adds a spam or ham label, and when the label
//! contradicts the check it refers to, a feedback-confirmed false positive (ham that was held
//! or rejected) or missed spam (spam that was accepted). The held-queue inflow is the hold
//! count. All of it is [`Counts`], kept in time buckets of three widths ([`Step`]): minutes
//! (kept [`Step::retention`] = 50 hours), hours (35 days) and days (400 days). A bucket is
//! written at all three widths at once, so a query at any width is one lookup per bucket.
//!
//! Latency is a fixed log-spaced histogram per bucket ([`Latency`]), so buckets merge by adding
//! and the percentiles of any range or set of sites come from the merged histogram.
//!
//! Two backends implement [`StatsStore`]: [`memory::MemoryStats`] (in-process, the default)
//! and [`redis::RedisStats`] (shared buckets with expiry, so every replica sees the fleet;
//! counts are aggregated locally and flushed as deltas about once a second). Recording never
//! waits on the network and never fails; time (`now`, seconds since the epoch) is passed in so
//! tests control it, and [`Clock`] lets the application's clock be injected the same way.
//!
//! [`ProcessCounters`] are this process's monotonic totals since start, for Prometheus (which
//! sums replicas itself).

pub mod memory;
pub mod redis;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::comment::Label;

// The clock moved to the ground floor with the other shared words; re-exported here because
// the server and the tests name it by this path.
pub use crate::clock::{Clock, ManualClock, SystemClock};
use crate::verdict::Verdict;

/// One thing to count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A check was answered.
    Check {
        /// Its verdict.
        verdict: Verdict,
        /// Whether it was answered without an optional part (Redis).
        degraded: bool,
        /// How long it took inside the service.
        latency: Duration,
    },
    /// A moderator's label was logged.
    Label {
        /// Spam or ham.
        label: Label,
        /// Ham for a check that was held or rejected.
        false_positive: bool,
        /// Spam for a check that was accepted.
        missed_spam: bool,
    },
}

impl Event {
    /// A label, classified against the verdict of the check it refers to (`None` when the
    /// label came with the full comment rather than a check id: a label, but neither a false
    /// positive nor missed spam, since we do not know what was decided).
    pub fn label(label: Label, verdict: Option<Verdict>) -> Event {
        Event::Label {
            label,
            false_positive: label == Label::Ham
                && matches!(verdict, Some(Verdict::Hold | Verdict::Reject)),
            missed_spam: label == Label::Spam && verdict == Some(Verdict::Accept),
        }
    }
}

/// Latency histogram buckets.
pub const LATENCY_BUCKETS: usize = 40;
/// The upper bound of the first latency bucket, microseconds.
const LATENCY_FIRST_US: f64 = 25.0;

/// The upper bound of latency bucket `i` in microseconds: 25 µs times √2 to the `i`, so the
/// 40 buckets reach 18 s and a percentile read from them is within a factor √2 (interpolated,
/// much closer in practice). Bucket `i` holds latencies in `(bound(i-1), bound(i)]`; the last
/// one also holds everything slower.
pub fn latency_bound_us(i: usize) -> f64 {
    LATENCY_FIRST_US * 2f64.powf(i as f64 / 2.0)
}

/// A latency histogram with fixed log-spaced buckets (see [`latency_bound_us`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Count per bucket.
    pub buckets: [u64; LATENCY_BUCKETS],
    /// Sum of all latencies, microseconds.
    pub sum_us: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            buckets: [0; LATENCY_BUCKETS],
            sum_us: 0,
        }
    }
}

impl Latency {
    /// The bucket a latency falls in.
    pub fn bucket_of(d: Duration) -> usize {
        let us = d.as_secs_f64() * 1e6;
        if us <= LATENCY_FIRST_US {
            return 0;
        }
        let i = (2.0 * (us / LATENCY_FIRST_US).log2()).ceil();
        // A float that is not a finite positive number lands in the last bucket.
        if i.is_finite() && i >= 0.0 {
            (i as usize).min(LATENCY_BUCKETS - 1)
        } else {
            LATENCY_BUCKETS - 1
        }
    }

    /// Counts one latency.
    pub fn add(&mut self, d: Duration) {
        if let Some(b) = self.buckets.get_mut(Self::bucket_of(d)) {
            *b += 1;
        }
        self.sum_us = self
            .sum_us
            .saturating_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds another histogram.
    pub fn merge(&mut self, other: &Latency) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a = a.saturating_add(*b);
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The `q` quantile (0 < q ≤ 1) in milliseconds, interpolated linearly inside its bucket;
    /// `None` when nothing was counted.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * n as f64).max(1.0);
        let mut below = 0u64;
        for (i, &c) in self.buckets.iter().enumerate() {
            if c > 0 && (below + c) as f64 >= rank {
                let lower = if i == 0 { 0.0 } else { latency_bound_us(i - 1) };
                let upper = latency_bound_us(i);
                let f = (rank - below as f64) / c as f64;
                return Some((lower + (upper - lower) * f) / 1000.0);
            }
            below += c;
        }
        Some(latency_bound_us(LATENCY_BUCKETS - 1) / 1000.0)
    }

    /// The percentiles every adapter reports (the gRPC stats, the JSON API); `None` when
    /// nothing was counted.
    pub fn percentiles_ms(&self) -> Option<Percentiles> {
        Some(Percentiles {
            p50: self.quantile_ms(0.5)?,
            p90: self.quantile_ms(0.9)?,
            p99: self.quantile_ms(0.99)?,
        })
    }
}

/// Latency percentiles in milliseconds, from [`Latency::percentiles_ms`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// What happened in one time bucket (or over a range, merged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Checks accepted.
    pub accept: u64,
    /// Checks held for a moderator: the held queue's inflow.
    pub hold: u64,
    /// Checks rejected.
    pub reject: u64,
    /// Checks answered degraded.
    pub degraded: u64,
    /// Spam labels.
    pub feedback_spam: u64,
    /// Ham labels.
    pub feedback_ham: u64,
    /// Ham labels for checks that were held or rejected.
    pub false_positives: u64,
    /// Spam labels for checks that were accepted.
    pub missed_spam: u64,
    /// Check latency.
    pub latency: Latency,
}

impl Counts {
    /// Checks counted.
    pub fn checks(&self) -> u64 {
        self.accept + self.hold + self.reject
    }

    /// Counts one event.
    pub fn apply(&mut self, event: &Event) {
        match *event {
            Event::Check {
                verdict,
                degraded,
                latency,
            } => {
                match verdict {
                    Verdict::Accept => self.accept += 1,
                    Verdict::Hold => self.hold += 1,
                    Verdict::Reject => self.reject += 1,
                }
                self.degraded += u64::from(degraded);
                self.latency.add(latency);
            }
            Event::Label {
                label,
                false_positive,
                missed_spam,
            } => {
                match label {
                    Label::Spam => self.feedback_spam += 1,
                    Label::Ham => self.feedback_ham += 1,
                }
                self.false_positives += u64::from(false_positive);
                self.missed_spam += u64::from(missed_spam);
            }
        }
    }

    /// Adds another bucket's counts.
    pub fn merge(&mut self, o: &Counts) {
        self.accept += o.accept;
        self.hold += o.hold;
        self.reject += o.reject;
        self.degraded += o.degraded;
        self.feedback_spam += o.feedback_spam;
        self.feedback_ham += o.feedback_ham;
        self.false_positives += o.false_positives;
        self.missed_spam += o.missed_spam;
        self.latency.merge(&o.latency);
    }

    /// Rejected over checked, 0 when nothing was checked.
    pub fn spam_rate(&self) -> f64 {
        match self.checks() {
            0 => 0.0,
            n => self.reject as f64 / n as f64,
        }
    }

    /// The non-zero counts as named integer fields (the Redis hash layout: short names, one
    /// field per latency bucket that has counts).
    pub fn fields(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (name, v) in [
            ("a", self.accept),
            ("h", self.hold),
            ("r", self.reject),
            ("d", self.degraded),
            ("fs", self.feedback_spam),
            ("fh", self.feedback_ham),
            ("fp", self.false_positives),
            ("ms", self.missed_spam),
            ("lsum", self.latency.sum_us),
        ] {
            if v > 0 {
                out.push((name.to_string(), v));
            }
        }
        for (i, &c) in self.latency.buckets.iter().enumerate() {
            if c > 0 {
                out.push((format!("l{i}"), c));
            }
        }
        out
    }

    /// Counts back from [`Counts::fields`]; unknown fields and negative values are ignored.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, i64)>) -> Counts {
        let mut c = Counts::default();
        for (name, v) in fields {
            let Ok(v) = u64::try_from(v) else { continue };
            match name {
                "a" => c.accept += v,
                "h" => c.hold += v,
                "r" => c.reject += v,
                "d" => c.degraded += v,
                "fs" => c.feedback_spam += v,
                "fh" => c.feedback_ham += v,
                "fp" => c.false_positives += v,
                "ms" => c.missed_spam += v,
                "lsum" => c.latency.sum_us += v,
                other => {
                    let slot = other
                        .strip_prefix('l')
                        .and_then(|i| i.parse::<usize>().ok())
                        .and_then(|i| c.latency.buckets.get_mut(i));
                    if let Some(b) = slot {
                        *b += v;
                    }
                }
            }
        }
        c
    }
}

/// The width of a time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// 60 seconds.
    Minute,
    /// 3600 seconds.
    Hour,
    /// 86400 seconds (UTC days).
    Day,
}

impl Step {
    /// All widths, narrowest first.
    pub const ALL: [Step; 3] = [Step::Minute, Step::Hour, Step::Day];

    /// The width in seconds.
    pub fn secs(self) -> u64 {
        match self {
            Step::Minute => 60,
            Step::Hour => 3600,
            Step::Day => 86_400,
        }
    }

    /// The width with this many seconds, if it is one.
    pub fn from_secs(secs: u64) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.secs() == secs)
    }

    /// `minute`, `hour`, `day`, or their seconds.
    pub fn parse(text: &str) -> Option<Step> {
        match text.trim() {
            "minute" | "m" => Some(Step::Minute),
            "hour" | "h" => Some(Step::Hour),
            "day" | "d" => Some(Step::Day),
            other => other.parse().ok().and_then(Step::from_secs),
        }
    }

    /// A short tag, used in Redis keys.
    pub fn tag(self) -> &'static str {
        match self {
            Step::Minute => "m",
            Step::Hour => "h",
            Step::Day => "d",
        }
    }

    /// How long buckets of this width are kept, seconds: more than 48 hours of minutes, a
    /// month of hours, more than 90 days of days.
    pub fn retention(self) -> u64 {
        match self {
            Step::Minute => 50 * 3600,
            Step::Hour => 35 * 86_400,
            Step::Day => 400 * 86_400,
        }
    }

    /// The start of the bucket holding `t`.
    pub fn floor(self, t: u64) -> u64 {
        t - t % self.secs()
    }
}

/// Most buckets one query may ask for.
pub const MAX_BUCKETS: u64 = 2000;

/// A validated time range: buckets of `step` from `from` (floored to the step) up to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Start, seconds since the epoch, a multiple of the step.
    pub from: u64,
    /// End (exclusive), seconds since the epoch.
    pub to: u64,
    /// Bucket width.
    pub step: Step,
}

/// Why a range is not acceptable; names the query field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RangeError {
    /// `from`, `to` or `step`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Range {
    /// Checks `from < to` and the bucket count; floors `from` to the step.
    pub fn new(from: u64, to: u64, step: Step) -> Result<Range, RangeError> {
        if from >= to {
            return Err(RangeError {
                field: "from",
                message: format!("{from} is not before `to` ({to})"),
            });
        }
        let from = step.floor(from);
        let n = (to - from).div_ceil(step.secs());
        if n > MAX_BUCKETS {
            return Err(RangeError {
                field: "step",
                message: format!(
                    "{n} buckets of {} s is over the limit of {MAX_BUCKETS}; use a larger step or a shorter range",
                    step.secs()
                ),
            });
        }
        Ok(Range { from, to, step })
    }

    /// The bucket starts, in order.
    pub fn starts(&self) -> impl Iterator<Item = u64> {
        (self.from..self.to).step_by(self.step.secs() as usize)
    }

    /// How many buckets.
    pub fn len(&self) -> usize {
        (self.to - self.from).div_ceil(self.step.secs()) as usize
    }

    /// Whether there are no buckets (never, for a range made by [`Range::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a stats store could not answer a query.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StatsError {
    /// The shared store is not reachable.
    #[error("stats store unavailable: {0}")]
    Unavailable(String),
}

/// A boxed future, so the trait can be used as `Arc<dyn StatsStore>`.
pub type StatsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StatsError>> + Send + 'a>>;

/// Where stats are kept.
pub trait StatsStore: Send + Sync + 'static {
    /// Counts `event` for `site` at `now`. Never waits on the network and never fails: a
    /// shared store queues the delta.
    fn record(&self, site: &str, event: &Event, now: u64);
    /// One [`Counts`] per bucket of `range`, merged over `sites`, zero where nothing happened.
    fn query<'a>(&'a self, sites: &'a [String], range: Range) -> StatsFuture<'a, Vec<Counts>>;
    /// The sites that have stats.
    fn sites(&self) -> StatsFuture<'_, Vec<String>>;
    /// Sends queued deltas now (a no-op in memory).
    fn flush(&self) -> StatsFuture<'_, ()>;
    /// Whether the store works (a shared store: connected, and its last round trip succeeded).
    fn healthy(&self) -> bool;
    /// Round trips that failed since start.
    fn errors(&self) -> u64;
    /// A short name for logs.
    fn name(&self) -> &'static str;
}

/// This process's totals since start, per site, for Prometheus. A std mutex is fine: it is
/// held for a few additions, never across an await.
#[derive(Debug, Default)]
pub struct ProcessCounters {
    by_site: Mutex<BTreeMap<String, Counts>>,
    reputation_errors: AtomicU64,
}

impl ProcessCounters {
    /// Counts `event` for `site`.
    pub fn record(&self, site: &str, event: &Event) {
        if let Ok(mut m) = self.by_site.lock() {
            match m.get_mut(site) {
                Some(c) => c.apply(event),
                None => {
                    let mut c = Counts::default();
                    c.apply(event);
                    m.insert(site.to_string(), c);
                }
            }
        }
    }

    /// Counts one failed reputation-store call.
    pub fn reputation_error(&self) {
        self.reputation_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Failed reputation-store calls since start.
    pub fn reputation_errors(&self) -> u64 {
        self.reputation_errors.load(Ordering::Relaxed)
    }

    /// The totals per site.
    pub fn snapshot(&self) -> BTreeMap<String, Counts> {
        self.by_site.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(verdict: Verdict, ms: u64) -> Event {
        Event::Check {
            verdict,
            degraded: false,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn labels_are_classified_against_the_checks_verdict() {
        let fp = |l, v| match Event::label(l, v) {
            Event::Label {
                false_positive,
                missed_spam,
                ..
            } => (false_positive, missed_spam),
            Event::Check { .. } => unreachable!(),
        };
        assert_eq!(fp(Label::Ham, Some(Verdict::Hold)), (true, false));
        assert_eq!(fp(Label::Ham, Some(Verdict::Reject)), (true, false));
        assert_eq!(fp(Label::Ham, Some(Verdict::Accept)), (false, false));
        assert_eq!(fp(Label::Spam, Some(Verdict::Accept)), (false, true));
        assert_eq!(fp(Label::Spam, Some(Verdict::Reject)), (false, false));
        assert_eq!(fp(Label::Spam, None), (false, false));
        assert_eq!(fp(Label::Ham, None), (false, false));
    }

    #[test]
    fn latency_buckets_are_log_spaced_and_quantiles_fall_inside_them() {
        assert_eq!(Latency::bucket_of(Duration::from_micros(1)), 0);
        assert_eq!(Latency::bucket_of(Duration::from_micros(25)), 0);
        assert_eq!(Latency::bucket_of(Duration::from_micros(26)), 1);
        assert_eq!(Latency::bucket_of(Duration::from_micros(50)), 2);
        assert_eq!(
            Latency::bucket_of(Duration::from_secs(3600)),
            LATENCY_BUCKETS - 1
        );
        let mut h = Latency::default();
        for _ in 0..90 {
            h.add(Duration::from_micros(400));
        }
        for _ in 0..10 {
            h.add(Duration::from_millis(20));
        }
        assert_eq!(h.count(), 100);
        let p50 = h.quantile_ms(0.5).unwrap();
        assert!(p50 > 0.4 / 1.5 && p50 <= 0.4 * 1.42, "{p50}");
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!(p99 > 20.0 / 1.5 && p99 <= 20.0 * 1.42, "{p99}");
        assert_eq!(Latency::default().quantile_ms(0.5), None);
    }

    #[test]
    fn counts_survive_the_redis_field_layout() {
        let mut c = Counts::default();
        c.apply(&check(Verdict::Hold, 1));
        c.apply(&check(Verdict::Reject, 3));
        c.apply(&Event::label(Label::Ham, Some(Verdict::Hold)));
        let fields = c.fields();
        let back = Counts::from_fields(fields.iter().map(|(k, v)| (k.as_str(), *v as i64)));
        assert_eq!(back, c);
        assert_eq!(back.checks(), 2);
        assert_eq!(back.false_positives, 1);
        // Garbage from a shared store is ignored, never a panic.
        let odd = Counts::from_fields([("l999", 5), ("zz", 1), ("a", -3), ("lx", 2)]);
        assert_eq!(odd, Counts::default());
    }

    #[test]
    fn ranges_floor_and_bound_their_buckets() {
        let r = Range::new(1_795_650_030, 1_795_653_600, Step::Minute).unwrap();
        assert_eq!(r.from, 1_795_650_000);
        assert_eq!(r.len(), 60);
        assert_eq!(r.starts().count(), 60);
        let r = Range::new(100, 7300, Step::Hour).unwrap();
        assert_eq!(r.starts().collect::<Vec<_>>(), vec![0, 3600, 7200]);
        assert_eq!(Range::new(5, 5, Step::Minute).unwrap_err().field, "from");
        let e = Range::new(0, 60 * 2001, Step::Minute).unwrap_err();
        assert_eq!(e.field, "step");
        assert!(Range::new(0, 60 * 2000, Step::Minute).is_ok());
    }

    #[test]
    fn steps_parse_by_name_or_seconds() {
        assert_eq!(Step::parse("minute"), Some(Step::Minute));
        assert_eq!(Step::parse("3600"), Some(Step::Hour));
        assert_eq!(Step::parse("day"), Some(Step::Day));
        assert_eq!(Step::parse("61"), None);
        assert_eq!(Step::parse("week"), None);
        assert!(Step::Minute.retention() >= 48 * 3600);
        assert!(Step::Day.retention() >= 90 * 86_400);
    }

    #[test]
    fn process_counters_keep_totals_per_site() {
        let p = ProcessCounters::default();
        p.record("blog", &check(Verdict::Accept, 1));
        p.record("blog", &check(Verdict::Reject, 1));
        p.record("shop", &Event::label(Label::Spam, Some(Verdict::Accept)));
        p.reputation_error();
        let s = p.snapshot();
        assert_eq!(s["blog"].checks(), 2);
        assert_eq!(s["shop"].missed_spam, 1);
        assert_eq!(p.reputation_errors(), 1);
    }
}
