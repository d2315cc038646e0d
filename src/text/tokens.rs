//! Tokens: the features naive Bayes counts.
//!
//! A comment becomes a stream of [`Token`]s: words, word pairs, URL hosts and top-level domains,
//! e-mail domains, shapes (numbers, phone numbers, currency, repeated characters, shouting, link
//! count, length) and metadata (author name shape, author URL host, e-mail domain, user-agent
//! family, comment type). Tokens are handed to a callback as borrowed text, so scoring allocates
//! nothing per token; each token's [`FeatureId`] is a 64-bit hash of its kind and text, which is
//! what the model stores. The text is still there when a response has to name its reasons.
//!
//! Work is bounded: at most [`MAX_WORDS`] words are looked at (after the input cap of
//! [`super::normalize::MAX_INPUT_BYTES`]), so the number of tokens per comment is bounded too.

use super::normalize::{normalize_into, Normalized};
use crate::comment::Comment;

/// Words looked at per comment; the rest of a long comment only counts towards its length shape.
pub const MAX_WORDS: usize = 400;
/// Longest word kept as itself; longer ones are cut and also flagged as a shape.
pub const MAX_WORD_CHARS: usize = 32;
/// Word prefixes emitted as [`TokenKind::Prefix`] tokens (for words longer than each), chosen by
/// measurement (docs/BENCHMARKS.md).
pub const PREFIX_CHARS: [usize; 2] = [5, 7];
/// Version of the tokenizer; a model records it and refuses to load under another.
/// 2: the token kind in the top four bits of the feature id.
pub const TOKENIZER_VERSION: u32 = 2;

/// A feature's identity: the token's kind in the top four bits, then the low 60 bits of the
/// FNV-1a 64-bit hash of the kind and text. The kind is kept readable so that scoring can weigh
/// each kind's evidence on its own ([`kind_slot`]).
pub type FeatureId = u64;

/// How many token kinds there are: slots `0..KIND_SLOTS` of per-kind arrays.
pub const KIND_SLOTS: usize = 8;

/// The slot (`TokenKind as usize - 1`) of a feature's kind.
#[inline]
pub fn kind_slot(f: FeatureId) -> usize {
    ((f >> 60) as usize).wrapping_sub(1).min(KIND_SLOTS - 1)
}

/// What a token describes. The discriminant is part of the hash, so never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TokenKind {
    /// A normalised word.
    Word = 1,
    /// Two consecutive words.
    Pair = 2,
    /// The host of a link in the text.
    Host = 3,
    /// The top-level domain of a link in the text.
    Tld = 4,
    /// The domain of an e-mail address in the text.
    EmailDomain = 5,
    /// A shape of the text: numbers, phone numbers, shouting, length...
    Shape = 6,
    /// A fact from the comment's metadata (author, e-mail, URL, user agent, type).
    Meta = 7,
    /// The first [`PREFIX_CHARS`] characters of a longer word: a crude stem, so "subscribe",
    /// "subscribed" and "subscribers" share evidence.
    Prefix = 8,
}

impl TokenKind {
    /// Every kind, in slot order ([`kind_slot`]).
    pub const ALL: [TokenKind; KIND_SLOTS] = [
        TokenKind::Word,
        TokenKind::Pair,
        TokenKind::Host,
        TokenKind::Tld,
        TokenKind::EmailDomain,
        TokenKind::Shape,
        TokenKind::Meta,
        TokenKind::Prefix,
    ];

    /// The kind's name, as in token labels (`word`, `pair`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TokenKind::Word => "word",
            TokenKind::Pair => "pair",
            TokenKind::Host => "host",
            TokenKind::Tld => "tld",
            TokenKind::EmailDomain => "email-domain",
            TokenKind::Shape => "shape",
            TokenKind::Meta => "meta",
            TokenKind::Prefix => "prefix",
        }
    }
}

/// One token, borrowed from the comment or from static text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// What the token describes.
    pub kind: TokenKind,
    /// The token's text (for a pair, the first word; for metadata, the field).
    pub text: &'a str,
    /// The second part (for a pair, the second word; for metadata, the value), else empty.
    pub second: &'a str,
}

impl Token<'_> {
    /// The token's feature id.
    pub fn feature(&self) -> FeatureId {
        let mut h = Fnv::new();
        h.byte(self.kind as u8);
        h.bytes(self.text.as_bytes());
        if !self.second.is_empty() {
            h.byte(0xff);
            h.bytes(self.second.as_bytes());
        }
        (h.finish() & (u64::MAX >> 4)) | (u64::from(self.kind as u8) << 60)
    }

    /// A human-readable label for reasons, e.g. `word:subscribe`, `host:bit.ly`.
    pub fn label(&self) -> String {
        let prefix = self.kind.name();
        match self.kind {
            TokenKind::Pair => format!("{prefix}:{} {}", self.text, self.second),
            TokenKind::Meta => format!("{prefix}:{}={}", self.text, self.second),
            _ => format!("{prefix}:{}", self.text),
        }
    }
}

/// FNV-1a, 64 bit: stable across versions and platforms, which the model file relies on.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    fn bytes(&mut self, bs: &[u8]) {
        for &b in bs {
            self.byte(b);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Reusable buffers for tokenising, so a hot loop allocates nothing per comment.
#[derive(Debug, Default)]
pub struct Scratch {
    norm: Normalized,
    word_buf: String,
}

/// Top-level domains we recognise in bare domains ("murdev.com") and spelled-out links
/// ("example dot com"). Text like "e.g." must not become a link, so this is a list, not a rule.
const TLDS: &[&str] = &[
    "com", "net", "org", "info", "biz", "io", "co", "me", "tv", "ly", "gl", "cc", "us", "uk", "ru",
    "de", "fr", "nl", "it", "es", "pl", "br", "in", "cn", "jp", "kr", "au", "ca", "eu", "xyz",
    "online", "site", "club", "top", "shop", "store", "app", "dev", "live", "link", "click", "win",
    "vip", "pro", "mobi", "name", "tk", "ml", "ga", "cf", "gq", "pw", "ws", "to", "be", "fm", "gg",
    "ai", "sh", "su", "ua", "vn", "id", "ph", "my", "sg", "za", "mx", "ar", "cl", "tr", "ir",
    "edu", "gov", "mil", "int", "blog", "news", "online", "work", "loan", "bid", "date", "racing",
    "review", "stream", "download", "party", "trade", "webcam", "men", "cricket", "science",
];

fn is_tld(s: &str) -> bool {
    TLDS.contains(&s)
}

/// What tokenising saw, beyond the tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenSummary {
    /// Links in the text (with or without scheme, in `href`s, spelled out).
    pub links: u32,
    /// Words looked at.
    pub words: u32,
}

/// Cuts `comment` into tokens and hands each to `emit`. See the module docs for what it emits.
pub fn tokenize(
    comment: &Comment,
    scratch: &mut Scratch,
    emit: &mut dyn FnMut(Token<'_>),
) -> TokenSummary {
    normalize_into(&comment.content, &mut scratch.norm);
    let norm = &scratch.norm;
    let text = norm.text.as_str();

    let mut links = 0u32;
    let mut words = 0usize;
    // Links and e-mail addresses in the text count against the same budget as words, so the
    // tokens per comment stay bounded whatever the text is made of.
    let mut others = 0usize;
    let mut prev_word: &str = "";
    let mut prev_prev_word: &str = "";
    let mut dot_separator = false;
    let mut long_word = false;

    for href in &norm.hrefs {
        links += 1;
        emit_url(href, emit);
    }

    for chunk in text.split_whitespace() {
        if words + others >= MAX_WORDS {
            break;
        }
        let trimmed = chunk.trim_matches(|c: char| !c.is_alphanumeric() && c != '/');
        if trimmed.is_empty() {
            // A lone "." between two words may be a spelled-out link: "example . com".
            dot_separator = chunk == "." || chunk == "(.)" || chunk == "[.]";
            continue;
        }
        if let Some(domain) = email_domain(trimmed).filter(|_| !trimmed.contains("://")) {
            others += 1;
            emit(Token {
                kind: TokenKind::EmailDomain,
                text: domain,
                second: "",
            });
            prev_word = "";
            prev_prev_word = "";
            dot_separator = false;
            continue;
        }
        if looks_like_url(trimmed) {
            links += 1;
            others += 1;
            emit_url(trimmed, emit);
            prev_word = "";
            prev_prev_word = "";
            dot_separator = false;
            continue;
        }
        for word in trimmed
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .map(|w| w.trim_matches('\''))
            .filter(|w| !w.is_empty())
        {
            if words + others >= MAX_WORDS {
                break;
            }
            words += 1;
            // Spelled-out links: "example dot com", "example (dot) com", "example . com".
            if is_tld(word)
                && !prev_word.is_empty()
                && (dot_separator || (prev_word == "dot" && !prev_prev_word.is_empty()))
            {
                let host_word = if dot_separator {
                    prev_word
                } else {
                    prev_prev_word
                };
                links += 1;
                emit(Token {
                    kind: TokenKind::Shape,
                    text: "spelled-out-link",
                    second: "",
                });
                emit(Token {
                    kind: TokenKind::Host,
                    text: host_word,
                    second: word,
                });
                emit(Token {
                    kind: TokenKind::Tld,
                    text: word,
                    second: "",
                });
            }
            dot_separator = false;

            let word = if word.chars().all(|c| c.is_ascii_digit()) {
                if word.len() >= 5 {
                    emit(Token {
                        kind: TokenKind::Shape,
                        text: DIGIT_SHAPES[word.len().min(DIGIT_SHAPES.len() - 1)],
                        second: "",
                    });
                    prev_prev_word = prev_word;
                    prev_word = "";
                    continue;
                }
                word
            } else if word.chars().count() > MAX_WORD_CHARS {
                long_word = true;
                let end = word
                    .char_indices()
                    .nth(MAX_WORD_CHARS)
                    .map_or(word.len(), |(i, _)| i);
                &word[..end]
            } else {
                word
            };
            emit(Token {
                kind: TokenKind::Word,
                text: word,
                second: "",
            });
            for n in PREFIX_CHARS {
                if let Some((end, _)) = word.char_indices().nth(n) {
                    emit(Token {
                        kind: TokenKind::Prefix,
                        text: &word[..end],
                        second: "",
                    });
                }
            }
            if !prev_word.is_empty() {
                emit(Token {
                    kind: TokenKind::Pair,
                    text: prev_word,
                    second: word,
                });
            }
            prev_prev_word = prev_word;
            prev_word = word;
        }
    }

    emit_shapes(norm, links, words, long_word, emit);
    emit_metadata(comment, &mut scratch.word_buf, emit);
    TokenSummary {
        links,
        words: words as u32,
    }
}

const DIGIT_SHAPES: [&str; 13] = [
    "digits-0",
    "digits-1",
    "digits-2",
    "digits-3",
    "digits-4",
    "digits-5",
    "digits-6",
    "digits-7",
    "digits-8",
    "digits-9",
    "digits-10",
    "digits-11",
    "digits-12+",
];
const LINK_SHAPES: [&str; 4] = ["links-0", "links-1", "links-2", "links-3+"];
const LENGTH_SHAPES: [&str; 12] = [
    "chars-1",
    "chars-2",
    "chars-4",
    "chars-8",
    "chars-16",
    "chars-32",
    "chars-64",
    "chars-128",
    "chars-256",
    "chars-512",
    "chars-1024",
    "chars-2048+",
];
const WORD_SHAPES: [&str; 8] = [
    "words-0",
    "words-1",
    "words-2-3",
    "words-4-7",
    "words-8-15",
    "words-16-31",
    "words-32-63",
    "words-64+",
];

fn shape(text: &'static str) -> Token<'static> {
    Token {
        kind: TokenKind::Shape,
        text,
        second: "",
    }
}

fn log2_bucket(n: usize, buckets: usize) -> usize {
    if n == 0 {
        return 0;
    }
    ((usize::BITS - n.leading_zeros()) as usize).min(buckets - 1)
}

fn emit_shapes(
    norm: &Normalized,
    links: u32,
    words: usize,
    long_word: bool,
    emit: &mut dyn FnMut(Token<'_>),
) {
    let text = norm.text.as_str();
    emit(shape(LINK_SHAPES[(links as usize).min(3)]));
    let chars = text.chars().filter(|c| !c.is_whitespace()).count();
    emit(shape(
        LENGTH_SHAPES[log2_bucket(chars, LENGTH_SHAPES.len() + 1).saturating_sub(1)],
    ));
    emit(shape(WORD_SHAPES[log2_bucket(words, WORD_SHAPES.len())]));
    if long_word {
        emit(shape("long-word"));
    }
    if norm.had_html {
        emit(shape("html"));
    }
    if norm.letters >= 8 {
        let ratio = norm.upper as f64 / norm.letters as f64;
        if ratio >= 0.6 {
            emit(shape("shouting"));
        } else if ratio >= 0.25 {
            emit(shape("many-capitals"));
        }
    }

    // One pass over the characters for the remaining shapes: phone numbers (7+ digits with
    // single separators), currency symbols, runs of one repeated character, and "!!".
    let mut digit_run = 0u32;
    let mut sep_run = 0u32;
    let mut phone = false;
    let mut currency = false;
    let mut repeat = false;
    let mut exclaim = 0u32;
    let mut last = '\0';
    let mut same = 0u32;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digit_run += 1;
            sep_run = 0;
            if digit_run >= 7 {
                phone = true;
            }
        } else if matches!(c, ' ' | '-' | '.' | '(' | ')' | '+') && sep_run == 0 && digit_run > 0 {
            sep_run = 1;
        } else {
            digit_run = 0;
            sep_run = 0;
        }
        if matches!(c, '$' | '£' | '€' | '¥' | '₹' | '₽') {
            currency = true;
        }
        if c == '!' {
            exclaim += 1;
        }
        if c == last && !c.is_whitespace() {
            same += 1;
            if same >= 2 && !c.is_ascii_digit() {
                repeat = true;
            }
        } else {
            same = 0;
        }
        last = c;
    }
    if phone {
        emit(shape("phone-number"));
    }
    if currency {
        emit(shape("currency"));
    }
    if repeat {
        emit(shape("repeated-char"));
    }
    if exclaim >= 2 {
        emit(shape("exclamations"));
    }
}

/// The comment as the label log keeps it for retraining: the text and its kind as they were,
/// and in place of each identifier a stand-in that gives the model exactly the same metadata
/// tokens and nothing more: the e-mail's domain (no local part), the author URL's host (no
/// path), the user agent's family, the shape of the author's name (digits, capitals, words, a
/// link or an `@`), and no IP address (the model never reads it). A test holds this to "the same
/// tokens" for arbitrary comments.
pub fn training_copy(comment: &Comment) -> Comment {
    let author = comment.author.trim();
    let author = if author.is_empty() {
        String::new()
    } else {
        let traits = author_traits(author);
        let word = if traits.all_caps { "AAA" } else { "Aaa" };
        let mut first = word.to_string();
        if traits.has_digits {
            first.push('1');
        }
        if traits.link_like {
            first.push('@');
        }
        let mut words = vec![first];
        words.extend(std::iter::repeat_n(
            word.to_string(),
            traits.words.saturating_sub(1),
        ));
        words.join(" ")
    };
    let url = if comment.url.trim().is_empty() {
        String::new()
    } else {
        let lowered = super::normalize::prefix_at_most(comment.url.trim(), 256).to_lowercase();
        match url_host(&lowered) {
            // `www.` in front, because `url_host` takes one off.
            Some(host) => format!("https://www.{host}/"),
            // Present but without a host: something that parses to none.
            None => "?".into(),
        }
    };
    let email = comment.email.trim();
    let email = if email.is_empty() {
        String::new()
    } else {
        match super::normalize::prefix_at_most(email, 256).rsplit_once('@') {
            Some((_, domain)) if !domain.is_empty() => format!("@{}", domain.to_lowercase()),
            _ => "malformed".into(),
        }
    };
    let user_agent = match user_agent_family(&comment.user_agent) {
        "none" => "",
        "bot" => "bot",
        "script" => "curl",
        "edge" => "edg/",
        "firefox" => "firefox",
        "chrome" => "chrome",
        "safari" => "safari",
        "other-browser" => "mozilla",
        _ => "other",
    }
    .to_string();
    Comment {
        content: comment.content.clone(),
        author,
        email,
        url,
        ip: String::new(),
        user_agent,
        kind: comment.kind,
    }
}

/// What the model reads of an author's name.
struct AuthorTraits {
    has_digits: bool,
    all_caps: bool,
    /// 1, 2, or 3 for "many".
    words: usize,
    link_like: bool,
}

fn author_traits(author: &str) -> AuthorTraits {
    let author = super::normalize::prefix_at_most(author, 256);
    let letters: Vec<char> = author.chars().filter(|c| c.is_alphabetic()).collect();
    AuthorTraits {
        has_digits: author.chars().any(|c| c.is_ascii_digit()),
        all_caps: letters.len() >= 3 && letters.iter().all(|c| c.is_uppercase()),
        words: author.split_whitespace().count().min(3),
        link_like: looks_like_url(author) || author.contains('@'),
    }
}

fn emit_metadata(comment: &Comment, buf: &mut String, emit: &mut dyn FnMut(Token<'_>)) {
    let meta = |field: &'static str, value: &str, emit: &mut dyn FnMut(Token<'_>)| {
        emit(Token {
            kind: TokenKind::Meta,
            text: field,
            second: value,
        })
    };

    let author = comment.author.trim();
    if !author.is_empty() {
        let traits = author_traits(author);
        if traits.has_digits {
            meta("author", "has-digits", emit);
        }
        if traits.all_caps {
            meta("author", "all-caps", emit);
        }
        meta(
            "author",
            match traits.words {
                1 => "one-word",
                2 => "two-words",
                _ => "many-words",
            },
            emit,
        );
        if traits.link_like {
            meta("author", "link-like", emit);
        }
    }

    if !comment.url.trim().is_empty() {
        meta("url", "present", emit);
        buf.clear();
        buf.push_str(&super::normalize::prefix_at_most(comment.url.trim(), 256).to_lowercase());
        if let Some(host) = url_host(buf) {
            meta("url-host", host, emit);
        }
    }

    let email = comment.email.trim();
    if !email.is_empty() {
        let email = super::normalize::prefix_at_most(email, 256);
        match email.rsplit_once('@') {
            Some((_, domain)) if !domain.is_empty() => {
                buf.clear();
                buf.push_str(&domain.to_lowercase());
                meta("email-domain", buf, emit);
            }
            _ => meta("email", "malformed", emit),
        }
    }

    let ua = comment.user_agent.as_str();
    if !ua.is_empty() || comment.kind != crate::comment::CommentKind::Unspecified {
        meta("user-agent", user_agent_family(ua), emit);
    }
    if comment.kind != crate::comment::CommentKind::Unspecified {
        meta("type", comment.kind.as_str(), emit);
    }
}

/// The family of a user agent: enough to tell browsers from scripts.
pub fn user_agent_family(ua: &str) -> &'static str {
    let ua = super::normalize::prefix_at_most(ua, 512).to_ascii_lowercase();
    if ua.is_empty() {
        "none"
    } else if ua.contains("bot") || ua.contains("crawl") || ua.contains("spider") {
        "bot"
    } else if [
        "curl", "wget", "python", "java", "go-http", "okhttp", "libwww",
    ]
    .iter()
    .any(|s| ua.contains(s))
    {
        "script"
    } else if ua.contains("edg/") {
        "edge"
    } else if ua.contains("firefox") {
        "firefox"
    } else if ua.contains("chrome") || ua.contains("chromium") {
        "chrome"
    } else if ua.contains("safari") {
        "safari"
    } else if ua.contains("mozilla") {
        "other-browser"
    } else {
        "other"
    }
}

/// Whether a whitespace-free chunk is a link: has a scheme, starts with `www.`, or is a bare
/// domain with a known top-level domain ("murdev.com", "bit.ly/abc").
pub fn looks_like_url(chunk: &str) -> bool {
    if chunk.contains("://") || chunk.starts_with("www.") {
        return true;
    }
    match url_host(chunk) {
        Some(host) => host
            .rsplit('.')
            .next()
            .is_some_and(|tld| is_tld(tld) && host.contains('.')),
        None => false,
    }
}

/// The host part of a link, lower case, without `www.`, port or credentials.
pub fn url_host(link: &str) -> Option<&str> {
    let rest = link.split_once("://").map_or(link, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = authority.split(':').next()?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    let host = host.trim_matches('.');
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
    {
        return None;
    }
    Some(host)
}

fn email_domain(chunk: &str) -> Option<&str> {
    let (local, domain) = chunk.split_once('@')?;
    if local.is_empty() || !domain.contains('.') {
        return None;
    }
    url_host(domain)
}

fn emit_url(link: &str, emit: &mut dyn FnMut(Token<'_>)) {
    let Some(host) = url_host(link) else {
        emit(shape("unparsable-link"));
        return;
    };
    emit(Token {
        kind: TokenKind::Host,
        text: host,
        second: "",
    });
    if let Some(tld) = host.rsplit('.').next().filter(|t| *t != host) {
        emit(Token {
            kind: TokenKind::Tld,
            text: tld,
            second: "",
        });
    }
}

/// Collects a comment's tokens as owned labels with their feature ids (for tests and reasons).
pub fn token_labels(comment: &Comment) -> Vec<(FeatureId, String)> {
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    tokenize(comment, &mut scratch, &mut |t| {
        out.push((t.feature(), t.label()))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(content: &str) -> Vec<String> {
        token_labels(&Comment::from_content(content))
            .into_iter()
            .map(|(_, l)| l)
            .collect()
    }

    fn has(ls: &[String], l: &str) -> bool {
        ls.iter().any(|x| x == l)
    }

    #[test]
    fn urls_with_and_without_scheme() {
        let ls = labels("see https://www.Example.com/path?x=1 and bit.ly/abc and www.foo.net");
        assert!(has(&ls, "host:example.com"), "{ls:?}");
        assert!(has(&ls, "tld:com"));
        assert!(has(&ls, "host:bit.ly"));
        assert!(has(&ls, "host:foo.net"));
        assert!(has(&ls, "shape:links-3+"));
        assert!(!has(&ls, "word:https"));
    }

    #[test]
    fn spelled_out_links() {
        for text in [
            "visit example dot com now",
            "visit example . com now",
            "visit example (dot) com",
        ] {
            let ls = labels(text);
            assert!(
                has(&ls, "host:example com") || has(&ls, "host:example"),
                "{text}: {ls:?}"
            );
            assert!(has(&ls, "shape:spelled-out-link"), "{text}: {ls:?}");
            assert!(has(&ls, "tld:com"), "{text}: {ls:?}");
        }
        assert!(!has(&labels("e.g. this"), "shape:links-1"));
    }

    #[test]
    fn emails_give_their_domain() {
        let ls = labels("mail me at Someone@Mail.Example.org please");
        assert!(has(&ls, "email-domain:mail.example.org"), "{ls:?}");
        assert!(!has(&ls, "word:someone"));
    }

    #[test]
    fn words_pairs_and_shapes() {
        let ls = labels("CHECK OUT MY CHANNEL!!! call 0800 123 4567 for £100");
        for want in [
            "word:check",
            "pair:check out",
            "pair:my channel",
            "prefix:chann",
            "shape:shouting",
            "shape:exclamations",
            "shape:repeated-char",
            "shape:phone-number",
            "shape:currency",
        ] {
            assert!(has(&ls, want), "missing {want}: {ls:?}");
        }
    }

    #[test]
    fn emoji_and_mixed_scripts() {
        let ls = labels("Отличное видео 😀 great 動画");
        assert!(has(&ls, "word:отличное"), "{ls:?}");
        assert!(has(&ls, "word:great"));
        assert!(has(&ls, "word:動画"));
        assert!(!ls.iter().any(|l| l.contains('😀')));
    }

    #[test]
    fn html_is_stripped_and_hrefs_counted() {
        let ls = labels("<a href=\"http://spam.example.ru/x\">click</a> here&#39;s");
        assert!(has(&ls, "host:spam.example.ru"), "{ls:?}");
        assert!(has(&ls, "tld:ru"));
        assert!(has(&ls, "word:here's"));
        assert!(has(&ls, "shape:html"));
    }

    #[test]
    fn very_long_words_are_cut() {
        let long = "a".repeat(10_000);
        let ls = labels(&long);
        assert!(has(&ls, "shape:long-word"));
        assert!(has(&ls, &format!("word:{}", "a".repeat(MAX_WORD_CHARS))));
    }

    #[test]
    fn metadata_tokens() {
        let c = Comment {
            content: "hi".into(),
            author: "BEST SEO 2024".into(),
            email: "x@Cheap-Pills.example".into(),
            url: "https://www.seo-shop.example/buy".into(),
            user_agent: "python-requests/2.31".into(),
            kind: crate::comment::CommentKind::Trackback,
            ..Comment::default()
        };
        let ls: Vec<String> = token_labels(&c).into_iter().map(|(_, l)| l).collect();
        for want in [
            "meta:author=has-digits",
            "meta:author=all-caps",
            "meta:url-host=seo-shop.example",
            "meta:email-domain=cheap-pills.example",
            "meta:user-agent=script",
            "meta:type=trackback",
        ] {
            assert!(has(&ls, want), "missing {want}: {ls:?}");
        }
    }

    #[test]
    fn feature_ids_are_stable() {
        // The model file stores these ids: changing the hash silently breaks every model.
        // The constant is FNV-1a 64 of [1] ++ b"subscribe" (0x153b_d773_33c3_91cc, computed
        // independently) with its top four bits replaced by the kind, 1.
        let t = Token {
            kind: TokenKind::Word,
            text: "subscribe",
            second: "",
        };
        assert_eq!(t.feature(), 0x153b_d773_33c3_91cc);
        assert_eq!(kind_slot(t.feature()), 0);
        for kind in TokenKind::ALL {
            let f = Token {
                kind,
                text: "x",
                second: "",
            }
            .feature();
            assert_eq!(TokenKind::ALL[kind_slot(f)], kind);
        }
        let a = Token {
            kind: TokenKind::Word,
            text: "ab",
            second: "",
        };
        let b = Token {
            kind: TokenKind::Pair,
            text: "a",
            second: "b",
        };
        assert_ne!(a.feature(), b.feature());
    }
}
