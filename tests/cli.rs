//! The `hamgate` binary end to end: `score`, `train`, `eval`, and the client commands (`check`,
//! `health`, `bench-load`) against a server, with the real executable.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use common::TestServer;
use hamgate::model::Model;

const BIN: &str = env!("CARGO_BIN_EXE_hamgate");

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs the binary with `args`, feeding `stdin` (from a thread, so a child that stops reading
/// early cannot deadlock us), with `envs` set and `SOURCE_DATE_EPOCH` otherwise unset.
fn run_with(args: &[&str], stdin: &[u8], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SOURCE_DATE_EPOCH")
        .env("HAMGATE_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the hamgate binary starts");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit without reading everything (it reads at most 1 MiB).
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("the hamgate binary runs");
    writer.join().unwrap();
    out
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_with(args, stdin, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}\nstderr: {}",
        o.status,
        stderr(o)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

fn score_json(input: &str) -> Value {
    json_of(&run(&["score", "--json", "--top", "200"], input.as_bytes()))
}

fn labels(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .expect("reasons is a list")
        .iter()
        .map(|r| r["label"].as_str().expect("label is a string").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// score
// ---------------------------------------------------------------------------------------------

/// Spam from the shipped corpus (Youtube01-Psy.csv).
const SPAM: &str = "Hey guys please check out my new Google+ page it has many funny pictures,  \
                    FunnyTortsPics  https://plus.google.com/112720997191206369631/post\u{FEFF}";
/// Ham from the shipped corpus (Youtube02-KatyPerry.csv).
const HAM: &str = "I love this song so much!:-D I've heard it so much I pretty much memorized  \
                   the lyrics\u{FEFF}";

#[test]
fn score_rejects_or_holds_clear_spam_with_reasons() {
    let out = run(&["score", "--json"], SPAM.as_bytes());
    let v = json_of(&out);
    let verdict = v["verdict"].as_str().unwrap();
    assert!(verdict == "reject" || verdict == "hold", "{v}");
    let p = f(&v, "spam_probability");
    assert!(p > 0.5 && p <= 1.0, "{v}");
    assert!(f(&v, "log_odds") > 0.0);
    let reasons = labels(&v);
    assert!(
        !reasons.is_empty() && reasons.len() <= 8,
        "default --top is 8: {reasons:?}"
    );
    for l in &reasons {
        assert!(l.contains(':'), "not a token label: {l}");
    }
    // The link and the "check out" phrasing are what the model objects to.
    assert!(
        reasons
            .iter()
            .any(|l| l.contains("check") || l.starts_with("host:") || l.starts_with("tld:")),
        "{reasons:?}"
    );
    let thresholds = &v["thresholds"];
    assert!(f(thresholds, "accept_below") <= f(thresholds, "reject_at"));
}

#[test]
fn score_accepts_clear_ham() {
    let v = score_json(HAM);
    let p = f(&v, "spam_probability");
    assert!((0.0..0.5).contains(&p), "{v}");
    assert_ne!(v["verdict"], "reject", "{v}");
    assert!(labels(&v).iter().all(|l| l.contains(':')));
}

#[test]
fn score_plain_text_output_matches_json() {
    let text = stdout(&run(&["score"], SPAM.as_bytes()));
    let v = score_json(SPAM);
    assert!(
        text.contains(&format!(
            "verdict:          {}",
            v["verdict"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{:.4}", f(&v, "spam_probability"))),
        "{text}"
    );
}

#[test]
fn score_reads_json_with_author() {
    let content = "I love this song";
    let json = serde_json::json!({"content": content, "author": "BEST SEO 2024"}).to_string();
    let v = score_json(&json);
    let ls = labels(&v);
    // The author was read as metadata, and the JSON syntax was not taken as the comment's text.
    assert!(ls.iter().any(|l| l.starts_with("meta:author=")), "{ls:?}");
    assert!(
        !ls.iter().any(|l| l == "word:content" || l == "word:author"),
        "{ls:?}"
    );
    assert!(ls.iter().any(|l| l == "word:love"), "{ls:?}");
    // Same text without the author: no metadata, and a different score.
    let plain = score_json(content);
    assert!(!labels(&plain).iter().any(|l| l.starts_with("meta:")));
    assert_ne!(f(&plain, "log_odds"), f(&v, "log_odds"));
    // And plain text that merely looks like JSON is still scored, as text.
    let braces = score_json("{I love this song, really}");
    assert!(labels(&braces).iter().any(|l| l == "word:love"), "{braces}");
}

#[test]
fn score_without_a_comment_fails() {
    for input in ["", "   \n\t  \n"] {
        let out = run(&["score", "--json"], input.as_bytes());
        assert!(!out.status.success(), "{input:?} succeeded");
        assert!(out.stdout.is_empty(), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("no comment on stdin"), "{err}");
    }
    let out = run(&["score"], br#"{"content": "   ", "author": "x"}"#);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("content"), "{}", stderr(&out));
}

#[test]
fn score_with_a_corrupt_model_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.hgm");
    std::fs::write(&path, b"HGMODEL\0garbage").unwrap();
    let out = run(
        &["score", "--model", path.to_str().unwrap()],
        HAM.as_bytes(),
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
}

/// Over the 1 MiB stdin cap, `score` refuses with a message naming the limit, whatever the
/// input: ASCII, multi-byte text cut inside a character (once refused as "invalid UTF-8"), or
/// JSON (once cut, failed to parse and silently scored as plain text).
#[test]
fn score_refuses_input_over_the_stdin_limit_clearly() {
    let inputs = [
        "I love this song ".repeat(70_000),
        "€".repeat(400_000),
        serde_json::json!({"content": "nice song ".repeat(120_000), "author": "Bob"}).to_string(),
    ];
    for input in inputs {
        assert!(input.len() > 1 << 20);
        let out = run(&["score", "--json"], input.as_bytes());
        assert!(!out.status.success(), "over-limit input was accepted");
        let err = stderr(&out);
        assert!(err.contains("1 MiB"), "{err}");
        assert!(!err.contains("UTF-8"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// train and eval
// ---------------------------------------------------------------------------------------------

fn jsonl_line(content: &str, label: &str) -> String {
    serde_json::json!({"content": content, "label": label}).to_string()
}

/// A corpus of distinct comments: `n` spam and `n` ham, numbered from `from`.
fn write_corpus(path: &Path, from: usize, n: usize) -> usize {
    let spam = [
        "check out my channel and subscribe",
        "free iphone giveaway at http://win.example.ru",
        "visit www.cheap-followers.example.com now",
        "make money from home, click my profile",
        "SUBSCRIBE TO ME PLEASE!!!",
    ];
    let ham = [
        "I love this song so much",
        "this video brings back memories",
        "her voice is amazing",
        "best music video of the year",
        "the chorus gives me chills",
    ];
    let mut lines = Vec::new();
    for i in from..from + n {
        lines.push(jsonl_line(&format!("{} {i}", spam[i % spam.len()]), "spam"));
        lines.push(jsonl_line(
            &format!("{} take {i}", ham[i % ham.len()]),
            "ham",
        ));
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    lines.len()
}

#[test]
fn train_then_eval_reports_every_metric() {
    let dir = tempfile::tempdir().unwrap();
    let train_corpus = dir.path().join("train.jsonl");
    let test_corpus = dir.path().join("test.jsonl");
    let model = dir.path().join("model.hgm");
    write_corpus(&train_corpus, 0, 40);
    let n_test = write_corpus(&test_corpus, 1000, 15);

    let out = run(
        &[
            "train",
            "--corpus",
            train_corpus.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success(), "train failed: {}", stderr(&out));
    let loaded = Model::load(&model).expect("train wrote a model that loads");
    assert_eq!(loaded.header().train_docs, [40, 40]);

    let out = run(
        &[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--corpus",
            test_corpus.to_str().unwrap(),
            "--json",
        ],
        b"",
    );
    let v = json_of(&out);
    assert_eq!(v["n"].as_u64(), Some(n_test as u64));
    assert_eq!(v["n_spam"].as_u64(), Some(15));
    assert_eq!(v["n_ham"].as_u64(), Some(15));
    // Every rate of the report is there, as a fraction.
    for key in [
        "auc",
        "precision",
        "recall",
        "f1",
        "ham_accepted",
        "ham_held",
        "ham_rejected",
        "spam_accepted",
        "spam_held",
        "spam_rejected",
        "held",
    ] {
        assert!(v[key].is_number(), "missing `{key}` in {v}");
        let x = f(&v, key);
        assert!((0.0..=1.0).contains(&x), "`{key}` = {x}");
    }
    for class in ["ham", "spam"] {
        let sum: f64 = ["accepted", "held", "rejected"]
            .iter()
            .map(|w| f(&v, &format!("{class}_{w}")))
            .sum();
        assert!((sum - 1.0).abs() < 1e-9, "{class} fractions sum to {sum}");
    }
    // Held overall is the class-weighted mean of the per-class held fractions.
    let held = (15.0 * f(&v, "ham_held") + 15.0 * f(&v, "spam_held")) / 30.0;
    assert!((f(&v, "held") - held).abs() < 1e-9);
    // The templates are easy: a model that cannot separate them is broken.
    assert!(f(&v, "auc") > 0.9, "{v}");
}

#[test]
fn eval_cross_validates_the_shipped_corpus_by_group() {
    let out = run(
        &[
            "eval",
            "--corpus",
            "models/corpus/youtube",
            "--cv",
            "group",
            "--json",
        ],
        b"",
    );
    let v = json_of(&out);
    assert_eq!(v["n"].as_u64(), Some(1711), "{v}");
    // The numbers the model issue asks for (deterministic: same corpus, same folds, same bits),
    // so a change that loses them fails here rather than in a benchmark nobody reran.
    let auc = f(&v, "auc");
    assert!(
        (0.975..=1.0).contains(&auc),
        "leave-one-video-out AUC fell to {auc}"
    );
    assert!(f(&v, "f1") >= 0.93, "spam F1 fell under 0.93: {v}");
    assert!(f(&v, "ham_rejected") <= 0.005, "{v}");
    assert!(f(&v, "spam_accepted") <= 0.05, "{v}");
    assert!(f(&v, "held") <= 0.15, "{v}");
    assert_eq!(
        v["evaluated"].as_str(),
        Some("leave-one-group-out over 5 groups"),
        "{v}"
    );
    assert_eq!(v["dedup"]["kept"].as_u64(), Some(1711));
}

#[test]
fn eval_refuses_the_shipped_model_on_its_own_corpus() {
    let out = run(
        &[
            "eval",
            "--model",
            "models/default.hgm",
            "--corpus",
            "models/corpus/youtube",
        ],
        b"",
    );
    assert!(
        !out.status.success(),
        "evaluated a model on its training data"
    );
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("was trained on this very corpus"), "{err}");
    assert!(err.contains("models/default.hgm"), "{err}");

    // The same corpus copied elsewhere is still the same corpus.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(manifest_path("models/corpus/youtube")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let out = run(
        &[
            "eval",
            "--model",
            "models/default.hgm",
            "--corpus",
            dir.path().to_str().unwrap(),
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("trained on this very corpus"));

    // The built-in model (no --model) is refused the same way.
    let out = run(&["eval", "--corpus", "models/corpus/youtube"], b"");
    assert!(
        !out.status.success(),
        "evaluated the built-in model on its training data"
    );
    let err = stderr(&out);
    assert!(
        err.contains("the built-in model was trained on this very corpus"),
        "{err}"
    );
}

#[test]
fn train_names_the_file_and_line_of_a_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("bad.jsonl");
    let lines = [
        jsonl_line("fine comment", "ham"),
        jsonl_line("buy now", "spam"),
        r#"{"label": "spam", "author": "no content here"}"#.to_string(),
        jsonl_line("another", "ham"),
    ];
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    let model = dir.path().join("never.hgm");
    let out = run(
        &[
            "train",
            "--corpus",
            corpus.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ],
        b"",
    );
    assert!(!out.status.success(), "trained on a malformed corpus");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3", corpus.display())),
        "no file:line in {err}"
    );
    assert!(err.contains("content"), "{err}");
    assert!(!model.exists(), "a model was written anyway");
}

#[test]
fn train_is_reproducible_with_source_date_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.jsonl");
    write_corpus(&corpus, 0, 30);
    let train_to = |name: &str, epoch: &str| -> Vec<u8> {
        let out_path = dir.path().join(name);
        let out = run_with(
            &[
                "train",
                "--corpus",
                corpus.to_str().unwrap(),
                "--out",
                out_path.to_str().unwrap(),
            ],
            b"",
            &[("SOURCE_DATE_EPOCH", epoch)],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read(out_path).unwrap()
    };
    let a = train_to("a.hgm", "1700000000");
    let b = train_to("b.hgm", "1700000000");
    assert!(a == b, "two trainings with SOURCE_DATE_EPOCH differ");
    let model = Model::from_bytes(&a).unwrap();
    assert_eq!(model.header().created_at, 1_700_000_000);
    // The variable really is what sets the time.
    let c = train_to("c.hgm", "1700000001");
    assert!(a != c);
    assert_eq!(
        Model::from_bytes(&c).unwrap().header().created_at,
        1_700_000_001
    );
}

// ---------------------------------------------------------------------------------------------
// Client commands against a running server.

/// Runs the binary from a blocking thread, so the server in this process keeps answering.
async fn run_beside_server(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, b"")
    })
    .await
    .expect("the runner thread")
}

/// `serve` prints its gRPC address as `127.0.0.1:PORT`; `check`, `health` and `bench-load` take
/// it as printed (it once failed with "invalid URL, scheme is missing"), and a URL too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_take_the_address_as_serve_prints_it_or_a_url() {
    let server = TestServer::start_default().await;
    let printed = server.addr.to_string();
    assert!(!printed.contains("://"), "{printed}");
    for addr in [printed, server.url()] {
        let args = |rest: &[&str]| {
            let mut v = vec![rest[0].to_string(), "--addr".into(), addr.clone()];
            v.extend(rest[1..].iter().map(|s| s.to_string()));
            v
        };
        let o = run_beside_server(args(&["health"])).await;
        assert!(o.status.success(), "health --addr {addr}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("SERVING"), "{}", stdout(&o));

        let o = run_beside_server(args(&["check", "--content", SPAM, "--test", "--json"])).await;
        let v = json_of(&o);
        assert!(
            v["verdict"] == "VERDICT_REJECT" || v["verdict"] == "VERDICT_HOLD",
            "check --addr {addr}: {v}"
        );

        let o = run_beside_server(args(&[
            "bench-load",
            "--requests",
            "20",
            "--connections",
            "2",
            "--duration",
            "30",
            "--json",
        ]))
        .await;
        let v = json_of(&o);
        assert_eq!(v["ok"], 20, "bench-load --addr {addr}: {v}");
        assert_eq!(v["errors"], 0, "bench-load --addr {addr}: {v}");
    }

    // What is no address says which forms are, before trying to connect.
    for cmd in ["check", "health", "bench-load"] {
        let mut args = vec![cmd.to_string(), "--addr".into(), "not an address".into()];
        if cmd == "check" {
            args.extend(["--content".into(), "hello".into()]);
        }
        let o = run_beside_server(args).await;
        assert!(!o.status.success(), "{cmd}");
        let err = stderr(&o);
        assert!(err.contains("HOST:PORT"), "{cmd}: {err}");
    }
}

// Logs: plain text when stderr is not a terminal, and `HAMGATE_LOG` checked.

/// `serve` on free ports logs at info to a pipe: the lines it writes before it is ready carry
/// no ANSI escape codes (a log file is read by people and tools, not a terminal).
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    use std::io::BufRead;
    use std::sync::mpsc;
    use std::time::Duration;

    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HAMGATE_LOG", "info")
        .env_remove("HAMGATE_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hamgate serve starts");
    let pipe = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let ready = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains("hamgate ready") {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    assert!(ready, "serve did not log `hamgate ready`:\n{log}");
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains("\x1b["),
        "escape codes in a piped log:\n{log:?}"
    );
}

/// A `HAMGATE_LOG` that is not a filter stops every command with exit code 2 and one line
/// naming the variable and the value, instead of logging at a default level unnoticed.
#[test]
fn an_invalid_log_filter_is_refused_by_name() {
    let bad = "info,[[[";
    let score = run_with(&["score"], b"hello", &[("HAMGATE_LOG", bad)]);
    let serve = run_with(
        &[
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        b"",
        &[("HAMGATE_LOG", bad)],
    );
    for (cmd, o) in [("score", score), ("serve", serve)] {
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{cmd}: one line: {err}");
        assert!(err.contains("HAMGATE_LOG"), "{cmd}: {err}");
        assert!(err.contains(bad), "{cmd}: {err}");
        assert!(o.stdout.is_empty(), "{cmd}: {}", stdout(&o));
    }
}

#[test]
fn config_check_names_the_bad_key_and_config_show_prints_the_effective_settings() {
    let dir = tempfile::tempdir().unwrap();
    let good = manifest_path("deploy/hamgate.example.toml");
    let out = run(&["config", "check", good.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[feedback]\nsite_labels_per_huor = 5\n").unwrap();
    let out = run(&["config", "check", bad.to_str().unwrap()], b"");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("site_labels_per_huor") && err.contains("bad.toml"),
        "{err}"
    );

    let inverted = dir.path().join("unsafe.toml");
    std::fs::write(&inverted, "grpc_addr = \"0.0.0.0:50051\"\n").unwrap();
    let out = run(&["config", "check", inverted.to_str().unwrap()], b"");
    assert!(
        !out.status.success(),
        "an open site on 0.0.0.0 passed the check"
    );
    assert!(
        stderr(&out).contains("insecure-no-auth"),
        "{}",
        stderr(&out)
    );

    // Every setting is reachable from the environment; the secret is never shown.
    let out = run_with(
        &["config", "show"],
        b"",
        &[
            ("HAMGATE_FEEDBACK__SITE_LABELS_PER_HOUR", "17"),
            ("HAMGATE_LIMITS__MAX_BATCH", "250"),
            ("HAMGATE_SITES__BLOG__KEY_SHA256", "[\"abc123\"]"),
            ("HAMGATE_REPUTATION_SECRET", "do-not-print-me"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: toml::Table = stdout(&out).parse().expect("config show prints TOML");
    assert_eq!(
        shown["feedback"]["site_labels_per_hour"].as_integer(),
        Some(17)
    );
    assert_eq!(shown["limits"]["max_batch"].as_integer(), Some(250));
    assert_eq!(
        shown["sites"]["blog"]["key_sha256"][0].as_str(),
        Some("abc123")
    );
    assert_eq!(shown["reputation"]["secret"].as_str(), Some("********"));
    assert!(!stdout(&out).contains("do-not-print-me"));

    // A variable that names no setting, or a value the setting does not take, is refused by name.
    for (name, value) in [
        ("HAMGATE_FEEDBACK__NO_SUCH_KEY", "1"),
        ("HAMGATE_LIMITS__MAX_BATCH", "lots"),
    ] {
        let out = run_with(&["config", "show"], b"", &[(name, value)]);
        assert!(!out.status.success(), "{name}={value} was taken");
        assert!(stderr(&out).contains(name), "{}", stderr(&out));
    }
}

/// The settings file's `[redis] url` keeps the stores in Redis (it used to be ignored under
/// `[reputation]` unless `backend = "redis"` was also set), and the deprecated
/// `[reputation] redis_url` still does, with a warning naming it: a check through the real
/// binary leaves its reputation and stats keys in a real `redis-server`.
#[test]
fn the_config_files_redis_url_selects_redis_and_the_old_key_still_works() {
    use common::process::{free_port, ChildGuard};
    use common::redis_server::{redis_cli, RedisServer};
    use std::time::{Duration, Instant};

    for (section, deprecated) in [("redis]\nurl", false), ("reputation]\nredis_url", true)] {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hamgate.toml");
        std::fs::write(
            &config,
            format!(
                "[{section} = \"{}\"\n\n[feedback]\nlabel_log = \"{}\"\n",
                redis.url(),
                dir.path().join("labels.log").display()
            ),
        )
        .unwrap();
        let grpc = format!("127.0.0.1:{}", free_port());
        let log = dir.path().join("serve.log");
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("HAMGATE_") {
                cmd.env_remove(k);
            }
        }
        let mut guard = ChildGuard::new(
            cmd.args(["serve", "--config", config.to_str().unwrap()])
                .args(["--grpc-addr", &grpc, "--http-addr", "127.0.0.1:0"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("HAMGATE_LOG", "info")
                // Redis needs the install secret every replica shares.
                .env("HAMGATE_REPUTATION_SECRET", "test-secret")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("hamgate serve starts"),
        );
        let health = run(&["health", "--addr", &grpc, "--wait", "20"], b"");
        let serve_log = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            health.status.success(),
            "{}\n{}",
            stderr(&health),
            serve_log()
        );

        let out = run(
            &[
                "check",
                "--addr",
                &grpc,
                "--ip",
                "203.0.113.9",
                "--content",
                "Check out my channel and subscribe! http://bit.ly/xyz",
            ],
            b"",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        // Reputation is written behind the answer, stats within a second or so.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let keys = redis_cli(redis.port, &["--scan", "--pattern", "hg:*"]).unwrap_or_default();
            if keys.contains("hg:rep:") && keys.contains("hg:stats:") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "[{section}: no reputation and stats keys in Redis: {keys:?}\n{}",
                serve_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        guard.kill();
        let warned = serve_log().contains("reputation.redis_url is deprecated");
        assert_eq!(warned, deprecated, "[{section}:\n{}", serve_log());
    }
}

/// `config check` refuses a Redis timeout that is not one, naming the key; and both Redis URL
/// keys set to different servers, naming both.
#[test]
fn config_check_refuses_a_bad_redis_timeout_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (text, names) in [
        (
            "[redis]\nconnect_timeout_ms = 0\n",
            vec!["redis.connect_timeout_ms"],
        ),
        (
            "[redis]\nstats_timeout_ms = \"fast\"\n",
            vec!["stats_timeout_ms"],
        ),
        (
            "[redis]\nurl = \"redis://a:1\"\n[reputation]\nredis_url = \"redis://b:2\"\n",
            vec!["redis.url", "reputation.redis_url"],
        ),
    ] {
        let file = dir.path().join("redis.toml");
        std::fs::write(&file, text).unwrap();
        let out = run(&["config", "check", file.to_str().unwrap()], b"");
        assert!(!out.status.success(), "{text} passed the check");
        for name in names {
            assert!(stderr(&out).contains(name), "{text}: {}", stderr(&out));
        }
    }
    // `config show` says the effective settings: the old key as `redis.url`, the password
    // masked, and a warning on stderr.
    let file = dir.path().join("old.toml");
    std::fs::write(
        &file,
        "[reputation]\nredis_url = \"redis://:hunter2@127.0.0.1:6379/0\"\n",
    )
    .unwrap();
    let out = run(&["config", "show", "--config", file.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: toml::Table = stdout(&out).parse().unwrap();
    assert_eq!(
        shown["redis"]["url"].as_str(),
        Some("redis://:********@127.0.0.1:6379/0")
    );
    assert_eq!(shown["reputation"]["backend"].as_str(), Some("redis"));
    assert!(shown["reputation"].get("redis_url").is_none());
    assert!(!stdout(&out).contains("hunter2"));
    assert!(stderr(&out).contains("deprecated"), "{}", stderr(&out));
}
