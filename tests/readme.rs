//! The README's sample output is what the shipped model answers today: the quick start's
//! `hamgate check` is run against a real server and its verdict, probability, model version and
//! first reasons must match the README's block, so a new model cannot leave the README behind.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_hamgate");

/// Splits a shell command line of words and single-quoted strings (all the README uses).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// The quick start's check command (its arguments after `--`) and the output block after it.
fn readme_sample() -> (Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("cargo run --release -- check "))
        .expect("the README shows a `check` command");
    let args = shell_words(lines[at].trim_start_matches("cargo run --release -- "));
    let open = at
        + lines[at..]
            .iter()
            .position(|l| *l == "```")
            .expect("the command's block ends");
    let output_start = open
        + 1
        + lines[open + 1..]
            .iter()
            .position(|l| *l == "```")
            .expect("an output block follows")
        + 1;
    let output: Vec<String> = lines[output_start..]
        .iter()
        .take_while(|l| **l != "```")
        .map(|l| l.to_string())
        .collect();
    (args, output)
}

#[tokio::test]
async fn the_readmes_sample_check_output_is_what_the_shipped_model_answers() {
    let (args, expected) = readme_sample();
    assert_eq!(args.first().map(String::as_str), Some("check"), "{args:?}");
    let server = TestServer::start_default().await;
    let addr = server.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .args(["--addr", &addr])
            .output()
            .expect("hamgate check runs")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();

    let field = |lines: &[String], name: &str| -> String {
        lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` line in {lines:#?}"))
            .clone()
    };
    for name in ["verdict:", "spam probability:", "model version:"] {
        assert_eq!(
            field(&got, name),
            field(&expected, name),
            "update the README's sample"
        );
    }
    // The reasons the README shows (before its `...`) are the first ones printed, in order.
    let shown: Vec<&String> = expected
        .iter()
        .skip_while(|l| !l.starts_with("reasons"))
        .skip(1)
        .take_while(|l| l.trim() != "...")
        .collect();
    assert!(shown.len() >= 3, "the README shows reasons: {expected:#?}");
    let printed: Vec<&String> = got
        .iter()
        .skip_while(|l| !l.starts_with("reasons"))
        .skip(1)
        .take(shown.len())
        .collect();
    assert_eq!(printed, shown, "update the README's sample");
}
