//! Properties of the text pipeline, the scorer and the corpus readers on arbitrary input:
//! nothing panics, scores are finite probabilities, and the work per comment is bounded.
//!
//! # The bounds, derived from the code's limits
//!
//! **Normalised text.** `normalize` looks at the first [`MAX_INPUT_BYTES`] bytes only. Its first
//! pass never grows the text: a tag becomes one space, an entity (at least 4 bytes, `&lt;`)
//! becomes one character of at most 4 bytes (a 4-byte character needs `&#65536;`, 8 bytes), a
//! control character becomes a space. Then NFKC and lowercasing:
//! - NFKC is NFKD followed by canonical composition, and composition never lengthens UTF-8, so
//!   NFKC grows a string by at most the largest per-character NFKD growth: 11x in UTF-8, the
//!   figure the Unicode normalization FAQ gives (U+FDFA, 3 bytes, becomes 18 characters, 33
//!   bytes);
//! - lowercasing grows a character's UTF-8 by at most 3/2 (U+023A `Ⱥ`, 2 bytes, lowercases to
//!   U+2C65, 3 bytes; `İ` becomes `i` + U+0307).
//!
//! So `text.len() <= 11 * 3/2 * min(input.len(), MAX_INPUT_BYTES)`, i.e. at most 16.5 times the
//! input cap. We assert the exact 33/2 factor per input and round the absolute cap up to
//! [`MAX_TEXT_BYTES`] = 18 x [`MAX_INPUT_BYTES`]. Both per-character factors are checked over
//! every Unicode scalar value in `expansion_factors_hold_for_every_char`, so the bound rests on
//! the Unicode tables this build uses, not on memory.
//!
//! **Tokens.** Per comment the tokenizer emits:
//! - at most 2 tokens (host, TLD) per `href`/`src` link, and at most 32 links;
//! - per word, and words plus bare links and e-mail addresses in the text are at most
//!   [`MAX_WORDS`] together: a spelled-out link (shape, host, TLD), the word, its two prefixes
//!   ([`PREFIX_CHARS`]) and a pair, so at most 7 (a bare link or e-mail address gives 2);
//! - at most 10 shapes (links, length, words, long-word, html, shouting/many-capitals, phone,
//!   currency, repeated-char, exclamations) and 9 metadata tokens (author x4, url x2, e-mail,
//!   user agent, type).
//!
//! That is [`WORD_TOKEN_BOUND`], and it bounds every comment ([`MAX_TOKENS`]).

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use hamgate::comment::{Comment, CommentKind, Label};
use hamgate::corpus::{dedup, read_corpus, read_file, CorpusError, Example};
use hamgate::model::{train, Model, NbParams, TrainParams, Variant};
use hamgate::text::normalize::MAX_INPUT_BYTES;
use hamgate::text::tokens::{token_labels, training_copy, MAX_WORDS, PREFIX_CHARS};
use hamgate::text::{normalize, Scratch};

/// Largest per-character growth of UTF-8 under NFKD (11x; checked over all of Unicode below).
const NFKD_GROWTH: usize = 11;
/// Largest per-character growth of UTF-8 under lowercasing, as a fraction `num / den`.
const LOWERCASE_GROWTH: (usize, usize) = (3, 2);
/// Normalised text is at most 33/2 times the bytes looked at; rounded up to a whole factor.
const MAX_TEXT_BYTES: usize = 18 * MAX_INPUT_BYTES;

/// Links from tag attributes.
const MAX_HREFS: usize = 32;
const TOKENS_PER_LINK: usize = 2;
/// Spelled-out link (3) + word + prefixes + pair.
const TOKENS_PER_WORD: usize = 3 + 1 + PREFIX_CHARS.len() + 1;
const SHAPE_TOKENS: usize = 10;
const META_TOKENS: usize = 9;
/// Tokens any comment can produce.
const WORD_TOKEN_BOUND: usize =
    MAX_HREFS * TOKENS_PER_LINK + MAX_WORDS * TOKENS_PER_WORD + SHAPE_TOKENS + META_TOKENS;
/// The same bound under the name the properties use.
const MAX_TOKENS: usize = WORD_TOKEN_BOUND;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Models: the shipped one plus the other two variants, trained on the shipped corpus
// ---------------------------------------------------------------------------------------------

fn models() -> &'static [Model] {
    static MODELS: OnceLock<Vec<Model>> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/corpus/youtube");
        let corpus = read_corpus(&[dir]).expect("shipped corpus reads");
        let (examples, stats) = dedup(corpus.examples);
        let mut out = vec![Model::embedded().expect("embedded model loads")];
        for (variant, alpha, length_norm) in [
            (Variant::Multinomial, 1.0, 0.0),
            (Variant::RobinsonFisher, 1.0, 0.0),
        ] {
            let p = TrainParams {
                nb: NbParams {
                    variant,
                    alpha,
                    length_norm,
                },
                ..TrainParams::default()
            };
            out.push(train(&examples, &p, &corpus.digest, stats, &|| {}).expect("trains"));
        }
        out
    })
}

// ---------------------------------------------------------------------------------------------
// The checks every input goes through
// ---------------------------------------------------------------------------------------------

fn check_normalize(input: &str) {
    let n = normalize(input);
    let looked_at = input.len().min(MAX_INPUT_BYTES);
    let (num, den) = LOWERCASE_GROWTH;
    assert!(
        n.text.len() * den <= NFKD_GROWTH * num * looked_at,
        "{} bytes of text from {looked_at} bytes looked at",
        n.text.len()
    );
    assert!(n.text.len() <= MAX_TEXT_BYTES);
    assert_eq!(n.truncated, input.len() > MAX_INPUT_BYTES);
    assert!(n.upper <= n.letters);
    assert!(n.hrefs.len() <= MAX_HREFS, "{} hrefs", n.hrefs.len());
    for h in &n.hrefs {
        assert!(!h.is_empty() && h.len() <= 256, "href {h:?}");
    }
    // Invisible characters are gone, and the text is lower case where lowercasing is stable.
    assert!(!n
        .text
        .contains(['\u{FEFF}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{00AD}']));
    assert!(
        !n.text.contains(|c: char| c.is_ascii_uppercase()),
        "{:?}",
        n.text
    );
}

fn check_tokens(comment: &Comment) -> Vec<(u64, String)> {
    let tokens = token_labels(comment);
    let text_len = normalize(&comment.content).text.len();
    let count = |prefix: &str| tokens.iter().filter(|(_, l)| l.starts_with(prefix)).count();
    assert!(count("word:") <= MAX_WORDS, "{} words", count("word:"));
    assert!(count("pair:") <= MAX_WORDS);
    assert!(count("prefix:") <= PREFIX_CHARS.len() * MAX_WORDS);
    assert!(count("meta:") <= META_TOKENS);
    assert!(
        tokens.len() <= MAX_TOKENS,
        "{} tokens from {text_len} bytes of text",
        tokens.len()
    );
    assert!(
        tokens.len() >= 3,
        "the link, length and word shapes are always there"
    );
    for (_, label) in &tokens {
        assert!(label.contains(':'), "label without a kind: {label:?}");
    }
    // Tokenising is a pure function of the comment.
    assert_eq!(tokens, token_labels(comment));
    tokens
}

fn check_scores(comment: &Comment) {
    let token_set: std::collections::HashSet<String> =
        token_labels(comment).into_iter().map(|(_, l)| l).collect();
    let mut scratch = Scratch::default();
    let mut feats = Vec::new();
    for model in models() {
        let s = model.score(comment);
        assert!(
            s.raw_log_odds.is_finite(),
            "raw {} for {:?}",
            s.raw_log_odds,
            comment
        );
        assert!(
            s.log_odds.is_finite(),
            "log-odds {} for {:?}",
            s.log_odds,
            comment
        );
        let p = s.probability();
        assert!((0.0..=1.0).contains(&p), "p = {p}");
        // A scratch buffer dirtied by another comment gives the same score.
        let _ = model.score_with(
            &Comment::from_content("<b>Dirty</b> SCRATCH http://x.example.com"),
            &mut scratch,
            &mut feats,
        );
        let again = model.score_with(comment, &mut scratch, &mut feats);
        assert_eq!(again.log_odds.to_bits(), s.log_odds.to_bits());

        let top = 8;
        let reasons = model.explain(comment, top);
        assert!(reasons.len() <= top);
        for r in &reasons {
            assert!(r.log_odds.is_finite(), "{r:?}");
            assert!(r.label.contains(':'), "{r:?}");
            assert!(
                token_set.contains(&r.label),
                "reason {r:?} is not a token of the comment"
            );
        }
        for w in reasons.windows(2) {
            assert!(w[0].log_odds.abs() >= w[1].log_odds.abs(), "{reasons:?}");
        }
    }
}

fn check_text(input: &str) {
    check_normalize(input);
    let comment = Comment::from_content(input);
    check_tokens(&comment);
    check_scores(&comment);
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Pieces that exercise the tag, entity, link, e-mail and Unicode paths.
const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "&",
    "#",
    ";",
    "://",
    "@",
    ".",
    "/",
    "'",
    "\"",
    "=",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\u{FEFF}",
    "\u{200B}",
    "\u{00AD}",
    "\u{0301}",
    "\u{0308}",
    "\u{0327}",
    "\u{20DD}",
    "\0",
    "\u{85}",
    "\u{2028}",
    "\u{3000}",
    "<a href=",
    "<a href=\"http://x.example.ru/p\">",
    "</a>",
    "<img src='//cdn.example.com/i.png'>",
    "<br/>",
    "<!-- c -->",
    "<3",
    "<<",
    "&amp;",
    "&lt;",
    "&gt;",
    "&#39;",
    "&#x27;",
    "&#0;",
    "&#x10FFFF;",
    "&#55296;",
    "&#99999999999;",
    "&#x;",
    "&nbsp;",
    "&pound;",
    "&bogus;",
    "&amp",
    "http://",
    "https://www.Example.com/a?b=c#d",
    "www.",
    "bit.ly/xyz",
    "a.co",
    "example dot com",
    "example (dot) com",
    " . ",
    "x@y.com",
    "@@",
    "user@",
    "@host",
    "\u{FDFA}",
    "\u{FB03}",
    "İ",
    "\u{023A}",
    "ß",
    "ＦＲＥＥ",
    "㎒",
    "😀",
    "🇫🇷",
    "動画",
    "Отличное",
    "مرحبا",
    "0800 123 4567",
    "12345678901234",
    "$100",
    "£",
    "!!!",
    "aaaa",
    "CHECK OUT MY CHANNEL",
    "subscribe",
    "dot",
    "com",
    "(.)",
    "[.]",
    "supercalifragilisticexpialidocious-and-then-some-more",
];

fn fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80).prop_map(|v| v.concat())
}

fn regex_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "([a-zA-Z0-9]{1,12}|[ \\t\\n]|<[a-z/!]{0,3}( href=[^> ]{0,20})?>?|&#?[a-zA-Z0-9]{0,8};?|https?://[a-z.]{1,15}(/[a-z]{0,5})?|[a-z]{1,6}@[a-z]{1,6}\\.(com|ru)|[\\u{300}-\\u{36F}]|\\u{FEFF}|[#;:/@.!$£'])*",
    )
    .expect("valid regex")
}

fn any_comment() -> impl Strategy<Value = Comment> {
    let kind = prop::sample::select(vec![
        CommentKind::Unspecified,
        CommentKind::Comment,
        CommentKind::Reply,
        CommentKind::Trackback,
        CommentKind::Pingback,
        CommentKind::ContactForm,
        CommentKind::Signup,
        CommentKind::Message,
    ]);
    (
        prop_oneof![any::<String>(), fragments()],
        prop_oneof![any::<String>(), fragments(), Just(String::new())],
        prop_oneof![
            any::<String>(),
            Just("x@Cheap.example".to_string()),
            Just("@".to_string())
        ],
        prop_oneof![
            any::<String>(),
            Just("https://www.seo.example:8080/x".to_string())
        ],
        any::<String>(),
        prop_oneof![any::<String>(), Just("python-requests/2.31".to_string())],
        kind,
    )
        .prop_map(
            |(content, author, email, url, ip, user_agent, kind)| Comment {
                content,
                author,
                email,
                url,
                ip,
                user_agent,
                kind,
            },
        )
}

/// Names, addresses, links and agents as blogs send them, and some that no blog should.
fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex(
            "([A-Za-z]{0,8}|[A-Z]{3,6}|[0-9]{1,4}|[ .@:/-]|www\\.|https?://|\\.(com|ru|ly))*"
        )
        .expect("valid regex"),
        prop::sample::select(vec![
            "John Smith",
            "JOHN SMITH",
            "john123",
            "Dr. Jane Q. Public",
            "www.cheap-seo.example",
            "bit.ly/x",
            "me@example.org",
            "Reader@EXAMPLE.org",
            "@",
            "a@",
            "http://www.www.x.com/p",
            "https://blog.example:8443/about?x=1",
            "Mozilla/5.0 (X11; Linux) Firefox/120.0",
            "python-requests/2.31",
            "Googlebot/2.1",
            "Mozilla/5.0 Edg/120",
            "",
        ])
        .prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_label_logs_copy_of_a_comment_gives_the_model_the_same_tokens(
        content in fragments(),
        author in identifier(),
        email in identifier(),
        url in identifier(),
        ip in identifier(),
        user_agent in identifier(),
        kind in prop::sample::select(vec![CommentKind::Unspecified, CommentKind::Comment, CommentKind::Trackback]),
    ) {
        let c = Comment { content, author, email, url, ip, user_agent, kind };
        let copy = training_copy(&c);
        let mut want = token_labels(&c);
        let mut got = token_labels(&copy);
        want.sort();
        got.sort();
        prop_assert_eq!(got, want);
        // What it keeps of the identifiers: no IP, no e-mail local part, no URL path.
        prop_assert!(copy.ip.is_empty());
        prop_assert!(copy.email.is_empty() || copy.email == "malformed" || copy.email.starts_with('@'));
        prop_assert!(copy.url.is_empty() || copy.url == "?" || (copy.url.starts_with("https://www.") && copy.url.ends_with('/') && copy.url.matches('/').count() == 3));
        prop_assert_eq!(copy.content, c.content);
    }

    #[test]
    fn arbitrary_strings_are_handled(s in any::<String>()) {
        check_text(&s);
    }

    #[test]
    fn regex_shaped_html_and_links_are_handled(s in regex_text()) {
        check_text(&s);
    }

    #[test]
    fn fragment_soup_is_handled(s in fragments()) {
        check_text(&s);
    }

    #[test]
    fn comments_with_arbitrary_metadata_are_handled(c in any_comment()) {
        check_normalize(&c.content);
        check_tokens(&c);
        check_scores(&c);
    }

    #[test]
    fn long_repeats_of_fragments_stay_bounded(
        piece in prop::sample::select(FRAGMENTS),
        times in 1usize..6000,
    ) {
        check_text(&piece.repeat(times));
    }

    #[test]
    fn jsonl_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        check_reader("corpus.jsonl", &bytes);
    }

    #[test]
    fn csv_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        check_reader("Youtube09-Fuzz.csv", &bytes);
    }

    #[test]
    fn sms_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        check_reader("SMSSpamCollection", &bytes);
    }

    #[test]
    fn readers_never_panic_on_near_valid_files((name, text) in corpus_like_file()) {
        check_reader(name, text.as_bytes());
        // The same text under the other formats' names must not panic either.
        for other in ["corpus.jsonl", "Youtube09-Fuzz.csv", "SMSSpamCollection"] {
            check_reader(other, text.as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Corpus readers
// ---------------------------------------------------------------------------------------------

/// Files that are mostly valid records of one format with some broken ones mixed in, so the
/// fuzzing gets past the UTF-8 check and into the record parsing.
fn corpus_like_file() -> impl Strategy<Value = (&'static str, String)> {
    let csv_row = prop_oneof![
        8 => "[a-z0-9]{1,5},[A-Za-z ]{0,8},[0-9T:-]{0,10},\"[a-z ,\n\u{FEFF}]{0,20}\",[01]",
        4 => "[a-z0-9]{1,5},[A-Za-z]{0,8},,[a-z ]{0,20},[01]",
        1 => "[a-z0-9]{0,5},[A-Za-z ]{0,8},,\"[^\"]{0,20}\"?,[01x]?",
        1 => "[^\n]{0,30}",
    ];
    let csv_header = prop_oneof![
        8 => Just("COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS".to_string()),
        2 => Just("\u{FEFF}COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS".to_string()),
        1 => Just("COMMENT_ID,AUTHOR,DATE,CLASS".to_string()),
        1 => "[A-Z_,]{0,30}",
    ];
    let csv = (csv_header, prop::collection::vec(csv_row, 0..10))
        .prop_map(|(h, rows)| ("Youtube09-Fuzz.csv", format!("{h}\n{}", rows.join("\n"))));
    let json_line = prop_oneof![
        8 => "\\{\"content\": ?\"[a-z <>&;]{0,20}\", ?\"label\": ?\"(spam|ham|SPAM|1)\"\\}",
        1 => "\\{\"content\": ?\"[a-z\\\\\"]{0,8}\", ?\"label\": ?\"ham\"\\}",
        4 => "\\{\"content\": ?\"[a-z ]{0,20}\", \"label\": \"ham\", ?\"(author|email|url|ip|site|group)\": ?\"[a-z@.]{0,10}\"\\}",
        2 => "\\{\"content\": ?\"[a-z ]{0,20}\", \"label\": \"spam\", \"type\": ?\"(trackback|contact_form|bogus)\"\\}",
        2 => Just(String::new()),
        1 => "\\{\"label\": ?\"spam\"\\}",
        1 => "\\{\"content\": ?\"x\", ?\"label\": ?\"maybe\"\\}",
        1 => "[^\n]{0,30}",
    ];
    let jsonl = prop::collection::vec(json_line, 0..10)
        .prop_map(|lines| ("corpus.jsonl", lines.join("\n")));
    let sms_line = prop_oneof![
        8 => "(spam|ham|Ham)\t[^\n]{0,30}",
        2 => "(spam|ham)\t[a-z ]{0,10}(&lt;#&gt;|<URL>|&lt;TIME&gt;)[a-z ]{0,10}",
        2 => Just(String::new()),
        1 => "(x|)?\t?[^\n]{0,30}",
    ];
    let sms = prop::collection::vec(sms_line, 0..10)
        .prop_map(|lines| ("SMSSpamCollection", lines.join("\n")));
    prop_oneof![csv, jsonl, sms]
}

fn check_reader(name: &str, bytes: &[u8]) {
    let path = Path::new("fuzz-dir").join(name);
    let mut out: Vec<Example> = Vec::new();
    let result = read_file(&path, bytes, &mut out);
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    match result {
        Ok(()) => {
            assert!(
                out.len() <= lines,
                "{} examples from {lines} lines",
                out.len()
            );
            for ex in &out {
                assert!(matches!(ex.label, Label::Ham | Label::Spam));
                if name.ends_with(".csv") {
                    assert_eq!(ex.group, "Youtube09-Fuzz");
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(name), "error does not name the file: {msg}");
            match e {
                CorpusError::Malformed { line, .. } => {
                    assert!(
                        line >= 1 && line as usize <= lines,
                        "line {line} of a {lines}-line file: {msg}"
                    );
                }
                other => panic!("reading bytes can only be Malformed, got {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed cases: every character, and huge inputs
// ---------------------------------------------------------------------------------------------

#[test]
fn expansion_factors_hold_for_every_char() {
    use unicode_normalization::UnicodeNormalization;
    let (num, den) = LOWERCASE_GROWTH;
    let (mut worst_nfkd, mut worst_lower, mut worst_normalize) = ((0, '\0'), (0, '\0'), (0, '\0'));
    let mut buf = [0u8; 4];
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let n = c.len_utf8();
        let s: &str = c.encode_utf8(&mut buf);
        let nfkd: usize = s.nfkd().map(char::len_utf8).sum();
        assert!(
            nfkd <= NFKD_GROWTH * n,
            "NFKD of U+{:04X} is {nfkd} bytes",
            c as u32
        );
        let lower: usize = c.to_lowercase().map(char::len_utf8).sum();
        assert!(
            lower * den <= num * n,
            "lowercase of U+{:04X} is {lower} bytes",
            c as u32
        );
        let out = normalize(s).text.len();
        assert!(
            out * den <= NFKD_GROWTH * num * n,
            "normalize(U+{:04X}) is {out} bytes",
            c as u32
        );
        // Keep the worst cases, ratios compared as fractions (x/n > y/m iff x*m > y*n).
        for (worst, x) in [
            (&mut worst_nfkd, nfkd),
            (&mut worst_lower, lower),
            (&mut worst_normalize, out),
        ] {
            if x * worst.1.len_utf8() > worst.0 * n {
                *worst = (x, c);
            }
        }
    }
    // The factors are attained, so they are the tight per-character bounds, not guesses.
    assert_eq!(
        worst_nfkd.0,
        NFKD_GROWTH * worst_nfkd.1.len_utf8(),
        "{worst_nfkd:?}"
    );
    assert_eq!(
        worst_lower.0 * den,
        num * worst_lower.1.len_utf8(),
        "{worst_lower:?}"
    );
    assert!(
        worst_normalize.0 >= 11 * worst_normalize.1.len_utf8(),
        "{worst_normalize:?}"
    );
}

/// One huge input: check the bounds and that the words-only ones stay under the words bound.
fn check_huge(what: &str, input: &str, words_only: bool) {
    let n = normalize(input);
    assert!(n.truncated, "{what}");
    assert!(
        n.text.len() <= MAX_TEXT_BYTES,
        "{what}: {} bytes",
        n.text.len()
    );
    let comment = Comment::from_content(input);
    let tokens = check_tokens(&comment);
    if words_only {
        assert!(
            tokens.len() <= WORD_TOKEN_BOUND,
            "{what}: {} tokens, bound {WORD_TOKEN_BOUND}",
            tokens.len()
        );
    }
    check_scores(&comment);
}

fn huge_inputs(size: usize) -> Vec<(&'static str, String, bool)> {
    let fill = |piece: &str| piece.repeat(size / piece.len() + 1);
    vec![
        (
            "repeated words",
            fill("check out my channel subscribe now "),
            true,
        ),
        ("one long word", "a".repeat(size), true),
        ("repeated tags", fill("<a href=x>"), true),
        ("repeated entities", fill("&amp;"), true),
        (
            "tags with hrefs and srcs",
            fill("<img href=http://a.example.com/ src=b.example.org>"),
            true,
        ),
        ("numbers", fill("0800 123 4567 "), true),
        ("spelled-out links", fill("example dot com "), true),
        ("NFKC-expanding ligatures", fill("\u{FDFA}"), true),
        ("combining marks", fill("e\u{0301}\u{0308}"), true),
        ("byte-order marks", fill("\u{FEFF}"), true),
        // Links and e-mail addresses share the words' budget (once they did not).
        ("bare links", fill("a.co "), true),
        ("e-mail addresses", fill("a@b.co "), true),
    ]
}

#[test]
fn one_megabyte_inputs_stay_bounded() {
    for (what, input, words_only) in huge_inputs(1 << 20) {
        assert!(input.len() >= 1 << 20);
        check_huge(what, &input, words_only);
    }
}

#[test]
fn ten_megabyte_inputs_stay_bounded() {
    for (what, input, words_only) in huge_inputs(10 << 20) {
        assert!(input.len() >= 10 << 20);
        check_huge(what, &input, words_only);
    }
}

#[test]
fn the_token_bounds_are_what_the_limits_say() {
    // Pinned so that a change to a limit shows up here and the reasoning above is revisited.
    assert_eq!(MAX_WORDS, 400);
    assert_eq!(PREFIX_CHARS.len(), 2);
    assert_eq!(WORD_TOKEN_BOUND, 64 + 2800 + 19);
    // The most a words-only comment gets near the bound: every word a spelled-out link with
    // prefixes and a pair is impossible, but 400 long distinct words give 4 tokens each.
    let text: String = (0..1000).map(|i| format!("longword{i:04} ")).collect();
    let tokens = token_labels(&Comment::from_content(text));
    assert!(tokens.len() >= 4 * MAX_WORDS, "{}", tokens.len());
    assert!(tokens.len() <= WORD_TOKEN_BOUND, "{}", tokens.len());
}
