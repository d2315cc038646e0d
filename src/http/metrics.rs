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

/// Renders the exposition text.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();

    header(
        &mut out,
        "hamgate_checks_total",
        "counter",
        "Checks answered, by site and verdict.",
    );
    for (site, c) in &s.by_site {
        let site = escape(site);
        for (verdict, n) in [("accept", c.accept), ("hold", c.hold), ("reject", c.reject)] {
            let _ = writeln!(
                out,
                "hamgate_checks_total{{site=\"{site}\",verdict=\"{verdict}\"}} {n}"
            );
        }
    }

    header(
        &mut out,
        "hamgate_check_duration_seconds",
        "histogram",
        "Time to answer a check inside the service, in seconds.",
    );
    let mut all = Latency::default();
    for c in s.by_site.values() {
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

    header(
        &mut out,
        "hamgate_checks_degraded_total",
        "counter",
        "Checks answered without an optional part (the Redis reputation store), by site.",
    );
    for (site, c) in &s.by_site {
        let _ = writeln!(
            out,
            "hamgate_checks_degraded_total{{site=\"{}\"}} {}",
            escape(site),
            c.degraded
        );
    }

    header(
        &mut out,
        "hamgate_feedback_total",
        "counter",
        "Moderators' labels logged, by site and label.",
    );
    for (site, c) in &s.by_site {
        let site = escape(site);
        for (label, n) in [("spam", c.feedback_spam), ("ham", c.feedback_ham)] {
            let _ = writeln!(
                out,
                "hamgate_feedback_total{{site=\"{site}\",label=\"{label}\"}} {n}"
            );
        }
    }

    header(
        &mut out,
        "hamgate_false_positives_total",
        "counter",
        "Ham labels for checks that were held or rejected, by site.",
    );
    for (site, c) in &s.by_site {
        let _ = writeln!(
            out,
            "hamgate_false_positives_total{{site=\"{}\"}} {}",
            escape(site),
            c.false_positives
        );
    }

    header(
        &mut out,
        "hamgate_missed_spam_total",
        "counter",
        "Spam labels for checks that were accepted, by site.",
    );
    for (site, c) in &s.by_site {
        let _ = writeln!(
            out,
            "hamgate_missed_spam_total{{site=\"{}\"}} {}",
            escape(site),
            c.missed_spam
        );
    }

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

    header(
        &mut out,
        "hamgate_reputation_errors_total",
        "counter",
        "Reputation-store calls that failed (each degraded check is one).",
    );
    let _ = writeln!(
        out,
        "hamgate_reputation_errors_total {}",
        s.reputation_errors
    );

    header(
        &mut out,
        "hamgate_stats_store_errors_total",
        "counter",
        "Stats-store round trips that failed (Redis mode).",
    );
    let _ = writeln!(out, "hamgate_stats_store_errors_total {}", s.stats_errors);
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
