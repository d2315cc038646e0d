//! Prometheus text exposition (format 0.0.4), written by hand: a handful of counters, one
//! histogram and one info metric do not need a metrics crate.
//!
//! These are this process's counters since start ([`crate::stats::ProcessCounters`]);
//! Prometheus sums the replicas itself.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::stats::{latency_bound_us, Counts, Latency, LATENCY_BUCKETS};

/// The content type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Totals per site since start.
    pub by_site: BTreeMap<String, Counts>,
    /// The model version in service.
    pub model_version: String,
    /// Failed reputation-store calls since start.
    pub reputation_errors: u64,
    /// Failed stats-store round trips since start.
    pub stats_errors: u64,
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter with one sample per site: `name{site="..."} n`.
fn site_counter(
    out: &mut String,
    by_site: &BTreeMap<String, Counts>,
    name: &str,
    help: &str,
    value: impl Fn(&Counts) -> u64,
) {
    header(out, name, "counter", help);
    for (site, c) in by_site {
        let _ = writeln!(out, "{name}{{site=\"{}\"}} {}", escape(site), value(c));
    }
}

/// A counter with one sample per site and value of a second label:
/// `name{site="...",label="value"} n`.
fn site_counter_by<const N: usize>(
    out: &mut String,
    by_site: &BTreeMap<String, Counts>,
    (name, help): (&str, &str),
    label: &str,
    values: impl Fn(&Counts) -> [(&'static str, u64); N],
) {
    header(out, name, "counter", help);
    for (site, c) in by_site {
        let site = escape(site);
        for (value, n) in values(c) {
            let _ = writeln!(out, "{name}{{site=\"{site}\",{label}=\"{value}\"}} {n}");
        }
    }
}

/// A counter of the whole process, without labels.
fn process_counter(out: &mut String, name: &str, help: &str, n: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {n}");
}

/// Renders the exposition text.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let by_site = &s.by_site;

    site_counter_by(
        &mut out,
        by_site,
        (
            "hamgate_checks_total",
            "Checks answered, by site and verdict.",
        ),
        "verdict",
        |c| [("accept", c.accept), ("hold", c.hold), ("reject", c.reject)],
    );

    header(
        &mut out,
        "hamgate_check_duration_seconds",
        "histogram",
        "Time to answer a check inside the service, in seconds.",
    );
    let mut all = Latency::default();
    for c in by_site.values() {
        all.merge(&c.latency);
    }
    // Every other histogram bound: 25 µs doubling up to 13 s. A cumulative count at any
    // bound is exact, because bucket i holds only latencies at or below bound(i).
    let mut cumulative = 0u64;
    for (i, &n) in all.buckets.iter().enumerate() {
        cumulative += n;
        if i % 2 == 0 && i < LATENCY_BUCKETS - 1 {
            let le = latency_bound_us(i) / 1e6;
            let _ = writeln!(
                out,
                "hamgate_check_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
    }
    let count = all.count();
    let _ = writeln!(
        out,
        "hamgate_check_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "hamgate_check_duration_seconds_sum {}",
        all.sum_us as f64 / 1e6
    );
    let _ = writeln!(out, "hamgate_check_duration_seconds_count {count}");

    site_counter(
        &mut out,
        by_site,
        "hamgate_checks_degraded_total",
        "Checks answered without an optional part (the Redis reputation store), by site.",
        |c| c.degraded,
    );
    site_counter_by(
        &mut out,
        by_site,
        (
            "hamgate_feedback_total",
            "Moderators' labels logged, by site and label.",
        ),
        "label",
        |c| [("spam", c.feedback_spam), ("ham", c.feedback_ham)],
    );
    site_counter(
        &mut out,
        by_site,
        "hamgate_false_positives_total",
        "Ham labels for checks that were held or rejected, by site.",
        |c| c.false_positives,
    );
    site_counter(
        &mut out,
        by_site,
        "hamgate_missed_spam_total",
        "Spam labels for checks that were accepted, by site.",
        |c| c.missed_spam,
    );

    header(
        &mut out,
        "hamgate_model_info",
        "gauge",
        "The model in service (always 1; the version is the label).",
    );
    let _ = writeln!(
        out,
        "hamgate_model_info{{version=\"{}\"}} 1",
        escape(&s.model_version)
    );

    process_counter(
        &mut out,
        "hamgate_reputation_errors_total",
        "Reputation-store calls that failed (each degraded check is one).",
        s.reputation_errors,
    );
    process_counter(
        &mut out,
        "hamgate_stats_store_errors_total",
        "Stats-store round trips that failed (Redis mode).",
        s.stats_errors,
    );
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::Event;
    use crate::verdict::Verdict;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let mut blog = Counts::default();
        for ms in [1, 2, 50] {
            blog.apply(&Event::Check {
                verdict: Verdict::Accept,
                degraded: false,
                latency: Duration::from_millis(ms),
            });
        }
        let mut by_site = BTreeMap::new();
        by_site.insert("blo\"g".to_string(), blog);
        let text = render(&Snapshot {
            by_site,
            model_version: "abc".into(),
            reputation_errors: 2,
            stats_errors: 0,
        });
        assert!(text.contains("hamgate_checks_total{site=\"blo\\\"g\",verdict=\"accept\"} 3\n"));
        assert!(text.contains("hamgate_check_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("hamgate_check_duration_seconds_count 3\n"));
        assert!(text.contains("hamgate_model_info{version=\"abc\"} 1\n"));
        assert!(text.contains("hamgate_reputation_errors_total 2\n"));
        // Cumulative counts never go down.
        let mut last = 0;
        for line in text.lines().filter(|l| l.contains("_bucket{")) {
            let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(n >= last, "{line}");
            last = n;
        }
        assert!(text.contains("hamgate_check_duration_seconds_bucket{le=\"0.0016\"} 1\n"));
    }
}
