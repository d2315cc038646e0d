//! The Redis reputation store end to end: real `redis-server` processes on free loopback ports,
//! real hamgate servers in-process, a real gRPC client.
//!
//! Every test starts its own Redis (never the system one on 6379) and kills it when done, on
//! success and on panic alike ([`RedisServer`]'s `Drop`).

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use hamgate::config::{ReputationBackend, Settings};
use hamgate::grpc::pb;
use hamgate::grpc::pb::comment_filter_client::CommentFilterClient;
use hamgate::reputation::redis::key_of;
use hamgate::reputation::{IdentityHasher, IdentityKind};

use common::check_from;
use common::process::free_port;
use common::redis_server::RedisServer;

// ---------------------------------------------------------------------------------------------
// Harness: `redis-server` comes from tests/common (RedisServer, free_port).
// ---------------------------------------------------------------------------------------------

fn redis_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/")
}

/// A direct connection to a test Redis, to look at (and plant) what hamgate stores.
async fn redis_conn(port: u16) -> MultiplexedConnection {
    redis::Client::open(redis_url(port))
        .expect("Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test Redis")
}

/// Every key, by SCAN.
async fn all_keys(conn: &mut MultiplexedConnection) -> Vec<String> {
    let mut keys = BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys.into_iter().collect();
        }
        cursor = next;
    }
}

// ---------------------------------------------------------------------------------------------
// Harness: hamgate in-process
// ---------------------------------------------------------------------------------------------

/// The reputation timeout the test servers use. Higher than the default 50 ms so that a busy
/// two-core test machine does not turn healthy lookups into spurious degraded answers, and well
/// under the 1 s bound test 4 puts on each call while Redis is down.
const STORE_TIMEOUT_MS: u64 = 250;
const SECRET: &str = "test-secret";
/// How long a Check may take before the test calls it hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A hamgate server on a free loopback port with the Redis store, and a client for it.
struct Hamgate {
    client: CommentFilterClient<Channel>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Hamgate {
    async fn start(redis_port: u16) -> Hamgate {
        let mut settings = common::known_site_settings();
        settings.reputation.backend = ReputationBackend::Redis;
        settings.reputation.redis_url = Some(redis_url(redis_port));
        settings.reputation.secret = Some(SECRET.into());
        settings.reputation.timeout_ms = STORE_TIMEOUT_MS;
        let app = hamgate::server::build_app(&settings).expect("the app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = oneshot::channel::<()>();
        let serve = hamgate::server::serve(
            app,
            listener,
            settings.limits.max_message_bytes,
            async move {
                let _ = rx.await;
            },
        );
        let task = tokio::spawn(async move {
            if let Err(e) = serve.await {
                panic!("hamgate server failed: {e}");
            }
        });
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .timeout(CALL_TIMEOUT)
            .connect()
            .await
            .expect("connect to hamgate");
        Hamgate {
            client: CommentFilterClient::new(channel),
            shutdown: Some(tx),
            task,
        }
    }

    /// One Check that must succeed (status OK) within [`CALL_TIMEOUT`].
    async fn check(&mut self, req: pb::CheckRequest) -> pb::CheckResponse {
        match tokio::time::timeout(CALL_TIMEOUT, self.client.check(req)).await {
            Ok(Ok(resp)) => resp.into_inner(),
            Ok(Err(status)) => panic!("Check failed: {status:?}"),
            Err(_) => panic!("Check did not answer within {CALL_TIMEOUT:?}"),
        }
    }

    /// Waits (bounded) until a Check is answered with the store: it connects in the background.
    async fn wait_store(&mut self, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let resp = self.check(probe("readiness probe", "192.0.2.1")).await;
            if !resp.degraded {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "Checks still degraded after {within:?}: hamgate did not reach Redis"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn ready(redis_port: u16) -> Hamgate {
        let mut hg = Hamgate::start(redis_port).await;
        hg.wait_store(Duration::from_secs(10)).await;
        hg
    }
}

impl Drop for Hamgate {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------------

/// The spammy comments; each is rejected on its text alone.
const SPAM: [&str; 4] = [
    "Check out my channel and subscribe!! http://bit.ly/abc",
    "Check out my channel and subscribe!!! http://bit.ly/xyz1",
    "Please check out my new channel and subscribe!! http://bit.ly/def",
    "Subscribe to my channel for free gift cards!! http://bit.ly/ghi",
];
/// An unremarkable comment: accepted, but not so confidently that reputation cannot show.
const NEUTRAL: &str = "What camera did you use for this?";
/// A clearly good comment: accepted even from a sender with some spam history.
/// Ham clear enough to stay accepted even when the spam verdict just recorded for the same
/// sender has already reached its reputation (the write is behind the answer, so whether it has
/// is a race): p 0.001 on its own, below the accept threshold with the reputation cap added.
const HAMMY: &str = "Good read. I tried the same with Python and it worked";
const SPAM_IP: &str = "203.0.113.50";
/// Another /24 than [`SPAM_IP`], so no network reputation is shared.
const FRESH_IP: &str = "198.51.100.7";

/// A test call: scored with reputation, but it records nothing.
fn probe(content: &str, ip: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        is_test: true,
        ..check_from(content, ip)
    }
}

fn reason<'a>(resp: &'a pb::CheckResponse, label: &str) -> Option<&'a pb::Reason> {
    resp.reasons.iter().find(|r| r.label == label)
}

fn verdict(resp: &pb::CheckResponse) -> pb::Verdict {
    pb::Verdict::try_from(resp.verdict).unwrap_or(pb::Verdict::Unspecified)
}

/// `weight(kind) * ln((spam + 0.5) / (ham + 0.5))`, as the policy computes it.
fn expected_log_odds(kind: IdentityKind, spam: f64, ham: f64) -> f64 {
    kind.weight() * ((spam + 0.5) / (ham + 0.5)).ln()
}

/// Sends the spam comments from `ip`, asserting each is rejected and not degraded.
async fn send_spam(hg: &mut Hamgate, ip: &str) {
    for text in SPAM {
        let resp = hg.check(check_from(text, ip)).await;
        assert!(!resp.degraded, "{resp:?}");
        assert_eq!(verdict(&resp), pb::Verdict::Reject, "{text}: {resp:?}");
    }
}

/// Probes [`NEUTRAL`] from `ip` until its `reputation:ip` reason shows [`SPAM`]`.len()` spams
/// (recording happens in a task after the answer), for at most 3 s.
async fn wait_ip_reputation(hg: &mut Hamgate, ip: &str) -> pb::CheckResponse {
    let want = expected_log_odds(IdentityKind::Ip, SPAM.len() as f64, 0.0);
    let start = Instant::now();
    loop {
        let resp = hg.check(probe(NEUTRAL, ip)).await;
        assert!(!resp.degraded, "{resp:?}");
        match reason(&resp, "reputation:ip") {
            Some(r) if (r.log_odds - want).abs() < 1e-3 => return resp,
            other => assert!(
                start.elapsed() < Duration::from_secs(3),
                "reputation:ip never reached {want:.4} (all spam recorded): last {other:?} in {resp:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_history_raises_the_ip_reputation_through_redis() {
    let redis = RedisServer::start();
    let mut hg = Hamgate::ready(redis.port).await;

    // Before any history the IP makes no difference.
    let before = hg.check(probe(NEUTRAL, SPAM_IP)).await;
    let fresh_before = hg.check(probe(NEUTRAL, FRESH_IP)).await;
    assert!(!before.degraded && !fresh_before.degraded);
    assert_eq!(verdict(&before), pb::Verdict::Accept, "{before:?}");
    assert!(
        (before.spam_probability - fresh_before.spam_probability).abs() < 1e-12,
        "{before:?} vs {fresh_before:?}"
    );
    assert!(
        before
            .reasons
            .iter()
            .all(|r| r.kind != pb::ReasonKind::Reputation as i32),
        "no history yet: {before:?}"
    );

    send_spam(&mut hg, SPAM_IP).await;
    let after = wait_ip_reputation(&mut hg, SPAM_IP).await;
    let fresh = hg.check(probe(NEUTRAL, FRESH_IP)).await;
    assert!(!fresh.degraded);

    let ip = reason(&after, "reputation:ip").expect("checked above");
    assert_eq!(ip.kind, pb::ReasonKind::Reputation as i32, "{ip:?}");
    assert!(ip.log_odds > 0.0, "{ip:?}");
    // The /24 shares the history, more weakly.
    let net = reason(&after, "reputation:ip-prefix").expect("the network has history too");
    assert_eq!(net.kind, pb::ReasonKind::Reputation as i32);
    let want = expected_log_odds(IdentityKind::IpPrefix, SPAM.len() as f64, 0.0);
    assert!((net.log_odds - want).abs() < 1e-3, "{net:?}, want {want}");

    assert!(
        after.spam_probability > fresh.spam_probability + 0.05,
        "spam history must raise the probability: {} (history) vs {} (fresh)",
        after.spam_probability,
        fresh.spam_probability
    );
    // The fresh IP is untouched by the other IP's history (and the probes recorded nothing).
    assert!(
        (fresh.spam_probability - fresh_before.spam_probability).abs() < 1e-12,
        "{fresh:?} vs {fresh_before:?}"
    );
    assert!(reason(&fresh, "reputation:ip").is_none(), "{fresh:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_keys_hold_no_raw_identifiers() {
    let redis = RedisServer::start();
    let mut hg = Hamgate::ready(redis.port).await;
    let mut conn = redis_conn(redis.port).await;

    let with_identity = |content: &str, is_test: bool| {
        let mut req = check_from(content, SPAM_IP);
        req.is_test = is_test;
        let comment = req.comment.as_mut().expect("set above");
        comment.author_email = "spammer@example.org".into();
        comment.author_url = "https://spam-shop.example/buy".into();
        comment.author_name = "Spammer".into();
        req
    };

    // Test calls record nothing.
    let resp = hg.check(with_identity(NEUTRAL, true)).await;
    assert!(!resp.degraded);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(all_keys(&mut conn).await, Vec::<String>::new());

    // A rejected and an accepted comment: both are recorded, on six identifiers each (the
    // content fingerprints differ).
    let resp = hg.check(with_identity(SPAM[0], false)).await;
    assert_eq!(verdict(&resp), pb::Verdict::Reject, "{resp:?}");
    let resp = hg.check(with_identity(HAMMY, false)).await;
    assert!(!resp.degraded);
    assert_eq!(verdict(&resp), pb::Verdict::Accept, "{resp:?}");
    let start = Instant::now();
    let keys = loop {
        let keys = all_keys(&mut conn).await;
        if keys.len() >= 7 || start.elapsed() > Duration::from_secs(3) {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        keys.len(),
        7,
        "ip, ip-prefix, email, email-domain, url-host, 2 content: {keys:?}"
    );

    let forbidden = ["203.0.113", "spammer", "example.org", "spam-shop"];
    let kinds = [
        "ip",
        "ip-prefix",
        "email",
        "email-domain",
        "url-host",
        "content",
    ];
    let mut seen = BTreeSet::new();
    for key in &keys {
        for bad in forbidden {
            assert!(!key.contains(bad), "key {key} contains {bad}");
        }
        let rest = key
            .strip_prefix("hg:rep:")
            .unwrap_or_else(|| panic!("key {key} is not hg:rep:..."));
        let (kind, tag) = rest
            .split_once(':')
            .unwrap_or_else(|| panic!("key {key} has no kind"));
        assert!(kinds.contains(&kind), "key {key}: unknown kind {kind}");
        let hash = tag
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or_else(|| panic!("key {key}: no {{hash tag}}"));
        assert_eq!(hash.len(), 32, "key {key}");
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "key {key}: not lowercase hex"
        );
        seen.insert(kind.to_string());

        let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("HGETALL");
        assert_eq!(
            fields.keys().map(String::as_str).collect::<Vec<_>>(),
            ["h", "s", "t"],
            "key {key}: {fields:?}"
        );
        for (field, value) in &fields {
            for bad in forbidden {
                assert!(
                    !field.contains(bad) && !value.contains(bad),
                    "{key}: {field}={value} contains {bad}"
                );
            }
            assert!(
                value.parse::<f64>().is_ok(),
                "{key}: {field}={value} is not a number"
            );
        }
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("TTL");
        let half_life = Settings::default().reputation.half_life_secs as i64;
        assert!(
            ttl > 0 && ttl <= 8 * half_life,
            "{key}: TTL {ttl} (want an expiry of at most 8 half-lives)"
        );
    }
    assert_eq!(seen, kinds.iter().map(|k| k.to_string()).collect());

    // The keys are the public keyed hashes with the install secret: computable by an operator
    // who has the secret, not by one who has only the data.
    let hasher = IdentityHasher::new(SECRET.as_bytes());
    let ip_key = key_of(&hasher.identity(IdentityKind::Ip, SPAM_IP));
    assert!(keys.contains(&ip_key), "{ip_key} not in {keys:?}");
    let email_key = key_of(&hasher.identity(IdentityKind::Email, "spammer@example.org"));
    assert!(keys.contains(&email_key), "{email_key} not in {keys:?}");
    let other = IdentityHasher::new(b"another-secret");
    assert!(!keys.contains(&key_of(&other.identity(IdentityKind::Ip, SPAM_IP))));
    // One spam and one ham on the IP.
    let (s, h): (f64, f64) = redis::cmd("HMGET")
        .arg(&ip_key)
        .arg("s")
        .arg("h")
        .query_async(&mut conn)
        .await
        .expect("HMGET");
    assert!(
        (s - 1.0).abs() < 1e-3 && (h - 1.0).abs() < 1e-3,
        "s={s} h={h}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_reputation() {
    let redis = RedisServer::start();
    let mut a = Hamgate::ready(redis.port).await;
    let mut b = Hamgate::ready(redis.port).await;

    let before = b.check(probe(NEUTRAL, SPAM_IP)).await;
    assert!(!before.degraded);
    assert!(reason(&before, "reputation:ip").is_none(), "{before:?}");

    send_spam(&mut a, SPAM_IP).await;
    // Seen through B, which never saw the spam itself.
    let after = wait_ip_reputation(&mut b, SPAM_IP).await;
    assert!(
        after.spam_probability > before.spam_probability + 0.05,
        "B must see A's history: {} before, {} after",
        before.spam_probability,
        after.spam_probability
    );
    // And both agree.
    let via_a = a.check(probe(NEUTRAL, SPAM_IP)).await;
    assert!(
        (via_a.spam_probability - after.spam_probability).abs() < 1e-6,
        "A {} vs B {}",
        via_a.spam_probability,
        after.spam_probability
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_redis_being_killed_and_reconnects_by_itself() {
    let mut redis = RedisServer::start();
    let mut hg = Hamgate::ready(redis.port).await;

    for i in 0..3 {
        let resp = hg
            .check(check_from(NEUTRAL, &format!("198.51.100.{}", 10 + i)))
            .await;
        assert!(!resp.degraded, "{resp:?}");
    }

    tokio::task::block_in_place(|| redis.kill());
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let start = Instant::now();
        let resp = hg
            .check(check_from(NEUTRAL, &format!("198.51.100.{}", 20 + i)))
            .await;
        let took = start.elapsed();
        assert!(resp.degraded, "Redis is down, yet not degraded: {resp:?}");
        assert_eq!(verdict(&resp), pb::Verdict::Accept, "{resp:?}");
        assert!(
            took < Duration::from_secs(1),
            "a Check took {took:?} with Redis down"
        );
        slowest = slowest.max(took);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("slowest degraded Check with Redis killed: {slowest:?}");

    tokio::task::block_in_place(|| redis.restart());
    let recovery = hg.wait_store(Duration::from_secs(10)).await;
    eprintln!("hamgate used Redis again {recovery:?} after it was restarted");

    // Writes work again too: the new Redis (empty, no persistence) learns the spam.
    send_spam(&mut hg, SPAM_IP).await;
    wait_ip_reputation(&mut hg, SPAM_IP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_redis_and_connects_when_it_appears() {
    let port = free_port();
    let mut hg = Hamgate::start(port).await;

    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_millis(700) {
        let t = Instant::now();
        let resp = hg.check(check_from(SPAM[0], SPAM_IP)).await;
        let took = t.elapsed();
        assert!(resp.degraded, "nothing listens on {port}: {resp:?}");
        assert_eq!(verdict(&resp), pb::Verdict::Reject, "{resp:?}");
        assert!(took < Duration::from_secs(1), "a Check took {took:?}");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(calls >= 3);

    let redis = tokio::task::block_in_place(|| RedisServer::start_with(port, &[]));
    let recovery = hg.wait_store(Duration::from_secs(10)).await;
    eprintln!("hamgate reached Redis {recovery:?} after it started");
    // Degraded answers recorded nothing.
    let mut conn = redis_conn(redis.port).await;
    assert_eq!(all_keys(&mut conn).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_decay_with_the_half_life() {
    let redis = RedisServer::start();
    let mut hg = Hamgate::ready(redis.port).await;
    let mut conn = redis_conn(redis.port).await;
    let half_life = Settings::default().reputation.half_life_secs;
    let now = hamgate::clock::now_secs();
    let hasher = IdentityHasher::new(SECRET.as_bytes());

    // Plant 8 spams at different ages on three IPs.
    let plant = |ip: &str, age: u64| {
        let key = key_of(&hasher.identity(IdentityKind::Ip, ip));
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key)
            .arg("s")
            .arg("8")
            .arg("h")
            .arg("0")
            .arg("t")
            .arg((now - age).to_string());
        cmd
    };
    for (ip, age) in [
        ("198.51.100.70", 0),
        ("198.51.100.71", half_life),
        ("198.51.100.72", 10 * half_life),
    ] {
        let _: i64 = plant(ip, age).query_async(&mut conn).await.expect("HSET");
    }

    let ip_reason = |resp: &pb::CheckResponse| reason(resp, "reputation:ip").map(|r| r.log_odds);
    let fresh = hg.check(probe(NEUTRAL, "198.51.100.70")).await;
    let one = hg.check(probe(NEUTRAL, "198.51.100.71")).await;
    let ten = hg.check(probe(NEUTRAL, "198.51.100.72")).await;
    for r in [&fresh, &one, &ten] {
        assert!(!r.degraded, "{r:?}");
    }
    let tol = 1e-3;
    let want = expected_log_odds(IdentityKind::Ip, 8.0, 0.0);
    let got = ip_reason(&fresh).expect("fresh history counts");
    assert!((got - want).abs() < tol, "age 0: {got}, want {want}");
    let want = expected_log_odds(IdentityKind::Ip, 4.0, 0.0);
    let got = ip_reason(&one).expect("one half-life old history counts, halved");
    assert!(
        (got - want).abs() < tol,
        "age 1 half-life: {got}, want {want}"
    );
    // 8 / 1024 is no evidence at all.
    assert_eq!(ip_reason(&ten), None, "{ten:?}");
    assert!(fresh.spam_probability > one.spam_probability);
    assert!(one.spam_probability > ten.spam_probability);

    // Recording decays the old counts on the server before adding: 8 spams two half-lives old
    // plus one ham now is s = 2, h = 1, t = now.
    let ip = "198.51.100.73";
    let _: i64 = plant(ip, 2 * half_life)
        .query_async(&mut conn)
        .await
        .expect("HSET");
    let resp = hg.check(check_from(NEUTRAL, ip)).await;
    assert!(!resp.degraded);
    assert_eq!(verdict(&resp), pb::Verdict::Accept, "{resp:?}");
    let key = key_of(&hasher.identity(IdentityKind::Ip, ip));
    let start = Instant::now();
    let (s, h, t) = loop {
        let (s, h, t): (f64, f64, u64) = redis::cmd("HMGET")
            .arg(&key)
            .arg("s")
            .arg("h")
            .arg("t")
            .query_async(&mut conn)
            .await
            .expect("HMGET");
        if h > 0.0 || start.elapsed() > Duration::from_secs(3) {
            break (s, h, t);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!((h - 1.0).abs() < tol, "h = {h}");
    assert!(
        (s - 2.0).abs() < tol,
        "s = {s} (8 decayed by two half-lives)"
    );
    assert!(t >= now && t <= now + 60, "t = {t}, now = {now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_mapped_addresses_are_their_ipv4_sender() {
    let redis = RedisServer::start();
    let mut hg = Hamgate::ready(redis.port).await;
    // A dual-stack backend (listening on [::]) reports IPv4 clients in the mapped form.
    let mapped = format!("::ffff:{SPAM_IP}");
    send_spam(&mut hg, &mapped).await;
    wait_ip_reputation(&mut hg, &mapped).await;

    // The same client seen in its plain IPv4 form is the same sender.
    let plain = hg.check(probe(NEUTRAL, SPAM_IP)).await;
    assert!(!plain.degraded);
    assert!(
        reason(&plain, "reputation:ip").is_some(),
        "{SPAM_IP} does not carry the history of {mapped}: {plain:?}"
    );
    // An unrelated client in another /24 shares no network history with the spammer.
    let other = hg.check(probe(NEUTRAL, "::ffff:192.0.2.99")).await;
    assert!(!other.degraded);
    assert!(
        reason(&other, "reputation:ip-prefix").is_none(),
        "::ffff:192.0.2.99 carries the network history of {mapped}: {other:?}"
    );
}
