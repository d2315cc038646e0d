//! Nothing is destroyed and the README's promises hold: a label log is never opened over a file
//! that is not one, damage in the middle of a log loses only the damaged record, read-only
//! commands write nothing, a failed retrain leaves the model directory as it was, a filled
//! honeypot rejects whatever the text, the log keeps no raw identifiers, and errors are said
//! once. Through the real binary and a real gRPC client.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{check_req, http_get, TestServer};
use hamgate::config::Settings;
use hamgate::grpc::pb;
use hamgate::labels::file::{read_log, FileLabelLog};
use hamgate::labels::{LabelLog, LabelRecord};

const BIN: &str = env!("CARGO_BIN_EXE_hamgate");

fn hamgate(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HAMGATE_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the hamgate binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir` with its bytes, to compare a directory before and after.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).expect("read"));
        }
    }
    out
}

/// A copy of the shipped model in `dir`: the kind of file a mistyped path lands on.
fn victim(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("victim.hgm");
    let bytes = hamgate::model::EMBEDDED_MODEL.to_vec();
    std::fs::write(&path, &bytes).expect("write");
    (path, bytes)
}

#[test]
fn serve_refuses_a_label_log_path_that_is_not_a_label_log_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, bytes) = victim(dir.path());
    let out = hamgate(
        &[
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        &[("HAMGATE_LABEL_LOG", &path)],
    );
    assert!(!out.status.success(), "serve started over a model file");
    let err = stderr(&out);
    assert!(err.contains("victim.hgm"), "{err}");
    assert!(err.contains("is not a hamgate label log"), "{err}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        bytes,
        "the file changed"
    );
    assert_eq!(
        snapshot(dir.path()).len(),
        1,
        "something was written beside it"
    );
}

#[test]
fn retrain_never_creates_or_touches_a_label_log_and_a_failed_retrain_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("models");
    let models_arg = models.to_str().expect("utf-8");
    let (path, bytes) = victim(dir.path());

    let retrain = |labels: &Path, model_dir: &str| {
        hamgate(
            &[
                "retrain",
                "--labels",
                labels.to_str().expect("utf-8"),
                "--model-dir",
                model_dir,
            ],
            &[],
        )
    };

    // A label log path that is a model file: refused, untouched.
    let out = retrain(&path, models_arg);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a hamgate label log"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&path).expect("read"), bytes);

    // A missing one: an error naming it, not an empty log created.
    let missing = dir.path().join("missing.log");
    let out = retrain(&missing, models_arg);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("missing.log"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(!missing.exists(), "retrain created the label log");
    assert!(!models.exists(), "retrain created the model directory");

    // Too few labels: the retrain fails, and neither a new nor an existing directory changes.
    let log_path = dir.path().join("labels.log");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (log, _) = FileLabelLog::open(&log_path).expect("open");
        for i in 0..10u64 {
            let record = LabelRecord {
                site: "default".into(),
                label: if i % 2 == 0 {
                    hamgate::comment::Label::Spam
                } else {
                    hamgate::comment::Label::Ham
                },
                comment: hamgate::comment::Comment::from_content(format!("label {i}")),
                check_id: String::new(),
                moderator: String::new(),
                reason: String::new(),
                at: 1_800_000_000 + i,
                posted_at: None,
                imported: false,
            };
            log.append(record).await.expect("append");
        }
    });
    let log_bytes = std::fs::read(&log_path).expect("read");
    let out = retrain(&log_path, models_arg);
    assert!(!out.status.success(), "a retrain on 10 labels succeeded");
    assert!(stderr(&out).contains("labels"), "{}", stderr(&out));
    assert!(
        !models.exists(),
        "a failed retrain created the model directory"
    );

    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).expect("mkdir");
    let dir_model = hamgate::retrain::ModelDir::open(&existing).expect("dir");
    dir_model
        .install(&hamgate::model::Model::embedded().expect("model"))
        .expect("install");
    let before = snapshot(&existing);
    assert!(before.keys().any(|p| p.ends_with("CURRENT")));
    let out = retrain(&log_path, existing.to_str().expect("utf-8"));
    assert!(!out.status.success());
    assert_eq!(
        snapshot(&existing),
        before,
        "a failed retrain changed the directory"
    );
    assert_eq!(
        std::fs::read(&log_path).expect("read"),
        log_bytes,
        "retrain wrote to the log"
    );
}

#[test]
fn read_only_commands_create_nothing_and_say_each_error_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["model-info", "--model-dir"],
        vec!["rollback", "--model-dir"],
    ] {
        let target = dir.path().join(format!("{}-dir", args[0]));
        let mut full = args.clone();
        full.push(target.to_str().expect("utf-8"));
        let out = hamgate(&full, &[]);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains(&format!("{}-dir", args[0])), "{err}");
        assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
        assert!(!target.exists(), "{args:?} created {}", target.display());
    }
    // A file where a directory is expected: said once, nothing changed.
    let (path, bytes) = victim(dir.path());
    let out = hamgate(
        &["model-info", "--model-dir", path.to_str().expect("utf-8")],
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.matches("not a directory").count(), 1, "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes);

    // A busy port: the address and the cause, once each.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let out = hamgate(
        &["serve", "--grpc-addr", &addr, "--http-addr", "127.0.0.1:0"],
        &[("HAMGATE_LABEL_LOG", &dir.path().join("l.log"))],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&addr), "{err}");
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
}

fn with_honeypot(content: &str, ip: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        client: Some(pb::Client {
            ip: ip.into(),
            honeypot: "http://x.example".into(),
            ..Default::default()
        }),
        ..check_req(content)
    }
}

#[tokio::test]
async fn a_filled_honeypot_rejects_and_discards_the_shortest_hammiest_texts_and_teaches_no_ham() {
    let server = TestServer::start(Settings::default()).await;
    let mut client = server.client().await;
    for (i, text) in [
        "good",
        "ok",
        "Thanks!",
        "x",
        "This song is amazing, I still listen to it every day",
    ]
    .iter()
    .enumerate()
    {
        let ip = format!("198.51.100.{}", 10 + i);
        // Three times from the same address: had it taught ham, the last would show it.
        for _ in 0..3 {
            let r = client
                .check(with_honeypot(text, &ip))
                .await
                .expect("check")
                .into_inner();
            assert_eq!(r.verdict, pb::Verdict::Reject as i32, "{text:?}: {r:?}");
            assert!(r.discard, "{text:?}: {r:?}");
            assert!(r.spam_probability > 0.9, "{text:?}: {r:?}");
            assert_eq!(r.reasons[0].label, "rule:honeypot", "{text:?}");
        }
        // The same address without the honeypot: its history is spam, never ham.
        let r = client
            .check(common::check_from(text, &ip))
            .await
            .expect("check")
            .into_inner();
        for reason in r
            .reasons
            .iter()
            .filter(|r| r.label.starts_with("reputation:ip"))
        {
            assert!(
                reason.log_odds > 0.0,
                "{text:?}: a honeypot taught ham: {r:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_label_log_keeps_no_raw_identifiers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("labels.log");
    let mut settings = Settings::default();
    settings.feedback.label_log = log_path.clone();
    let server = TestServer::start(settings).await;
    let mut client = server.client().await;
    let req = pb::CheckRequest {
        comment: Some(pb::Comment {
            content: "Great post, the second listing has a typo in line 3".into(),
            author_name: "Jane Q. Reader".into(),
            author_email: "jane.reader@mail.example".into(),
            author_url: "https://janes-blog.example/about/me?id=42".into(),
            ..Default::default()
        }),
        client: Some(pb::Client {
            ip: "203.0.113.77".into(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
                .into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let checked = client.check(req.clone()).await.expect("check").into_inner();
    for target in [
        pb::feedback_request::Target::CheckId(checked.check_id),
        pb::feedback_request::Target::Check(req),
    ] {
        client
            .feedback(pb::FeedbackRequest {
                target: Some(target),
                label: pb::Label::Ham as i32,
                ..Default::default()
            })
            .await
            .expect("feedback");
    }
    let bytes = String::from_utf8_lossy(&std::fs::read(&log_path).expect("read")).into_owned();
    for secret in [
        "203.0.113.77",
        "jane.reader",
        "Jane",
        "Reader",
        "/about",
        "id=42",
        "rv:120",
    ] {
        assert!(!bytes.contains(secret), "the log holds `{secret}`");
    }
    // What retraining needs is there: the text and the tokens' stand-ins.
    let (labels, _) = read_log(&log_path).expect("read_log");
    assert_eq!(labels.len(), 2);
    for l in &labels {
        let c = &l.record.comment;
        assert!(c.content.contains("typo"), "{c:?}");
        assert_eq!(c.email, "@mail.example");
        assert_eq!(c.url, "https://www.janes-blog.example/");
        assert!(c.ip.is_empty());
    }
}

#[tokio::test]
async fn a_flipped_byte_in_the_middle_loses_one_label_and_readyz_names_the_quarantine() {
    const N: usize = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("labels.log");
    let mut settings = Settings::default();
    settings.feedback.label_log = log_path.clone();

    let server = TestServer::start(settings.clone()).await;
    let mut client = server.client().await;
    let mut acked = Vec::new();
    for i in 0..N {
        let content = format!("comment {i}: a reader writes about listing {i}");
        let label = if i % 3 == 0 {
            pb::Label::Spam
        } else {
            pb::Label::Ham
        };
        let fb = client
            .feedback(pb::FeedbackRequest {
                target: Some(pb::feedback_request::Target::Check(check_req(&content))),
                label: label as i32,
                ..Default::default()
            })
            .await
            .expect("feedback")
            .into_inner();
        acked.push((fb.label_seq, content));
    }
    server
        .stop(Duration::from_secs(10))
        .await
        .expect("stops")
        .expect("clean");

    let mut bytes = std::fs::read(&log_path).expect("read");
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    std::fs::write(&log_path, &bytes).expect("write");

    let server = TestServer::start(settings).await;
    let mut ready = http_get(server.http_addr, "/readyz", None).await;
    for _ in 0..100 {
        if ready.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = http_get(server.http_addr, "/readyz", None).await;
    }
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body.contains("notice: label log"), "{}", ready.body);
    assert!(ready.body.contains("quarantine"), "{}", ready.body);
    let quarantined: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains(".quarantine-"))
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(
        ready.body.contains(&*quarantined[0].to_string_lossy()),
        "{}",
        ready.body
    );

    // A label taken after the repair gets a new seq, after every old one.
    let mut client = server.client().await;
    let fb = client
        .feedback(pb::FeedbackRequest {
            target: Some(pb::feedback_request::Target::Check(check_req(
                "after the repair",
            ))),
            label: pb::Label::Ham as i32,
            ..Default::default()
        })
        .await
        .expect("feedback")
        .into_inner();
    assert_eq!(fb.label_seq, N as u64 + 1);
    server
        .stop(Duration::from_secs(10))
        .await
        .expect("stops")
        .expect("clean");

    let (labels, report) = read_log(&log_path).expect("read_log");
    assert_eq!(
        report.bytes_dropped, 0,
        "the log was not repaired: {report:?}"
    );
    let kept: BTreeMap<u64, &str> = labels
        .iter()
        .map(|l| (l.seq, l.record.comment.content.as_str()))
        .collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(seq, _)| !kept.contains_key(seq))
        .collect();
    assert_eq!(lost.len(), 1, "lost {lost:?}");
    for (seq, content) in &acked {
        if let Some(got) = kept.get(seq) {
            assert_eq!(got, content, "seq {seq}");
        }
    }
    assert_eq!(kept.len(), N);
}

#[tokio::test]
async fn labels_past_their_retention_leave_the_log_when_the_server_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("labels.log");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    {
        let (log, _) = FileLabelLog::open(&log_path).expect("open");
        for (i, age_days) in [400u64, 366, 364, 1].iter().enumerate() {
            let record = LabelRecord {
                site: "default".into(),
                label: hamgate::comment::Label::Ham,
                comment: hamgate::comment::Comment::from_content(format!("label {i}")),
                check_id: String::new(),
                moderator: String::new(),
                reason: String::new(),
                at: now - age_days * 86_400,
                posted_at: None,
                imported: false,
            };
            log.append(record).await.expect("append");
        }
    }
    let mut settings = Settings::default();
    settings.feedback.label_log = log_path.clone();
    assert_eq!(settings.feedback.label_retention_days, 365);
    let server = TestServer::start(settings).await;
    let mut kept = Vec::new();
    for _ in 0..100 {
        kept = read_log(&log_path)
            .expect("read_log")
            .0
            .iter()
            .map(|l| (l.seq, l.record.comment.content.clone()))
            .collect();
        if kept.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        kept,
        vec![(3, "label 2".to_string()), (4, "label 3".to_string())]
    );
    server
        .stop(Duration::from_secs(10))
        .await
        .expect("stops")
        .expect("clean");
}

#[tokio::test]
async fn a_retrain_rpc_that_fails_leaves_the_model_directory_as_it_was() {
    const ADMIN: &str = "admin-key-for-the-test";
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("models");
    let mut settings = Settings::default();
    settings.feedback.label_log = dir.path().join("labels.log");
    settings.model_dir = Some(models.clone());
    settings.admin_key_sha256 = Some(hamgate::config::hash_key(ADMIN));
    let server = TestServer::start(settings).await;
    let before = snapshot(&models);
    let mut client = server.client().await;
    // Three labels: far too few to judge a candidate on.
    for text in ["one", "two", "three"] {
        client
            .feedback(pb::FeedbackRequest {
                target: Some(pb::feedback_request::Target::Check(check_req(text))),
                label: pb::Label::Ham as i32,
                ..Default::default()
            })
            .await
            .expect("feedback");
    }
    let mut req = tonic::Request::new(pb::RetrainRequest {});
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN}").parse().expect("ascii"),
    );
    let err = client.retrain(req).await.expect_err("too few labels");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        snapshot(&models),
        before,
        "a failed Retrain wrote to the model directory"
    );
    assert!(!models.join("CURRENT").exists());
}
