//! The dashboard in a real browser: the real `hamgate` binary serves it, the test makes checks
//! and feedback over gRPC, and `tests/browser/dashboard.mjs` drives the system's headless
//! Chromium (through playwright-core) at desktop and phone widths and asserts that the page
//! shows exactly those figures, draws its charts, handles keys (401, 403, `#key=`), stays on
//! its own origin and logs no error or CSP violation.
//!
//! Needs `node`, `/usr/bin/chromium` and `tests/browser/node_modules` (`scripts/test`
//! installs all three). The screenshot goes to the target directory; with
//! `UPDATE_SCREENSHOT=1` it is written to `docs/dashboard.png`, the one the README shows.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{free_port, ChildGuard};
use common::{check_from, http_get, HAM, SPAM};
use hamgate::config::hash_key;
use hamgate::grpc::pb;
use hamgate::grpc::pb::comment_filter_client::CommentFilterClient;
use tonic::transport::Channel;
use tonic::Request;

const BIN: &str = env!("CARGO_BIN_EXE_hamgate");
const SITE: &str = "blog";
/// A second site with no traffic, so the admin's selector has a choice and the site key a
/// site it may not see.
const OTHER_SITE: &str = "shop";
const SITE_KEY: &str = "blog-key-for-the-dashboard-test";
const OTHER_KEY: &str = "shop-key-for-the-dashboard-test";
const ADMIN_KEY: &str = "admin-key-for-the-dashboard-test";

/// Comments a person wrote (the built-in model accepts these).
const HAMS: [&str; 5] = [
    HAM,
    "Great explanation of the chorus, I never noticed the key change before",
    "My daughter loves this song, we sing it in the car every morning",
    "The drummer is incredible in the live version from 2012",
    "Thank you for the lyrics, I finally understand the second verse",
];
/// Spam in the style of the YouTube Spam Collection (the built-in model rejects these).
const SPAMS: [&str; 4] = [
    SPAM,
    "CHECK OUT MY CHANNEL!!! subscribe for free iphone giveaway http://bit.ly/free-iphone",
    "Make $500 a day from home, click here http://cash-now.example.biz and subscribe",
    "Please subscribe to my channel, I will subscribe back! http://www.youtube.com/user/subforsub",
];

fn with_key<T>(msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {SITE_KEY}")
            .parse()
            .expect("ascii metadata"),
    );
    req
}

/// Starts `hamgate serve` with two sites and an admin key, on free ports, and waits until
/// `/readyz` says ready.
async fn start_hamgate(dir: &Path) -> (ChildGuard, String, std::net::SocketAddr) {
    let config = dir.join("hamgate.toml");
    std::fs::write(
        &config,
        format!(
            "admin_key_sha256 = \"{}\"\n\n[sites.{SITE}]\nkey_sha256 = [\"{}\"]\n\n[sites.{OTHER_SITE}]\nkey_sha256 = [\"{}\"]\n",
            hash_key(ADMIN_KEY),
            hash_key(SITE_KEY),
            hash_key(OTHER_KEY),
        ),
    )
    .expect("write the config");
    let grpc = format!("127.0.0.1:{}", free_port());
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("HAMGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir)
        .env("HAMGATE_GRPC_ADDR", &grpc)
        .env("HAMGATE_HTTP_ADDR", http.to_string())
        .env("HAMGATE_LABEL_LOG", dir.join("labels.log"))
        .env("HAMGATE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut guard = ChildGuard(Some(cmd.spawn().expect("hamgate starts")));

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = guard.0.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("hamgate exited before it was ready: {status}");
        }
        let ready = tokio::time::timeout(Duration::from_secs(2), async {
            tokio::net::TcpStream::connect(http).await.ok()?;
            Some(http_get(http, "/readyz", None).await.status)
        })
        .await
        .ok()
        .flatten();
        if ready == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hamgate's /readyz did not answer 200 within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (guard, format!("http://{grpc}"), http)
}

/// Figures the test made, as the page should show them.
#[derive(Debug, Default)]
struct Made {
    accept: u64,
    hold: u64,
    reject: u64,
    false_positives: u64,
    missed_spam: u64,
    feedback_spam: u64,
    feedback_ham: u64,
    model_version: String,
}

impl Made {
    fn checks(&self) -> u64 {
        self.accept + self.hold + self.reject
    }
}

/// Checks every comment once, then labels one rejected comment ham (a false positive) and one
/// accepted comment spam (missed spam), as a moderator would.
async fn make_traffic(grpc_url: &str) -> Made {
    let channel = Channel::from_shared(grpc_url.to_string())
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("the gRPC client connects");
    let mut client = CommentFilterClient::new(channel);
    let mut made = Made::default();
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    let texts = HAMS.iter().chain(SPAMS.iter());
    for (i, text) in texts.enumerate() {
        let ip = format!("198.51.100.{}", 10 + i);
        let r = client
            .check(with_key(check_from(text, &ip)))
            .await
            .unwrap_or_else(|s| panic!("check failed: {s:?}"))
            .into_inner();
        made.model_version = r.model_version.clone();
        match pb::Verdict::try_from(r.verdict).expect("a known verdict") {
            pb::Verdict::Accept => {
                made.accept += 1;
                accepted.push(r.check_id);
            }
            pb::Verdict::Hold => made.hold += 1,
            pb::Verdict::Reject => {
                made.reject += 1;
                rejected.push(r.check_id);
            }
            other => panic!("unexpected verdict {other:?}"),
        }
    }
    assert!(
        !accepted.is_empty() && !rejected.is_empty(),
        "the test needs both verdicts on the page: {made:?}"
    );
    for (check_id, label) in [
        (&rejected[0], pb::Label::Ham),
        (&accepted[0], pb::Label::Spam),
    ] {
        client
            .feedback(with_key(pb::FeedbackRequest {
                target: Some(pb::feedback_request::Target::CheckId(check_id.clone())),
                label: label as i32,
                moderator_id: "dashboard-test".into(),
                ..Default::default()
            }))
            .await
            .unwrap_or_else(|s| panic!("feedback failed: {s:?}"));
    }
    made.false_positives = 1;
    made.missed_spam = 1;
    made.feedback_ham = 1;
    made.feedback_spam = 1;
    made
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Says what is missing and how to get it, instead of a bare "No such file".
fn browser_prerequisites() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "`node` is missing: run scripts/test (it installs nodejs, chromium and playwright-core)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/test (it installs Debian's chromium)"
    );
    assert!(
        repo()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "tests/browser/node_modules/playwright-core is missing: run scripts/test (npm ci --prefix tests/browser)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_checks_made_in_a_real_browser() {
    browser_prerequisites();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_hamgate, grpc_url, http) = start_hamgate(dir.path()).await;
    let made = make_traffic(&grpc_url).await;

    // The API first, so a wrong figure is pinned on the server or on the page.
    // `to` is exclusive: one second past now, so the checks of this very second count.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let api = http_get(
        http,
        &format!("/api/v1/stats?from={}&to={}", now - 3600, now + 1),
        Some(SITE_KEY),
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.body);
    let report = api.json();
    let totals = &report["totals"];
    for (field, want) in [
        ("checks", made.checks()),
        ("accept", made.accept),
        ("hold", made.hold),
        ("reject", made.reject),
        ("false_positives", made.false_positives),
        ("missed_spam", made.missed_spam),
    ] {
        assert_eq!(
            totals[field].as_u64(),
            Some(want),
            "/api/v1/stats totals.{field} (from {} to {}): {totals}",
            report["from"],
            report["to"]
        );
    }

    let shot = match std::env::var("UPDATE_SCREENSHOT") {
        Ok(v) if v == "1" => repo().join("docs/dashboard.png"),
        _ => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png"),
    };
    let expect = serde_json::json!({
        "site": SITE,
        "checks": made.checks(),
        "accept": made.accept,
        "hold": made.hold,
        "reject": made.reject,
        "false_positives": made.false_positives,
        "missed_spam": made.missed_spam,
        "feedback_spam": made.feedback_spam,
        "feedback_ham": made.feedback_ham,
        "model_version": made.model_version,
    });
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("tests/browser/dashboard.mjs")
            .arg(format!("http://{http}"))
            .arg(&shot)
            .current_dir(repo())
            .env("DASHBOARD_EXPECT", expect.to_string())
            .env("DASHBOARD_SITE_KEY", SITE_KEY)
            .env("DASHBOARD_ADMIN_KEY", ADMIN_KEY)
            .env("DASHBOARD_SITES", format!("{SITE},{OTHER_SITE}"))
            .stdin(Stdio::null())
            .output()
            .expect("node runs")
    })
    .await
    .expect("the browser task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "--- tests/browser/dashboard.mjs ({:.1} s) ---\n{stdout}{stderr}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "the browser checks failed ({}):\n{stdout}{stderr}",
        out.status
    );
}
