//! Labelled corpora: readers for the three formats we take, deduplication, and the digest a model
//! records of the data it was trained on.
//!
//! Formats, chosen per file:
//! - **JSONL** (`.jsonl`/`.json`): one object per line, `content` (required), `label` (`spam` |
//!   `ham`), and optional `author`, `email`, `url`, `ip`, `user_agent`, `type`, `site`, `group`
//!   (`null` is taken as absent).
//! - **YouTube Spam Collection CSV** (`.csv`): `COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS`. The group of
//!   a row is the file's stem (the video), which leave-one-group-out cross-validation splits on.
//!   `DATE` is never read: in `Youtube04-Eminem.csv` it is empty for every spam row.
//! - **SMS Spam Collection** (anything else): `label<TAB>message`. Its anonymisation placeholders
//!   (`&lt;#&gt;`, `&lt;URL&gt;`, ...) occur only in ham and would leak the label, so they are cut.
//!
//! A directory stands for the recognised files in it, in name order.
//!
//! Corpora hold many near-copies ("Check out this video on YouTube:" 99 times), and a copy on both
//! sides of a train/test split makes the scores lie, so [`dedup`] keeps the first of each
//! normalised text and readers' callers deduplicate before splitting.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::comment::{Comment, CommentKind, Label};
use crate::text::dedup_key;

/// One labelled comment of a corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The comment.
    #[serde(flatten)]
    pub comment: Comment,
    /// Its label.
    pub label: Label,
    /// The group it belongs to (a video, a site, a month), for group-wise cross-validation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The site it was posted on, if known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub site: String,
    /// The source it comes from (a collection, a blog), for leave-one-source-out evaluation:
    /// the record's own `source` field, else the file or directory named to [`read_corpus`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// What went wrong reading a corpus. The message names the file and, where it applies, the line.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record is malformed.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line (for CSV, the record number).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The paths held no examples.
    #[error("no labelled comments found in {0}")]
    Empty(String),
}

/// A corpus read from files, with its digest.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The examples in file order.
    pub examples: Vec<Example>,
    /// `sha256:` and the hex SHA-256 over each file's name, length and bytes, in name order.
    pub digest: String,
    /// `sha256:` and the hex SHA-256 of each file's bytes alone, in name order: a model
    /// records them so that evaluating it on any of its training files (or a copy) is refused.
    pub file_digests: Vec<String>,
}

/// What deduplication removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupStats {
    /// Examples before deduplication.
    pub before: usize,
    /// Examples kept.
    pub kept: usize,
    /// Copies dropped.
    pub dropped: usize,
    /// Dropped copies whose label differed from the kept one.
    pub conflicting: usize,
}

/// Reads every corpus file named (directories expand to their files in name order).
pub fn read_corpus(paths: &[PathBuf]) -> Result<Corpus, CorpusError> {
    let mut files = Vec::new();
    let mut named_by = Vec::new();
    for path in paths {
        expand(path, &mut files)?;
        named_by.resize(files.len(), source_name(path));
    }
    let mut examples = Vec::new();
    let mut hasher = Sha256::new();
    let mut sorted = files.clone();
    sorted.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
    let mut file_digests = Vec::with_capacity(sorted.len());
    for file in &sorted {
        let bytes = std::fs::read(file).map_err(|source| CorpusError::Io {
            path: file.clone(),
            source,
        })?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
        file_digests.push(format!("sha256:{}", hex(&Sha256::digest(&bytes))));
    }
    for (file, source_of_file) in files.iter().zip(&named_by) {
        let bytes = std::fs::read(file).map_err(|source| CorpusError::Io {
            path: file.clone(),
            source,
        })?;
        let start = examples.len();
        read_file(file, &bytes, &mut examples)?;
        for ex in examples.iter_mut().skip(start) {
            if ex.source.is_empty() {
                ex.source.clone_from(source_of_file);
            }
        }
    }
    if examples.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(CorpusError::Empty(names.join(", ")));
    }
    let digest = format!("sha256:{}", hex(&hasher.finalize()));
    Ok(Corpus {
        examples,
        digest,
        file_digests,
    })
}

/// The source a path on the command line names: a directory's name, or a file's stem.
fn source_name(path: &Path) -> String {
    let name = if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem().map(std::ffi::OsStr::new)
    };
    name.map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The distinct sources of `examples`, in order of first appearance.
pub fn sources(examples: &[Example]) -> Vec<String> {
    let mut seen = HashSet::new();
    examples
        .iter()
        .filter(|e| seen.insert(e.source.as_str()))
        .map(|e| e.source.clone())
        .collect()
}

fn expand(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), CorpusError> {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| CorpusError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_corpus_file(p))
            .collect();
        found.sort();
        files.extend(found);
    } else {
        files.push(path.to_path_buf());
    }
    Ok(())
}

fn is_corpus_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    matches!(extension(p).as_str(), "csv" | "jsonl" | "json") || name == "SMSSpamCollection"
}

fn extension(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Parses one corpus file's bytes, choosing the format by extension.
pub fn read_file(path: &Path, bytes: &[u8], out: &mut Vec<Example>) -> Result<(), CorpusError> {
    let text = std::str::from_utf8(bytes).map_err(|e| CorpusError::Malformed {
        path: path.to_path_buf(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64,
        message: "not valid UTF-8".into(),
    })?;
    match extension(path).as_str() {
        "jsonl" | "json" => read_jsonl(path, text, out),
        "csv" => read_youtube_csv(path, text, out),
        _ => read_sms(path, text, out),
    }
}

/// One JSONL line. Every optional field takes `null` as absent: common exporters write
/// `"author": null` for an anonymous comment, and that is not a malformed record.
#[derive(Deserialize)]
struct JsonlRecord {
    content: Option<String>,
    label: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    author: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    email: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    url: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    ip: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    user_agent: String,
    #[serde(default, rename = "type")]
    kind: Option<CommentKind>,
    #[serde(default, deserialize_with = "null_as_empty")]
    site: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    group: String,
    #[serde(default)]
    source: String,
}

/// A string field that may be `null`: `null` reads as the empty string (absent).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Parses hamgate's JSONL format (see the module docs) from `text`, appending to `out`.
/// `path` is only named in errors. `null` stands for an absent field.
pub fn read_jsonl(path: &Path, text: &str, out: &mut Vec<Example>) -> Result<(), CorpusError> {
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let malformed = |message: String| CorpusError::Malformed {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let rec: JsonlRecord =
            serde_json::from_str(line).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
        let content = rec
            .content
            .ok_or_else(|| malformed("missing field `content`".into()))?;
        let label = rec
            .label
            .ok_or_else(|| malformed("missing field `label`".into()))?
            .parse::<Label>()
            .map_err(|e| malformed(format!("field `label`: {e}")))?;
        out.push(Example {
            comment: Comment {
                content,
                author: rec.author,
                email: rec.email,
                url: rec.url,
                ip: rec.ip,
                user_agent: rec.user_agent,
                kind: rec.kind.unwrap_or_default(),
            },
            label,
            group: rec.group,
            site: rec.site,
            source: rec.source,
        });
    }
    Ok(())
}

/// Parses the YouTube Spam Collection CSV (see the module docs) from `text`, appending to `out`;
/// the group of every row is `path`'s stem.
pub fn read_youtube_csv(
    path: &Path,
    text: &str,
    out: &mut Vec<Example>,
) -> Result<(), CorpusError> {
    let group = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let malformed = |line: u64, message: String| CorpusError::Malformed {
        path: path.to_path_buf(),
        line,
        message,
    };
    let headers = reader
        .headers()
        .map_err(|e| malformed(1, format!("invalid CSV header: {e}")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{FEFF}') == name)
            .ok_or_else(|| {
                malformed(
                    1,
                    format!("missing column `{name}` (want COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS)"),
                )
            })
    };
    let (author_col, content_col, class_col) = (col("AUTHOR")?, col("CONTENT")?, col("CLASS")?);
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            malformed(line, format!("invalid CSV: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or_default();
        let label = field(class_col)
            .parse::<Label>()
            .map_err(|e| malformed(line, format!("column CLASS: {e}")))?;
        out.push(Example {
            comment: Comment {
                content: field(content_col).to_string(),
                author: field(author_col).to_string(),
                ..Comment::default()
            },
            label,
            group: group.clone(),
            site: String::new(),
            source: String::new(),
        });
    }
    Ok(())
}

/// The SMS collection's anonymisation placeholders, encoded and decoded; all occur only in ham.
const SMS_PLACEHOLDERS: &[&str] = &[
    "&lt;#&gt;",
    "&lt;DECIMAL&gt;",
    "&lt;TIME&gt;",
    "&lt;URL&gt;",
    "&lt;EMAIL&gt;",
    "<#>",
    "<DECIMAL>",
    "<TIME>",
    "<URL>",
    "<EMAIL>",
];

fn read_sms(path: &Path, text: &str, out: &mut Vec<Example>) -> Result<(), CorpusError> {
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (label, message) = line
            .split_once('\t')
            .ok_or_else(|| CorpusError::Malformed {
                path: path.to_path_buf(),
                line: i as u64 + 1,
                message: "expected `label<TAB>message` (SMS Spam Collection format)".into(),
            })?;
        let label = label.parse::<Label>().map_err(|e| CorpusError::Malformed {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            message: e,
        })?;
        let mut content = message.to_string();
        for p in SMS_PLACEHOLDERS {
            if content.contains(p) {
                content = content.replace(p, " ");
            }
        }
        out.push(Example {
            comment: Comment::from_content(content),
            label,
            group: "sms".into(),
            site: String::new(),
            source: String::new(),
        });
    }
    Ok(())
}

/// Keeps the first example of each normalised text; see the module docs for why.
pub fn dedup(examples: Vec<Example>) -> (Vec<Example>, DedupStats) {
    let before = examples.len();
    let mut seen: std::collections::HashMap<String, Label> = Default::default();
    let mut conflicting = 0;
    let mut kept = Vec::with_capacity(examples.len());
    for ex in examples {
        let key = dedup_key(&ex.comment.content);
        match seen.get(&key) {
            Some(&label) => {
                if label != ex.label {
                    conflicting += 1;
                }
            }
            None => {
                seen.insert(key, ex.label);
                kept.push(ex);
            }
        }
    }
    let stats = DedupStats {
        before,
        kept: kept.len(),
        dropped: before - kept.len(),
        conflicting,
    };
    (kept, stats)
}

/// The distinct groups of `examples`, in order of first appearance.
pub fn groups(examples: &[Example]) -> Vec<String> {
    let mut seen = HashSet::new();
    examples
        .iter()
        .filter(|e| seen.insert(e.group.as_str()))
        .map(|e| e.group.clone())
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jsonl_and_names_line_of_bad_record() {
        let mut out = Vec::new();
        let p = Path::new("x.jsonl");
        read_file(p, b"{\"content\":\"hi\",\"label\":\"ham\",\"group\":\"g\"}\n\n{\"content\":\"buy\",\"label\":\"spam\",\"type\":\"trackback\"}\n", &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].comment.kind, CommentKind::Trackback);
        let err = read_file(
            p,
            b"{\"content\":\"hi\",\"label\":\"ham\"}\n{\"label\":\"spam\"}\n",
            &mut out,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x.jsonl:2") && err.contains("content"),
            "{err}"
        );
        let err = read_file(p, b"{\"content\":\"hi\",\"label\":\"maybe\"}\n", &mut out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("label"), "{err}");
    }

    #[test]
    fn jsonl_null_is_absent() {
        let mut out = Vec::new();
        let line = br#"{"content":"hi","label":"ham","author":null,"email":null,"url":null,"ip":null,"user_agent":null,"type":null,"site":null,"group":null}"#;
        read_file(Path::new("x.jsonl"), line, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].comment, Comment::from_content("hi"));
        assert_eq!((out[0].site.as_str(), out[0].group.as_str()), ("", ""));
        // A required field that is null is still missing, and says so.
        let err = read_file(
            Path::new("x.jsonl"),
            br#"{"content":null,"label":"ham"}"#,
            &mut out,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x.jsonl:1") && err.contains("content"),
            "{err}"
        );
        // A wrong type is still an error.
        let err = read_file(
            Path::new("x.jsonl"),
            br#"{"content":"x","label":"ham","author":7}"#,
            &mut out,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x.jsonl:1") && err.contains("invalid JSON"),
            "{err}"
        );
    }

    #[test]
    fn reads_youtube_csv_with_embedded_newlines() {
        let csv = "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\nid1,Ann,,\"line one\nline two\",1\nid2,Bob,2014-01-01,nice song\u{FEFF},0\n";
        let mut out = Vec::new();
        read_file(
            Path::new("dir/Youtube09-Test.csv"),
            csv.as_bytes(),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].comment.content, "line one\nline two");
        assert_eq!(out[0].label, Label::Spam);
        assert_eq!(out[0].group, "Youtube09-Test");
        assert_eq!(out[1].comment.author, "Bob");
    }

    #[test]
    fn sms_placeholders_are_removed() {
        let mut out = Vec::new();
        read_file(
            Path::new("SMSSpamCollection"),
            "ham\tsee you at &lt;TIME&gt; ok\nspam\tWIN £100\n".as_bytes(),
            &mut out,
        )
        .unwrap();
        assert_eq!(out[0].comment.content, "see you at   ok");
        assert_eq!(out[1].label, Label::Spam);
    }

    #[test]
    fn dedup_keeps_first_and_counts_conflicts() {
        let ex = |c: &str, l| Example {
            comment: Comment::from_content(c),
            label: l,
            group: String::new(),
            site: String::new(),
            source: String::new(),
        };
        let (kept, stats) = dedup(vec![
            ex("Check out this video", Label::Spam),
            ex("check  out this VIDEO\u{FEFF}", Label::Spam),
            ex("check out this video<br/>", Label::Ham),
            ex("nice", Label::Ham),
        ]);
        assert_eq!(kept.len(), 2);
        assert_eq!(
            stats,
            DedupStats {
                before: 4,
                kept: 2,
                dropped: 2,
                conflicting: 1
            }
        );
    }
}
