//! A Python client, with stubs generated from the proto at test time, talks to the real server.
//! Needs `python3` with `grpcio` and `grpcio-tools` (scripts/test installs them); when either is
//! missing this test fails rather than skips.

mod common;

use std::path::Path;
use std::process::Command;

use common::TestServer;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stubs_from_the_proto_check_a_comment() {
    let server = TestServer::start_default().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let addr = server.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(root.join("tests/python/check_client.py"))
            .arg(&addr)
            .arg(root.join("proto"))
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
        "the Python client failed ({}); is grpcio/grpcio-tools installed?\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));

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
