//! A site's moderation history, read from the files blogs export, as labelled comments.
//!
//! `hamgate import --site NAME FILE...` teaches a new site from its own past before its first
//! live check. This module is the reading half: it turns one export file into
//! [`ImportedComment`]s (a [`Comment`], its [`Label`] and a stable [`ImportKey`]) plus the count
//! of records it deliberately left out, by [`SkipReason`]. Sending the labels through the label
//! log and into the site's layer is the application's job, not this module's.
//!
//! # Formats ([`ImportFormat`])
//! Detected from the content ([`detect_format`]); the caller may override.
//! - **WP-CLI JSON and CSV**: the output of
//!   `wp comment list --status=any --format=json` (or `--format=csv`) with
//!   `--fields=comment_ID,comment_author,comment_author_email,comment_author_url,comment_author_IP,comment_date_gmt,comment_content,comment_approved,comment_agent,comment_type,comment_parent`.
//!   WP-CLI's default fields leave out `comment_content`, and its default status (`all`) leaves
//!   out spam and trash, hence `--status=any` and `--fields`. `comment_approved`: `1` is ham,
//!   `spam` is spam; `0` (pending), `trash` and `post-trashed` are not verdicts and are skipped.
//! - **WordPress WXR** (Tools > Export): RSS 2.0 with `<wp:comment>` inside each `<item>`.
//!   WordPress leaves spam out of the export, so its comments are ham unless their
//!   `wp:comment_approved` says otherwise (pending and trash are skipped as above).
//! - **Disqus XML export**: `<post>` elements; `isSpam` true is spam, `isDeleted` true (and not
//!   spam) is skipped, anything else is ham.
//! - **hamgate's JSONL and CSV**, read by [`crate::corpus`]; a record's `site` is ignored (the
//!   importer names the site).
//!
//! # Content
//! A comment's content is kept as the blog stored it, HTML and HTML entities (`&#8217;`)
//! included: that is what a WordPress comment handler sends to Akismet, and so to hamgate's
//! `Check`, and the tokenizer's normaliser takes it from there. Only the file format's own
//! layer is decoded: JSON strings, CSV quoting, XML entities and CDATA sections.
//!
//! # All or nothing
//! A file is parsed completely before anything is returned: a malformed record anywhere makes
//! the whole file an [`ImportError`] naming the line (JSON, JSONL, CSV) or the byte, line and
//! element (XML), and no records, so an import never leaves half a file counted.
//!
//! # Import keys
//! Each comment carries an [`ImportKey`] that is the same every time the same record is read,
//! so importing a file twice (or overlapping exports) can count each comment once. It is a
//! hash of the format family (WordPress, whether WP-CLI or WXR; Disqus; hamgate) and the
//! record's own id (`comment_ID`, the Disqus post's `dsq:id`). A record without an id is keyed
//! by its content, author, e-mail, URL, IP and date, plus its ordinal among identical records
//! in the file, so two identical "+1" comments stay two. Keys are unique within one site's
//! history (WordPress ids restart at 1 on every blog): the caller scopes them by site. A
//! record whose id repeats within one file is kept once ([`SkipReason::Duplicate`]).

mod disqus;
mod hamgate;
mod keys;
mod wordpress;
mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::comment::{Comment, Label};

pub use keys::ImportKey;

/// The export formats `hamgate import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImportFormat {
    /// `wp comment list --format=json`: one JSON array of objects.
    WpCliJson,
    /// `wp comment list --format=csv`: a header row, then one row per comment.
    WpCliCsv,
    /// WordPress's WXR export (RSS 2.0 with the `wp:` namespace).
    WordPressWxr,
    /// The Disqus XML export.
    DisqusXml,
    /// hamgate's own JSONL corpus format.
    HamgateJsonl,
    /// hamgate's own CSV corpus format (`COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS`).
    HamgateCsv,
}

impl ImportFormat {
    /// Every format, in the order they are documented.
    pub const ALL: [ImportFormat; 6] = [
        ImportFormat::WpCliJson,
        ImportFormat::WpCliCsv,
        ImportFormat::WordPressWxr,
        ImportFormat::DisqusXml,
        ImportFormat::HamgateJsonl,
        ImportFormat::HamgateCsv,
    ];

    /// The format's short name, as a `--format` flag would take it: `wp-json`, `wp-csv`, `wxr`,
    /// `disqus`, `jsonl`, `csv`.
    pub fn name(self) -> &'static str {
        match self {
            ImportFormat::WpCliJson => "wp-json",
            ImportFormat::WpCliCsv => "wp-csv",
            ImportFormat::WordPressWxr => "wxr",
            ImportFormat::DisqusXml => "disqus",
            ImportFormat::HamgateJsonl => "jsonl",
            ImportFormat::HamgateCsv => "csv",
        }
    }
}

impl fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ImportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        ImportFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ImportFormat::ALL.iter().map(|f| f.name()).collect();
                format!("unknown import format `{s}`; one of: {}", names.join(", "))
            })
    }
}

/// Why a record of an export was read but not imported as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Awaiting moderation (WordPress `comment_approved` `0`): no verdict yet.
    Pending,
    /// In WordPress's trash: a moderator removed it, which does not say it was spam.
    Trash,
    /// Hidden because its post was trashed (`post-trashed`): no verdict about the comment.
    PostTrashed,
    /// Deleted on Disqus and not marked spam: deletion is not a spam verdict.
    Deleted,
    /// A WordPress status this reader does not know (a plugin's own).
    UnknownStatus,
    /// Stored as a comment but not one (WordPress editorial notes, WooCommerce order notes).
    NotAComment,
    /// No content to learn from.
    EmptyContent,
    /// The same record (by its id) appeared earlier in the file.
    Duplicate,
}

impl SkipReason {
    /// A short stable name for reports and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Pending => "pending",
            SkipReason::Trash => "trash",
            SkipReason::PostTrashed => "post_trashed",
            SkipReason::Deleted => "deleted",
            SkipReason::UnknownStatus => "unknown_status",
            SkipReason::NotAComment => "not_a_comment",
            SkipReason::EmptyContent => "empty_content",
            SkipReason::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One labelled comment read from an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedComment {
    /// Its stable identity (see the module docs).
    pub key: ImportKey,
    /// The moderator's verdict.
    pub label: Label,
    /// The comment as the blog stored it.
    pub comment: Comment,
    /// The record's own id in the export (`comment_ID`, Disqus `dsq:id`); empty when it has none.
    pub source_id: String,
    /// When it was posted, seconds since the Unix epoch (UTC), when the export says so in UTC
    /// (`comment_date_gmt`, Disqus `createdAt`); `None` otherwise.
    pub posted_at: Option<u64>,
    /// The 1-based line where the record starts in the file.
    pub line: u64,
}

/// Everything one export file holds, read completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedFile {
    /// The file.
    pub path: PathBuf,
    /// The format it was read as.
    pub format: ImportFormat,
    /// The labelled comments, in file order, each key once.
    pub comments: Vec<ImportedComment>,
    /// Records read but not imported, by reason (reasons with no records are absent).
    pub skipped: BTreeMap<SkipReason, u64>,
}

impl ImportedFile {
    /// How many comments carry `label`.
    pub fn count(&self, label: Label) -> usize {
        self.comments.iter().filter(|c| c.label == label).count()
    }

    /// How many records were skipped, for every reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Where in a file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A 1-based line (JSON, JSONL, CSV; for CSV, where the record starts).
    Line(u64),
    /// A place in an XML document.
    Xml {
        /// The 0-based byte offset.
        byte: u64,
        /// The 1-based line of that byte.
        line: u64,
        /// The open elements there, outermost first (`rss/channel/item/wp:comment`); empty
        /// before the root element.
        element: String,
    },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(line) => write!(f, "line {line}"),
            Position::Xml {
                byte,
                line,
                element,
            } if element.is_empty() => write!(f, "line {line} (byte {byte})"),
            Position::Xml {
                byte,
                line,
                element,
            } => write!(f, "line {line} (byte {byte}), in <{element}>"),
        }
    }
}

/// Why an export file could not be imported. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not UTF-8 (every supported export is).
    #[error("{}: line {line}: not valid UTF-8 (exports are read as UTF-8)", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The line of the first bad byte.
        line: u64,
    },
    /// The content is none of the formats this module reads.
    #[error("{}: {detail}", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was seen, and what would have been recognised.
        detail: String,
    },
    /// A record (or the document around it) is malformed; nothing of the file was imported.
    #[error("{}: {at}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where.
        at: Position,
        /// What is wrong.
        message: String,
    },
}

impl ImportError {
    fn at_line(path: &Path, line: u64, message: impl Into<String>) -> Self {
        ImportError::Malformed {
            path: path.to_path_buf(),
            at: Position::Line(line),
            message: message.into(),
        }
    }
}

/// Reads and parses one export file; `format` overrides detection.
pub fn read_import_file(
    path: &Path,
    format: Option<ImportFormat>,
) -> Result<ImportedFile, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_import(path, &bytes, format)
}

/// Parses one export file's bytes; `format` overrides detection, `path` names the file in
/// errors (and its extension is a hint to detection).
pub fn parse_import(
    path: &Path,
    bytes: &[u8],
    format: Option<ImportFormat>,
) -> Result<ImportedFile, ImportError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ImportError::NotUtf8 {
        path: path.to_path_buf(),
        line: line_of(bytes, e.valid_up_to()),
    })?;
    let format = match format {
        Some(f) => f,
        None => detect_format(path, text)?,
    };
    let mut out = Collector::new(format);
    match format {
        ImportFormat::WpCliJson => wordpress::read_cli_json(path, text, &mut out)?,
        ImportFormat::WpCliCsv => wordpress::read_cli_csv(path, text, &mut out)?,
        ImportFormat::WordPressWxr => wordpress::read_wxr(path, text, &mut out)?,
        ImportFormat::DisqusXml => disqus::read_disqus(path, text, &mut out)?,
        ImportFormat::HamgateJsonl => hamgate::read_jsonl(path, text, &mut out)?,
        ImportFormat::HamgateCsv => hamgate::read_csv(path, text, &mut out)?,
    }
    Ok(ImportedFile {
        path: path.to_path_buf(),
        format,
        comments: out.comments,
        skipped: out.skipped,
    })
}

/// Recognises an export's format from its first bytes: `[` is WP-CLI JSON, `{` hamgate JSONL,
/// an XML root `<rss>` WXR and `<disqus>` Disqus, and a CSV header with `comment_*` columns
/// WP-CLI CSV or with `CONTENT` and `CLASS` hamgate CSV. The extension only sharpens the error
/// when nothing matches.
pub fn detect_format(path: &Path, text: &str) -> Result<ImportFormat, ImportError> {
    let unknown = |detail: String| ImportError::UnknownFormat {
        path: path.to_path_buf(),
        detail,
    };
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let body = text.trim_start_matches('\u{FEFF}').trim_start();
    match body.chars().next() {
        None => Err(unknown("the file is empty".into())),
        Some('[') => Ok(ImportFormat::WpCliJson),
        Some('{') => Ok(ImportFormat::HamgateJsonl),
        Some('<') => match xml::root_name(path, text)?.as_str() {
            "rss" => Ok(ImportFormat::WordPressWxr),
            "disqus" => Ok(ImportFormat::DisqusXml),
            other => Err(unknown(format!(
                "an XML document with root <{other}>: neither a WordPress WXR export (<rss>) nor a Disqus export (<disqus>)"
            ))),
        },
        Some(_) => {
            let header = body.lines().next().unwrap_or_default();
            let columns: Vec<String> = header
                .split(',')
                .map(|c| c.trim().trim_matches('"').to_string())
                .collect();
            if columns
                .iter()
                .any(|c| c.to_ascii_lowercase().starts_with("comment_") && c != "COMMENT_ID")
            {
                Ok(ImportFormat::WpCliCsv)
            } else if columns.iter().any(|c| c == "CONTENT") && columns.iter().any(|c| c == "CLASS")
            {
                Ok(ImportFormat::HamgateCsv)
            } else {
                let hint = match ext.as_str() {
                    "xml" => " (named .xml, but it does not start with `<`)",
                    "json" | "jsonl" => " (named .json, but it starts with neither `[` nor `{`)",
                    _ => "",
                };
                Err(unknown(format!(
                    "not a recognised export{hint}: expected WP-CLI JSON (`[`), hamgate JSONL (`{{`), \
                     WXR or Disqus XML (`<`), or a CSV header with WP-CLI's comment_* columns or \
                     hamgate's COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS"
                )))
            }
        }
    }
}

/// The 1-based line of byte `offset` (clamped to the text).
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    let end = offset.min(bytes.len());
    1 + bytes
        .get(..end)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

/// One record as a reader understood it, before it gets its key.
struct Draft {
    /// The record's own id; empty when it has none.
    id: String,
    label: Label,
    comment: Comment,
    /// The date as the export wrote it (part of the fallback key).
    date: String,
    posted_at: Option<u64>,
    line: u64,
}

/// What the readers build: the comments kept, with keys, and the counts of what was skipped.
struct Collector {
    keys: keys::KeyMaker,
    comments: Vec<ImportedComment>,
    skipped: BTreeMap<SkipReason, u64>,
}

impl Collector {
    fn new(format: ImportFormat) -> Self {
        Collector {
            keys: keys::KeyMaker::new(format),
            comments: Vec::new(),
            skipped: BTreeMap::new(),
        }
    }

    fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    fn push(&mut self, draft: Draft) {
        if draft.comment.content.trim().is_empty() {
            self.skip(SkipReason::EmptyContent);
            return;
        }
        let c = &draft.comment;
        let key = if draft.id.trim().is_empty() {
            self.keys
                .by_content(&[&c.content, &c.author, &c.email, &c.url, &c.ip, &draft.date])
        } else {
            self.keys.by_id(draft.id.trim())
        };
        if !self.keys.first_time(&key) {
            self.skip(SkipReason::Duplicate);
            return;
        }
        self.comments.push(ImportedComment {
            key,
            label: draft.label,
            comment: draft.comment,
            source_id: draft.id,
            posted_at: draft.posted_at,
            line: draft.line,
        });
    }
}

/// Seconds since the Unix epoch for `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS[Z]` read as
/// UTC; `None` for anything else (WordPress writes `0000-00-00 00:00:00` for "unknown").
fn parse_utc(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<u64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hour, min, sec) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), for years from 1970 on.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_parse_and_zero_dates_do_not() {
        assert_eq!(parse_utc("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_utc("2015-06-20 09:00:10"), Some(1_434_790_810));
        assert_eq!(parse_utc("2012-02-29T12:00:00Z"), Some(1_330_516_800));
        assert_eq!(parse_utc("0000-00-00 00:00:00"), None);
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(parse_utc("2015-13-01 00:00:00"), None);
        assert_eq!(parse_utc(""), None);
    }

    #[test]
    fn format_names_round_trip() {
        for f in ImportFormat::ALL {
            assert_eq!(f.name().parse::<ImportFormat>(), Ok(f));
        }
        assert!("xls".parse::<ImportFormat>().unwrap_err().contains("wxr"));
    }

    #[test]
    fn detects_formats_from_content() {
        let d = |name: &str, text: &str| detect_format(Path::new(name), text);
        assert_eq!(d("a.txt", " [{}]").unwrap(), ImportFormat::WpCliJson);
        assert_eq!(
            d("a.json", "{\"content\":1}").unwrap(),
            ImportFormat::HamgateJsonl
        );
        assert_eq!(
            d(
                "a",
                "\u{FEFF}<?xml version=\"1.0\"?>\n<!-- x --><rss version=\"2.0\"/>"
            )
            .unwrap(),
            ImportFormat::WordPressWxr
        );
        assert_eq!(
            d("a", "<disqus xmlns=\"http://disqus.com\"></disqus>").unwrap(),
            ImportFormat::DisqusXml
        );
        assert_eq!(
            d("a.csv", "comment_ID,comment_approved\n").unwrap(),
            ImportFormat::WpCliCsv
        );
        assert_eq!(
            d("a.csv", "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n").unwrap(),
            ImportFormat::HamgateCsv
        );
        let err = d("a.xml", "hello").unwrap_err().to_string();
        assert!(err.contains("a.xml") && err.contains("named .xml"), "{err}");
        assert!(d("a", "  \n").unwrap_err().to_string().contains("empty"));
        let err = d("a", "<html></html>").unwrap_err().to_string();
        assert!(err.contains("<html>"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        for (name, text) in [
            (
                "a.json",
                "\u{FEFF}[{\"comment_approved\":\"1\",\"comment_content\":\"hi\"}]",
            ),
            ("a.csv", "\u{FEFF}comment_approved,comment_content\n1,hi\n"),
        ] {
            let file = parse_import(Path::new(name), text.as_bytes(), None).unwrap();
            assert_eq!(file.comments.len(), 1, "{name}");
            assert_eq!(file.comments[0].comment.content, "hi");
        }
    }

    #[test]
    fn not_utf8_names_the_line() {
        let err = parse_import(Path::new("x.csv"), b"a\nb\n\xff", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.csv: line 3") && err.contains("UTF-8"),
            "{err}"
        );
    }
}
