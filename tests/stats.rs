//! Stats end to end: a server in-process with a manual stats clock, checks and feedback through
//! the real gRPC client at known times across minute and hour boundaries, then the stats API,
//! `GetStats`, `/metrics` and the health endpoints through a real HTTP client. The Redis test
//! runs two servers on one real `redis-server` and sees each one's counts from the other.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use common::{check_req, http_get, TestServer, HAM, SPAM};
use hamgate::config::{hash_key, ReputationBackend, Settings, SiteSettings};
use hamgate::grpc::pb;
use hamgate::stats::ManualClock;
use serde_json::Value;
use tonic::Request;

/// A UTC midnight.
const T0: u64 = 1_795_651_200;
const BLOG_KEY: &str = "blog-key";
const SHOP_KEY: &str = "shop-key";
const ADMIN_KEY: &str = "admin-key";

fn with_key<T>(msg: T, key: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii metadata"),
    );
    r
}

fn keyed_settings(dir: &std::path::Path) -> Settings {
    let mut s = common::known_site_settings();
    s.feedback.label_log = dir.join("labels.log");
    s.admin_key_sha256 = Some(hash_key(ADMIN_KEY));
    s.sites.insert(
        "blog".into(),
        SiteSettings {
            key_sha256: vec![hash_key(BLOG_KEY)],
            // One link holds a comment on this site: a sure way to get a HOLD.
            max_links: Some(0),
            ..SiteSettings::default()
        },
    );
    s.sites.insert(
        "shop".into(),
        SiteSettings {
            key_sha256: vec![hash_key(SHOP_KEY)],
            ..SiteSettings::default()
        },
    );
    s
}

const HELD: &str = "This song is amazing, I still listen to it every day http://lyrics.example.com";

type Client = pb::comment_filter_client::CommentFilterClient<tonic::transport::Channel>;

async fn check(client: &mut Client, key: &str, content: &str) -> pb::CheckResponse {
    client
        .check(with_key(check_req(content), key))
        .await
        .expect("check")
        .into_inner()
}

async fn label(client: &mut Client, key: &str, check_id: &str, spam: bool) {
    let label = if spam {
        pb::Label::Spam
    } else {
        pb::Label::Ham
    };
    client
        .feedback(with_key(
            pb::FeedbackRequest {
                target: Some(pb::feedback_request::Target::CheckId(check_id.into())),
                label: label as i32,
                ..Default::default()
            },
            key,
        ))
        .await
        .expect("feedback");
}

fn timestamp(secs: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: secs as i64,
        nanos: 0,
    }
}

fn seconds(secs: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: secs,
        nanos: 0,
    }
}

fn verdict(r: &pb::CheckResponse) -> pb::Verdict {
    pb::Verdict::try_from(r.verdict).unwrap_or(pb::Verdict::Unspecified)
}

/// The counted fields of a bucket or the totals, in a fixed order.
fn counts(v: &Value) -> [u64; 9] {
    let f = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
    };
    [
        f("checks"),
        f("accept"),
        f("hold"),
        f("reject"),
        f("degraded"),
        f("feedback_spam"),
        f("feedback_ham"),
        f("false_positives"),
        f("missed_spam"),
    ]
}

#[tokio::test]
async fn stats_api_counts_a_known_sequence_of_checks_and_feedback_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3540);
    let server = TestServer::start_with_clock(keyed_settings(dir.path()), clock.clone()).await;
    let mut client = server.client().await;

    // Minute 59 of hour 0: accept, reject, hold.
    let ham1 = check(&mut client, BLOG_KEY, HAM).await;
    let spam1 = check(&mut client, BLOG_KEY, SPAM).await;
    clock.set(T0 + 3599);
    let held = check(&mut client, BLOG_KEY, HELD).await;
    assert_eq!(verdict(&ham1), pb::Verdict::Accept, "{ham1:?}");
    assert_eq!(verdict(&spam1), pb::Verdict::Reject, "{spam1:?}");
    assert_eq!(verdict(&held), pb::Verdict::Hold, "{held:?}");

    // Minute 0 of hour 1: two accepts and a reject on the blog, one check on the shop, and a
    // test check, which counts nowhere.
    clock.set(T0 + 3600);
    let ham2 = check(&mut client, BLOG_KEY, HAM).await;
    let ham3 = check(&mut client, BLOG_KEY, HAM).await;
    let spam2 = check(&mut client, BLOG_KEY, SPAM).await;
    assert_eq!(verdict(&ham2), pb::Verdict::Accept);
    assert_eq!(verdict(&ham3), pb::Verdict::Accept, "{ham3:?}");
    assert_eq!(verdict(&spam2), pb::Verdict::Reject);
    check(&mut client, SHOP_KEY, SPAM).await;
    let mut test = check_req(HAM);
    test.is_test = true;
    client.check(with_key(test, BLOG_KEY)).await.unwrap();

    // Minute 1 of hour 1: feedback. HAM for the held check is a false positive; SPAM for an
    // accepted one is missed spam; SPAM for a rejected one is just a label; HAM sent with the
    // whole comment (no check id) is a label, not a false positive.
    clock.set(T0 + 3661);
    label(&mut client, BLOG_KEY, &held.check_id, false).await;
    label(&mut client, BLOG_KEY, &ham3.check_id, true).await;
    label(&mut client, BLOG_KEY, &spam2.check_id, true).await;
    client
        .feedback(with_key(
            pb::FeedbackRequest {
                target: Some(pb::feedback_request::Target::Check(check_req(HAM))),
                label: pb::Label::Ham as i32,
                ..Default::default()
            },
            BLOG_KEY,
        ))
        .await
        .unwrap();

    // Per minute, from minute 59 of hour 0 to minute 2 of hour 1.
    let from = T0 + 3540;
    let to = T0 + 3720;
    let r = http_get(
        server.http_addr,
        &format!("/api/v1/stats?from={from}&to={to}&step=minute"),
        Some(BLOG_KEY),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert_eq!(j["site"], "blog");
    assert_eq!(j["sites"], serde_json::json!(["blog"]));
    assert_eq!(
        (j["from"].as_u64(), j["to"].as_u64()),
        (Some(from), Some(to))
    );
    assert_eq!(j["step"], 60);
    assert!(
        j["model"]["version"]
            .as_str()
            .is_some_and(|v| v.len() == 12),
        "{j}"
    );
    assert!(
        j["model"]["accept_below"].as_f64().unwrap() < j["model"]["reject_at"].as_f64().unwrap()
    );
    assert!(j["model"]["created_at"].as_u64().is_some());
    let b = j["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 3);
    let starts: Vec<u64> = b.iter().map(|x| x["start"].as_u64().unwrap()).collect();
    assert_eq!(starts, vec![T0 + 3540, T0 + 3600, T0 + 3660]);
    //                      checks acc hold rej deg fs fh fp ms
    assert_eq!(counts(&b[0]), [3, 1, 1, 1, 0, 0, 0, 0, 0]);
    assert_eq!(counts(&b[1]), [3, 2, 0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(counts(&b[2]), [0, 0, 0, 0, 0, 2, 2, 1, 1]);
    let lat = &b[0]["latency_ms"];
    let (p50, p90, p99) = (
        lat["p50"].as_f64().unwrap(),
        lat["p90"].as_f64().unwrap(),
        lat["p99"].as_f64().unwrap(),
    );
    assert!(
        p50 > 0.0 && p50 <= p90 && p90 <= p99 && p99 < 5000.0,
        "{lat}"
    );
    assert!(b[2]["latency_ms"].is_null());
    assert_eq!(counts(&j["totals"]), [6, 3, 1, 2, 0, 2, 2, 1, 1]);
    assert!((j["totals"]["spam_rate"].as_f64().unwrap() - 2.0 / 6.0).abs() < 1e-9);
    assert!(j["totals"]["latency_ms"]["p99"].as_f64().is_some());

    // Per hour: hour 0 has the first three checks, hour 1 the rest and the feedback.
    let j = http_get(
        server.http_addr,
        &format!("/api/v1/stats?from={T0}&to={}&step=3600", T0 + 7200),
        Some(BLOG_KEY),
    )
    .await
    .json();
    let b = j["buckets"].as_array().unwrap();
    assert_eq!(counts(&b[0]), [3, 1, 1, 1, 0, 0, 0, 0, 0]);
    assert_eq!(counts(&b[1]), [3, 2, 0, 1, 0, 2, 2, 1, 1]);

    // Per day, with the default `to` (the end of the current second, by the injected clock).
    let j = http_get(
        server.http_addr,
        &format!("/api/v1/stats?from={T0}&step=day"),
        Some(BLOG_KEY),
    )
    .await
    .json();
    assert_eq!(j["to"], T0 + 3662);
    assert_eq!(j["buckets"].as_array().unwrap().len(), 1);
    assert_eq!(counts(&j["buckets"][0]), [6, 3, 1, 2, 0, 2, 2, 1, 1]);

    // The defaults: the last hour, per minute, the caller's site.
    let j = http_get(server.http_addr, "/api/v1/stats", Some(BLOG_KEY))
        .await
        .json();
    assert_eq!(j["step"], 60);
    assert_eq!(j["to"], T0 + 3662);
    assert_eq!(j["buckets"].as_array().unwrap().len(), 61);
    assert_eq!(counts(&j["totals"]), [6, 3, 1, 2, 0, 2, 2, 1, 1]);

    // Access: the admin key sees all sites together, or any one.
    let j = http_get(
        server.http_addr,
        &format!("/api/v1/stats?from={from}&to={to}"),
        Some(ADMIN_KEY),
    )
    .await
    .json();
    assert!(j["site"].is_null(), "{j}");
    assert_eq!(j["sites"], serde_json::json!(["blog", "shop"]));
    assert_eq!(counts(&j["totals"])[0], 7);
    assert_eq!(counts(&j["buckets"][1]), [4, 2, 0, 2, 0, 0, 0, 0, 0]);
    let j = http_get(
        server.http_addr,
        &format!("/api/v1/stats?site=shop&from={from}&to={to}"),
        Some(ADMIN_KEY),
    )
    .await
    .json();
    assert_eq!(j["site"], "shop");
    assert_eq!(counts(&j["totals"]), [1, 0, 0, 1, 0, 0, 0, 0, 0]);
    // A site key sees its own site only.
    let r = http_get(server.http_addr, "/api/v1/stats?site=shop", Some(BLOG_KEY)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("shop"));
    let r = http_get(server.http_addr, "/api/v1/stats?site=blog", Some(BLOG_KEY)).await;
    assert_eq!(r.status, 200);
    let r = http_get(server.http_addr, "/api/v1/stats", None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = http_get(server.http_addr, "/api/v1/stats", Some("nope")).await;
    assert_eq!(r.status, 401);

    // The same data over gRPC.
    let g = client
        .get_stats(with_key(
            pb::GetStatsRequest {
                start_time: Some(timestamp(from)),
                end_time: Some(timestamp(to)),
                step: Some(seconds(60)),
                ..Default::default()
            },
            BLOG_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.site, "blog");
    assert_eq!(g.buckets.len(), 3);
    // Times are Timestamps and the step a Duration: the range as asked, floored to the step.
    assert_eq!(g.start_time, Some(timestamp(from - from % 60)));
    assert_eq!(g.end_time, Some(timestamp(to)));
    assert_eq!(g.step, Some(seconds(60)));
    assert_eq!(g.buckets[0].start_time, g.start_time);
    assert_eq!(
        g.buckets[1].start_time,
        Some(timestamp(from - from % 60 + 60))
    );
    assert!(g.model.as_ref().unwrap().create_time.is_some());
    let t = g.totals.unwrap();
    assert_eq!(
        [
            t.checks,
            t.accept,
            t.hold,
            t.reject,
            t.degraded,
            t.feedback_spam,
            t.feedback_ham,
            t.false_positives,
            t.missed_spam
        ],
        [6, 3, 1, 2, 0, 2, 2, 1, 1]
    );
    assert!(g.buckets[2].counts.as_ref().unwrap().latency_ms.is_none());
    assert!((g.spam_rate - 2.0 / 6.0).abs() < 1e-9);
    let denied = client
        .get_stats(with_key(
            pb::GetStatsRequest {
                site: "shop".into(),
                ..Default::default()
            },
            BLOG_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let bad = client
        .get_stats(with_key(
            pb::GetStatsRequest {
                step: Some(seconds(61)),
                ..Default::default()
            },
            BLOG_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().starts_with("step: "), "{}", bad.message());
    // Fractions of a second are no step; the range's fields go by their gRPC names.
    for (req, field) in [
        (
            pb::GetStatsRequest {
                step: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 1,
                }),
                ..Default::default()
            },
            "step: ",
        ),
        (
            pb::GetStatsRequest {
                start_time: Some(timestamp(to)),
                end_time: Some(timestamp(from)),
                ..Default::default()
            },
            "start_time: ",
        ),
        (
            pb::GetStatsRequest {
                start_time: Some(prost_types::Timestamp {
                    seconds: -1,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "start_time: ",
        ),
        (
            pb::GetStatsRequest {
                start_time: Some(timestamp(0)),
                ..Default::default()
            },
            "step: ",
        ),
    ] {
        let bad = client.get_stats(with_key(req, BLOG_KEY)).await.unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
        assert!(bad.message().starts_with(field), "{field} {bad:?}");
        assert!(!bad.message().contains("`to`"), "{bad:?}");
    }

    // /metrics: valid exposition text whose counters match the checks made.
    let r = http_get(server.http_addr, "/metrics", None).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = parse_prometheus(&r.body);
    let get = |k: &str| {
        *m.get(k)
            .unwrap_or_else(|| panic!("{k} missing:\n{}", r.body))
    };
    assert_eq!(
        get(r#"hamgate_checks_total{site="blog",verdict="accept"}"#),
        3.0
    );
    assert_eq!(
        get(r#"hamgate_checks_total{site="blog",verdict="hold"}"#),
        1.0
    );
    assert_eq!(
        get(r#"hamgate_checks_total{site="blog",verdict="reject"}"#),
        2.0
    );
    assert_eq!(
        get(r#"hamgate_checks_total{site="shop",verdict="reject"}"#),
        1.0
    );
    assert_eq!(get("hamgate_check_duration_seconds_count"), 7.0);
    assert_eq!(
        get(r#"hamgate_check_duration_seconds_bucket{le="+Inf"}"#),
        7.0
    );
    assert!(get("hamgate_check_duration_seconds_sum") > 0.0);
    assert_eq!(get(r#"hamgate_checks_degraded_total{site="blog"}"#), 0.0);
    assert_eq!(
        get(r#"hamgate_feedback_total{site="blog",label="spam"}"#),
        2.0
    );
    assert_eq!(
        get(r#"hamgate_feedback_total{site="blog",label="ham"}"#),
        2.0
    );
    assert_eq!(get(r#"hamgate_false_positives_total{site="blog"}"#), 1.0);
    assert_eq!(get(r#"hamgate_missed_spam_total{site="blog"}"#), 1.0);
    assert_eq!(get("hamgate_reputation_errors_total"), 0.0);
    let version = j["model"]["version"].as_str().unwrap();
    assert_eq!(
        get(&format!("hamgate_model_info{{version=\"{version}\"}}")),
        1.0
    );

    // Health.
    assert_eq!(
        http_get(server.http_addr, "/healthz", None).await.status,
        200
    );
    let r = http_get(server.http_addr, "/readyz", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop(Duration::from_secs(10)).await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_stats_parameters_are_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let server = TestServer::start_with_clock(keyed_settings(dir.path()), clock).await;
    for (query, field) in [
        ("from=yesterday", "from: "),
        ("to=-5", "to: "),
        ("step=week", "step: "),
        ("step=61", "step: "),
        ("from=200&to=100", "from: "),
        ("from=0&to=1795651200&step=minute", "step: "),
        ("site=%zz", "site: "),
    ] {
        let r = http_get(
            server.http_addr,
            &format!("/api/v1/stats?{query}"),
            Some(BLOG_KEY),
        )
        .await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(e.starts_with(field), "{query}: {e}");
    }
    // Nonsense never panics the server.
    for path in [
        "/api/v1/stats?%",
        "/api/v1/stats?&&==&",
        "/api/v1/stats?from=99999999999999999999999",
        "/nowhere",
    ] {
        let r = http_get(server.http_addr, path, Some(BLOG_KEY)).await;
        assert!(matches!(r.status, 200 | 400 | 404), "{path}: {}", r.status);
    }
    assert_eq!(
        http_get(server.http_addr, "/healthz", None).await.status,
        200
    );
}

#[tokio::test]
async fn the_dashboard_page_is_public_and_locked_to_this_origin() {
    let server = TestServer::start_known().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let r = http_get(server.http_addr, path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    // Open mode (no keys): the open site `default`, without a key.
    let r = http_get(server.http_addr, "/api/v1/stats", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["site"], "default");
    assert_eq!(
        http_get(server.http_addr, "/api/v1/stats?site=other", None)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn metrics_can_have_their_own_address_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = keyed_settings(dir.path());
    settings.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    settings.metrics_key_sha256 = Some(hash_key("scrape"));
    let server = TestServer::start(settings).await;
    let metrics = server.metrics_addr.unwrap();
    assert_eq!(
        http_get(server.http_addr, "/metrics", None).await.status,
        404
    );
    assert_eq!(http_get(metrics, "/metrics", None).await.status, 401);
    assert_eq!(
        http_get(metrics, "/metrics", Some("wrong")).await.status,
        401
    );
    let r = http_get(metrics, "/metrics", Some("scrape")).await;
    assert_eq!(r.status, 200);
    parse_prometheus(&r.body);
    assert_eq!(http_get(metrics, "/readyz", None).await.status, 200);
}

/// Parses Prometheus text exposition format strictly enough to catch a malformed line: every
/// line is a `# HELP name text`, a `# TYPE name kind` (before the metric's samples), another
/// comment, or `name{label="value",...} number`, with escaped label values. Returns every
/// sample keyed by its name and labels as written.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(_)) => assert!(is_name(name), "{line}"),
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(is_name(name), "{line}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line}"
                    );
                    assert!(
                        typed.insert(name.into(), kind.into()).is_none(),
                        "TYPE twice: {line}"
                    );
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.starts_with('#') || line.len() == 1, "{line}");
        assert!(!line.trim().is_empty(), "blank line");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let name = match series.split_once('{') {
            None => series,
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                // label="value" pairs, values with \\, \" and \n escapes.
                let mut rest = labels;
                while !rest.is_empty() {
                    let (lname, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                    assert!(is_name(lname), "{line}");
                    let mut chars = after.char_indices();
                    let mut end = None;
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => {
                                let (_, e) = chars.next().unwrap_or_else(|| panic!("{line}"));
                                assert!(matches!(e, '\\' | '"' | 'n'), "{line}");
                            }
                            '"' => {
                                end = Some(i);
                                break;
                            }
                            _ => {}
                        }
                    }
                    let end = end.unwrap_or_else(|| panic!("unterminated label: {line}"));
                    rest = &after[end + 1..];
                    rest = rest.strip_prefix(',').unwrap_or(rest);
                }
                name
            }
        };
        assert!(is_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "sample before its TYPE: {line}");
        samples.insert(series.to_string(), value);
    }
    samples
}

// ---------------------------------------------------------------------------------------------
// Redis: two replicas, one set of buckets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_replicas_on_one_redis_see_each_others_counts() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = keyed_settings(dir.path());
    settings.reputation.backend = ReputationBackend::Redis;
    settings.reputation.redis_url = Some(format!("redis://127.0.0.1:{}/0", redis.port));
    settings.reputation.secret = Some("stats-test-secret".into());
    let clock = ManualClock::new(T0 + 600);
    let a = TestServer::start_with_clock(settings.clone(), clock.clone()).await;
    let b = TestServer::start_with_clock(settings, clock.clone()).await;
    let mut ca = a.client().await;
    let mut cb = b.client().await;

    let wait_connected = |addr| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if http_get(addr, "/readyz", None).await.status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "not ready with Redis");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_connected(a.http_addr).await;
    wait_connected(b.http_addr).await;

    let r = check(&mut ca, BLOG_KEY, SPAM).await;
    assert!(!r.degraded);
    check(&mut ca, BLOG_KEY, HAM).await;
    check(&mut cb, BLOG_KEY, HAM).await;
    check(&mut cb, SHOP_KEY, HAM).await;

    // Each replica flushes its deltas within about a second; both then show the fleet.
    let query = format!("/api/v1/stats?from={T0}&to={}&step=minute", T0 + 660);
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let j = http_get(server.http_addr, &query, Some(ADMIN_KEY))
                .await
                .json();
            let t = counts(&j["totals"]);
            if t[0] == 4 {
                assert_eq!(t, [4, 3, 0, 1, 0, 0, 0, 0, 0]);
                assert_eq!(j["sites"], serde_json::json!(["blog", "shop"]));
                let minute = &j["buckets"][10];
                assert_eq!(minute["start"], T0 + 600);
                assert_eq!(counts(minute)[0], 4);
                assert!(minute["latency_ms"]["p50"].as_f64().is_some());
                break;
            }
            assert!(t[0] < 4, "{j}");
            assert!(Instant::now() < deadline, "counts never reached 4: {j}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let blog = http_get(b.http_addr, &query, Some(BLOG_KEY)).await.json();
    assert_eq!(counts(&blog["totals"])[0], 3);

    // Redis gone: checks still work (degraded), and readiness says so.
    drop(redis);
    let r = check(&mut ca, BLOG_KEY, HAM).await;
    assert!(r.degraded);
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(a.http_addr, "/readyz", None).await.status != 503 {
        assert!(
            Instant::now() < deadline,
            "readyz stayed 200 with Redis down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(a.http_addr, "/healthz", None).await.status, 200);
}
