//! The Redis reputation store, shared by every replica.
//!
//! Each identifier is one hash, `hg:rep:<kind>:{<hmac>}`, with fields `s` (spam), `h` (ham) and
//! `t` (when they were last decayed, seconds). The braces are a Redis Cluster hash tag: every key
//! an operation touches is one key, so the store works the same on a single server and on a
//! cluster.
//!
//! - A lookup is one round trip: `HMGET s h t` per identifier, pipelined on a single server,
//!   concurrent on a cluster (the keys lie in different slots; see [`crate::redis_conn`]),
//!   decayed on our side.
//! - Records are written behind: [`ReputationStore::record`] queues the write (a bounded
//!   channel; when it is full the write is dropped and reported, reputation is best effort) and
//!   one writer task sends whatever has queued as one pipeline of small Lua scripts
//!   (`EVALSHA`, one key each, so nothing crosses a Cluster slot), which decay the old counts,
//!   add the new weight and refresh the expiry atomically on the server. Under load many checks'
//!   writes share one round trip. When Redis answers NOSCRIPT (a restarted server has an empty
//!   script cache) the script is loaded and the pipeline sent once more.
//!
//! The connection is a [`RedisConn`] (a `ConnectionManager` or a cluster connection), which
//! reconnects by itself. When Redis
//! is down at start-up, a background task keeps trying to connect; until it succeeds every call
//! fails fast with [`ReputationError::Unavailable`] and checks are answered degraded. Every call
//! is bounded by the configured timeout.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{Identity, ReputationError, ReputationStore, StoreFuture, Tally};
use crate::comment::Label;
use crate::redis_conn::{RedisConn, RedisTarget, Timeouts};

const RECORD_SCRIPT: &str = r#"
local now = tonumber(ARGV[1])
local half_life = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 's', 'h', 't')
local s = tonumber(v[1]) or 0
local h = tonumber(v[2]) or 0
local t = tonumber(v[3]) or now
local f = 1
if now > t then f = math.pow(0.5, (now - t) / half_life) else now = t end
s = s * f + tonumber(ARGV[3])
h = h * f + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 's', tostring(s), 'h', tostring(h), 't', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return 1
"#;

/// Writes queued for the writer task.
const WRITE_QUEUE: usize = 65_536;
/// Most writes sent in one pipeline.
const WRITE_BATCH: usize = 256;

/// One queued record: keys and what to add to them.
struct PendingWrite {
    keys: Vec<String>,
    spam: f64,
    ham: f64,
    now: u64,
}

/// The Redis store.
pub struct RedisStore {
    conn: Arc<OnceLock<RedisConn>>,
    script_sha: String,
    timeout: Duration,
    half_life: u64,
    writes: tokio::sync::mpsc::Sender<PendingWrite>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("connected", &self.conn.get().is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The Redis key of an identifier.
pub fn key_of(id: &Identity) -> String {
    format!("hg:rep:{}:{{{}}}", id.kind.as_str(), id.hash)
}

impl RedisStore {
    /// Connects to `target` in the background, so hamgate starts and serves (degraded) even
    /// while Redis is down. `timeout_ms` bounds every call (a check's budget for reputation).
    /// Must be called inside a Tokio runtime.
    pub fn connect(
        target: RedisTarget,
        timeout_ms: u64,
        half_life: u64,
    ) -> Result<Arc<RedisStore>, ReputationError> {
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let (writes, queue) = tokio::sync::mpsc::channel(WRITE_QUEUE);
        let store = Arc::new(RedisStore {
            conn: Arc::new(OnceLock::new()),
            script_sha: redis::Script::new(RECORD_SCRIPT).get_hash().to_string(),
            timeout,
            half_life: half_life.max(1),
            writes,
        });
        tokio::spawn(write_behind(
            Arc::clone(&store.conn),
            store.script_sha.clone(),
            store.timeout,
            store.half_life,
            queue,
        ));
        let timeouts = Timeouts {
            connect: target.timeouts.background_connect,
            response: timeout,
        };
        let retry = target.timeouts.retry;
        crate::redis_conn::connect_in_background(
            Arc::downgrade(&store),
            |store: &RedisStore| store.conn.as_ref(),
            move || {
                let target = target.clone();
                async move { target.connect(timeouts).await }
            },
            retry,
            "reputation",
            |e| tracing::warn!(cause = %e, "Redis not reachable yet; serving without reputation"),
        );
        Ok(store)
    }

    /// Whether the first connection has been made.
    pub fn is_connected(&self) -> bool {
        self.conn.get().is_some()
    }

    fn manager(&self) -> Result<RedisConn, ReputationError> {
        self.conn
            .get()
            .cloned()
            .ok_or_else(|| ReputationError::Unavailable("not connected to Redis yet".into()))
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, ReputationError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ReputationError::Unavailable(e.to_string())),
            Err(_) => Err(ReputationError::Timeout(self.timeout.as_millis() as u64)),
        }
    }
}

impl ReputationStore for RedisStore {
    fn lookup<'a>(&'a self, ids: &'a [Identity], now: u64) -> StoreFuture<'a, Vec<Tally>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut conn = self.manager()?;
            let cmds: Vec<redis::Cmd> = ids
                .iter()
                .map(|id| {
                    let mut c = redis::cmd("HMGET");
                    c.arg(key_of(id)).arg("s").arg("h").arg("t");
                    c
                })
                .collect();
            let replies = self.bounded(conn.query_each(&cmds)).await?;
            let rows = replies
                .into_iter()
                .map(redis::from_redis_value::<(Option<f64>, Option<f64>, Option<u64>)>)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ReputationError::Unavailable(format!("unexpected reply: {e}")))?;
            Ok(rows
                .into_iter()
                .map(|(s, h, t)| {
                    let tally = Tally {
                        spam: s.unwrap_or(0.0),
                        ham: h.unwrap_or(0.0),
                    };
                    tally.decayed(t.unwrap_or(now), now, self.half_life)
                })
                .collect())
        })
    }

    fn record<'a>(
        &'a self,
        ids: &'a [Identity],
        label: Label,
        weight: f64,
        now: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(());
            }
            if self.conn.get().is_none() {
                return Err(ReputationError::Unavailable(
                    "not connected to Redis yet".into(),
                ));
            }
            let (spam, ham) = match label {
                Label::Spam => (weight, 0.0),
                Label::Ham => (0.0, weight),
            };
            let write = PendingWrite {
                keys: ids.iter().map(key_of).collect(),
                spam,
                ham,
                now,
            };
            self.writes.try_send(write).map_err(|_| {
                ReputationError::Unavailable("the reputation write queue is full".into())
            })
        })
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

/// The writer task: sends queued records in batches until the store is dropped.
async fn write_behind(
    conn: Arc<OnceLock<RedisConn>>,
    script_sha: String,
    timeout: Duration,
    half_life: u64,
    mut queue: tokio::sync::mpsc::Receiver<PendingWrite>,
) {
    // Keys live for eight half-lives: by then their counts are under 1/256 of what they were,
    // which is no evidence at all.
    let ttl = half_life.saturating_mul(8);
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let Some(mut manager) = conn.get().cloned() else {
            batch.clear();
            continue;
        };
        let mut cmds = Vec::new();
        for w in &batch {
            for key in &w.keys {
                let mut c = redis::cmd("EVALSHA");
                c.arg(&script_sha)
                    .arg(1)
                    .arg(key)
                    .arg(w.now)
                    .arg(half_life)
                    .arg(w.spam)
                    .arg(w.ham)
                    .arg(ttl);
                cmds.push(c);
            }
        }
        let n = batch.len();
        batch.clear();
        let result = match timed(timeout, manager.query_each(&cmds)).await {
            Err(e) if e.starts_with("NOSCRIPT") => {
                // On a cluster `SCRIPT LOAD` goes to every master.
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(RECORD_SCRIPT);
                match timed(timeout, load.query_async::<redis::Value>(&mut manager)).await {
                    Ok(_) => timed(timeout, manager.query_each(&cmds)).await,
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
        .map(drop);
        if let Err(e) = result {
            tracing::warn!(cause = %e, records = n, "writing reputation to Redis failed; these records are dropped");
        }
    }
}

/// Runs a Redis call with a deadline; errors as text (starting with the Redis error code).
async fn timed<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(match e.code() {
            Some(code) => format!("{code}: {e}"),
            None => e.to_string(),
        }),
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    }
}
