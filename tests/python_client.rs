//! Python clients talk to the real server: one with stubs generated from the proto at test
//! time, one that finds the API through v1alpha server reflection alone. Needs `python3` with
//! `grpcio`, `grpcio-tools` and `grpcio-reflection` (scripts/test installs them); when one is
//! missing these tests fail rather than skip.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::TestServer;
use serde_json::Value;

/// Runs `tests/python/<script>` with `args` and returns what it printed, as JSON.
async fn run_python(script: &str, args: Vec<String>) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let path = root.join("tests/python").join(script);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(path)
            .args(args)
            .current_dir(root)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{python}` (is Python 3 installed?): {e}"))
    })
    .await
    .expect("the python runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}); are grpcio, grpcio-tools and grpcio-reflection installed?\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stubs_from_the_proto_check_a_comment() {
    let server = TestServer::start_default().await;
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let v = run_python(
        "check_client.py",
        vec![server.addr.to_string(), proto.display().to_string()],
    )
    .await;

    let verdict = v["verdict"].as_str().expect("verdict name");
    assert!(
        verdict == "VERDICT_REJECT" || verdict == "VERDICT_HOLD",
        "{v}"
    );
    let p = v["spam_probability"].as_f64().expect("probability");
    assert!(p > 0.5 && p <= 1.0, "{v}");
    let reasons = v["reasons"].as_array().expect("reasons");
    assert!(!reasons.is_empty(), "{v}");
    assert!(
        reasons.iter().any(|r| r["kind"] == "REASON_KIND_TEXT_TOKEN"
            && r["label"].as_str().is_some_and(|l| l.contains(':'))),
        "{v}"
    );
    assert!(!v["check_id"].as_str().expect("check_id").is_empty(), "{v}");
    assert!(
        !v["model_version"]
            .as_str()
            .expect("model_version")
            .is_empty(),
        "{v}"
    );
    assert_eq!(v["external_id"], "py-1", "{v}");

    // Bytes that do not decode are the caller's fault: INVALID_ARGUMENT naming the field, not
    // INTERNAL. The server answers the next call as before.
    let undecodable = v["undecodable"].as_array().expect("undecodable answers");
    assert_eq!(undecodable.len(), 2, "{v}");
    for (answer, field) in undecodable
        .iter()
        .zip(["Comment.content", "CheckRequest.comment"])
    {
        assert_eq!(answer["code"], "INVALID_ARGUMENT", "{v}");
        let details = answer["details"].as_str().expect("details");
        assert!(details.contains(field), "{field} not named: {details}");
    }
    let mut client = server.client().await;
    let r = client
        .check(common::check_req(common::HAM))
        .await
        .expect("a good call after bad bytes");
    assert!(!r.into_inner().check_id.is_empty());
}

/// Python's grpcio-reflection speaks only `grpc.reflection.v1alpha`, like many tools: through it
/// alone a client finds the services, resolves the messages (with the well-known types they
/// import) and makes a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_finds_the_api_through_v1alpha_reflection() {
    let server = TestServer::start_default().await;
    let v = run_python("reflection_client.py", vec![server.addr.to_string()]).await;

    let services = v["services"].as_array().expect("services");
    for want in [
        "hamgate.v1.CommentFilter",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.iter().any(|s| s == want), "{want} in {v}");
    }
    for (rpc, request, response) in [
        ("Check", "CheckRequest", "CheckResponse"),
        (
            "GetModelInfo",
            "GetModelInfoRequest",
            "GetModelInfoResponse",
        ),
        ("GetStats", "GetStatsRequest", "GetStatsResponse"),
    ] {
        assert_eq!(
            v["methods"][rpc],
            serde_json::json!([
                format!("hamgate.v1.{request}"),
                format!("hamgate.v1.{response}")
            ]),
            "{v}"
        );
    }
    let fields = &v["stats_request_fields"];
    assert_eq!(fields["start_time"], "google.protobuf.Timestamp", "{v}");
    assert_eq!(fields["end_time"], "google.protobuf.Timestamp", "{v}");
    assert_eq!(fields["step"], "google.protobuf.Duration", "{v}");
    let verdict = v["check_verdict"].as_str().expect("verdict");
    assert!(
        verdict == "VERDICT_REJECT" || verdict == "VERDICT_HOLD",
        "{v}"
    );
}
