//! Moderator feedback end to end: the Feedback RPC through the real gRPC path (the real
//! `build_app` and `serve` in-process, and the real binary for the crash tests), the site's
//! online layer, the poisoning guard, and the durability of the label log (file and Redis)
//! across a SIGKILL.
//!
//! Every label log lives in a temporary directory; nothing is written into the repository.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{free_port, ChildGuard};
use common::redis_server::RedisServer;
use common::{check_req, TestServer};
use hamgate::clock::ManualClock;
use hamgate::comment::Label;
use hamgate::config::{hash_key, Settings, SiteSettings};
use hamgate::grpc::pb;
use hamgate::grpc::pb::comment_filter_client::CommentFilterClient;
use hamgate::labels::file::FileLabelLog;
use hamgate::labels::redis::{RedisLabelLog, DEFAULT_STREAM_KEY};
use hamgate::labels::{LabelLog, LoggedLabel};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

type Client = CommentFilterClient<Channel>;

/// Held comments (the model is unsure of them), so a label visibly moves them either way.
/// Measured with `hamgate score`: 0.52, 0.56, 0.60 and 0.41.
const BORDERLINE: [&str; 4] = [
    "Love it, thanks for sharing",
    "Check my page, thanks for sharing",
    "Thanks for the video, very helpful",
    "Nice song, thanks for sharing",
];

/// How long any single call may take before the test calls it hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The most reasons a response lists (`hamgate::policy::MAX_REASONS`).
const MAX_REASONS: usize = 8;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Default settings with the label log at `<dir>/labels.log`.
fn settings_with_log(dir: &Path) -> Settings {
    let mut s = Settings::default();
    s.feedback.label_log = dir.join("labels.log");
    s
}

fn verdict(r: &pb::CheckResponse) -> pb::Verdict {
    pb::Verdict::try_from(r.verdict).expect("a known verdict")
}

fn with_key<T>(msg: T, key: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii metadata"),
    );
    req
}

/// A real Check (it is remembered for feedback and may teach reputation).
async fn check(
    client: &mut Client,
    req: impl tonic::IntoRequest<pb::CheckRequest>,
) -> pb::CheckResponse {
    match tokio::time::timeout(CALL_TIMEOUT, client.check(req)).await {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(s)) => panic!("check failed: {s:?}"),
        Err(_) => panic!("check did not answer within {CALL_TIMEOUT:?}"),
    }
}

/// A test call: scored with the site's layer and reputation, but it teaches nothing.
fn probe_req(content: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        is_test: true,
        ..check_req(content)
    }
}

async fn feedback_result(
    client: &mut Client,
    req: impl tonic::IntoRequest<pb::FeedbackRequest>,
) -> Result<pb::FeedbackResponse, Status> {
    match tokio::time::timeout(CALL_TIMEOUT, client.feedback(req)).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => panic!("feedback did not answer within {CALL_TIMEOUT:?}"),
    }
}

async fn feedback(
    client: &mut Client,
    req: impl tonic::IntoRequest<pb::FeedbackRequest>,
) -> pb::FeedbackResponse {
    feedback_result(client, req)
        .await
        .unwrap_or_else(|s| panic!("feedback failed: {s:?}"))
}

fn by_id(check_id: &str, label: pb::Label) -> pb::FeedbackRequest {
    pb::FeedbackRequest {
        target: Some(pb::feedback_request::Target::CheckId(check_id.into())),
        label: label as i32,
        ..Default::default()
    }
}

fn by_comment(req: pb::CheckRequest, label: pb::Label) -> pb::FeedbackRequest {
    pb::FeedbackRequest {
        target: Some(pb::feedback_request::Target::Check(req)),
        label: label as i32,
        ..Default::default()
    }
}

/// The text model's part of a response's log-odds: the total minus the reputation reasons.
/// Valid when no rule fired and every reputation reason is listed (fewer than the most
/// reasons a response carries, so none was cut off) and their sum is under the cap.
fn text_log_odds(r: &pb::CheckResponse) -> f64 {
    assert!(
        r.reasons.len() < MAX_REASONS,
        "reasons may have been truncated: {r:?}"
    );
    assert!(
        r.reasons
            .iter()
            .all(|x| x.kind != pb::ReasonKind::Rule as i32),
        "{r:?}"
    );
    let reputation: f64 = r
        .reasons
        .iter()
        .filter(|x| x.kind == pb::ReasonKind::Reputation as i32)
        .map(|x| x.log_odds)
        .sum();
    assert!(reputation.abs() < 4.0, "reputation at its cap: {r:?}");
    log_odds(r.spam_probability) - reputation
}

fn log_odds(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

fn assert_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    message_contains: &str,
) -> Status {
    match result {
        Ok(r) => panic!("expected {code:?} ({message_contains:?}), got OK: {r:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "{s:?}");
            assert!(
                s.message().contains(message_contains),
                "the message should contain {message_contains:?}: {:?}",
                s.message()
            );
            s
        }
    }
}

/// Stops an in-process server (bounded), after which its label log may be reopened.
async fn stop(server: TestServer) {
    match server.stop(Duration::from_secs(10)).await {
        Ok(Ok(())) => {}
        other => panic!("the server should stop cleanly within 10 s: {other:?}"),
    }
}

/// Opens a label log file (recovering any torn tail) and reads all of it.
async fn read_file_log(path: &Path) -> (Vec<LoggedLabel>, hamgate::labels::file::RecoveryReport) {
    let (log, report) = FileLabelLog::open(path).expect("the label log opens");
    let all = log.read_all().await.expect("the label log reads");
    (all, report)
}

fn label_of(p: pb::Label) -> Label {
    match p {
        pb::Label::Spam => Label::Spam,
        pb::Label::Ham => Label::Ham,
        pb::Label::Unspecified => panic!("no domain label for UNSPECIFIED"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Feedback by check_id.

#[tokio::test]
async fn feedback_by_check_id_is_learned_by_the_sites_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("labels.log");
    let server = TestServer::start(settings_with_log(dir.path())).await;
    let mut client = server.client().await;

    // HAM on a held comment: its next check is lower.
    let first = check(&mut client, check_req(BORDERLINE[0])).await;
    // Held, so the check itself taught reputation nothing: only the label can move it.
    assert_eq!(verdict(&first), pb::Verdict::Hold, "{first:?}");
    assert!(!first.check_id.is_empty());
    assert!(!log_path.exists(), "no label yet, so no label log file");
    let fb = feedback(
        &mut client,
        pb::FeedbackRequest {
            moderator_id: "alice".into(),
            reason: "a regular reader".into(),
            ..by_id(&first.check_id, pb::Label::Ham)
        },
    )
    .await;
    assert!(fb.label_seq >= 1, "{fb:?}");
    assert_eq!(fb.label_seq, 1, "the first label of a new log: {fb:?}");
    assert!(fb.learned, "{fb:?}");
    assert!(!fb.note.is_empty());
    assert!(
        log_path.exists(),
        "the label log is created on the first label"
    );

    let again = check(&mut client, check_req(BORDERLINE[0])).await;
    eprintln!(
        "HAM by check_id: p {:.4} -> {:.4}, text log-odds {:.3} -> {:.3}",
        first.spam_probability,
        again.spam_probability,
        text_log_odds(&first),
        text_log_odds(&again)
    );
    assert!(
        again.spam_probability < first.spam_probability - 0.05,
        "a HAM label must lower the comment's next probability: {} -> {}",
        first.spam_probability,
        again.spam_probability
    );
    // Not only the content's reputation: the site's layer itself scores the text lower.
    assert!(
        text_log_odds(&again) < text_log_odds(&first) - 0.1,
        "the site's layer should have learned the HAM label: {first:?} -> {again:?}"
    );
    // And the reasons say so: the text tokens are weighed as the layered score weighs them.
    let tokens_sum = |r: &pb::CheckResponse| -> f64 {
        r.reasons
            .iter()
            .filter(|x| x.kind == pb::ReasonKind::TextToken as i32)
            .map(|x| x.log_odds)
            .sum()
    };
    assert!(
        tokens_sum(&again) < tokens_sum(&first) - 0.1,
        "the reasons still show the global weights: {first:?} -> {again:?}"
    );

    // SPAM on another held comment: its next check is higher.
    let other = check(&mut client, check_req(BORDERLINE[1])).await;
    assert_eq!(verdict(&other), pb::Verdict::Hold, "{other:?}");
    let fb2 = feedback(
        &mut client,
        pb::FeedbackRequest {
            moderator_id: "bob".into(),
            ..by_id(&other.check_id, pb::Label::Spam)
        },
    )
    .await;
    assert_eq!(fb2.label_seq, fb.label_seq + 1, "{fb2:?}");
    assert!(fb2.learned, "{fb2:?}");
    let other_again = check(&mut client, check_req(BORDERLINE[1])).await;
    eprintln!(
        "SPAM by check_id: p {:.4} -> {:.4}, text log-odds {:.3} -> {:.3}",
        other.spam_probability,
        other_again.spam_probability,
        text_log_odds(&other),
        text_log_odds(&other_again)
    );
    assert!(
        other_again.spam_probability > other.spam_probability + 0.05,
        "a SPAM label must raise the comment's next probability: {} -> {}",
        other.spam_probability,
        other_again.spam_probability
    );
    assert!(
        text_log_odds(&other_again) > text_log_odds(&other) + 0.1,
        "the site's layer should have learned the SPAM label: {other:?} -> {other_again:?}"
    );

    // Both labels are in the log with the check ids they are for.
    drop(client);
    stop(server).await;
    let (all, report) = read_file_log(&log_path).await;
    assert_eq!(report.bytes_dropped, 0, "{report:?}");
    let got: Vec<(u64, &str, Label, &str, &str, &str)> = all
        .iter()
        .map(|l| {
            (
                l.seq,
                l.record.site.as_str(),
                l.record.label,
                l.record.comment.content.as_str(),
                l.record.check_id.as_str(),
                l.record.moderator.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                "default",
                Label::Ham,
                BORDERLINE[0],
                first.check_id.as_str(),
                "alice"
            ),
            (
                2,
                "default",
                Label::Spam,
                BORDERLINE[1],
                other.check_id.as_str(),
                "bob"
            ),
        ]
    );
    assert_eq!(all[0].record.reason, "a regular reader");
}

// ---------------------------------------------------------------------------------------------
// 2. Feedback by full comment, and what the log holds.

#[tokio::test]
async fn feedback_by_comment_is_learned_and_logged_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("labels.log");
    let server = TestServer::start(settings_with_log(dir.path())).await;
    let mut client = server.client().await;
    let started = hamgate::clock::now_secs();

    let full = |content: &str| pb::CheckRequest {
        comment: Some(pb::Comment {
            content: content.into(),
            author_name: "Carol".into(),
            language: "en".into(),
            ..Default::default()
        }),
        post: Some(pb::Post {
            permalink: "https://blog.example/post/1".into(),
            publish_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
        }),
        external_id: "wp-42".into(),
        ..Default::default()
    };

    // (content, label, moderator, reason), in the order they are sent.
    let labels = [
        (BORDERLINE[2], pb::Label::Ham, "alice", "fine"),
        (BORDERLINE[3], pb::Label::Spam, "bob", "a campaign"),
        (BORDERLINE[2], pb::Label::Ham, "", ""),
    ];
    for (expected_seq, (content, label, moderator, reason)) in (1..).zip(labels) {
        let before = check(&mut client, probe_req(content)).await;
        let fb = feedback(
            &mut client,
            pb::FeedbackRequest {
                moderator_id: moderator.into(),
                reason: reason.into(),
                ..by_comment(full(content), label)
            },
        )
        .await;
        assert_eq!(fb.label_seq, expected_seq, "{fb:?}");
        assert!(fb.learned, "{fb:?}");
        let after = check(&mut client, probe_req(content)).await;
        eprintln!(
            "{label:?} by comment on {content:?}: p {:.6} -> {:.6}",
            before.spam_probability, after.spam_probability
        );
        // In log-odds: a second label on an already learned comment moves a probability
        // that is near 0 already.
        let moved = log_odds(after.spam_probability) - log_odds(before.spam_probability);
        match label {
            pb::Label::Ham => assert!(moved < -0.1, "{content:?}: {before:?} -> {after:?}"),
            _ => assert!(moved > 0.1, "{content:?}: {before:?} -> {after:?}"),
        }
    }
    let finished = hamgate::clock::now_secs();

    drop(client);
    stop(server).await;
    let (all, report) = read_file_log(&log_path).await;
    eprintln!("label log reopened: {report:?}");
    assert_eq!(report.records, labels.len() as u64, "{report:?}");
    assert_eq!(report.bytes_dropped, 0, "{report:?}");
    assert_eq!(all.len(), labels.len());
    for (i, (logged, (content, label, moderator, reason))) in all.iter().zip(labels).enumerate() {
        let r = &logged.record;
        assert_eq!(logged.seq, i as u64 + 1);
        assert_eq!(r.site, "default", "{logged:?}");
        assert_eq!(r.label, label_of(label), "{logged:?}");
        assert_eq!(r.comment.content, content, "{logged:?}");
        // The name's shape only (one word), never the name: see the README on the label log.
        assert_eq!(r.comment.author, "Aaa", "{logged:?}");
        assert_eq!(r.moderator, moderator, "{logged:?}");
        assert_eq!(r.reason, reason, "{logged:?}");
        assert_eq!(
            r.check_id, "",
            "no check id when the comment is sent: {logged:?}"
        );
        assert!(
            (started..=finished).contains(&r.at),
            "at {} outside [{started}, {finished}]",
            r.at
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Errors.

#[tokio::test]
async fn bad_feedback_is_refused_with_the_right_status_and_logs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("labels.log");
    let server = TestServer::start(settings_with_log(dir.path())).await;
    let mut client = server.client().await;

    let real = check(&mut client, check_req(BORDERLINE[0])).await;
    let test = check(&mut client, probe_req(BORDERLINE[1])).await;
    assert!(!test.check_id.is_empty());

    // The label is required (and must be a known one).
    let s = assert_status(
        feedback_result(&mut client, by_id(&real.check_id, pb::Label::Unspecified)).await,
        Code::InvalidArgument,
        "label",
    );
    assert!(s.message().starts_with("label: "), "{s:?}");
    let s = assert_status(
        feedback_result(
            &mut client,
            pb::FeedbackRequest {
                label: 7,
                ..by_id(&real.check_id, pb::Label::Spam)
            },
        )
        .await,
        Code::InvalidArgument,
        "label",
    );
    assert!(s.message().starts_with("label: "), "{s:?}");

    // Neither a check id nor a comment (a blank check id counts as none).
    for blank in ["", "   "] {
        let s = assert_status(
            feedback_result(&mut client, by_id(blank, pb::Label::Spam)).await,
            Code::InvalidArgument,
            "check_id",
        );
        assert!(s.message().starts_with("check_id: "), "{s:?}");
    }

    // Neither, the target oneof unset: the oneof is named.
    let s = assert_status(
        feedback_result(
            &mut client,
            pb::FeedbackRequest {
                label: pb::Label::Spam as i32,
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "target",
    );
    assert!(s.message().starts_with("target: "), "{s:?}");

    // A comment that is not valid names its field under `check`.
    let s = assert_status(
        feedback_result(&mut client, by_comment(check_req("   "), pb::Label::Spam)).await,
        Code::InvalidArgument,
        "check.comment.content",
    );
    assert!(s.message().starts_with("check.comment.content: "), "{s:?}");

    // An id this service never gave out.
    assert_status(
        feedback_result(&mut client, by_id("00000000-ffff", pb::Label::Spam)).await,
        Code::NotFound,
        "00000000-ffff",
    );

    // Test calls never train: neither by id nor by comment.
    assert_status(
        feedback_result(&mut client, by_id(&test.check_id, pb::Label::Spam)).await,
        Code::FailedPrecondition,
        "is_test",
    );
    assert_status(
        feedback_result(
            &mut client,
            by_comment(probe_req(BORDERLINE[1]), pb::Label::Spam),
        )
        .await,
        Code::FailedPrecondition,
        "is_test",
    );

    // None of that logged anything: the log was not even created, and the first good label is
    // the first record.
    assert!(!log_path.exists(), "a refused label must not open the log");
    let fb = feedback(&mut client, by_id(&real.check_id, pb::Label::Ham)).await;
    assert_eq!(fb.label_seq, 1, "{fb:?}");
    drop(client);
    stop(server).await;
    let (all, _) = read_file_log(&log_path).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].record.check_id, real.check_id);
}

#[tokio::test]
async fn a_check_evicted_from_the_recent_checks_is_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_with_log(dir.path());
    settings.feedback.recent_checks = 2;
    let server = TestServer::start(settings).await;
    let mut client = server.client().await;
    let mut ids = Vec::new();
    for content in &BORDERLINE[..3] {
        ids.push(check(&mut client, check_req(content)).await.check_id);
    }
    // Only the two most recent are kept.
    assert_status(
        feedback_result(&mut client, by_id(&ids[0], pb::Label::Ham)).await,
        Code::NotFound,
        &ids[0],
    );
    for (seq, id) in [(1, &ids[1]), (2, &ids[2])] {
        let fb = feedback(&mut client, by_id(id, pb::Label::Ham)).await;
        assert_eq!(fb.label_seq, seq, "{fb:?}");
    }
    // The comment itself is still accepted for the evicted one.
    let fb = feedback(
        &mut client,
        by_comment(check_req(BORDERLINE[0]), pb::Label::Ham),
    )
    .await;
    assert_eq!(fb.label_seq, 3, "{fb:?}");
}

#[tokio::test]
async fn each_site_gives_feedback_only_on_its_own_checks_and_learns_alone() {
    const KEY_A: &str = "site-a-key";
    const KEY_B: &str = "site-b-key";
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(two_sites(dir.path(), [KEY_A, KEY_B])).await;
    let mut client = server.client().await;
    // The probe: held, no sender identifiers, so only its content fingerprint has reputation.
    let probe = BORDERLINE[1];
    // Shares the probe's words but not its content fingerprint (no shared reputation).
    let variant = "Check my page, thanks for sharing it";

    // Site B may not label site A's check; site A may.
    let a_check = check(&mut client, with_key(check_req(BORDERLINE[0]), KEY_A)).await;
    assert_status(
        feedback_result(
            &mut client,
            with_key(by_id(&a_check.check_id, pb::Label::Spam), KEY_B),
        )
        .await,
        Code::NotFound,
        "check_id",
    );
    // Without a key at all: no site, no feedback.
    assert_status(
        feedback_result(&mut client, by_id(&a_check.check_id, pb::Label::Spam)).await,
        Code::Unauthenticated,
        "",
    );

    let a_before = check(&mut client, with_key(probe_req(probe), KEY_A)).await;
    let b_before = check(&mut client, with_key(probe_req(probe), KEY_B)).await;
    assert_eq!(a_before.spam_probability, b_before.spam_probability);

    // Site B labels a similar comment as spam: B's layer learns it, A's scores do not move.
    let fb = feedback(
        &mut client,
        with_key(by_comment(check_req(variant), pb::Label::Spam), KEY_B),
    )
    .await;
    assert_eq!(
        fb.label_seq, 1,
        "B's NOT_FOUND attempt logged nothing: {fb:?}"
    );
    assert!(fb.learned, "{fb:?}");
    let a_after = check(&mut client, with_key(probe_req(probe), KEY_A)).await;
    let b_after = check(&mut client, with_key(probe_req(probe), KEY_B)).await;
    eprintln!(
        "B labels a variant SPAM: A {:.4} -> {:.4}, B {:.4} -> {:.4}",
        a_before.spam_probability,
        a_after.spam_probability,
        b_before.spam_probability,
        b_after.spam_probability
    );
    assert!(
        b_after.spam_probability > b_before.spam_probability + 0.05,
        "B's layer should have learned: {b_before:?} -> {b_after:?}"
    );
    assert_eq!(
        a_after.spam_probability, a_before.spam_probability,
        "site B's label must not change site A's score: {a_before:?} -> {a_after:?}"
    );

    // Site B labels the probe itself. Reputation (the content fingerprint) is shared by every
    // site by design, but A's text score, its layer, must still be untouched.
    let fb = feedback(
        &mut client,
        with_key(by_comment(check_req(probe), pb::Label::Spam), KEY_B),
    )
    .await;
    assert_eq!(fb.label_seq, 2, "{fb:?}");
    let a_same = check(&mut client, with_key(probe_req(probe), KEY_A)).await;
    eprintln!(
        "B labels the probe SPAM: A {:.4} -> {:.4} (text log-odds {:.4} -> {:.4}; reasons {:?})",
        a_before.spam_probability,
        a_same.spam_probability,
        text_log_odds(&a_before),
        text_log_odds(&a_same),
        a_same.reasons
    );
    assert!(
        (text_log_odds(&a_same) - text_log_odds(&a_before)).abs() < 1e-9,
        "site A's layer must not learn site B's labels: {a_before:?} -> {a_same:?}"
    );

    // Site A's own label on its own check is taken, and moves A.
    let fb = feedback(
        &mut client,
        with_key(by_id(&a_check.check_id, pb::Label::Ham), KEY_A),
    )
    .await;
    assert_eq!(fb.label_seq, 3, "{fb:?}");
    assert!(fb.learned, "{fb:?}");
    drop(client);
    stop(server).await;
    let (all, _) = read_file_log(&dir.path().join("labels.log")).await;
    let sites: Vec<&str> = all.iter().map(|l| l.record.site.as_str()).collect();
    assert_eq!(sites, ["b", "b", "a"]);
}

/// Two keyed sites, `a` and `b`, logging to `<dir>/labels.log`.
fn two_sites(dir: &Path, keys: [&str; 2]) -> Settings {
    let mut settings = settings_with_log(dir);
    for (name, key) in [("a", keys[0]), ("b", keys[1])] {
        settings.sites.insert(
            name.into(),
            SiteSettings {
                key_sha256: vec![hash_key(key)],
                ..Default::default()
            },
        );
    }
    settings
}

/// Regression: site B's label on a comment once reached site A through the shared reputation
/// store (the content fingerprint recorded for every site with `feedback.reputation_weight`),
/// turning A's held comment into a rejected one with one label. Feedback now writes site-scoped
/// identities, so B's label must leave A's score exactly as it was.
#[tokio::test]
async fn another_sites_label_does_not_change_this_sites_score_of_the_same_comment() {
    const KEY_A: &str = "site-a-key";
    const KEY_B: &str = "site-b-key";
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(two_sites(dir.path(), [KEY_A, KEY_B])).await;
    let mut client = server.client().await;
    let probe = BORDERLINE[1];

    let a_before = check(&mut client, with_key(probe_req(probe), KEY_A)).await;
    assert_eq!(verdict(&a_before), pb::Verdict::Hold, "{a_before:?}");
    let fb = feedback(
        &mut client,
        with_key(by_comment(check_req(probe), pb::Label::Spam), KEY_B),
    )
    .await;
    assert_eq!(fb.label_seq, 1);
    let a_after = check(&mut client, with_key(probe_req(probe), KEY_A)).await;
    assert_eq!(
        (verdict(&a_after), a_after.spam_probability),
        (verdict(&a_before), a_before.spam_probability),
        "site B's label changed site A's score: {a_before:?} -> {a_after:?}"
    );
}

/// Sites configured with the same `layer` share their moderation: B's label moves A's text
/// score of the same comment, while a third site with its own layer stays where it was.
#[tokio::test]
async fn sites_that_share_a_layer_learn_from_each_others_labels() {
    const KEY_A: &str = "site-a-key";
    const KEY_B: &str = "site-b-key";
    const KEY_C: &str = "site-c-key";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = two_sites(dir.path(), [KEY_A, KEY_B]);
    for site in ["a", "b"] {
        settings.sites.get_mut(site).expect("site").layer = Some("network".into());
    }
    settings.sites.insert(
        "c".into(),
        SiteSettings {
            key_sha256: vec![hash_key(KEY_C)],
            ..Default::default()
        },
    );
    let server = TestServer::start(settings).await;
    let mut client = server.client().await;
    let probe = BORDERLINE[2];

    let a_before = text_log_odds(&check(&mut client, with_key(probe_req(probe), KEY_A)).await);
    let c_before = text_log_odds(&check(&mut client, with_key(probe_req(probe), KEY_C)).await);
    feedback(
        &mut client,
        with_key(by_comment(check_req(probe), pb::Label::Spam), KEY_B),
    )
    .await;
    let a_after = text_log_odds(&check(&mut client, with_key(probe_req(probe), KEY_A)).await);
    let c_after = text_log_odds(&check(&mut client, with_key(probe_req(probe), KEY_C)).await);
    assert!(
        a_after > a_before + 0.5,
        "B's label did not reach A through the shared layer: {a_before} -> {a_after}"
    );
    assert!(
        (c_after - c_before).abs() < 1e-9,
        "C has its own layer and moved: {c_before} -> {c_after}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The poisoning guard.

#[tokio::test]
async fn labels_over_the_hourly_budget_are_logged_but_not_learned() {
    // The budget is per hour of the application's clock; a manual clock in the middle of an
    // hour keeps the whole test inside it, and moving it on shows the next hour's budget.
    let clock = ManualClock::new(1_795_651_200 + 1800);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_with_log(dir.path());
    settings.feedback.site_labels_per_hour = 3;
    let server = TestServer::start_with_clock(settings, clock.clone()).await;
    let mut client = server.client().await;
    let probe = BORDERLINE[1];

    for (i, content) in [BORDERLINE[0], BORDERLINE[2], BORDERLINE[3]]
        .into_iter()
        .enumerate()
    {
        let fb = feedback(&mut client, by_comment(check_req(content), pb::Label::Ham)).await;
        assert_eq!(fb.label_seq, i as u64 + 1, "{fb:?}");
        assert!(fb.learned, "label {} is within the budget: {fb:?}", i + 1);
    }

    // The 4th label: logged, not learned. It shares the probe's words but not its content
    // fingerprint, so had the layer learned it the probe would move.
    let before = check(&mut client, probe_req(probe)).await;
    let fourth = feedback(
        &mut client,
        by_comment(
            check_req("I made a similar video, have a look at it please"),
            pb::Label::Spam,
        ),
    )
    .await;
    let after = check(&mut client, probe_req(probe)).await;
    // A 5th, by check id, is over the budget too.
    let checked = check(&mut client, check_req(probe)).await;
    let fifth = feedback(&mut client, by_id(&checked.check_id, pb::Label::Spam)).await;

    assert_eq!(fourth.label_seq, 4, "{fourth:?}");
    assert!(
        !fourth.learned,
        "the 4th label is over the budget: {fourth:?}"
    );
    assert!(
        fourth.note.contains("at most 3 labels an hour"),
        "{fourth:?}"
    );
    assert_eq!(
        after.spam_probability, before.spam_probability,
        "a label over the budget must not move the layer: {before:?} -> {after:?}"
    );
    assert_eq!(fifth.label_seq, 5, "{fifth:?}");
    assert!(!fifth.learned, "{fifth:?}");

    // The next hour has a budget of its own.
    clock.advance(3600);
    let sixth = feedback(&mut client, by_comment(check_req(probe), pb::Label::Ham)).await;
    assert_eq!(sixth.label_seq, 6, "{sixth:?}");
    assert!(
        sixth.learned,
        "a new hour's first label is learned: {sixth:?}"
    );

    drop(client);
    stop(server).await;
    let (all, _) = read_file_log(&dir.path().join("labels.log")).await;
    assert_eq!(
        all.iter().map(|l| l.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6],
        "every label is logged, learned or not"
    );
    assert_eq!(all[4].record.check_id, checked.check_id);
}

// ---------------------------------------------------------------------------------------------
// 5-6. Durability across a SIGKILL of the real binary.

const BIN: &str = env!("CARGO_BIN_EXE_hamgate");
/// Concurrent feedback streams.
const STREAMS: usize = 8;
/// Acknowledged labels after which hamgate is killed.
const KILL_AFTER: usize = 300;
/// A stream gives up (failing the test) after this many labels: the kill never came.
const MAX_PER_STREAM: usize = 20_000;

/// `kill -<signal> <pid>`.
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A `hamgate serve` child process, its output in a file; killed (by its handle) on drop.
struct Hamgate {
    child: ChildGuard,
    addr: String,
    output: PathBuf,
}

impl Hamgate {
    /// Starts `hamgate serve --grpc-addr 127.0.0.1:<free port> <args>` in `dir` (so nothing
    /// lands in the repository) with only the given `HAMGATE_*` variables.
    fn spawn(dir: &Path, name: &str, args: &[&str], env: &[(&str, String)]) -> Hamgate {
        let addr = format!("127.0.0.1:{}", free_port());
        let output = dir.join(format!("{name}.out"));
        let out = std::fs::File::create(&output).expect("output file");
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--grpc-addr", &addr])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone output"))
            .stderr(out);
        for (k, _) in std::env::vars() {
            if k.starts_with("HAMGATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HAMGATE_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("hamgate starts");
        Hamgate {
            child: ChildGuard::new(child),
            addr,
            output,
        }
    }

    fn pid(&self) -> u32 {
        self.child.0.as_ref().expect("running").id()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .0
            .as_mut()
            .expect("running")
            .try_wait()
            .expect("try_wait")
    }

    /// Polls health (bounded) until SERVING; returns a channel to it.
    async fn ready(&mut self) -> Channel {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.exited() {
                panic!("hamgate exited early ({status}):\n{}", self.output());
            }
            let endpoint = Endpoint::from_shared(format!("http://{}", self.addr))
                .expect("url")
                .connect_timeout(Duration::from_secs(2))
                .timeout(CALL_TIMEOUT);
            if let Some(channel) = common::serving_channel(endpoint).await {
                return channel;
            }
            assert!(
                Instant::now() < deadline,
                "hamgate did not answer a health check within 20 s:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (bounded) for the process to exit after a signal.
    async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                self.child.0 = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hamgate did not exit within {within:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `kill -KILL <pid>`, and reaps it.
    async fn sigkill(&mut self) {
        send_signal(self.pid(), "KILL");
        let status = self.wait_exit(Duration::from_secs(10)).await;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    }

    /// `kill -TERM <pid>`; it must exit cleanly.
    async fn stop(&mut self) {
        send_signal(self.pid(), "TERM");
        let status = self.wait_exit(Duration::from_secs(10)).await;
        assert!(status.success(), "exit {status}:\n{}", self.output());
    }
}

/// One acknowledged label.
#[derive(Debug, Clone)]
struct Ack {
    seq: u64,
    text: String,
}

/// What a stream of labels cut off by a SIGKILL left.
struct Stream {
    /// Every label acknowledged (OK), before or after the kill.
    acked: Vec<Ack>,
    /// Every label sent (acknowledged or not), by its unique text, with its label.
    sent: HashMap<String, Label>,
    /// Acknowledged labels per second, from the first call to the kill.
    rate: f64,
    /// Acknowledged when the kill was sent.
    acked_at_kill: usize,
}

/// The text of stream `task`'s label `k`: unique, and it says which it is.
fn stream_text(tag: &str, task: usize, k: usize) -> String {
    format!("{tag} label {task}-{k}: thanks for the video, very helpful")
}

fn stream_label(k: usize) -> pb::Label {
    if k % 2 == 0 {
        pb::Label::Ham
    } else {
        pb::Label::Spam
    }
}

/// Sends feedback by full comment from [`STREAMS`] tasks until hamgate is SIGKILLed after
/// [`KILL_AFTER`] acknowledgements; every task must still be sending when the kill comes.
async fn stream_until_killed(hg: &mut Hamgate, channel: Channel, tag: &str) -> Stream {
    let acked = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let sent = Arc::new(Mutex::new(HashMap::<String, Label>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for task in 0..STREAMS {
        let mut client = CommentFilterClient::new(channel.clone());
        let (acked, sent, count) = (Arc::clone(&acked), Arc::clone(&sent), Arc::clone(&count));
        let tag = tag.to_string();
        tasks.spawn(async move {
            for k in 0..MAX_PER_STREAM {
                let text = stream_text(&tag, task, k);
                let label = stream_label(k);
                sent.lock()
                    .expect("sent")
                    .insert(text.clone(), label_of(label));
                let req = pb::FeedbackRequest {
                    moderator_id: format!("stream-{task}"),
                    ..by_comment(check_req(&text), label)
                };
                match tokio::time::timeout(CALL_TIMEOUT, client.feedback(req)).await {
                    Ok(Ok(r)) => {
                        let seq = r.into_inner().label_seq;
                        acked.lock().expect("acked").push(Ack { seq, text });
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    // The server is gone: this stream ends.
                    Ok(Err(status)) => return Some(status),
                    Err(_) => return Some(Status::deadline_exceeded("no answer")),
                }
            }
            None
        });
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while count.load(Ordering::SeqCst) < KILL_AFTER {
        if let Some(status) = hg.exited() {
            panic!(
                "hamgate exited during the stream ({status}):\n{}",
                hg.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "only {} labels acknowledged in 30 s:\n{}",
            count.load(Ordering::SeqCst),
            hg.output()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let acked_at_kill = count.load(Ordering::SeqCst);
    let elapsed = started.elapsed();
    hg.sigkill().await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ended = 0;
    while let Some(joined) = tokio::time::timeout_at(deadline.into(), tasks.join_next())
        .await
        .expect("the streams end within 20 s of the kill")
    {
        let error = joined.expect("a stream task panicked");
        let status = error.expect("a stream ran out of labels before the kill: the kill came late");
        assert_ne!(status.code(), Code::Ok);
        ended += 1;
    }
    assert_eq!(ended, STREAMS);

    let acked = std::mem::take(&mut *acked.lock().expect("acked"));
    let sent = std::mem::take(&mut *sent.lock().expect("sent"));
    let rate = acked_at_kill as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{tag}: {acked_at_kill} labels acknowledged when SIGKILLed after {elapsed:?} ({rate:.0} acked labels/s from {STREAMS} streams); {} acknowledged in all, {} sent",
        acked.len(),
        sent.len()
    );
    Stream {
        acked,
        sent,
        rate,
        acked_at_kill,
    }
}

/// Every acknowledged label is in `log` exactly once, at the seq it was acknowledged with;
/// seqs are `1..=n`; every record is one that was sent, intact. Returns n.
fn assert_log_holds_every_ack(log: &[LoggedLabel], stream: &Stream) -> u64 {
    let n = log.len() as u64;
    assert_eq!(
        log.iter().map(|l| l.seq).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "seqs must be 1..=n without gaps"
    );
    let mut texts = HashSet::new();
    for l in log {
        let r = &l.record;
        assert!(
            texts.insert(r.comment.content.as_str()),
            "seq {}: duplicated record {:?}",
            l.seq,
            r.comment.content
        );
        let label = stream.sent.get(&r.comment.content).unwrap_or_else(|| {
            panic!(
                "seq {}: a record that was never sent (corrupt?): {r:?}",
                l.seq
            )
        });
        assert_eq!(r.label, *label, "seq {}: {r:?}", l.seq);
        assert_eq!(r.site, "default", "seq {}: {r:?}", l.seq);
        assert!(r.moderator.starts_with("stream-"), "seq {}: {r:?}", l.seq);
        assert_eq!(r.check_id, "", "seq {}: {r:?}", l.seq);
    }
    let mut acked_seqs = BTreeSet::new();
    for ack in &stream.acked {
        assert!(
            acked_seqs.insert(ack.seq),
            "seq {} acknowledged twice",
            ack.seq
        );
        assert!(
            ack.seq >= 1 && ack.seq <= n,
            "acknowledged seq {} is not in the log of {n} records: {:?}",
            ack.seq,
            ack.text
        );
        let logged = &log[ack.seq as usize - 1].record.comment.content;
        assert_eq!(
            logged, &ack.text,
            "seq {} was acknowledged for another label",
            ack.seq
        );
    }
    assert!(n as usize >= stream.acked.len());
    assert!(n as usize <= stream.sent.len());
    eprintln!(
        "log holds {n} records: all {} acknowledged labels, plus {} sent but never acknowledged",
        stream.acked.len(),
        n as usize - stream.acked.len()
    );
    n
}

/// One more label on a restarted hamgate; returns its seq.
async fn one_more_label(channel: Channel, text: &str) -> u64 {
    let mut client = CommentFilterClient::new(channel);
    let fb = feedback(
        &mut client,
        pb::FeedbackRequest {
            moderator_id: "stream-restart".into(),
            ..by_comment(check_req(text), pb::Label::Spam)
        },
    )
    .await;
    fb.label_seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_log_keeps_every_acknowledged_label_across_a_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("labels.log");
    let env = [("HAMGATE_LABEL_LOG", log_path.display().to_string())];

    let mut hg = Hamgate::spawn(dir.path(), "first", &[], &env);
    let channel = hg.ready().await;
    let stream = stream_until_killed(&mut hg, channel, "file").await;
    assert!(stream.acked_at_kill >= KILL_AFTER);
    assert!(stream.rate > 0.0);

    let (log, report) = FileLabelLog::open(&log_path).expect("the label log opens");
    eprintln!("recovery after SIGKILL: {report:?}");
    let all = log.read_all().await.expect("the label log reads");
    assert_eq!(report.records, all.len() as u64, "{report:?}");
    let n = assert_log_holds_every_ack(&all, &stream);
    // One process per file: let the writer go before hamgate opens it again.
    drop(log);

    let mut hg = Hamgate::spawn(dir.path(), "second", &[], &env);
    let channel = hg.ready().await;
    let text = "after the restart: thanks for the video";
    let seq = one_more_label(channel, text).await;
    assert_eq!(
        seq,
        n + 1,
        "the restarted log continues after the recovered records"
    );
    hg.stop().await;

    let (all, report) = read_file_log(&log_path).await;
    assert_eq!(
        report.bytes_dropped, 0,
        "a clean stop leaves no torn tail: {report:?}"
    );
    assert_eq!(all.len() as u64, n + 1);
    assert_eq!(all[n as usize].record.comment.content, text);
    // No file was written outside the temporary directory's log.
    assert!(!Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hamgate-labels.log")
        .exists());
}

/// A `redis-server` that keeps what it acknowledges: an append-only file, fsynced on every
/// write, in `dir` (kept by the caller, so a restart reads the same file).
fn durable_redis(dir: &Path, port: u16) -> RedisServer {
    RedisServer::start_in(
        dir,
        port,
        &["--appendonly", "yes", "--appendfsync", "always"],
    )
}

async fn read_stream(url: &str) -> Vec<LoggedLabel> {
    let log = RedisLabelLog::connect(url, DEFAULT_STREAM_KEY)
        .await
        .expect("connect to the test Redis");
    log.read_all().await.expect("read the label stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_log_keeps_every_acknowledged_label_across_a_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir(&redis_dir).expect("redis dir");
    let port = free_port();
    let mut redis = tokio::task::block_in_place(|| durable_redis(&redis_dir, port));
    let url = redis.url();
    // The file log must not be used in Redis mode: point it somewhere to check that.
    let file_log = dir.path().join("labels.log");
    let env = [
        ("HAMGATE_REPUTATION_SECRET", "x".to_string()),
        ("HAMGATE_LABEL_LOG", file_log.display().to_string()),
    ];
    let args = ["--redis-url", url.as_str()];

    let mut hg = Hamgate::spawn(dir.path(), "first", &args, &env);
    let channel = hg.ready().await;
    let stream = stream_until_killed(&mut hg, channel, "redis").await;
    assert!(stream.acked_at_kill >= KILL_AFTER);

    let all = read_stream(&url).await;
    let n = assert_log_holds_every_ack(&all, &stream);
    // The raw stream agrees: one entry per record.
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(DEFAULT_STREAM_KEY)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    assert_eq!(entries.len() as u64, n);
    drop(conn);

    // Redis itself crashes too: with appendfsync always, nothing it acknowledged is lost.
    redis.kill();
    tokio::task::block_in_place(|| redis.restart());
    let reloaded = read_stream(&url).await;
    assert_eq!(
        reloaded, all,
        "the stream after Redis's own SIGKILL and restart"
    );

    let mut hg = Hamgate::spawn(dir.path(), "second", &args, &env);
    let channel = hg.ready().await;
    let text = "after the restart: thanks for the video";
    let seq = one_more_label(channel, text).await;
    assert_eq!(seq, n + 1);
    hg.stop().await;
    let all = read_stream(&url).await;
    assert_eq!(all.len() as u64, n + 1);
    assert_eq!(all[n as usize].record.comment.content, text);
    assert!(!file_log.exists(), "Redis mode must not write the file log");
    redis.kill();
}

// ---------------------------------------------------------------------------------------------
// 7. Throughput.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_concurrent_labels_are_all_acknowledged_and_logged() {
    const LABELS: usize = 5_000;
    const TASKS: usize = 32;
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("labels.log");
    let server = TestServer::start(settings_with_log(dir.path())).await;
    let channel = server.channel().await;

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let mut client = CommentFilterClient::new(channel.clone());
        tasks.spawn(async move {
            let mut acks = Vec::new();
            for k in (task..LABELS).step_by(TASKS) {
                let text = stream_text("throughput", task, k);
                let fb = feedback(
                    &mut client,
                    pb::FeedbackRequest {
                        moderator_id: format!("stream-{task}"),
                        ..by_comment(check_req(&text), stream_label(k))
                    },
                )
                .await;
                acks.push(Ack {
                    seq: fb.label_seq,
                    text,
                });
            }
            acks
        });
    }
    let mut acked = Vec::with_capacity(LABELS);
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(joined) = tokio::time::timeout_at(deadline.into(), tasks.join_next())
        .await
        .expect("5,000 labels within 60 s")
    {
        acked.extend(joined.expect("a task panicked"));
    }
    let elapsed = started.elapsed();
    let rate = LABELS as f64 / elapsed.as_secs_f64();
    eprintln!("{LABELS} labels from {TASKS} tasks in {elapsed:?}: {rate:.0} acked labels/s");
    assert_eq!(acked.len(), LABELS);
    let seqs: BTreeSet<u64> = acked.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=LABELS as u64).collect::<BTreeSet<_>>());

    drop(channel);
    stop(server).await;
    let (all, report) = read_file_log(&log_path).await;
    assert_eq!(report.records, LABELS as u64, "{report:?}");
    assert_eq!(report.bytes_dropped, 0, "{report:?}");
    let stream = Stream {
        sent: acked
            .iter()
            .map(|a| {
                let k: usize = a
                    .text
                    .split_once('-')
                    .and_then(|(_, rest)| rest.split_once(':'))
                    .and_then(|(k, _)| k.parse().ok())
                    .expect("the label number");
                (a.text.clone(), label_of(stream_label(k)))
            })
            .collect(),
        acked,
        rate,
        acked_at_kill: LABELS,
    };
    assert_eq!(assert_log_holds_every_ack(&all, &stream), LABELS as u64);
}

/// The sites' layers come back from the label log when the service restarts: a HAM label given
/// before the restart still lowers the comment's text score after it, and a service started on
/// a fresh log does not see it.
#[tokio::test]
async fn site_layers_are_restored_from_the_label_log_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let comment = BORDERLINE[1];

    let fresh = TestServer::start(settings_with_log(dir.path())).await;
    let mut client = fresh.client().await;
    let before = check(&mut client, probe_req(comment)).await;
    let ack = feedback(&mut client, by_comment(check_req(comment), pb::Label::Ham)).await;
    assert_eq!(ack.label_seq, 1);
    assert!(ack.learned);
    stop(fresh).await;

    let restarted = TestServer::start(settings_with_log(dir.path())).await;
    let mut client = restarted.client().await;
    let after = check(&mut client, probe_req(comment)).await;
    // One label moves a score at most one log-odds (`MAX_STEP_PER_LABEL`); most of that
    // step must be there after the restart.
    assert!(
        text_log_odds(&after) < text_log_odds(&before) - 0.5,
        "the label did not survive the restart: {} -> {}",
        text_log_odds(&before),
        text_log_odds(&after)
    );
    stop(restarted).await;

    let other = tempfile::tempdir().expect("tempdir");
    let unrelated = TestServer::start(settings_with_log(other.path())).await;
    let mut client = unrelated.client().await;
    let elsewhere = check(&mut client, probe_req(comment)).await;
    assert!((text_log_odds(&elsewhere) - text_log_odds(&before)).abs() < 1e-9);
    assert!(
        !other.path().join("labels.log").exists(),
        "reading must not create a log"
    );
    stop(unrelated).await;
}

/// The admin RPCs: a site key may not retrain; without a model directory there is nothing to
/// retrain into; with one, true labels from a new kind of site make a candidate that the gate
/// accepts and that goes into service at once, and a rollback brings the previous model back.
#[tokio::test]
async fn retrain_and_rollback_over_grpc_with_the_admin_key() {
    const SITE_KEY: &str = "sms-site-key";
    const ADMIN_KEY: &str = "admin-key";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_with_log(dir.path());
    settings.sites.insert(
        "sms".into(),
        SiteSettings {
            key_sha256: vec![hash_key(SITE_KEY)],
            ..Default::default()
        },
    );
    settings.admin_key_sha256 = Some(hash_key(ADMIN_KEY));
    settings.feedback.site_labels_per_hour = 10_000;
    settings.feedback.base_corpus =
        vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("models/corpus/youtube")];

    // Without a model directory: FAILED_PRECONDITION, even for the admin.
    let plain = TestServer::start(settings.clone()).await;
    let mut client = plain.client().await;
    let r = client
        .retrain(with_key(pb::RetrainRequest {}, ADMIN_KEY))
        .await;
    assert_status(r, Code::FailedPrecondition, "model directory");
    stop(plain).await;

    settings.model_dir = Some(dir.path().join("models"));
    let server = TestServer::start(settings).await;
    let mut client = server.client().await;
    let info = |v: pb::GetModelInfoResponse| v.version;
    let original = info(
        client
            .get_model_info(with_key(pb::GetModelInfoRequest {}, SITE_KEY))
            .await
            .expect("model info")
            .into_inner(),
    );

    // Labels from a new kind of site: SMS messages, spam and ham alternating.
    let sms = hamgate::corpus::read_corpus(&[
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/corpus/sms/SMSSpamCollection")
    ])
    .expect("sms corpus");
    let (sms, _) = hamgate::corpus::dedup(sms.examples);
    let spam = sms.iter().filter(|e| e.label == Label::Spam).take(60);
    let ham = sms.iter().filter(|e| e.label == Label::Ham).take(60);
    for (s, h) in spam.zip(ham) {
        for (e, label) in [(s, pb::Label::Spam), (h, pb::Label::Ham)] {
            let req = with_key(by_comment(check_req(&e.comment.content), label), SITE_KEY);
            feedback(&mut client, req).await;
        }
    }

    let r = client
        .retrain(with_key(pb::RetrainRequest {}, SITE_KEY))
        .await;
    assert_status(r, Code::PermissionDenied, "admin key");

    let report = client
        .retrain(with_key(pb::RetrainRequest {}, ADMIN_KEY))
        .await
        .expect("retrain")
        .into_inner();
    assert!(report.accepted, "{report:?}");
    // The shipped model has learned SMS already, so the candidate need only be no worse.
    assert!(report.candidate_auc >= report.current_auc, "{report:?}");
    assert_eq!(report.labels_held_back + report.labels_trained, 120);
    assert_ne!(report.model_version, original);
    let now_serving = client
        .get_model_info(with_key(pb::GetModelInfoRequest {}, SITE_KEY))
        .await
        .expect("model info")
        .into_inner();
    assert_eq!(now_serving.version, report.model_version);
    let checked = check(&mut client, with_key(probe_req("hello"), SITE_KEY)).await;
    assert_eq!(checked.model_version, report.model_version);

    let back = client
        .rollback(with_key(pb::RollbackRequest {}, ADMIN_KEY))
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(back.model_version, original);
    let checked = check(&mut client, with_key(probe_req("hello"), SITE_KEY)).await;
    assert_eq!(checked.model_version, original);
    let r = client
        .rollback(with_key(pb::RollbackRequest {}, ADMIN_KEY))
        .await;
    assert_status(r, Code::FailedPrecondition, "nothing to roll back");
    stop(server).await;
}

/// A site's labels take it from the new-site thresholds to thresholds fitted on its own labels
/// (issue 12, "day thirty"), GetModelInfo shows each site its own state only (the admin key
/// sees every site), and the checks are decided with exactly the thresholds shown.
#[tokio::test]
async fn a_site_fits_its_own_thresholds_from_its_labels_and_sees_only_its_own_state() {
    const KEY_A: &str = "fit-a-key";
    const KEY_B: &str = "fit-b-key";
    const ADMIN: &str = "fit-admin-key";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = two_sites(dir.path(), [KEY_A, KEY_B]);
    settings.admin_key_sha256 = Some(hash_key(ADMIN));
    settings.sites.get_mut("a").expect("site a").min_learns = Some(5);
    let server = TestServer::start(settings).await;
    let mut client = server.client().await;
    let reader = client.clone();
    let info = |key: &'static str| {
        let mut client = reader.clone();
        async move {
            client
                .get_model_info(with_key(pb::GetModelInfoRequest {}, key))
                .await
                .expect("GetModelInfo")
                .into_inner()
        }
    };

    let before = info(KEY_A).await;
    assert_eq!(before.sites.len(), 1, "{before:?}");
    let a = &before.sites[0];
    assert_eq!((a.site.as_str(), a.learning, a.min_learns), ("a", true, 5));
    assert_eq!(a.thresholds_source(), pb::ThresholdsSource::NewSite);
    assert!(
        a.accept_below < before.accept_below || a.reject_at > before.reject_at,
        "the new-site thresholds are stricter than the main ones: {before:?}"
    );

    for i in 0..20 {
        let ham = format!(
            "Thanks for part {i} of the series, the second listing fixed my build; one typo in step {i} though"
        );
        let spam = format!(
            "Cheap replica watches {i}, best prices, order now at http://watches{i}.example/"
        );
        for (text, label) in [(ham, pb::Label::Ham), (spam, pb::Label::Spam)] {
            let fb = feedback(
                &mut client,
                with_key(by_comment(check_req(&text), label), KEY_A),
            )
            .await;
            assert!(fb.learned, "label {i} learned: {fb:?}");
        }
    }

    let after = info(KEY_A).await;
    let a = &after.sites[0];
    assert_eq!(
        (a.labels_ham, a.labels_spam, a.learning),
        (20, 20, false),
        "{after:?}"
    );
    assert_eq!(
        a.thresholds_source(),
        pb::ThresholdsSource::Fitted,
        "{after:?}"
    );
    assert!(a.accept_below <= a.reject_at, "{after:?}");
    assert!(
        (a.accept_below - after.accept_below).abs() > 1e-9
            || (a.reject_at - after.reject_at).abs() > 1e-9,
        "fitted thresholds differ from the model's: {after:?}"
    );
    assert_eq!(after.site_labels, 40);
    let fitted = (a.accept_below, a.reject_at);

    // Site B sees its own state only, nothing of A's labels.
    let b = info(KEY_B).await;
    assert_eq!(b.sites.len(), 1);
    assert_eq!((b.sites[0].site.as_str(), b.sites[0].labels_ham), ("b", 0));
    assert_eq!(b.site_labels, 0, "B's key counts no labels of A's: {b:?}");
    let admin = info(ADMIN).await;
    let names: Vec<&str> = admin.sites.iter().map(|s| s.site.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(admin.site_labels, 40);

    // Checks of site A are decided with the thresholds it shows.
    let probes = [
        "Thanks, part 3 of the series was clear; listing two has a typo",
        "Order cheap replica watches now http://watches99.example/",
        BORDERLINE[0],
        BORDERLINE[1],
        "Is there a version of this for Windows? The installer fails for me",
    ];
    for probe in probes {
        let r = check(&mut client, with_key(probe_req(probe), KEY_A)).await;
        let p = r.spam_probability;
        let want = if p >= fitted.1 {
            pb::Verdict::Reject
        } else if p < fitted.0 {
            pb::Verdict::Accept
        } else {
            pb::Verdict::Hold
        };
        assert_eq!(
            verdict(&r),
            want,
            "{probe}: p {p} with thresholds {fitted:?}"
        );
    }
    stop(server).await;
}
