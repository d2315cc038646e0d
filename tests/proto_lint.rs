//! The published contract, `proto/hamgate/v1/filter.proto`, kept to its rules.
//!
//! `buf lint` checks buf's STANDARD rules and a comment on every element (buf.yaml says which
//! and why one is excepted); buf comes from npm (tests/proto-lint/package.json, which
//! scripts/test installs) and, like every tool the tests need, fails the test when missing.
//! What buf has no rule for is checked here over the compiled descriptors the server serves:
//! no name a major client language reserves, times as Timestamp/Duration, no hard-coded limits.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn buf() -> PathBuf {
    root().join("tests/proto-lint/node_modules/.bin/buf")
}

#[test]
fn buf_lint_passes() {
    let buf = buf();
    assert!(
        buf.exists(),
        "{} is missing: run scripts/test, or `npm ci --prefix tests/proto-lint`",
        buf.display()
    );
    let out = Command::new(&buf)
        .arg("lint")
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", buf.display()));
    assert!(
        out.status.success(),
        "buf lint found problems ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Keywords of the languages clients are written in, as generated code spells field names in
/// lower snake case (Python, Rust, C++, Ruby) or might (JavaScript, Kotlin, Swift). A field so
/// named cannot be set by name in some of them (`Request(from=...)` is a syntax error in
/// Python) or comes out mangled (`r#type` in Rust).
#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    // Python
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "none",
    "true", "false",
    // Rust (strict and reserved)
    "const", "crate", "dyn", "enum", "extern", "fn", "impl", "let", "loop", "match", "mod", "move",
    "mut", "pub", "ref", "self", "static", "struct", "super", "trait", "type", "unsafe", "use",
    "where", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof",
    "unsized", "virtual", "gen",
    // Go
    "case", "chan", "default", "defer", "fallthrough", "func", "go", "goto", "interface", "map",
    "package", "range", "select", "switch", "var",
    // Java, C#, C++
    "boolean", "byte", "catch", "char", "double", "extends", "float", "implements", "instanceof",
    "int", "long", "native", "new", "private", "protected", "public", "short", "synchronized",
    "this", "throw", "throws", "transient", "void", "volatile", "null", "base", "bool", "checked",
    "decimal", "delegate", "event", "explicit", "fixed", "foreach", "implicit", "internal", "lock",
    "namespace", "object", "operator", "out", "params", "readonly", "sealed", "sizeof", "string",
    "uint", "ulong", "unchecked", "ushort", "using", "auto", "delete", "friend", "inline",
    "mutable", "register", "signed", "template", "typedef", "typename", "union", "unsigned",
    "export", "nullptr",
    // JavaScript/TypeScript, Kotlin, Swift, Ruby
    "debugger", "function", "fun", "val", "when", "typealias", "guard", "init", "repeat",
    "subscript", "nil", "begin", "end", "ensure", "module", "next", "redo", "rescue", "retry",
    "undef", "unless", "until", "then", "alias", "elsif",
];

fn descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(hamgate::grpc::pb::FILE_DESCRIPTOR_SET)
        .expect("the served descriptor set decodes")
}

/// Every message of hamgate's own files, nested ones too, with its full name.
fn messages(set: &FileDescriptorSet) -> Vec<(String, &DescriptorProto)> {
    fn walk<'a>(
        prefix: &str,
        m: &'a DescriptorProto,
        out: &mut Vec<(String, &'a DescriptorProto)>,
    ) {
        let name = format!("{prefix}.{}", m.name());
        for nested in &m.nested_type {
            walk(&name, nested, out);
        }
        out.push((name, m));
    }
    let mut out = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package().starts_with("hamgate."))
    {
        for m in &file.message_type {
            walk(file.package(), m, &mut out);
        }
    }
    assert!(out.len() > 10, "hamgate's messages not found: {out:?}");
    out
}

#[test]
fn no_field_or_oneof_is_named_after_a_client_language_keyword() {
    let set = descriptors();
    let mut bad = Vec::new();
    for (message, m) in messages(&set) {
        let names = m
            .field
            .iter()
            .map(|f| f.name())
            .chain(m.oneof_decl.iter().map(|o| o.name()));
        for name in names {
            if KEYWORDS.contains(&name) {
                bad.push(format!("{message}.{name}"));
            }
        }
    }
    assert!(bad.is_empty(), "named after a keyword: {bad:?}");
}

#[test]
fn times_are_timestamps_and_durations_not_integers() {
    const INTEGERS: &[Type] = &[
        Type::Int32,
        Type::Int64,
        Type::Uint32,
        Type::Uint64,
        Type::Sint32,
        Type::Sint64,
        Type::Fixed32,
        Type::Fixed64,
        Type::Sfixed32,
        Type::Sfixed64,
    ];
    let time_like = |name: &str| {
        ["_at", "_unix", "_time", "_secs", "_seconds", "_ms", "_us"]
            .iter()
            .any(|s| name.ends_with(s))
            || ["start", "end", "from", "to", "step", "timeout", "deadline"].contains(&name)
    };
    let set = descriptors();
    let mut bad = Vec::new();
    for (message, m) in messages(&set) {
        for f in &m.field {
            if time_like(f.name()) && INTEGERS.contains(&f.r#type()) {
                bad.push(format!("{message}.{}", f.name()));
            }
        }
    }
    assert!(bad.is_empty(), "integer times: {bad:?}");
}

/// Limits are server settings: the contract says which setting, not a number that a deployment
/// may have changed.
#[test]
fn limits_are_described_as_settings_not_numbers() {
    let path = root().join("proto/hamgate/v1/filter.proto");
    let text = std::fs::read_to_string(&path).expect("the proto");
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lower = line.to_ascii_lowercase();
        for phrase in ["at most ", "up to ", "over ", "limit of ", "maximum of "] {
            if let Some(at) = lower.find(phrase) {
                if lower[at + phrase.len()..].starts_with(|c: char| c.is_ascii_digit()) {
                    bad.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "hard-coded limits: {bad:#?}");
}
