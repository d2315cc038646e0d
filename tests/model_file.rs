//! The model file (`.hgm`): round trips, determinism, every kind of corruption, and the shipped
//! model.
//!
//! Byte layout (see `src/model/file.rs`): magic `0..8`, format version `8..12`, header length
//! `h` at `12..16`, header JSON `16..16+h`, feature count at `16+h..24+h`, 16-byte feature
//! records, then the SHA-256 of everything before it in the last 32 bytes.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use hamgate::comment::{Comment, Label};
use hamgate::corpus::{dedup, read_corpus, DedupStats, Example};
use hamgate::model::file::{ModelFileErrorKind, FORMAT_VERSION, MAGIC};
use hamgate::model::{train, Model, TrainParams, EMBEDDED_MODEL};
use hamgate::text::TOKENIZER_VERSION;

const CREATED_AT: u64 = 1_700_000_000;

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn youtube_dir() -> PathBuf {
    manifest_path("models/corpus/youtube")
}

/// The corpora the shipped model is trained on, in the order `models/README.md` names them.
fn shipped_corpus() -> Vec<PathBuf> {
    ["youtube", "sms", "spamassassin"]
        .iter()
        .map(|d| manifest_path(&format!("models/corpus/{d}")))
        .collect()
}

fn example(text: &str, label: Label, group: &str) -> Example {
    Example {
        comment: Comment::from_content(text),
        label,
        group: group.into(),
        site: String::new(),
        source: String::new(),
    }
}

/// Forty-eight distinct comments, half spam, over three groups (so training folds by group).
fn small_examples() -> Vec<Example> {
    let spam = [
        "check out my channel and subscribe",
        "free money at http://cheap.example.ru/win now",
        "subscribe to my channel please!!!",
        "visit www.best-deals.example.com for cheap pills",
        "I make $500 a day from home, click here",
        "follow me on twitter for free followers",
        "CHECK OUT MY NEW VIDEO http://bit.ly/xyz",
        "win an iphone, go to promo dot com",
    ];
    let ham = [
        "I love this song so much",
        "this video brings back memories",
        "her voice is amazing in this one",
        "best music video of the year",
        "the dance in the chorus is great",
        "who is still listening in 2015?",
        "the lyrics make me cry every time",
        "my favourite song from this album",
    ];
    let groups = ["alpha", "beta", "gamma"];
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (i, s) in spam.iter().enumerate() {
            out.push(example(&format!("{s} {g} {i}"), Label::Spam, g));
        }
        for (i, h) in ham.iter().enumerate() {
            out.push(example(
                &format!("{h} {g} take {}", gi * 10 + i),
                Label::Ham,
                g,
            ));
        }
    }
    out
}

fn params(created_at: u64) -> TrainParams {
    TrainParams {
        created_at,
        ..TrainParams::default()
    }
}

fn train_small(created_at: u64) -> Model {
    let (examples, stats) = dedup(small_examples());
    assert_eq!(
        stats.kept, 48,
        "the fixture's comments are meant to be distinct"
    );
    train(
        &examples,
        &params(created_at),
        "sha256:fixture",
        stats,
        &|| {},
    )
    .expect("the small model trains")
}

fn small_model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| train_small(CREATED_AT).to_bytes())
}

fn youtube_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let corpus = read_corpus(&[youtube_dir()]).expect("shipped corpus reads");
        let (examples, stats) = dedup(corpus.examples);
        train(
            &examples,
            &params(CREATED_AT),
            &corpus.digest,
            stats,
            &|| {},
        )
        .expect("trains on the shipped corpus")
    })
}

fn probe_comments() -> Vec<Comment> {
    let mut v: Vec<Comment> = [
        "Check out my channel and subscribe!!! http://bit.ly/xyz",
        "I love this song so much",
        "<a href=\"http://spam.example.ru/x\">click</a> here&#39;s the deal",
        "ＦＲＥＥ mo\u{200B}ney at www.cheap.example.com",
        "",
        "Отличное видео 😀 great 動画",
        "call 0800 123 4567 for £100",
    ]
    .iter()
    .map(|s| Comment::from_content(*s))
    .collect();
    v.push(Comment {
        content: "nice video".into(),
        author: "BEST SEO 2024".into(),
        email: "x@cheap-pills.example".into(),
        url: "https://www.seo-shop.example/buy".into(),
        user_agent: "python-requests/2.31".into(),
        ..Comment::default()
    });
    v
}

/// Scores, explanations and verdicts of the two models are the same to the bit.
fn assert_same_behaviour(a: &Model, b: &Model) {
    for c in probe_comments() {
        let (sa, sb) = (a.score(&c), b.score(&c));
        assert_eq!(
            sa.raw_log_odds.to_bits(),
            sb.raw_log_odds.to_bits(),
            "raw score of {:?}",
            c.content
        );
        assert_eq!(
            sa.log_odds.to_bits(),
            sb.log_odds.to_bits(),
            "calibrated score of {:?}",
            c.content
        );
        assert_eq!(
            a.thresholds().decide(sa.log_odds),
            b.thresholds().decide(sb.log_odds)
        );
        assert_eq!(
            a.explain(&c, 8),
            b.explain(&c, 8),
            "reasons for {:?}",
            c.content
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips and determinism
// ---------------------------------------------------------------------------------------------

#[test]
fn small_model_round_trips_through_bytes() {
    let model = train_small(CREATED_AT);
    assert!(
        model.counts().vocabulary() > 50,
        "the fixture is too small to mean anything"
    );
    let bytes = model.to_bytes();
    assert_eq!(&bytes[..8], MAGIC);
    let back = Model::from_bytes(&bytes).expect("its own bytes load");
    assert_eq!(back.header(), model.header());
    assert_eq!(back.counts(), model.counts());
    assert_eq!(
        back.to_bytes(),
        bytes,
        "re-serialising a loaded model changes its bytes"
    );
    assert_same_behaviour(&model, &back);
}

/// How many representable doubles lie between `a` and `b` (0 when identical).
fn ulps(a: f64, b: f64) -> u64 {
    if a.to_bits() == b.to_bits() {
        return 0;
    }
    if a.is_sign_negative() != b.is_sign_negative() {
        return u64::MAX;
    }
    a.to_bits().abs_diff(b.to_bits())
}

fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(ulps(x, y) <= 1, "{at}: {x} vs {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (k, v) in x {
                assert_json_close(v, &y[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_json_close(v, w, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Headers equal, except that floating-point fields may be one ulp apart (see
/// `trained_model_survives_save_and_load_bit_for_bit` for why that slack exists).
fn assert_header_close(a: &Model, b: &Model) {
    assert_json_close(
        &serde_json::to_value(a.header()).unwrap(),
        &serde_json::to_value(b.header()).unwrap(),
        "header",
    );
    let (ha, hb) = (a.header(), b.header());
    assert_eq!(ha.corpus_digest, hb.corpus_digest);
    assert_eq!(ha.dedup, hb.dedup);
    assert_eq!(ha.train_docs, hb.train_docs);
    assert_eq!(ha.created_at, hb.created_at);
    assert_eq!(ha.nb, hb.nb);
}

#[test]
fn youtube_model_round_trips_through_a_file() {
    let model = youtube_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("youtube.hgm");
    model.save(&path).expect("saves");
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(on_disk, model.to_bytes());
    // The atomic save leaves only the model behind, no temporary file.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("youtube.hgm")]);

    let back = Model::load(&path).expect("loads");
    assert_eq!(back.counts(), model.counts());
    assert_header_close(&back, model);
    for c in probe_comments() {
        let (a, b) = (model.score(&c), back.score(&c));
        assert!((a.log_odds - b.log_odds).abs() <= 1e-12 * a.log_odds.abs().max(1.0));
        assert_eq!(
            a.raw_log_odds.to_bits(),
            b.raw_log_odds.to_bits(),
            "{:?}",
            c.content
        );
        assert_eq!(
            model.thresholds().decide(a.log_odds),
            back.thresholds().decide(b.log_odds)
        );
    }

    // Saving over an existing model replaces it.
    let small = train_small(CREATED_AT);
    small.save(&path).expect("saves over the old file");
    assert_eq!(std::fs::read(&path).unwrap(), small.to_bytes());
}

/// Regression: the header's floats (calibration, thresholds, metrics) are written with
/// serde_json's shortest round-trip formatting and must be read back exactly (serde_json's
/// `float_roundtrip` feature; without it about 4% of values came back one ulp off, e.g.
/// `calibration.b` -0.9075632078986383 became -0.9075632078986384), or the served model is not
/// the model that was trained and evaluated.
#[test]
fn trained_model_survives_save_and_load_bit_for_bit() {
    let model = youtube_model();
    let back = Model::from_bytes(&model.to_bytes()).unwrap();
    assert_eq!(back.header(), model.header());
    assert_same_behaviour(model, &back);
    assert_eq!(back.to_bytes(), model.to_bytes());
    // The shipped file is not a fixed point of load + save either.
    let shipped = Model::load(&manifest_path("models/default.hgm")).unwrap();
    assert!(
        shipped.to_bytes() == EMBEDDED_MODEL,
        "re-saving the shipped model changes it"
    );
}

#[test]
fn training_is_deterministic() {
    let a = train_small(CREATED_AT).to_bytes();
    let b = train_small(CREATED_AT).to_bytes();
    assert_eq!(a, b, "same data and parameters must give the same bytes");
    // ... and the creation time is really in the bytes, so the equality above is not vacuous.
    let c = train_small(CREATED_AT + 1).to_bytes();
    assert_ne!(a, c);
    let model = Model::from_bytes(&c).unwrap();
    assert_eq!(model.header().created_at, CREATED_AT + 1);

    // The corpus-sized model too.
    let corpus = read_corpus(&[youtube_dir()]).unwrap();
    let (examples, stats) = dedup(corpus.examples);
    let again = train(
        &examples,
        &params(CREATED_AT),
        &corpus.digest,
        stats,
        &|| {},
    )
    .unwrap();
    assert_eq!(again.to_bytes(), youtube_model().to_bytes());
}

// ---------------------------------------------------------------------------------------------
// Corruption
// ---------------------------------------------------------------------------------------------

fn header_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize
}

/// Recomputes the trailing SHA-256 so that only the edited part differs.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 32;
    let digest = Sha256::digest(&bytes[..n]);
    bytes[n..].copy_from_slice(&digest);
}

/// Rebuilds the file with the header JSON edited by `edit` (length field and checksum fixed).
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let h = header_len(bytes);
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[16..16 + h]).unwrap();
    edit(&mut header);
    let new_header = serde_json::to_vec(&header).unwrap();
    with_raw_header(bytes, &new_header)
}

fn with_raw_header(bytes: &[u8], new_header: &[u8]) -> Vec<u8> {
    let h = header_len(bytes);
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(new_header.len() as u32).to_le_bytes());
    out.extend_from_slice(new_header);
    out.extend_from_slice(&bytes[16 + h..]);
    reseal(&mut out);
    out
}

fn kind_name(k: &ModelFileErrorKind) -> &'static str {
    match k {
        ModelFileErrorKind::Io(_) => "Io",
        ModelFileErrorKind::BadMagic => "BadMagic",
        ModelFileErrorKind::UnsupportedVersion { .. } => "UnsupportedVersion",
        ModelFileErrorKind::Truncated(_) => "Truncated",
        ModelFileErrorKind::ChecksumMismatch => "ChecksumMismatch",
        ModelFileErrorKind::Malformed(_) => "Malformed",
        ModelFileErrorKind::Incompatible(_) => "Incompatible",
        _ => "unknown",
    }
}

fn err_kind(bytes: &[u8]) -> ModelFileErrorKind {
    match Model::from_bytes(bytes) {
        Ok(_) => panic!("{} corrupt bytes loaded as a model", bytes.len()),
        Err(e) => e,
    }
}

/// Writes `bytes` to a file, loads it, and checks the error names the file and has `want` kind.
fn assert_load_fails(bytes: &[u8], want: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt-model.hgm");
    std::fs::write(&path, bytes).unwrap();
    let err = match Model::load(&path) {
        Ok(_) => panic!("corrupt file loaded (want {want})"),
        Err(e) => e,
    };
    assert_eq!(kind_name(&err.kind), want, "{err}");
    assert_eq!(err.path, path);
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "error does not name the file: {text}"
    );
    text
}

/// The corruption cases, each with the error kind it must give.
fn corruption_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = small_model_bytes();
    let h = header_len(good);
    let features_start = 16 + h + 8;
    let len = good.len();
    let mut cases: Vec<(&'static str, Vec<u8>, &'static str)> = vec![
        ("empty file", Vec::new(), "Truncated"),
        ("inside the magic", good[..5].to_vec(), "Truncated"),
        ("just the magic", good[..8].to_vec(), "Truncated"),
        ("inside the version", good[..10].to_vec(), "Truncated"),
        ("inside the header length", good[..14].to_vec(), "Truncated"),
        (
            "inside the header",
            good[..16 + h / 2].to_vec(),
            "Truncated",
        ),
        ("end of the header", good[..16 + h].to_vec(), "Truncated"),
        (
            "inside the feature count",
            good[..16 + h + 4].to_vec(),
            "Truncated",
        ),
        (
            "inside the features",
            good[..features_start + 16 * 3 + 5].to_vec(),
            "Truncated",
        ),
        ("missing checksum", good[..len - 32].to_vec(), "Truncated"),
        ("half the checksum", good[..len - 16].to_vec(), "Truncated"),
        ("one byte short", good[..len - 1].to_vec(), "Truncated"),
    ];

    let mut flipped = good.to_vec();
    flipped[16 + h / 2] ^= 0x20; // inside the header JSON
    cases.push(("flipped header byte", flipped, "ChecksumMismatch"));
    let mut flipped = good.to_vec();
    flipped[features_start + 16 * 2 + 9] ^= 0x01; // a count of the third feature
    cases.push(("flipped feature byte", flipped, "ChecksumMismatch"));
    let mut flipped = good.to_vec();
    flipped[len - 1] ^= 0xff;
    cases.push(("flipped checksum byte", flipped, "ChecksumMismatch"));

    let mut bad = good.to_vec();
    bad[..8].copy_from_slice(b"GIF89a\0\0");
    cases.push(("bad magic", bad, "BadMagic"));
    let mut bad = good.to_vec();
    bad[7] = b'X';
    cases.push(("magic off by one byte", bad, "BadMagic"));
    let mut bad = good.to_vec();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    cases.push(("format version 2", bad, "UnsupportedVersion"));
    let mut bad = good.to_vec();
    bad[8..12].copy_from_slice(&0u32.to_le_bytes());
    cases.push(("format version 0", bad, "UnsupportedVersion"));
    // Resealing does not help a wrong version: it is checked first.
    let mut bad = good.to_vec();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    reseal(&mut bad);
    cases.push(("format version 2, resealed", bad, "UnsupportedVersion"));

    let mut bad = good.to_vec();
    bad.push(0);
    cases.push(("one trailing byte", bad, "Malformed"));
    let mut bad = good.to_vec();
    bad.extend_from_slice(&[0xAB; 16]);
    cases.push(("a trailing fake feature", bad, "Malformed"));
    let mut bad = good.to_vec();
    bad.extend_from_slice(&Sha256::digest(good));
    cases.push(("a second checksum", bad, "Malformed"));

    cases.push((
        "another tokenizer version",
        with_header(good, |v| {
            v["tokenizer_version"] = (TOKENIZER_VERSION + 1).into()
        }),
        "Incompatible",
    ));
    cases.push((
        "another feature space",
        with_header(good, |v| v["feature_space"] = "murmur3(token)".into()),
        "Incompatible",
    ));
    cases.push((
        "negative alpha",
        with_header(good, |v| v["nb"]["alpha"] = (-1.0).into()),
        "Malformed",
    ));
    cases.push((
        "header is not JSON",
        with_raw_header(good, b"{\"feature_space\": oops"),
        "Malformed",
    ));
    cases.push((
        "header misses fields",
        with_raw_header(good, b"{}"),
        "Malformed",
    ));

    let mut bad = good.to_vec();
    bad[12..16].copy_from_slice(&((1u32 << 20) + 1).to_le_bytes());
    cases.push(("header length over the limit", bad, "Malformed"));
    let mut bad = good.to_vec();
    bad[16 + h..24 + h].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("impossible feature count", bad, "Malformed"));

    // Two feature records swapped: ids no longer strictly increasing.
    let mut bad = good.to_vec();
    let (a, b) = (features_start, features_start + 16);
    let first: Vec<u8> = bad[a..a + 16].to_vec();
    bad.copy_within(b..b + 16, a);
    bad[b..b + 16].copy_from_slice(&first);
    reseal(&mut bad);
    cases.push(("features out of order", bad, "Malformed"));
    // A duplicated feature id.
    let mut bad = good.to_vec();
    bad.copy_within(a..a + 8, b);
    reseal(&mut bad);
    cases.push(("duplicate feature id", bad, "Malformed"));
    cases
}

#[test]
fn the_fixture_itself_loads() {
    // The corruption cases below are edits of this file, so it must be valid to begin with.
    let good = small_model_bytes();
    assert!(Model::from_bytes(good).is_ok());
    // And the edit helpers change nothing when they change nothing.
    let same = with_header(good, |_| {});
    assert_eq!(
        Model::from_bytes(&same).unwrap().header(),
        Model::from_bytes(good).unwrap().header()
    );
}

#[test]
fn each_corruption_gives_its_error_kind() {
    for (what, bytes, want) in corruption_cases() {
        let got = kind_name(&err_kind(&bytes)).to_string();
        assert_eq!(got, want, "{what}: got {:?}", err_kind(&bytes));
    }
}

#[test]
fn load_errors_name_the_file() {
    for (what, bytes, want) in corruption_cases() {
        let text = assert_load_fails(&bytes, want);
        assert!(text.starts_with("model file "), "{what}: {text}");
    }
    let text = assert_load_fails(&[], "Truncated");
    assert!(text.contains("truncated"), "{text}");

    // A file that is not there: an I/O error, naming the path.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model.hgm");
    let err = Model::load(&missing).expect_err("missing file fails");
    assert_eq!(kind_name(&err.kind), "Io");
    assert!(err.to_string().contains("no-such-model.hgm"), "{err}");
}

#[test]
fn error_messages_say_what_is_wrong() {
    let good = small_model_bytes();
    let mut v2 = good.to_vec();
    v2[8..12].copy_from_slice(&2u32.to_le_bytes());
    match err_kind(&v2) {
        ModelFileErrorKind::UnsupportedVersion { found } => assert_eq!(found, 2),
        other => panic!("{other:?}"),
    }
    let msg = err_kind(&v2).to_string();
    assert!(
        msg.contains('2') && msg.contains(&FORMAT_VERSION.to_string()),
        "{msg}"
    );

    let tok = with_header(good, |v| v["tokenizer_version"] = 7.into());
    let msg = err_kind(&tok).to_string();
    assert!(msg.contains("tokenizer version 7"), "{msg}");
}

#[test]
fn every_truncation_is_an_error() {
    let good = small_model_bytes();
    for len in 0..good.len() {
        let result = std::panic::catch_unwind(|| Model::from_bytes(&good[..len]));
        match result {
            Err(_) => panic!("from_bytes panicked on the first {len} bytes"),
            Ok(Ok(_)) => panic!("the first {len} of {} bytes loaded", good.len()),
            Ok(Err(ModelFileErrorKind::Truncated(_))) => {}
            Ok(Err(other)) => panic!("the first {len} bytes: want Truncated, got {other:?}"),
        }
    }
}

#[test]
fn every_flipped_byte_is_an_error() {
    let good = small_model_bytes();
    let h = header_len(good);
    for i in 0..good.len() {
        let mut bad = good.to_vec();
        bad[i] ^= 0xff;
        let kind = match std::panic::catch_unwind(|| Model::from_bytes(&bad)) {
            Err(_) => panic!("from_bytes panicked with byte {i} flipped"),
            Ok(Ok(_)) => panic!("loaded with byte {i} flipped"),
            Ok(Err(k)) => kind_name(&k),
        };
        let allowed: &[&str] = match i {
            0..=7 => &["BadMagic"],
            8..=11 => &["UnsupportedVersion"],
            // A wrong length moves every later field: the sizes stop adding up.
            12..=15 => &["Truncated", "Malformed"],
            i if i >= 16 + h && i < 24 + h => &["Truncated", "Malformed"],
            // Header text, feature records and the checksum itself.
            _ => &["ChecksumMismatch"],
        };
        assert!(
            allowed.contains(&kind),
            "byte {i} flipped: {kind}, want {allowed:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The shipped model
// ---------------------------------------------------------------------------------------------

#[test]
fn shipped_model_loads_both_ways_and_matches_the_file() {
    let path = manifest_path("models/default.hgm");
    let file_bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        file_bytes, EMBEDDED_MODEL,
        "the embedded model is not models/default.hgm"
    );
    let embedded = Model::embedded().expect("embedded model loads");
    let loaded = Model::load(&path).expect("models/default.hgm loads");
    assert_eq!(embedded.header(), loaded.header());
    assert_eq!(embedded.counts(), loaded.counts());
    assert_eq!(embedded.to_bytes(), loaded.to_bytes());
    assert_eq!(
        loaded.to_bytes(),
        file_bytes,
        "load then save gives the file back"
    );
    assert_same_behaviour(&embedded, &loaded);
}

#[test]
fn shipped_model_header_describes_the_shipped_corpus() {
    let model = Model::embedded().unwrap();
    let h = model.header();
    let corpus = read_corpus(&shipped_corpus()).unwrap();
    assert_eq!(h.corpus_digest, corpus.digest);
    assert!(h.corpus_digest.starts_with("sha256:") && h.corpus_digest.len() == 7 + 64);

    let before = corpus.examples.len();
    let (examples, stats) = dedup(corpus.examples);
    assert_eq!(h.dedup.kept, stats.kept);
    assert_eq!(h.dedup, stats);
    assert_eq!(
        h.dedup,
        DedupStats {
            before,
            kept: examples.len(),
            dropped: before - examples.len(),
            conflicting: stats.conflicting,
        }
    );
    // The counts weigh each (source, class) alike, at least one count a comment.
    let spam = examples.iter().filter(|e| e.label.is_spam()).count() as u64;
    assert!(h.train_docs[0] >= examples.len() as u64 - spam && h.train_docs[1] >= spam);
    assert_eq!(model.counts().docs, h.train_docs);

    assert_eq!(h.tokenizer_version, TOKENIZER_VERSION);
    let t = model.thresholds();
    assert!(
        t.accept_below.is_finite() && t.reject_at.is_finite(),
        "{t:?}"
    );
    assert!(t.accept_below <= t.reject_at, "{t:?}");
    assert!(
        h.calibration.a.is_finite() && h.calibration.a > 0.0,
        "{:?}",
        h.calibration
    );
}

#[test]
fn shipped_model_is_reproducible_from_its_corpus() {
    // Retraining on the shipped corpus with the parameters the header records gives the
    // shipped file back: the model in the repository is what the code in the repository makes.
    let shipped = Model::embedded().unwrap();
    let h = shipped.header();
    let corpus = read_corpus(&shipped_corpus()).unwrap();
    let (examples, stats) = dedup(corpus.examples);
    let p = TrainParams {
        nb: h.nb,
        ham_reject_target: h.threshold_targets[0],
        spam_accept_target: h.threshold_targets[1],
        created_at: h.created_at,
        ..TrainParams::default()
    };
    let mut retrained = train(&examples, &p, &corpus.digest, stats, &|| {}).unwrap();
    retrained.header_mut().corpus_file_digests = corpus.file_digests.clone();
    assert_eq!(retrained.counts(), shipped.counts());
    assert_header_close(&retrained, &shipped);
    assert!(
        retrained.to_bytes() == EMBEDDED_MODEL,
        "retraining does not reproduce models/default.hgm"
    );
}
