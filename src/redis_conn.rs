//! One Redis connection type for every Redis-backed part (reputation, label log, model
//! publication, stats), on a single server or on a Redis Cluster.
//!
//! A [`RedisTarget`] is what the settings' `[redis]` section says: one URL, or with `cluster`
//! on, a comma-separated list of seed nodes of a cluster, and how long each store waits for it
//! ([`RedisTimeouts`]). [`RedisConn`] is a cheap `Clone` over a
//! `ConnectionManager` (single server; reconnects by itself) or a cluster connection (follows
//! the cluster's topology, reconnects to nodes by itself), and implements
//! `redis::aio::ConnectionLike`, so commands and same-slot pipelines run on either unchanged.
//!
//! The one difference callers must respect: on a cluster a pipeline must stay in one hash
//! slot. Every key hamgate writes carries a hash tag (`{...}`) so that the keys one operation
//! touches share a slot. Independent commands on keys in different slots (a reputation lookup
//! of five identifiers) go through [`RedisConn::query_each`]: one pipeline on a single server,
//! concurrent commands on a cluster (each node's commands still share that node's connection,
//! so they are pipelined on the wire).

use std::future::Future;
use std::sync::{OnceLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisFuture, RedisResult, Value};

/// Where Redis is, and how long each store waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// One URL, or a cluster's seed nodes.
    pub urls: Vec<String>,
    /// Whether `urls` are nodes of a Redis Cluster.
    pub cluster: bool,
    /// The stores' timeouts.
    pub timeouts: RedisTimeouts,
}

/// How long each Redis-backed store waits, from the `[redis]` settings (the defaults are
/// theirs). Reputation's command timeout is its own setting, `reputation.timeout_ms`: it is a
/// check's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// Connecting, for the stores that need Redis to go on (label log, model store).
    pub connect: Duration,
    /// Connecting, for the stores that serve without Redis and retry in the background.
    pub background_connect: Duration,
    /// Between two background connection attempts; the longest back-off of a reconnection.
    pub retry: Duration,
    /// One label-log command.
    pub label_log: Duration,
    /// One stats flush.
    pub stats: Duration,
    /// One stats query.
    pub stats_query: Duration,
    /// Publishing or fetching a model.
    pub model: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        RedisTimeouts {
            connect: Duration::from_secs(2),
            background_connect: Duration::from_millis(500),
            retry: Duration::from_millis(500),
            label_log: Duration::from_secs(5),
            stats: Duration::from_secs(1),
            stats_query: Duration::from_secs(3),
            model: Duration::from_secs(30),
        }
    }
}

/// How long connecting and each command may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to a node.
    pub connect: Duration,
    /// One command or pipeline.
    pub response: Duration,
}

impl RedisTarget {
    /// Parses `spec`: one URL, or with `cluster`, URLs separated by commas; with the default
    /// timeouts.
    pub fn parse(spec: &str, cluster: bool) -> Result<RedisTarget, String> {
        let urls: Vec<String> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if urls.is_empty() {
            return Err("no Redis URL given".into());
        }
        if urls.len() > 1 && !cluster {
            return Err("several Redis URLs given; set redis.cluster = true for a cluster".into());
        }
        for u in &urls {
            redis::Client::open(u.as_str()).map_err(|e| format!("invalid Redis URL `{u}`: {e}"))?;
        }
        Ok(RedisTarget {
            urls,
            cluster,
            timeouts: RedisTimeouts::default(),
        })
    }

    /// Connects once; the connection then keeps itself connected.
    pub async fn connect(&self, timeouts: Timeouts) -> RedisResult<RedisConn> {
        if self.cluster {
            let client = redis::cluster::ClusterClientBuilder::new(self.urls.clone())
                .connection_timeout(timeouts.connect)
                .response_timeout(timeouts.response)
                .retries(2)
                .build()?;
            Ok(RedisConn::Cluster(client.get_async_connection().await?))
        } else {
            let client = redis::Client::open(self.urls[0].as_str())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeouts.connect))
                .set_response_timeout(Some(timeouts.response))
                .set_number_of_retries(2)
                .set_max_delay(self.timeouts.retry);
            Ok(RedisConn::Single(
                ConnectionManager::new_with_config(client, config).await?,
            ))
        }
    }
}

/// Connects in a background task for a store that must start while Redis is down: tries
/// `connect` every `retry` until it succeeds, then puts the connection in the slot
/// `slot` picks out of the store. Gives up once the store (`owner`) is dropped. Each failure
/// goes to `on_failure`, so every store says in its own words (and at its own level) what it
/// does without Redis. Must be called inside a Tokio runtime.
pub fn connect_in_background<S, C, F, Fut>(
    owner: Weak<S>,
    slot: fn(&S) -> &OnceLock<C>,
    connect: F,
    retry: Duration,
    store: &'static str,
    on_failure: fn(&redis::RedisError),
) where
    S: Send + Sync + 'static,
    C: Send + Sync + 'static,
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<C>> + Send,
{
    tokio::spawn(async move {
        loop {
            match connect().await {
                Ok(conn) => {
                    if let Some(owner) = owner.upgrade() {
                        let _ = slot(&owner).set(conn);
                        tracing::info!(store, "connected to Redis");
                    }
                    return;
                }
                Err(e) => {
                    if owner.strong_count() == 0 {
                        return;
                    }
                    on_failure(&e);
                    tokio::time::sleep(retry).await;
                }
            }
        }
    });
}

/// A connection to a single server or to a cluster; see the module docs.
#[derive(Clone)]
pub enum RedisConn {
    /// A single server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConn::Single(_) => "RedisConn::Single",
            RedisConn::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl RedisConn {
    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }

    /// Runs independent commands whose keys may lie in different slots and returns their
    /// replies in order: one pipeline on a single server, concurrent commands on a cluster.
    pub async fn query_each(&mut self, cmds: &[Cmd]) -> RedisResult<Vec<Value>> {
        match self {
            RedisConn::Single(conn) => {
                let mut pipe = redis::pipe();
                for c in cmds {
                    pipe.add_command(c.clone());
                }
                pipe.query_async(conn).await
            }
            RedisConn::Cluster(conn) => {
                let calls = cmds.iter().map(|c| {
                    let mut conn = conn.clone();
                    async move { c.query_async::<Value>(&mut conn).await }
                });
                futures_util::future::join_all(calls)
                    .await
                    .into_iter()
                    .collect()
            }
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_url_or_cluster_seeds() {
        let t = RedisTarget::parse("redis://127.0.0.1:6379", false).unwrap();
        assert_eq!(t.urls, vec!["redis://127.0.0.1:6379"]);
        let t = RedisTarget::parse(" redis://a:1 , redis://b:2,", true).unwrap();
        assert_eq!(t.urls, vec!["redis://a:1", "redis://b:2"]);
        assert!(t.cluster);
        let e = RedisTarget::parse("redis://a:1,redis://b:2", false).unwrap_err();
        assert!(e.contains("redis.cluster"), "{e}");
        assert!(RedisTarget::parse(" , ", true).is_err());
        let e = RedisTarget::parse("http://nope", false).unwrap_err();
        assert!(e.contains("http://nope"), "{e}");
    }
}
