//! The gRPC API through the real network path: the real `build_app` and `serve` on
//! `127.0.0.1:0` with a tonic client, plus the real binary for startup and signal handling.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{free_port, ChildGuard};
use common::{check_from, check_req, TestServer, HAM, SPAM};
use hamgate::config::{hash_key, Settings, SiteSettings};
use hamgate::grpc::pb;
use hamgate::grpc::pb::comment_filter_client::CommentFilterClient;
use tonic::{Code, Request, Status};

/// A comment the model finds borderline (log-odds near 0, held), so reputation visibly moves it.
const NEUTRAL: &str = "Love it, thanks for sharing";

/// Clear spam of different campaigns (different content fingerprints).
const SPAMS: [&str; 5] = [
    "Check out my channel and subscribe! http://www.youtube.com/user/coolvids123 please subscribe",
    "PLEASE SUBSCRIBE TO MY CHANNEL i make music videos",
    "subscribe to my channel for free iPhone giveaway http://bit.ly/free",
    "Earn money from home, visit http://cash.example.com now",
    "Hey guys check out my new channel and please subscribe!!!! http://www.youtube.com/user/monkeys",
];

fn verdict(r: &pb::CheckResponse) -> pb::Verdict {
    pb::Verdict::try_from(r.verdict).expect("a known verdict")
}

fn kind(r: &pb::Reason) -> pb::ReasonKind {
    pb::ReasonKind::try_from(r.kind).expect("a known reason kind")
}

fn with_auth<T>(msg: T, value: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", value.parse().expect("ascii metadata"));
    req
}

async fn check(
    client: &mut CommentFilterClient<tonic::transport::Channel>,
    req: pb::CheckRequest,
) -> pb::CheckResponse {
    client
        .check(req)
        .await
        .unwrap_or_else(|s| panic!("check failed: {s:?}"))
        .into_inner()
}

fn assert_invalid(result: Result<tonic::Response<impl std::fmt::Debug>, Status>, field: &str) {
    match result {
        Ok(r) => panic!("expected INVALID_ARGUMENT naming `{field}`, got OK: {r:?}"),
        Err(s) => {
            assert_eq!(s.code(), Code::InvalidArgument, "{field}: {s:?}");
            assert!(
                s.message().starts_with(&format!("{field}: ")),
                "the message should name `{field}`: {:?}",
                s.message()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Verdicts.

#[tokio::test]
async fn spam_is_rejected_and_ham_accepted_with_reasons() {
    let server = TestServer::start_known().await;
    let mut client = server.client().await;

    let mut req = check_req(SPAM);
    req.external_id = "wp-comment-17".into();
    let spam = check(&mut client, req).await;
    assert_eq!(verdict(&spam), pb::Verdict::Reject, "{spam:?}");
    assert!(spam.spam_probability > 0.5, "{spam:?}");
    assert!(!spam.reasons.is_empty(), "{spam:?}");
    let tokens: Vec<&str> = spam
        .reasons
        .iter()
        .filter(|r| kind(r) == pb::ReasonKind::TextToken)
        .map(|r| r.label.as_str())
        .collect();
    assert!(!tokens.is_empty(), "{spam:?}");
    for t in &tokens {
        let (k, v) = t
            .split_once(':')
            .unwrap_or_else(|| panic!("`kind:token`: {t}"));
        assert!(!k.is_empty() && !v.is_empty(), "{t}");
    }
    assert!(
        tokens
            .iter()
            .any(|t| t.contains("subscribe") || t.contains("channel")),
        "the spammy words should be among the reasons: {tokens:?}"
    );
    // Text reasons pushing towards spam dominate.
    assert!(spam.reasons[0].log_odds > 0.0, "{spam:?}");
    assert!(!spam.model_version.is_empty());
    assert!(!spam.check_id.is_empty());
    assert_eq!(spam.external_id, "wp-comment-17");
    assert!(!spam.degraded);

    let mut req = check_req(HAM);
    req.external_id = "wp-comment-18".into();
    let ham = check(&mut client, req).await;
    assert_eq!(verdict(&ham), pb::Verdict::Accept, "{ham:?}");
    assert!(ham.spam_probability < 0.5, "{ham:?}");
    assert!(!ham.discard);
    assert_eq!(ham.external_id, "wp-comment-18");
    assert_eq!(ham.model_version, spam.model_version);
    assert!(!ham.degraded);

    let mut ids = HashSet::new();
    ids.insert(spam.check_id.clone());
    ids.insert(ham.check_id.clone());
    for i in 0..8 {
        let r = check(&mut client, check_req(&format!("{HAM} {i}"))).await;
        assert!(!r.check_id.is_empty());
        assert!(ids.insert(r.check_id.clone()), "duplicate {}", r.check_id);
        assert!(r.external_id.is_empty(), "nothing to echo: {r:?}");
    }
}

#[tokio::test]
async fn check_batch_answers_in_request_order() {
    let server = TestServer::start_known().await;
    let mut client = server.client().await;
    let contents = [SPAM, HAM, SPAMS[3]];
    let requests = contents
        .iter()
        .enumerate()
        .map(|(i, c)| pb::CheckRequest {
            external_id: format!("item-{i}"),
            ..check_req(c)
        })
        .collect();
    let resp = client
        .check_batch(pb::CheckBatchRequest { requests })
        .await
        .expect("batch ok")
        .into_inner();
    assert_eq!(resp.responses.len(), 3);
    let ids: Vec<&str> = resp
        .responses
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids, ["item-0", "item-1", "item-2"]);
    let verdicts: Vec<pb::Verdict> = resp.responses.iter().map(verdict).collect();
    assert_eq!(
        verdicts,
        [
            pb::Verdict::Reject,
            pb::Verdict::Accept,
            pb::Verdict::Reject
        ]
    );
    let checks: HashSet<&str> = resp.responses.iter().map(|r| r.check_id.as_str()).collect();
    assert_eq!(checks.len(), 3, "check ids are unique");
}

#[tokio::test]
async fn honeypot_rejects_for_discard_and_links_hold() {
    let server = TestServer::start_known().await;
    let mut client = server.client().await;

    let mut req = check_req(HAM);
    req.client = Some(pb::Client {
        honeypot: "http://bot.example".into(),
        ..Default::default()
    });
    let r = check(&mut client, req).await;
    assert_eq!(verdict(&r), pb::Verdict::Reject, "{r:?}");
    assert!(r.discard, "{r:?}");
    assert!(r.spam_probability > 0.5, "{r:?}");
    assert!(
        r.reasons
            .iter()
            .any(|x| kind(x) == pb::ReasonKind::Rule && x.label == "rule:honeypot"),
        "{r:?}"
    );

    // The text alone is accepted; four links (policy.max_links = 3) hold it.
    let plain = check(&mut client, check_req(HAM)).await;
    assert_eq!(verdict(&plain), pb::Verdict::Accept);
    let linky = format!(
        "{HAM} http://a.example.com http://b.example.com http://c.example.com http://d.example.com"
    );
    let r = check(&mut client, check_req(&linky)).await;
    assert_ne!(verdict(&r), pb::Verdict::Accept, "{r:?}");
    assert!(
        r.reasons
            .iter()
            .any(|x| kind(x) == pb::ReasonKind::Rule && x.label.starts_with("rule:too-many-links")),
        "{r:?}"
    );
    assert!(!r.discard, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Input limits.

fn limited_settings() -> Settings {
    let mut s = common::known_site_settings();
    s.limits.max_content_bytes = 1024;
    s.limits.max_field_bytes = 64;
    s.limits.max_batch = 5;
    s.limits.max_message_bytes = 64 << 10;
    s
}

type Setter = fn(&mut pb::CheckRequest, String);

fn comment_mut(r: &mut pb::CheckRequest) -> &mut pb::Comment {
    r.comment.get_or_insert_with(Default::default)
}

fn client_mut(r: &mut pb::CheckRequest) -> &mut pb::Client {
    r.client.get_or_insert_with(Default::default)
}

const FIELDS: [(&str, Setter); 11] = [
    ("comment.author_name", |r, v| comment_mut(r).author_name = v),
    ("comment.author_email", |r, v| {
        comment_mut(r).author_email = v
    }),
    ("comment.author_url", |r, v| comment_mut(r).author_url = v),
    ("comment.parent_id", |r, v| comment_mut(r).parent_id = v),
    ("comment.language", |r, v| comment_mut(r).language = v),
    ("post.permalink", |r, v| {
        r.post.get_or_insert_with(Default::default).permalink = v
    }),
    ("client.ip", |r, v| client_mut(r).ip = v),
    ("client.user_agent", |r, v| client_mut(r).user_agent = v),
    ("client.referrer", |r, v| client_mut(r).referrer = v),
    ("client.honeypot", |r, v| client_mut(r).honeypot = v),
    ("external_id", |r, v| r.external_id = v),
];

#[tokio::test]
async fn every_input_limit_is_invalid_argument_naming_the_field() {
    let server = TestServer::start(limited_settings()).await;
    let mut client = server.client().await;

    assert_invalid(client.check(check_req("")).await, "comment.content");
    assert_invalid(client.check(check_req(" \t\n  ")).await, "comment.content");
    assert_invalid(client.check(pb::CheckRequest::default()).await, "comment");
    // Content: exactly at the limit is fine, one byte over is not.
    let at_limit = "a".repeat(1024);
    client
        .check(check_req(&at_limit))
        .await
        .expect("content at the limit is accepted");
    assert_invalid(
        client.check(check_req(&"a".repeat(1025))).await,
        "comment.content",
    );

    for (field, set) in FIELDS {
        // 64 bytes is at the limit and accepted (except the IP, which must parse).
        if field != "client.ip" {
            let mut ok = check_req(HAM);
            set(&mut ok, "x".repeat(64));
            client
                .check(ok)
                .await
                .unwrap_or_else(|s| panic!("{field} at the limit should pass: {s:?}"));
        }
        let mut req = check_req(HAM);
        set(&mut req, "x".repeat(65));
        assert_invalid(client.check(req).await, field);
    }

    for bad_ip in ["not-an-ip", "999.1.1.1", "203.0.113.5/24"] {
        assert_invalid(client.check(check_from(HAM, bad_ip)).await, "client.ip");
    }
    for good_ip in ["203.0.113.5", "2001:db8::1", " 198.51.100.7 "] {
        client
            .check(check_from(HAM, good_ip))
            .await
            .unwrap_or_else(|s| panic!("{good_ip:?} is an address: {s:?}"));
    }
}

#[tokio::test]
async fn batch_limits_are_invalid_argument_naming_the_item() {
    let server = TestServer::start(limited_settings()).await;
    let mut client = server.client().await;
    let batch = |n: usize| pb::CheckBatchRequest {
        requests: (0..n).map(|i| check_req(&format!("{HAM} {i}"))).collect(),
    };

    let five = client.check_batch(batch(5)).await.expect("5 is the limit");
    assert_eq!(five.into_inner().responses.len(), 5);
    assert_invalid(client.check_batch(batch(6)).await, "requests");
    assert_invalid(client.check_batch(batch(0)).await, "requests");

    let mut bad = batch(4);
    bad.requests[2] = check_req("   ");
    assert_invalid(client.check_batch(bad).await, "requests[2].comment.content");

    let mut bad = batch(4);
    bad.requests[1].comment = None;
    assert_invalid(client.check_batch(bad).await, "requests[1].comment");

    let mut bad = batch(3);
    comment_mut(&mut bad.requests[2]).author_url = "u".repeat(65);
    assert_invalid(
        client.check_batch(bad).await,
        "requests[2].comment.author_url",
    );

    let mut bad = batch(3);
    bad.requests[0] = check_from(HAM, "nope");
    assert_invalid(client.check_batch(bad).await, "requests[0].client.ip");
}

#[tokio::test]
async fn a_message_over_max_message_bytes_is_invalid_argument() {
    let server = TestServer::start(limited_settings()).await;
    let mut client = server.client().await;
    // 100 KiB against a 64 KiB message limit: tonic's decoder refuses it before the app sees it.
    let err = client
        .check(check_req(&"a".repeat(100 << 10)))
        .await
        .expect_err("a message over the limit is refused");
    // tonic says OUT_OF_RANGE; like any other bad input it is INVALID_ARGUMENT, with tonic's
    // message giving the size and the limit.
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("too large"), "{err:?}");
    assert!(err.message().contains("65536"), "{err:?}");
    // The connection is still usable afterwards.
    let r = check(&mut client, check_req(HAM)).await;
    assert_eq!(verdict(&r), pb::Verdict::Accept);
}

// ---------------------------------------------------------------------------------------------
// Authentication.

#[tokio::test]
async fn api_keys_are_required_once_a_site_has_one() {
    let mut settings = common::known_site_settings();
    settings.sites.insert(
        "blog".into(),
        SiteSettings {
            key_sha256: vec![hash_key("s3cret")],
            ..Default::default()
        },
    );
    let server = TestServer::start(settings).await;
    let mut client = server.client().await;

    let s = client.check(check_req(HAM)).await.expect_err("no key");
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    for header in [
        "Bearer wrong",
        "Basic x",
        "Bearer ",
        "s3cret",
        "Bearer s3cret2",
    ] {
        let s = client
            .check(with_auth(check_req(HAM), header))
            .await
            .expect_err(header);
        assert_eq!(s.code(), Code::Unauthenticated, "{header}: {s:?}");
    }
    let batch = pb::CheckBatchRequest {
        requests: vec![check_req(HAM)],
    };
    let s = client
        .check_batch(with_auth(batch.clone(), "Bearer wrong"))
        .await
        .expect_err("wrong key");
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");

    for header in ["Bearer s3cret", "bearer s3cret"] {
        let r = client
            .check(with_auth(check_req(SPAM), header))
            .await
            .unwrap_or_else(|s| panic!("{header}: {s:?}"))
            .into_inner();
        assert_eq!(verdict(&r), pb::Verdict::Reject);
    }
    let r = client
        .check_batch(with_auth(batch, "Bearer s3cret"))
        .await
        .expect("the right key")
        .into_inner();
    assert_eq!(r.responses.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Health, reflection, shutdown.

#[tokio::test]
async fn health_says_serving_and_shutdown_ends_the_server() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let server = TestServer::start_known().await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "hamgate.v1.CommentFilter"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("{service:?}: {s:?}"))
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let s = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(s.code(), Code::NotFound);

    // Idle: the last call has finished (the connection stays open).
    let stopped = server.stop(Duration::from_secs(5)).await;
    match stopped {
        Ok(Ok(())) => {}
        other => panic!("serve should return Ok within 5 s: {other:?}"),
    }
    // Nothing listens any more.
    let mut client = CommentFilterClient::new(channel);
    assert!(client.check(check_req(HAM)).await.is_err());
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let server = TestServer::start_known().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection answers")
        .into_inner();
    let msg = stream
        .message()
        .await
        .expect("a response")
        .expect("one message");
    let names: Vec<String> = match msg.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    for want in ["hamgate.v1.CommentFilter", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Reputation (embedded store).

/// Scores `content` from `ip` as a test call, which reads reputation but never records any.
async fn probe(
    client: &mut CommentFilterClient<tonic::transport::Channel>,
    content: &str,
    ip: &str,
) -> pb::CheckResponse {
    let mut req = check_from(content, ip);
    req.is_test = true;
    check(client, req).await
}

fn reputation_reason<'a>(r: &'a pb::CheckResponse, label: &str) -> Option<&'a pb::Reason> {
    r.reasons
        .iter()
        .find(|x| kind(x) == pb::ReasonKind::Reputation && x.label == label)
}

/// Polls (every 20 ms, at most 2 s) until `ip`'s reputation on a probe of `NEUTRAL` shows
/// `spam_count` recorded spams; returns that probe.
async fn await_ip_spam(
    client: &mut CommentFilterClient<tonic::transport::Channel>,
    ip: &str,
    spam_count: f64,
) -> pb::CheckResponse {
    // policy: weight(ip) * ln((spam + 0.5) / (ham + 0.5)), capped at 2.5.
    let want = (0.6 * ((spam_count + 0.5) / 0.5f64).ln()).min(2.5);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let r = probe(client, NEUTRAL, ip).await;
        if let Some(reason) = reputation_reason(&r, "reputation:ip") {
            if (reason.log_odds - want).abs() < 1e-3 {
                return r;
            }
        }
        if Instant::now() > deadline {
            panic!("{ip}'s reputation did not reach {spam_count} spams (ip log-odds {want:.4}) within 2 s: {r:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rejected_spam_raises_the_senders_reputation() {
    let server = TestServer::start_known().await;
    let mut client = server.client().await;
    let spammer = "203.0.113.50";
    let fresh = "198.51.100.77";

    let before = probe(&mut client, NEUTRAL, spammer).await;
    let baseline = probe(&mut client, NEUTRAL, fresh).await;
    assert_eq!(before.spam_probability, baseline.spam_probability);
    assert_ne!(
        verdict(&baseline),
        pb::Verdict::Reject,
        "the probe must be borderline: {baseline:?}"
    );
    assert!(
        baseline.spam_probability > 0.01 && baseline.spam_probability < 0.99,
        "the probe must not be saturated: {baseline:?}"
    );

    for spam in SPAMS {
        let r = check(&mut client, check_from(spam, spammer)).await;
        assert_eq!(verdict(&r), pb::Verdict::Reject, "{spam}: {r:?}");
    }

    let after = await_ip_spam(&mut client, spammer, SPAMS.len() as f64).await;
    let fresh_now = probe(&mut client, NEUTRAL, fresh).await;
    assert_eq!(fresh_now.spam_probability, baseline.spam_probability);
    assert!(
        reputation_reason(&fresh_now, "reputation:ip").is_none(),
        "{fresh_now:?}"
    );
    assert!(
        after.spam_probability > fresh_now.spam_probability + 0.05,
        "history should push the borderline comment towards spam: {} vs {}",
        after.spam_probability,
        fresh_now.spam_probability
    );
    let ip = reputation_reason(&after, "reputation:ip").expect("an ip reason");
    assert!(ip.log_odds > 0.0);
    // The /24 carries weaker evidence than the exact address.
    let prefix = reputation_reason(&after, "reputation:ip-prefix").expect("a prefix reason");
    assert!(
        prefix.log_odds > 0.0 && prefix.log_odds < ip.log_odds,
        "{after:?}"
    );
    // A neighbour in the same /24 inherits only the prefix evidence.
    let neighbour = probe(&mut client, NEUTRAL, "203.0.113.51").await;
    assert!(reputation_reason(&neighbour, "reputation:ip").is_none());
    assert!(reputation_reason(&neighbour, "reputation:ip-prefix").is_some());
    assert!(
        neighbour.spam_probability > fresh_now.spam_probability
            && neighbour.spam_probability < after.spam_probability
    );
}

#[tokio::test]
async fn test_calls_do_not_change_reputation() {
    let server = TestServer::start_known().await;
    let mut client = server.client().await;
    let tester = "192.0.2.10";
    let fresh = "198.51.100.77";
    let witness = "100.64.7.9";

    for spam in SPAMS {
        let mut req = check_from(spam, tester);
        req.is_test = true;
        let r = check(&mut client, req).await;
        // Scored as usual.
        assert_eq!(verdict(&r), pb::Verdict::Reject, "{spam}: {r:?}");
    }
    // A real spam from another network, sent after the test calls: once its recording shows,
    // any recording the test calls had spawned before it would have run too.
    let r = check(&mut client, check_from(SPAMS[0], witness)).await;
    assert_eq!(verdict(&r), pb::Verdict::Reject);
    await_ip_spam(&mut client, witness, 1.0).await;

    let from_tester = probe(&mut client, NEUTRAL, tester).await;
    let from_fresh = probe(&mut client, NEUTRAL, fresh).await;
    assert_eq!(from_tester.spam_probability, from_fresh.spam_probability);
    assert!(
        !from_tester
            .reasons
            .iter()
            .any(|x| kind(x) == pb::ReasonKind::Reputation),
        "{from_tester:?}"
    );
    // The content fingerprint of the test spam was not recorded either; the witness's was.
    let mut req = check_from(SPAMS[1], fresh);
    req.is_test = true;
    let r = check(&mut client, req).await;
    assert!(
        reputation_reason(&r, "reputation:content").is_none(),
        "{r:?}"
    );
    let mut req = check_from(SPAMS[0], fresh);
    req.is_test = true;
    let r = check(&mut client, req).await;
    assert!(
        reputation_reason(&r, "reputation:content").is_some(),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The real binary.

const BIN: &str = env!("CARGO_BIN_EXE_hamgate");

fn hamgate_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("HAMGATE_LOG", "info");
    for (k, _) in std::env::vars() {
        if k.starts_with("HAMGATE_") && k != "HAMGATE_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Waits at most `within` for the child to exit; returns its output, or kills it and panics.
async fn wait_exit(guard: &mut ChildGuard, within: Duration) -> std::process::Output {
    let deadline = Instant::now() + within;
    loop {
        let child = guard.0.as_mut().expect("a child");
        if child.try_wait().expect("try_wait").is_some() {
            let child = guard.0.take().expect("a child");
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let mut child = guard.0.take().expect("a child");
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "hamgate did not exit within {within:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_binary_serves_and_stops_gracefully_on_sigterm() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let spawned = Instant::now();
    let mut guard = ChildGuard(Some(
        hamgate_cmd(&["serve", "--grpc-addr", &addr])
            .spawn()
            .expect("hamgate starts"),
    ));
    let pid = guard.0.as_ref().expect("child").id();

    // Bounded retries until the health check answers SERVING.
    let url = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let channel = loop {
        if let Some(status) = guard
            .0
            .as_mut()
            .expect("child")
            .try_wait()
            .expect("try_wait")
        {
            let out = guard
                .0
                .take()
                .expect("child")
                .wait_with_output()
                .expect("output");
            panic!(
                "hamgate exited early ({status}); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let endpoint = tonic::transport::Endpoint::from_shared(url.clone()).expect("url");
        if let Some(c) = common::serving_channel(endpoint).await {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "hamgate did not answer a health check within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "hamgate serve: spawn to first SERVING health check: {:?}",
        spawned.elapsed()
    );

    let mut client = CommentFilterClient::new(channel);
    let r = check(&mut client, check_req(SPAM)).await;
    assert_eq!(verdict(&r), pb::Verdict::Reject);
    assert!(!r.model_version.is_empty());

    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let out = wait_exit(&mut guard, Duration::from_secs(5)).await;
    assert!(
        out.status.success(),
        "exit {:?}; stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    drop(client);
}

#[tokio::test]
async fn the_binary_refuses_an_open_service_off_loopback() {
    let addr = format!("0.0.0.0:{}", free_port());
    let mut guard = ChildGuard(Some(
        hamgate_cmd(&["serve", "--grpc-addr", &addr])
            .spawn()
            .expect("hamgate starts"),
    ));
    let out = wait_exit(&mut guard, Duration::from_secs(10)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must refuse; stderr:\n{stderr}");
    assert!(stderr.contains("--insecure-no-auth"), "stderr:\n{stderr}");
}
