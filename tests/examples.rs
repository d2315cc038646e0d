//! The client examples in `examples/` run as a blog developer would run them, against a real
//! server: Python and Node over gRPC, PHP and a Flask app over the Akismet-compatible API. Each
//! checks a comment, acts on the verdict, sends a moderator's label and prints one JSON line;
//! a bad key and an unreachable server end it with a clear message and a non-zero exit. Needs
//! `python3` with `grpcio`, `grpcio-tools` and `flask`, `node` with `examples/node-grpc`'s
//! packages (`npm ci --prefix examples/node-grpc`) and `php` with curl: scripts/test installs
//! them all; when one is missing these tests fail rather than skip.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{known_site_settings, TestServer, HAM, SPAM};
use hamgate::config::{hash_key, Settings, SiteSettings};
use serde_json::Value;

const KEY: &str = "examples-blog-key";
const BLOG: &str = "https://blog.example.org/";
/// Held by the main thresholds (p 0.26 with the shipped model).
const BORDERLINE: &str = "Nice post, I will share it with my friends";

/// One site with a key (and the blog the Akismet examples name); the label log in `dir`, never
/// in the working directory.
fn settings(dir: &tempfile::TempDir) -> Settings {
    let mut s = known_site_settings();
    s.feedback.label_log = dir.path().join("labels.log");
    s.sites.insert(
        "blog".into(),
        SiteSettings {
            key_sha256: vec![hash_key(KEY)],
            blogs: vec![BLOG.into()],
            ..SiteSettings::default()
        },
    );
    s
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What one run of an example did: its exit code and its last stdout line as JSON.
struct Run {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

/// Runs `program args` in `examples/<dir>` with `env` (and no HAMGATE_* from the caller's
/// environment).
async fn run(dir: &str, program: &str, args: Vec<String>, env: Vec<(&str, String)>) -> Run {
    let cwd = root().join("examples").join(dir);
    let program = program.to_string();
    let name = dir.to_string();
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .current_dir(&cwd)
            .env_remove("HAMGATE_ADDR")
            .env_remove("HAMGATE_HTTP")
            .env_remove("HAMGATE_API_KEY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap_or_else(|e| {
            panic!("cannot run `{program}` for examples/{name}: {e}; scripts/test installs it")
        })
    })
    .await
    .expect("the example runner");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    let json = last
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "examples/{dir} printed no JSON line ({}); scripts/test installs what the \
                 examples need\nstdout:\n{stdout}\nstderr:\n{stderr}",
                out.status
            )
        });
    Run {
        code: out.status.code(),
        json,
        stderr,
    }
}

impl Run {
    /// Asserts it succeeded and returns its JSON.
    fn ok(self) -> Value {
        assert_eq!(
            self.code,
            Some(0),
            "{}\nstderr:\n{}",
            self.json,
            self.stderr
        );
        assert_eq!(self.json["ok"], true, "{}", self.json);
        self.json
    }

    /// Asserts it failed with exit `code` and `error`, saying so on stderr.
    fn failed(self, code: i32, error: &str, says: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "{}\nstderr:\n{}",
            self.json,
            self.stderr
        );
        assert_eq!(self.json["ok"], false, "{}", self.json);
        assert_eq!(self.json["error"], error, "{}", self.json);
        let message = self.json["message"].as_str().expect("message");
        assert!(message.contains(says), "{}", self.json);
        assert!(
            self.stderr.contains(message),
            "the message is said on stderr too: {}",
            self.stderr
        );
    }
}

/// An address nothing listens on.
async fn closed_addr() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    drop(l);
    addr
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The gRPC examples: `program script` takes `--addr`, `--key`, `--label` and the comment.
async fn grpc_example(dir: &str, program: &str, script: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(settings(&tmp)).await;
    let addr = server.addr.to_string();

    // Held, with the address and key from the environment; the moderator approves it.
    let v = run(
        dir,
        program,
        args(&[script, BORDERLINE]),
        vec![
            ("HAMGATE_ADDR", addr.clone()),
            ("HAMGATE_API_KEY", KEY.into()),
        ],
    )
    .await
    .ok();
    assert_eq!(v["verdict"], "HOLD", "{v}");
    assert_eq!(v["action"], "moderation_queue", "{v}");
    assert_eq!(v["degraded"], false, "{v}");
    assert_eq!(v["feedback"]["label"], "ham", "{v}");

    // Ham, no label sent.
    let v = run(
        dir,
        program,
        args(&[
            script, "--addr", &addr, "--key", KEY, "--label", "none", HAM,
        ]),
        vec![],
    )
    .await
    .ok();
    assert_eq!(v["verdict"], "ACCEPT", "{v}");
    assert_eq!(v["action"], "publish", "{v}");
    assert!(v["feedback"].is_null(), "{v}");

    // Clear spam, rejected, and the moderator's spam label accepted by check_id.
    let v = run(
        dir,
        program,
        args(&[script, "--addr", &addr, "--key", KEY, SPAM]),
        vec![],
    )
    .await
    .ok();
    assert_eq!(v["verdict"], "REJECT", "{v}");
    assert!(
        v["spam_probability"].as_f64().expect("probability") > 0.9,
        "{v}"
    );
    assert_eq!(v["degraded"], false, "{v}");
    assert!(!v["check_id"].as_str().expect("check_id").is_empty(), "{v}");
    assert_eq!(v["feedback"]["label"], "spam", "{v}");
    let seq: u64 = match &v["feedback"]["label_seq"] {
        Value::String(s) => s.parse().expect("label_seq"),
        n => n.as_u64().expect("label_seq"),
    };
    assert_eq!(seq, 2, "the second label in the log: {v}");

    run(
        dir,
        program,
        args(&[script, "--addr", &addr, "--key", "not-a-key", SPAM]),
        vec![],
    )
    .await
    .failed(2, "bad_key", "API key");
    run(
        dir,
        program,
        args(&[script, "--addr", &closed_addr().await, "--key", KEY]),
        vec![],
    )
    .await
    .failed(3, "unreachable", "cannot reach hamgate");
}

/// The Akismet examples: `program script` takes `--http`, `--key`, `--label` and the comment.
/// `state` names the field saying what became of the comment and its three values.
async fn akismet_example(dir: &str, program: &str, script: &str, state: (&str, [&str; 3])) {
    let (field, [published, held, rejected]) = state;
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(settings(&tmp)).await;
    let http = format!("http://{}", server.http_addr);

    // Held: Akismet's `true`, but X-hamgate-verdict says hold and it waits for a moderator.
    let v = run(
        dir,
        program,
        args(&[script, BORDERLINE]),
        vec![
            ("HAMGATE_HTTP", http.clone()),
            ("HAMGATE_API_KEY", KEY.into()),
        ],
    )
    .await
    .ok();
    assert_eq!(v["spam"], true, "{v}");
    assert_eq!(v["verdict"], "hold", "{v}");
    assert_eq!(v[field], held, "{v}");
    assert_eq!(v["feedback"]["label"], "ham", "{v}");

    let v = run(
        dir,
        program,
        args(&[
            script, "--http", &http, "--key", KEY, "--label", "none", HAM,
        ]),
        vec![],
    )
    .await
    .ok();
    assert_eq!(v["spam"], false, "{v}");
    assert_eq!(v["verdict"], "accept", "{v}");
    assert_eq!(v[field], published, "{v}");
    assert!(v["feedback"].is_null(), "{v}");

    let v = run(
        dir,
        program,
        args(&[script, "--http", &http, "--key", KEY, SPAM]),
        vec![],
    )
    .await
    .ok();
    assert_eq!(v["spam"], true, "{v}");
    assert_eq!(v["verdict"], "reject", "{v}");
    assert_eq!(v[field], rejected, "{v}");
    assert_eq!(v["discard"], true, "{v}");
    assert!(!v["check_id"].as_str().expect("check_id").is_empty(), "{v}");
    assert_eq!(v["feedback"]["label"], "spam", "{v}");
    assert_eq!(
        v["feedback"]["response"], "Thanks for making the web a better place.",
        "{v}"
    );

    run(
        dir,
        program,
        args(&[script, "--http", &http, "--key", "not-a-key"]),
        vec![],
    )
    .await
    .failed(2, "bad_key", "Invalid API key");
    let closed = format!("http://{}", closed_addr().await);
    run(
        dir,
        program,
        args(&[script, "--http", &closed, "--key", KEY]),
        vec![],
    )
    .await
    .failed(3, "unreachable", "cannot reach hamgate");
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_example_checks_acts_and_teaches() {
    grpc_example("python-grpc", &python(), "check.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_grpc_example_checks_acts_and_teaches() {
    let modules: PathBuf = root().join("examples/node-grpc/node_modules/@grpc/grpc-js");
    assert!(
        modules.is_dir(),
        "examples/node-grpc has no node_modules: run scripts/test \
         (npm ci --prefix examples/node-grpc)"
    );
    grpc_example("node-grpc", "node", "check.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_akismet_example_checks_acts_and_teaches() {
    akismet_example(
        "php-akismet",
        "php",
        "check.php",
        ("action", ["publish", "moderation_queue", "discard"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_example_maps_verdicts_to_publish_moderation_reject() {
    akismet_example(
        "flask",
        &python(),
        "demo.py",
        ("status", ["published", "moderation", "rejected"]),
    )
    .await;
}
