//! The Redis label log: one stream shared by every replica.
//!
//! Each record is one stream entry, `XADD <key> * r <json>`, under the key
//! [`DEFAULT_STREAM_KEY`] (`hg:labels:{log}`; the braces are a Redis Cluster hash tag, so the
//! stream and anything later kept beside it hash to one slot).
//!
//! # Seqs
//! A record's seq is its 1-based position in the stream plus the number of entries retention
//! has removed from its front (kept in `<key>:trimmed`). An append sends `MULTI, XADD, XLEN,
//! GET <key>:trimmed, EXEC` as one transaction: nothing runs between the commands, and `XADD *`
//! always adds at the end, so the length right after the add is the new entry's position even
//! with many replicas appending at once. [`LabelLog::read_all`] numbers entries the same way as
//! it pages through `XRANGE` (1000 at a time, ordered by stream id; the first page in one
//! transaction with the counter), so both agree. Retention ([`LabelLog::expire_before`]) trims
//! the oldest entries and adds their number to the counter in one script, so no seq changes.
//! Never remove entries any other way (`MAXLEN`, `XDEL`): archive the stream by renaming it. (The stream id's millisecond part
//! is not a seq: ids skip, and several entries share a millisecond.)
//!
//! # Durability
//! An append resolves when Redis acknowledges the `XADD`. Redis acknowledges once the entry is
//! in its memory and, with `appendonly yes`, handed to its append-only file. That is a durable
//! record only with `appendonly yes` and `appendfsync always` (fsynced before the reply), or
//! `appendfsync everysec` (a power failure may lose roughly the last second; a Redis crash loses
//! nothing). Without `appendonly` an acknowledged label survives only until the server stops, or
//! from the last RDB snapshot. [`RedisLabelLog::connect`] checks the server's settings when it
//! may (`CONFIG GET`; managed services often disable it) and warns when they fall short.
//!
//! Unlike reputation, the label log is not best effort: [`RedisLabelLog::connect`] fails when
//! Redis cannot be reached, and an append fails (rather than being queued) while Redis is down.
//! The `ConnectionManager` reconnects by itself; it never resends a command, so a timed-out
//! append is not silently doubled (though it may have been applied: the usual "maybe").

use std::collections::HashMap;
use std::sync::Mutex;

use crate::redis_conn::{RedisConn, RedisTarget, Timeouts};

use super::{LabelLog, LabelLogError, LabelRecord, LogFuture, LoggedLabel, MAX_RECORD_BYTES};

/// The stream key used unless configured otherwise.
pub const DEFAULT_STREAM_KEY: &str = "hg:labels:{log}";
/// The entry field that holds the record's JSON.
const FIELD: &str = "r";
/// Entries fetched per `XRANGE`.
const PAGE: usize = 1000;

/// The Redis label log.
pub struct RedisLabelLog {
    conn: RedisConn,
    key: String,
    /// The seq and stream id of the last entry read, so following the tail
    /// ([`LabelLog::read_after`]) asks only for what is new.
    cursor: Mutex<(u64, String)>,
}

impl std::fmt::Debug for RedisLabelLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLabelLog")
            .field("key", &self.key)
            .finish()
    }
}

impl RedisLabelLog {
    /// Connects to the Redis at `url` and logs to the stream `stream_key` (usually
    /// [`DEFAULT_STREAM_KEY`]). Fails when the URL is invalid or Redis cannot be reached.
    pub async fn connect(url: &str, stream_key: &str) -> Result<RedisLabelLog, LabelLogError> {
        let target = RedisTarget::parse(url, false).map_err(LabelLogError::Unavailable)?;
        RedisLabelLog::connect_to(&target, stream_key).await
    }

    /// Connects to a single server or a cluster; see [`RedisLabelLog::connect`].
    pub async fn connect_to(
        target: &RedisTarget,
        stream_key: &str,
    ) -> Result<RedisLabelLog, LabelLogError> {
        let conn = target
            .connect(Timeouts {
                connect: target.timeouts.connect,
                response: target.timeouts.label_log,
            })
            .await
            .map_err(|e| LabelLogError::Unavailable(format!("cannot connect to Redis: {e}")))?;
        let log = RedisLabelLog {
            conn,
            key: stream_key.to_string(),
            cursor: Mutex::new((0, "-".into())),
        };
        log.warn_unless_persistent().await;
        Ok(log)
    }

    /// The stream key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key counting the entries removed by retention (seqs are numbered after them); the
    /// stream's hash tag keeps it in the stream's slot.
    fn trimmed_key(&self) -> String {
        format!("{}:trimmed", self.key)
    }

    /// Warns when the server's persistence settings do not make an acknowledged `XADD` durable.
    async fn warn_unless_persistent(&self) {
        let mut conn = self.conn.clone();
        let reply: redis::RedisResult<HashMap<String, String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("append*")
            .query_async(&mut conn)
            .await;
        match reply {
            Ok(settings) => {
                let appendonly = settings.get("appendonly").map_or("", String::as_str);
                let appendfsync = settings.get("appendfsync").map_or("", String::as_str);
                if appendonly != "yes" || !matches!(appendfsync, "always" | "everysec") {
                    tracing::warn!(
                        stream = %self.key,
                        appendonly,
                        appendfsync,
                        "labels acknowledged by this Redis are not durable: set appendonly yes \
                         and appendfsync always (or everysec)"
                    );
                }
            }
            Err(e) => tracing::info!(
                stream = %self.key,
                cause = %e,
                "could not read Redis persistence settings; make sure appendonly is on"
            ),
        }
    }

    fn bad_entry(&self, id: &str, detail: String) -> LabelLogError {
        LabelLogError::BadEntry {
            key: self.key.clone(),
            id: id.to_string(),
            detail,
        }
    }
}

fn unavailable(key: &str, op: &str) -> impl FnOnce(redis::RedisError) -> LabelLogError {
    let context = format!("{op} on stream `{key}` failed");
    move |e| LabelLogError::Unavailable(format!("{context}: {e}"))
}

impl LabelLog for RedisLabelLog {
    fn append<'a>(&'a self, record: LabelRecord) -> LogFuture<'a, u64> {
        Box::pin(async move {
            let json =
                serde_json::to_string(&record).map_err(|e| LabelLogError::Encode(e.to_string()))?;
            // The same limit as the file log, so a record one backend takes the other takes too.
            if json.len() > MAX_RECORD_BYTES {
                return Err(LabelLogError::TooLarge {
                    bytes: json.len(),
                    max: MAX_RECORD_BYTES,
                });
            }
            let mut conn = self.conn.clone();
            let (id, len, trimmed): (String, u64, Option<u64>) = redis::pipe()
                .atomic()
                .cmd("XADD")
                .arg(&self.key)
                .arg("*")
                .arg(FIELD)
                .arg(json)
                .cmd("XLEN")
                .arg(&self.key)
                .cmd("GET")
                .arg(self.trimmed_key())
                .query_async(&mut conn)
                .await
                .map_err(unavailable(&self.key, "XADD"))?;
            let seq = len + trimmed.unwrap_or(0);
            tracing::debug!(stream = %self.key, entry = %id, seq, "label logged");
            Ok(seq)
        })
    }

    fn read_all<'a>(&'a self) -> LogFuture<'a, Vec<LoggedLabel>> {
        Box::pin(async move { self.read_from(0, "-".into()).await })
    }

    fn read_after<'a>(&'a self, after: u64) -> LogFuture<'a, Vec<LoggedLabel>> {
        Box::pin(async move {
            let cursor = self.cursor.lock().map(|c| c.clone()).ok();
            match cursor {
                Some((seq, id)) if seq == after && seq > 0 => {
                    self.read_from(seq, format!("({id}")).await
                }
                _ => {
                    let mut all = self.read_all().await?;
                    all.retain(|l| l.seq > after);
                    Ok(all)
                }
            }
        })
    }

    fn expire_before<'a>(&'a self, before: u64) -> LogFuture<'a, u64> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            // One script, so the count of trimmed entries (which seqs are numbered after) moves
            // with the trim itself.
            let trimmed: u64 = redis::cmd("EVAL")
                .arg(EXPIRE_SCRIPT)
                .arg(2)
                .arg(&self.key)
                .arg(self.trimmed_key())
                .arg(format!("{}-0", before.saturating_mul(1000)))
                .query_async(&mut conn)
                .await
                .map_err(unavailable(&self.key, "XTRIM"))?;
            if trimmed > 0 {
                tracing::info!(stream = %self.key, expired = trimmed, "label log: records past their retention removed");
            }
            Ok(trimmed)
        })
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

/// Trims the stream (KEYS[1]) to the entries from id ARGV[1] on and adds the number removed to
/// the trimmed counter (KEYS[2]).
const EXPIRE_SCRIPT: &str = r"
local n = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
if n > 0 then redis.call('INCRBY', KEYS[2], n) end
return n
";

impl RedisLabelLog {
    /// Entries from stream id `start` on (`-` for the first, `(id` for just after `id`),
    /// numbered from `seq + 1`; remembers the last one as the tail cursor.
    async fn read_from(&self, seq: u64, start: String) -> Result<Vec<LoggedLabel>, LabelLogError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::new();
        let mut seq = seq;
        let mut start = start;
        let mut last_id = None;
        loop {
            let mut xrange = redis::cmd("XRANGE");
            xrange
                .arg(&self.key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE);
            let page: Vec<(String, Vec<String>)> = if start == "-" {
                // From the start: numbered after the entries expired so far, read in the same
                // transaction as the first page.
                let (trimmed, page): (Option<u64>, Vec<(String, Vec<String>)>) = redis::pipe()
                    .atomic()
                    .cmd("GET")
                    .arg(self.trimmed_key())
                    .add_command(xrange)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable(&self.key, "XRANGE"))?;
                seq += trimmed.unwrap_or(0);
                page
            } else {
                xrange
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable(&self.key, "XRANGE"))?
            };
            let full_page = page.len() >= PAGE;
            for (id, fields) in page {
                let json = fields
                    .chunks_exact(2)
                    .find_map(|pair| match pair {
                        [name, value] if name == FIELD => Some(value),
                        _ => None,
                    })
                    .ok_or_else(|| self.bad_entry(&id, format!("no `{FIELD}` field")))?;
                let record = serde_json::from_str(json).map_err(|e| {
                    self.bad_entry(
                        &id,
                        format!("the `{FIELD}` field is not a label record: {e}"),
                    )
                })?;
                out.push(LoggedLabel {
                    seq: seq + out.len() as u64 + 1,
                    record,
                });
                start = format!("({id}");
                last_id = Some(id);
            }
            if !full_page {
                if let (Some(id), Ok(mut cursor)) = (last_id, self.cursor.lock()) {
                    *cursor = (seq + out.len() as u64, id);
                }
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::labels::testing::record;

    /// A `redis-server` of the test's own, on a free port, without persistence; killed on drop
    /// (also when the test panics).
    struct TestRedis {
        port: u16,
        child: Child,
        _dir: tempfile::TempDir,
    }

    impl TestRedis {
        fn start() -> TestRedis {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let child = Command::new("redis-server")
                .arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts (is it installed?)");
            let mut server = TestRedis {
                port,
                child,
                _dir: dir,
            };
            server.wait_until_ready();
            server
        }

        fn wait_until_ready(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("redis-server on port {} exited: {status}", self.port);
                }
                if self.ping() {
                    // Make sure it is our server answering, not another one on the same port.
                    let client = redis::Client::open(self.url()).expect("url");
                    let mut conn = client.get_connection().expect("connect");
                    let info: String = redis::cmd("INFO")
                        .arg("server")
                        .query(&mut conn)
                        .expect("INFO");
                    let pid = format!("process_id:{}", self.child.id());
                    assert!(info.lines().any(|l| l.trim() == pid), "not our server");
                    return;
                }
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        fn ping(&self) -> bool {
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
                return false;
            };
            let mut reply = [0u8; 7];
            stream.write_all(b"PING\r\n").is_ok()
                && stream.read_exact(&mut reply).is_ok()
                && &reply == b"+PONG\r\n"
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    impl Drop for TestRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn appends_read_back_in_order_with_seqs_from_one() {
        let redis = TestRedis::start();
        let log = RedisLabelLog::connect(&redis.url(), DEFAULT_STREAM_KEY)
            .await
            .expect("connect");
        assert!(log.read_all().await.expect("read").is_empty());
        for i in 1..=5 {
            assert_eq!(log.append(record(i)).await.expect("append"), i);
        }
        let all = log.read_all().await.expect("read");
        assert_eq!(
            all,
            (1..=5)
                .map(|i| LoggedLabel {
                    seq: i,
                    record: record(i)
                })
                .collect::<Vec<_>>()
        );
        // A second connection (another replica) sees the same log.
        let other = RedisLabelLog::connect(&redis.url(), DEFAULT_STREAM_KEY)
            .await
            .expect("connect");
        assert_eq!(other.read_all().await.expect("read"), all);
    }

    #[tokio::test]
    async fn retention_trims_the_oldest_entries_and_no_seq_changes() {
        let redis = TestRedis::start();
        let log = RedisLabelLog::connect(&redis.url(), DEFAULT_STREAM_KEY)
            .await
            .expect("connect");
        for i in 1..=3 {
            assert_eq!(log.append(record(i)).await.expect("append"), i);
        }
        // Entries are expired by the time they were logged (the stream id), in whole seconds.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let cutoff = crate::clock::now_secs();
        tokio::time::sleep(Duration::from_millis(50)).await;
        for i in 4..=5 {
            assert_eq!(log.append(record(i)).await.expect("append"), i);
        }
        // A follower that has read everything so far.
        let follower = RedisLabelLog::connect(&redis.url(), DEFAULT_STREAM_KEY)
            .await
            .expect("connect");
        assert_eq!(follower.read_after(0).await.expect("read").len(), 5);

        assert_eq!(log.expire_before(cutoff).await.expect("expire"), 3);
        assert_eq!(log.expire_before(cutoff).await.expect("expire again"), 0);
        let all = log.read_all().await.expect("read");
        assert_eq!(
            all.iter()
                .map(|l| (l.seq, l.record.clone()))
                .collect::<Vec<_>>(),
            vec![(4, record(4)), (5, record(5))]
        );
        assert_eq!(log.append(record(6)).await.expect("append"), 6);
        let tail = follower.read_after(5).await.expect("follow");
        assert_eq!(tail.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![6]);
        let fresh = RedisLabelLog::connect(&redis.url(), DEFAULT_STREAM_KEY)
            .await
            .expect("connect");
        let seqs: Vec<u64> = fresh
            .read_all()
            .await
            .expect("read")
            .iter()
            .map(|l| l.seq)
            .collect();
        assert_eq!(seqs, vec![4, 5, 6]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_get_the_seq_of_their_position() {
        let redis = TestRedis::start();
        // Two connections, as two replicas would have.
        let a = Arc::new(
            RedisLabelLog::connect(&redis.url(), DEFAULT_STREAM_KEY)
                .await
                .expect("connect"),
        );
        let b = Arc::new(
            RedisLabelLog::connect(&redis.url(), DEFAULT_STREAM_KEY)
                .await
                .expect("connect"),
        );
        let tasks: Vec<_> = (1..=200u64)
            .map(|i| {
                let log = if i % 2 == 0 {
                    Arc::clone(&a)
                } else {
                    Arc::clone(&b)
                };
                tokio::spawn(async move { (i, log.append(record(i)).await) })
            })
            .collect();
        let mut acks = Vec::new();
        for t in tasks {
            let (i, seq) = t.await.expect("task");
            acks.push((i, seq.expect("append")));
        }
        let seqs: BTreeSet<u64> = acks.iter().map(|&(_, s)| s).collect();
        assert_eq!(seqs, (1..=200).collect());
        let all = a.read_all().await.expect("read");
        assert_eq!(all.len(), 200);
        for (i, seq) in acks {
            assert_eq!(all[seq as usize - 1].seq, seq);
            assert_eq!(all[seq as usize - 1].record, record(i), "seq {seq}");
        }
    }

    #[tokio::test]
    async fn read_all_pages_through_exactly_full_pages() {
        let redis = TestRedis::start();
        let log = RedisLabelLog::connect(&redis.url(), "hg:labels:{paging}")
            .await
            .expect("connect");
        // Two full pages: the reader must ask once more and stop at the empty third.
        let n = 2 * PAGE as u64;
        let mut conn = log.conn.clone();
        let mut pipe = redis::pipe();
        for i in 1..=n {
            let json = serde_json::to_string(&record(i)).expect("json");
            pipe.cmd("XADD")
                .arg(log.key())
                .arg("*")
                .arg(FIELD)
                .arg(json)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.expect("XADD");
        assert_eq!(log.append(record(n + 1)).await.expect("append"), n + 1);
        let all = log.read_all().await.expect("read");
        assert_eq!(all.len() as u64, n + 1);
        for (k, logged) in all.iter().enumerate() {
            assert_eq!(logged.seq, k as u64 + 1);
            assert_eq!(logged.record, record(k as u64 + 1));
        }
    }

    #[tokio::test]
    async fn a_foreign_entry_is_an_error_naming_the_stream() {
        let redis = TestRedis::start();
        let log = RedisLabelLog::connect(&redis.url(), DEFAULT_STREAM_KEY)
            .await
            .expect("connect");
        log.append(record(1)).await.expect("append");
        let mut conn = log.conn.clone();
        let _: String = redis::cmd("XADD")
            .arg(DEFAULT_STREAM_KEY)
            .arg("*")
            .arg("x")
            .arg("y")
            .query_async(&mut conn)
            .await
            .expect("XADD");
        let err = log.read_all().await.expect_err("bad entry");
        assert!(matches!(err, LabelLogError::BadEntry { .. }), "{err}");
        assert!(err.to_string().contains(DEFAULT_STREAM_KEY), "{err}");
    }

    #[tokio::test]
    async fn connecting_to_no_server_fails() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let err = RedisLabelLog::connect(&format!("redis://127.0.0.1:{port}/"), DEFAULT_STREAM_KEY)
            .await
            .expect_err("nothing listens there");
        assert!(matches!(err, LabelLogError::Unavailable(_)), "{err}");
    }
}
