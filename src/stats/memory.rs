//! The embedded stats store: per site, three ordered maps of bucket start to [`Counts`]
//! (minutes, hours, days), pruned to each width's retention as time moves on.
//!
//! Memory is bounded by time, not by traffic: a site costs at most one `Counts` (about 400
//! bytes) per minute of the last 50 hours, per hour of 35 days and per day of 400 days, about
//! 1.7 MB when it is busy every minute, and nothing for the minutes it is idle. Sites are the
//! configured ones (names come from API keys, never from request data), so their number is
//! bounded by the settings.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{Counts, Event, Range, StatsFuture, StatsStore, Step};

/// One site's buckets.
#[derive(Debug, Default, Clone)]
pub struct Series {
    minutes: BTreeMap<u64, Counts>,
    hours: BTreeMap<u64, Counts>,
    days: BTreeMap<u64, Counts>,
}

impl Series {
    fn map(&self, step: Step) -> &BTreeMap<u64, Counts> {
        match step {
            Step::Minute => &self.minutes,
            Step::Hour => &self.hours,
            Step::Day => &self.days,
        }
    }

    fn map_mut(&mut self, step: Step) -> &mut BTreeMap<u64, Counts> {
        match step {
            Step::Minute => &mut self.minutes,
            Step::Hour => &mut self.hours,
            Step::Day => &mut self.days,
        }
    }

    /// Counts `event` at `now` in its minute, hour and day, and forgets buckets past their
    /// retention.
    pub fn record(&mut self, event: &Event, now: u64) {
        for step in Step::ALL {
            self.map_mut(step)
                .entry(step.floor(now))
                .or_default()
                .apply(event);
        }
        self.prune(now);
    }

    /// Adds whole counts to the bucket of width `step` starting at `start`.
    pub fn add(&mut self, step: Step, start: u64, counts: &Counts) {
        self.map_mut(step).entry(start).or_default().merge(counts);
    }

    /// Forgets buckets that ended more than their width's retention before `now`.
    pub fn prune(&mut self, now: u64) {
        for step in Step::ALL {
            let cutoff = now.saturating_sub(step.retention());
            let map = self.map_mut(step);
            while let Some((&start, _)) = map.first_key_value() {
                if start + step.secs() > cutoff {
                    break;
                }
                map.pop_first();
            }
        }
    }

    /// Adds this series' buckets in `range` into `out` (one slot per bucket).
    pub fn sum_into(&self, range: Range, out: &mut [Counts]) {
        let width = range.step.secs();
        for (&start, c) in self.map(range.step).range(range.from..range.to) {
            let i = ((start - range.from) / width) as usize;
            if let Some(slot) = out.get_mut(i) {
                slot.merge(c);
            }
        }
    }

    /// Buckets held, all widths together.
    pub fn len(&self) -> usize {
        self.minutes.len() + self.hours.len() + self.days.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The in-process store. A std mutex is fine: it is held for a few map operations, never
/// across an await.
#[derive(Debug, Default)]
pub struct MemoryStats {
    sites: Mutex<HashMap<String, Series>>,
}

impl MemoryStats {
    /// An empty store.
    pub fn new() -> MemoryStats {
        MemoryStats::default()
    }

    /// The buckets of `range` merged over `sites`.
    pub fn query_now(&self, sites: &[String], range: Range) -> Vec<Counts> {
        let mut out = vec![Counts::default(); range.len()];
        if let Ok(map) = self.sites.lock() {
            for s in sites {
                if let Some(series) = map.get(s) {
                    series.sum_into(range, &mut out);
                }
            }
        }
        out
    }
}

impl StatsStore for MemoryStats {
    fn record(&self, site: &str, event: &Event, now: u64) {
        if let Ok(mut map) = self.sites.lock() {
            match map.get_mut(site) {
                Some(series) => series.record(event, now),
                None => {
                    let mut series = Series::default();
                    series.record(event, now);
                    map.insert(site.to_string(), series);
                }
            }
        }
    }

    fn query<'a>(&'a self, sites: &'a [String], range: Range) -> StatsFuture<'a, Vec<Counts>> {
        let out = self.query_now(sites, range);
        Box::pin(async move { Ok(out) })
    }

    fn sites(&self) -> StatsFuture<'_, Vec<String>> {
        let mut names: Vec<String> = self
            .sites
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        Box::pin(async move { Ok(names) })
    }

    fn flush(&self) -> StatsFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn healthy(&self) -> bool {
        true
    }

    fn errors(&self) -> u64 {
        0
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::comment::Label;
    use crate::verdict::Verdict;

    const T0: u64 = 1_795_651_200; // a UTC midnight

    fn check(verdict: Verdict) -> Event {
        Event::Check {
            verdict,
            degraded: false,
            latency: Duration::from_micros(300),
        }
    }

    fn sites(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_event_is_counted_in_its_minute_hour_and_day() {
        assert_eq!(T0 % 86_400, 0);
        let m = MemoryStats::new();
        m.record("blog", &check(Verdict::Accept), T0 + 59);
        m.record("blog", &check(Verdict::Hold), T0 + 60);
        m.record("blog", &check(Verdict::Reject), T0 + 3600);
        m.record(
            "blog",
            &Event::label(Label::Ham, Some(Verdict::Hold)),
            T0 + 3601,
        );
        let b = sites(&["blog"]);

        let minutes = m.query_now(&b, Range::new(T0, T0 + 180, Step::Minute).unwrap());
        assert_eq!(
            minutes.iter().map(|c| c.checks()).collect::<Vec<_>>(),
            vec![1, 1, 0]
        );
        assert_eq!(minutes[1].hold, 1);

        let hours = m.query_now(&b, Range::new(T0, T0 + 7200, Step::Hour).unwrap());
        assert_eq!(hours[0].checks(), 2);
        assert_eq!(hours[1].reject, 1);
        assert_eq!(hours[1].false_positives, 1);
        assert_eq!(hours[1].feedback_ham, 1);

        let days = m.query_now(&b, Range::new(T0, T0 + 86_400, Step::Day).unwrap());
        assert_eq!(days[0].checks(), 3);
        assert_eq!(days[0].latency.count(), 3);
    }

    #[test]
    fn queries_merge_sites_and_zero_fill() {
        let m = MemoryStats::new();
        m.record("blog", &check(Verdict::Accept), T0 + 120);
        m.record("shop", &check(Verdict::Reject), T0 + 130);
        let r = Range::new(T0, T0 + 300, Step::Minute).unwrap();
        let both = m.query_now(&sites(&["blog", "shop"]), r);
        assert_eq!(both.len(), 5);
        assert_eq!(both[2].checks(), 2);
        assert_eq!(both[0], Counts::default());
        let shop = m.query_now(&sites(&["shop"]), r);
        assert_eq!(shop[2].reject, 1);
        assert_eq!(shop[2].accept, 0);
        let none = m.query_now(&sites(&["nobody"]), r);
        assert!(none.iter().all(|c| *c == Counts::default()));
    }

    #[test]
    fn retention_keeps_48_hours_of_minutes_and_90_days_of_days() {
        let mut s = Series::default();
        s.record(&check(Verdict::Accept), T0);
        // 48 hours later the minute is still there.
        s.record(&check(Verdict::Accept), T0 + 48 * 3600);
        let r = Range::new(T0, T0 + 60, Step::Minute).unwrap();
        let mut out = vec![Counts::default(); 1];
        s.sum_into(r, &mut out);
        assert_eq!(out[0].checks(), 1);

        // 51 hours later it is gone; its hour and day remain.
        s.record(&check(Verdict::Accept), T0 + 51 * 3600);
        let mut out = vec![Counts::default(); 1];
        s.sum_into(r, &mut out);
        assert_eq!(out[0].checks(), 0);
        let mut out = vec![Counts::default(); 1];
        s.sum_into(Range::new(T0, T0 + 3600, Step::Hour).unwrap(), &mut out);
        assert_eq!(out[0].checks(), 1);

        // 90 days later the day is still there; after 400 it is gone.
        let day = Range::new(T0, T0 + 86_400, Step::Day).unwrap();
        s.record(&check(Verdict::Accept), T0 + 90 * 86_400);
        let mut out = vec![Counts::default(); 1];
        s.sum_into(day, &mut out);
        assert_eq!(out[0].checks(), 1);
        s.record(&check(Verdict::Accept), T0 + 401 * 86_400);
        let mut out = vec![Counts::default(); 1];
        s.sum_into(day, &mut out);
        assert_eq!(out[0].checks(), 0);
    }

    #[test]
    fn memory_is_bounded_by_time_not_traffic() {
        let mut s = Series::default();
        // A check every 10 s for 60 days.
        let mut t = T0;
        while t < T0 + 60 * 86_400 {
            s.record(&check(Verdict::Accept), t);
            t += 10;
        }
        let max = (Step::Minute.retention() / 60 + 1)
            + (Step::Hour.retention() / 3600 + 1)
            + (Step::Day.retention() / 86_400 + 1);
        assert!(s.len() as u64 <= max, "{} buckets", s.len());
        assert!(s.minutes.len() <= 50 * 60 + 1);
    }
}
