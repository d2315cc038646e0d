//! The shared stats store: buckets in Redis, so every replica reads the whole fleet's counts.
//!
//! Each bucket is one hash, `hg:stats:{<site>}:<m|h|d>:<start>`, with one integer field per
//! non-zero count ([`Counts::fields`]: `a`, `h`, `r`, `d`, `fs`, `fh`, `fp`, `ms`, `lsum`,
//! `l0`..`l39`), expiring after its width's retention. The braces are a Redis Cluster hash tag,
//! so all of a site's buckets share one slot and a site's flush or query is one pipeline on
//! one node. The set `hg:stats:{sites}` names the sites that have stats.
//!
//! Recording never touches the network: it adds to local deltas (one `Counts` per site and
//! bucket), and a background task sends them about once a second ([`FLUSH_EVERY`]) as a
//! pipeline of `HINCRBY`s plus an `EXPIRE` per bucket. A check therefore never waits on, or
//! fails because of, this store. A flush that fails is counted and logged, and its deltas are
//! dropped rather than resent, so a flush that reached Redis before the error is never counted
//! twice; while no connection has been made yet, deltas wait (bounded). When there is nothing
//! to send the task sends a `PING`, so [`StatsStore::healthy`] follows Redis either way.
//!
//! Generic over the connection (`C`): a `redis::aio::ConnectionManager`, a cluster
//! connection, or `crate::redis_conn::RedisConn` over either.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use redis::aio::ConnectionLike;

use super::{Counts, Event, Range, StatsError, StatsFuture, StatsStore, Step};
use crate::redis_conn::RedisTimeouts;

/// How often local deltas are sent to Redis.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The set of sites with stats.
pub const SITES_KEY: &str = "hg:stats:{sites}";
/// Most (site, bucket) deltas kept while Redis has never been reached; more are dropped.
const MAX_PENDING: usize = 100_000;

/// The key of a site's bucket.
pub fn bucket_key(site: &str, step: Step, start: u64) -> String {
    format!("hg:stats:{{{site}}}:{}:{start}", step.tag())
}

type Deltas = HashMap<(String, Step, u64), Counts>;

/// The Redis store; see the module docs.
pub struct RedisStats<C> {
    conn: Arc<OnceLock<C>>,
    pending: Mutex<Deltas>,
    errors: AtomicU64,
    healthy: AtomicBool,
    /// One flush at a time, so the background task and an explicit flush do not interleave.
    flushing: tokio::sync::Mutex<()>,
    /// Bounds each flush (and its `PING`).
    timeout: Duration,
    /// Bounds each query (a month of hours is hundreds of hashes).
    query_timeout: Duration,
}

impl<C> std::fmt::Debug for RedisStats<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStats")
            .field("connected", &self.conn.get().is_some())
            .field("healthy", &self.healthy.load(Ordering::Relaxed))
            .field("errors", &self.errors.load(Ordering::Relaxed))
            .finish()
    }
}

impl<C> RedisStats<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store that connects in the background with `connect` (retried every `retry` until it
    /// succeeds, so hamgate starts while Redis is down) and flushes every [`FLUSH_EVERY`].
    /// `timeouts.stats` bounds each flush, `timeouts.stats_query` each query. Must be called
    /// inside a Tokio runtime; the tasks end when the store is dropped.
    pub fn start<F, Fut>(connect: F, timeouts: RedisTimeouts) -> Arc<RedisStats<C>>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = redis::RedisResult<C>> + Send,
    {
        let store = Self::unconnected(timeouts);
        crate::redis_conn::connect_in_background(
            Arc::downgrade(&store),
            |store: &RedisStats<C>| store.conn.as_ref(),
            connect,
            timeouts.retry,
            "stats",
            |e| tracing::debug!(cause = %e, "stats store: Redis not reachable yet"),
        );
        Self::spawn_flusher(&store);
        store
    }

    /// A store over a connection already made.
    pub fn with_connection(conn: C, timeouts: RedisTimeouts) -> Arc<RedisStats<C>> {
        let store = Self::unconnected(timeouts);
        let _ = store.conn.set(conn);
        Self::spawn_flusher(&store);
        store
    }

    fn unconnected(timeouts: RedisTimeouts) -> Arc<RedisStats<C>> {
        Arc::new(RedisStats {
            conn: Arc::new(OnceLock::new()),
            pending: Mutex::new(HashMap::new()),
            errors: AtomicU64::new(0),
            healthy: AtomicBool::new(false),
            flushing: tokio::sync::Mutex::new(()),
            timeout: timeouts.stats.max(Duration::from_millis(100)),
            query_timeout: timeouts.stats_query,
        })
    }

    fn spawn_flusher(store: &Arc<RedisStats<C>>) {
        let weak: Weak<RedisStats<C>> = Arc::downgrade(store);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else { return };
                // Errors are counted and logged inside.
                let _ = store.flush_now().await;
            }
        });
    }

    fn failed(&self, what: &str, cause: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.healthy.store(false, Ordering::Relaxed);
        tracing::warn!(cause = %cause, "stats store: {what} failed");
    }

    async fn bounded<T>(
        &self,
        limit: Duration,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("timed out after {} ms", limit.as_millis())),
        }
    }

    /// Sends the queued deltas (or a PING when there are none).
    pub async fn flush_now(&self) -> Result<(), StatsError> {
        let _one = self.flushing.lock().await;
        let Some(conn) = self.conn.get().cloned() else {
            // Nothing was sent: the deltas wait for the connection.
            return Err(StatsError::Unavailable("not connected to Redis yet".into()));
        };
        let deltas = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Err(StatsError::Unavailable("stats deltas lock poisoned".into())),
        };
        if deltas.is_empty() {
            let mut c = conn.clone();
            let ping = redis::cmd("PING");
            return match self
                .bounded(self.timeout, ping.query_async::<String>(&mut c))
                .await
            {
                Ok(_) => {
                    self.healthy.store(true, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => {
                    self.failed("ping", &e);
                    Err(StatsError::Unavailable(e))
                }
            };
        }

        let mut by_site: BTreeMap<String, Vec<(Step, u64, Counts)>> = BTreeMap::new();
        for ((site, step, start), c) in deltas {
            by_site.entry(site).or_default().push((step, start, c));
        }
        let mut sites = redis::cmd("SADD");
        sites.arg(SITES_KEY);
        let mut pipes = Vec::with_capacity(by_site.len());
        for (site, buckets) in &by_site {
            sites.arg(site);
            // One pipeline per site: its keys share one hash tag, so one Cluster slot.
            let mut pipe = redis::pipe();
            for (step, start, c) in buckets {
                let key = bucket_key(site, *step, *start);
                for (field, v) in c.fields() {
                    pipe.cmd("HINCRBY").arg(&key).arg(field).arg(v).ignore();
                }
                pipe.cmd("EXPIRE")
                    .arg(&key)
                    .arg(step.retention() + step.secs())
                    .ignore();
            }
            pipes.push(pipe);
        }
        // One site after another: this runs in the background, and sites are few.
        let mut c = conn.clone();
        let mut first_error = None;
        for pipe in &pipes {
            if let Err(e) = self
                .bounded(self.timeout, pipe.query_async::<()>(&mut c))
                .await
            {
                self.failed("flush", &e);
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self
            .bounded(self.timeout, sites.query_async::<i64>(&mut c))
            .await
        {
            self.failed("recording the site names", &e);
            first_error.get_or_insert(e);
        }
        match first_error {
            None => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(())
            }
            Some(e) => Err(StatsError::Unavailable(e)),
        }
    }

    async fn query_redis(&self, sites: &[String], range: Range) -> Result<Vec<Counts>, String> {
        let conn = self
            .conn
            .get()
            .cloned()
            .ok_or_else(|| "not connected to Redis yet".to_string())?;
        let mut c = conn;
        let mut out = vec![Counts::default(); range.len()];
        // One pipeline per site (one Cluster slot each), one site after another.
        for site in sites {
            let mut pipe = redis::pipe();
            for start in range.starts() {
                pipe.cmd("HGETALL").arg(bucket_key(site, range.step, start));
            }
            let hashes = self
                .bounded(
                    self.query_timeout,
                    pipe.query_async::<Vec<HashMap<String, String>>>(&mut c),
                )
                .await?;
            for (slot, hash) in out.iter_mut().zip(hashes) {
                slot.merge(&Counts::from_fields(
                    hash.iter()
                        .filter_map(|(k, v)| Some((k.as_str(), v.parse::<i64>().ok()?))),
                ));
            }
        }
        Ok(out)
    }
}

impl<C> StatsStore for RedisStats<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn record(&self, site: &str, event: &Event, now: u64) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        for step in Step::ALL {
            let key = (site.to_string(), step, step.floor(now));
            if let Some(c) = pending.get_mut(&key) {
                c.apply(event);
            } else if pending.len() < MAX_PENDING {
                let mut c = Counts::default();
                c.apply(event);
                pending.insert(key, c);
            } else {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn query<'a>(&'a self, sites: &'a [String], range: Range) -> StatsFuture<'a, Vec<Counts>> {
        Box::pin(async move {
            self.query_redis(sites, range).await.map_err(|e| {
                self.failed("query", &e);
                StatsError::Unavailable(e)
            })
        })
    }

    fn sites(&self) -> StatsFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut conn = self
                .conn
                .get()
                .cloned()
                .ok_or_else(|| StatsError::Unavailable("not connected to Redis yet".into()))?;
            let mut cmd = redis::cmd("SMEMBERS");
            cmd.arg(SITES_KEY);
            let mut names = self
                .bounded(self.timeout, cmd.query_async::<Vec<String>>(&mut conn))
                .await
                .map_err(StatsError::Unavailable)?;
            names.sort();
            Ok(names)
        })
    }

    fn flush(&self) -> StatsFuture<'_, ()> {
        Box::pin(self.flush_now())
    }

    fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sites_keys_share_one_hash_tag() {
        assert_eq!(
            bucket_key("blog", Step::Minute, 1_795_650_000),
            "hg:stats:{blog}:m:1795650000"
        );
        assert_eq!(bucket_key("blog", Step::Day, 0), "hg:stats:{blog}:d:0");
    }
}
