//! Text normalisation: what a comment looks like before it is cut into tokens.
//!
//! Comments arrive as whatever the blog engine stored: HTML tags and entities, a stray byte-order
//! mark (1,548 rows of the YouTube collection end in U+FEFF), zero-width characters used to break up
//! words, full-width letters. [`normalize`] turns all of that into one lower-case NFKC string and
//! remembers the few facts that lowercasing destroys (how much of the text was upper case) and the
//! link targets hidden in `href` attributes.
//!
//! Work is bounded: only the first [`MAX_INPUT_BYTES`] bytes of a comment are looked at, whatever
//! its size, so a hostile megabyte comment costs no more than a long one.

use unicode_normalization::UnicodeNormalization;

/// Bytes of a comment's content that are looked at; the rest is ignored.
pub const MAX_INPUT_BYTES: usize = 16 * 1024;

/// Longest HTML tag or entity we try to parse; anything longer is treated as text.
const MAX_TAG_BYTES: usize = 512;
const MAX_ENTITY_BYTES: usize = 12;
/// Link targets kept from tags per comment.
const MAX_HREFS: usize = 32;

/// A comment's text after normalisation, plus what normalisation had to throw away.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Lower-case, NFKC-normalised text with tags replaced by spaces and entities decoded.
    pub text: String,
    /// Link targets found in `href`/`src` attributes of tags (they are not in `text`).
    pub hrefs: Vec<String>,
    /// Letters seen before lowercasing, and how many of them were upper case.
    pub letters: u32,
    /// Upper-case letters seen before lowercasing.
    pub upper: u32,
    /// Whether the input held HTML tags.
    pub had_html: bool,
    /// Whether the input was cut at [`MAX_INPUT_BYTES`].
    pub truncated: bool,
}

impl Normalized {
    /// Clears the buffers so the value can be reused without allocating.
    pub fn clear(&mut self) {
        self.text.clear();
        self.hrefs.clear();
        self.letters = 0;
        self.upper = 0;
        self.had_html = false;
        self.truncated = false;
    }
}

/// Returns the longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
pub fn prefix_at_most(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Normalises `input` into `out` (cleared first). See the module docs.
pub fn normalize_into(input: &str, out: &mut Normalized) {
    out.clear();
    let input_cut = prefix_at_most(input, MAX_INPUT_BYTES);
    out.truncated = input_cut.len() < input.len();

    // First pass: tags, entities and invisible characters, into a scratch string with the
    // original case. Most comments are ASCII, so the scratch string usually is the final text
    // after an ASCII lowercase and NFKC can be skipped.
    let mut raw = String::with_capacity(input_cut.len() + 8);
    let bytes = input_cut.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'<' {
            if let Some(len) = parse_tag(&input_cut[i..], &mut out.hrefs) {
                out.had_html = true;
                raw.push(' ');
                i += len;
                continue;
            }
        } else if b == b'&' {
            if let Some((c, len)) = parse_entity(&input_cut[i..]) {
                push_visible(&mut raw, c);
                i += len;
                continue;
            }
        }
        // `i` is always on a char boundary: we only ever advance by whole chars or whole ASCII
        // constructs, so this cannot fail; fall back to skipping a byte rather than panicking.
        let Some(c) = input_cut[i..].chars().next() else {
            break;
        };
        push_visible(&mut raw, c);
        i += c.len_utf8();
    }

    for c in raw.chars() {
        if c.is_alphabetic() {
            out.letters += 1;
            if c.is_uppercase() {
                out.upper += 1;
            }
        }
    }

    if raw.is_ascii() {
        raw.make_ascii_lowercase();
        out.text = raw;
    } else {
        out.text.reserve(raw.len());
        for c in raw.nfkc() {
            if is_invisible(c) {
                continue;
            }
            for l in c.to_lowercase() {
                out.text.push(l);
            }
        }
    }
}

/// Normalises `input` into a fresh [`Normalized`].
pub fn normalize(input: &str) -> Normalized {
    let mut out = Normalized::default();
    normalize_into(input, &mut out);
    out
}

/// The key two comments share when they are the same text: normalised, whitespace collapsed.
/// Used to deduplicate corpora and to fingerprint repeated content.
pub fn dedup_key(input: &str) -> String {
    let n = normalize(input);
    let mut key = String::with_capacity(n.text.len());
    for word in n.text.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.push_str(word);
    }
    key
}

fn push_visible(out: &mut String, c: char) {
    if is_invisible(c) {
        return;
    }
    // Control characters (other than whitespace) carry no meaning in a comment; a space keeps
    // the words on either side apart.
    if c.is_control() && !c.is_whitespace() {
        out.push(' ');
        return;
    }
    out.push(c);
}

/// Characters that render as nothing and are used to split words past filters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{FEFF}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{00AD}' | '\u{180E}'
    )
}

/// Parses an HTML tag at the start of `s`; returns its length in bytes. Link targets in `href`
/// and `src` attributes are pushed to `hrefs`. Returns `None` when `s` does not start with
/// something tag-shaped (a lone `<` as in "I <3 this" stays text).
fn parse_tag(s: &str, hrefs: &mut Vec<String>) -> Option<usize> {
    let bytes = s.as_bytes();
    let first = *bytes.get(1)?;
    if !(first.is_ascii_alphabetic() || first == b'/' || first == b'!') {
        return None;
    }
    let limit = bytes.len().min(MAX_TAG_BYTES);
    let end = bytes[..limit].iter().position(|&b| b == b'>')?;
    let tag = &s[..end];
    for attr in ["href=", "src="] {
        if hrefs.len() >= MAX_HREFS {
            break;
        }
        {
            if let Some(pos) = find_ascii_ci(tag, attr) {
                let rest = &tag[pos + attr.len()..];
                let value = match rest.as_bytes().first() {
                    Some(b'"') => rest[1..].split('"').next(),
                    Some(b'\'') => rest[1..].split('\'').next(),
                    _ => rest.split(|c: char| c.is_whitespace()).next(),
                };
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    hrefs.push(prefix_at_most(v, 256).to_ascii_lowercase());
                }
            }
        }
    }
    Some(end + 1)
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    if n.len() > h.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Parses an HTML entity at the start of `s` (`&amp;`, `&#39;`, `&#x27;`).
fn parse_entity(s: &str) -> Option<(char, usize)> {
    let limit = s.len().min(MAX_ENTITY_BYTES);
    let end = s.as_bytes()[..limit].iter().position(|&b| b == b';')?;
    let name = &s[1..end];
    let c = if let Some(num) = name.strip_prefix('#') {
        let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            num.parse::<u32>().ok()?
        };
        char::from_u32(code)?
    } else {
        match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            "pound" => '£',
            "euro" => '€',
            "yen" => '¥',
            "cent" => '¢',
            "copy" => '©',
            "reg" => '®',
            "hellip" => '…',
            "mdash" => '—',
            "ndash" => '–',
            "lsquo" | "rsquo" => '\'',
            "ldquo" | "rdquo" => '"',
            _ => return None,
        }
    };
    Some((c, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_decodes_entities_and_keeps_hrefs() {
        let n = normalize("I&#39;m <b>HERE</b><br />see <a href=\"http://Spam.example/x\">this</a>&amp;more\u{FEFF}");
        assert_eq!(n.text, "i'm  here  see  this &more");
        assert_eq!(n.hrefs, vec!["http://spam.example/x".to_string()]);
        assert!(n.had_html);
        assert_eq!(n.upper, 5);
    }

    #[test]
    fn lone_angle_bracket_is_text() {
        assert_eq!(normalize("I <3 you & me").text, "i <3 you & me");
    }

    #[test]
    fn nfkc_folds_fullwidth_and_removes_zero_width() {
        assert_eq!(normalize("ＦＲＥＥ mo\u{200B}ney").text, "free money");
    }

    #[test]
    fn cuts_huge_input_on_char_boundary() {
        let s = "é".repeat(MAX_INPUT_BYTES);
        let n = normalize(&s);
        assert!(n.truncated);
        assert!(n.text.len() <= MAX_INPUT_BYTES);
    }

    #[test]
    fn dedup_key_collapses_whitespace_and_case() {
        assert_eq!(
            dedup_key("Check  out\nTHIS<br/>\u{FEFF}"),
            dedup_key("check out this")
        );
    }

    #[test]
    fn unterminated_entity_and_tag_stay_text() {
        assert_eq!(normalize("a &amp b <a href=").text, "a &amp b <a href=");
    }
}
