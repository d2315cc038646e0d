//! WordPress: `wp comment list` JSON and CSV, and the WXR export. All three carry the columns
//! of the `wp_comments` table, so one mapping serves them.

use std::path::Path;

use crate::comment::{Comment, CommentKind, Label};

use super::xml::{self, RecordSpec};
use super::{parse_utc, Collector, Draft, ImportError, SkipReason};

/// The command that exports everything the importer can use, for error messages.
const WP_CLI_HINT: &str = "export with `wp comment list --status=any --format=json \
    --fields=comment_ID,comment_author,comment_author_email,comment_author_url,comment_author_IP,\
    comment_date_gmt,comment_content,comment_approved,comment_agent,comment_type,comment_parent` \
    (or --format=csv)";

/// One `wp_comments` row, as far as the export holds it.
#[derive(Default)]
struct WpComment {
    id: String,
    author: String,
    email: String,
    url: String,
    ip: String,
    agent: String,
    date: String,
    date_gmt: String,
    content: String,
    approved: Option<String>,
    kind: String,
    parent: String,
}

impl WpComment {
    /// Takes the value of a column; WP-CLI names them `comment_ID`, `comment_author_IP`, WXR
    /// `comment_id`, `comment_author_IP`, so names are compared without case.
    fn set(&mut self, column: &str, value: String) {
        let slot = match column.to_ascii_lowercase().as_str() {
            "comment_id" => &mut self.id,
            "comment_author" => &mut self.author,
            "comment_author_email" => &mut self.email,
            "comment_author_url" => &mut self.url,
            "comment_author_ip" => &mut self.ip,
            "comment_agent" => &mut self.agent,
            "comment_date" => &mut self.date,
            "comment_date_gmt" => &mut self.date_gmt,
            "comment_content" => &mut self.content,
            "comment_type" => &mut self.kind,
            "comment_parent" => &mut self.parent,
            "comment_approved" => {
                self.approved = Some(value);
                return;
            }
            _ => return,
        };
        *slot = value;
    }

    /// Files the row: a labelled comment, or a skip. A row without `comment_approved` is ham
    /// (WXR's export holds approved comments only; the WP-CLI readers insist on the column).
    fn file(self, line: u64, out: &mut Collector) {
        let label = match self.approved.as_deref().map(str::trim) {
            None => Label::Ham,
            Some(status) => match status.to_ascii_lowercase().as_str() {
                "1" | "approve" | "approved" => Label::Ham,
                "spam" => Label::Spam,
                "0" | "hold" | "unapproved" => return out.skip(SkipReason::Pending),
                "trash" => return out.skip(SkipReason::Trash),
                "post-trashed" => return out.skip(SkipReason::PostTrashed),
                _ => return out.skip(SkipReason::UnknownStatus),
            },
        };
        let is_reply = !matches!(self.parent.trim(), "" | "0");
        let kind = match self.kind.trim().to_ascii_lowercase().as_str() {
            "" | "comment" | "review" if is_reply => CommentKind::Reply,
            "" | "comment" | "review" => CommentKind::Comment,
            "pingback" => CommentKind::Pingback,
            "trackback" => CommentKind::Trackback,
            // WordPress 6.9's editorial notes and WooCommerce's order notes and logs live in
            // wp_comments but are nobody's comments.
            "note" | "order_note" | "action_log" | "webhook_delivery" => {
                return out.skip(SkipReason::NotAComment)
            }
            _ => CommentKind::Unspecified,
        };
        // Only the GMT date is a moment; `comment_date` is in the blog's own time zone.
        let posted_at = parse_utc(&self.date_gmt);
        let date = if posted_at.is_some() {
            self.date_gmt
        } else {
            self.date
        };
        out.push(Draft {
            id: self.id.trim().to_string(),
            label,
            comment: Comment {
                content: self.content,
                author: self.author,
                email: self.email,
                url: self.url,
                ip: self.ip,
                user_agent: self.agent,
                kind,
            },
            posted_at,
            date,
            line,
        });
    }
}

/// `wp comment list --format=json`: a JSON array of objects whose values are strings (numbers,
/// booleans and `null` are taken too; `null` is absent). Each object is parsed on its own so an
/// error names its line.
pub(super) fn read_cli_json(
    path: &Path,
    text: &str,
    out: &mut Collector,
) -> Result<(), ImportError> {
    let bytes = text.as_bytes();
    let mut lines = LineCounter::default();
    let mut pos = skip_ws(bytes, 0);
    if bytes.get(pos) != Some(&b'[') {
        return Err(ImportError::at_line(
            path,
            lines.at(bytes, pos),
            "expected a JSON array (`[`), as `wp comment list --format=json` writes",
        ));
    }
    pos += 1;
    let mut first = true;
    loop {
        pos = skip_ws(bytes, pos);
        if first && bytes.get(pos) == Some(&b']') {
            pos += 1;
            break;
        }
        let line = lines.at(bytes, pos);
        let rest = text.get(pos..).unwrap_or_default();
        let mut stream = serde_json::Deserializer::from_str(rest)
            .into_iter::<serde_json::Map<String, serde_json::Value>>();
        let object = match stream.next() {
            Some(Ok(object)) => object,
            Some(Err(e)) => {
                let at = line + (e.line() as u64).saturating_sub(1);
                let message = if e.is_eof() {
                    "the JSON array ends early (truncated?)".to_string()
                } else {
                    format!("invalid JSON (expected an object per comment): {e}")
                };
                return Err(ImportError::at_line(path, at, message));
            }
            None => {
                return Err(ImportError::at_line(
                    path,
                    line,
                    "the JSON array ends early (truncated?)",
                ))
            }
        };
        pos += stream.byte_offset();
        read_cli_object(path, line, object, out)?;
        first = false;
        pos = skip_ws(bytes, pos);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b']') => {
                pos += 1;
                break;
            }
            Some(_) => {
                return Err(ImportError::at_line(
                    path,
                    lines.at(bytes, pos),
                    "expected `,` or `]` after a comment object",
                ))
            }
            None => {
                return Err(ImportError::at_line(
                    path,
                    lines.at(bytes, pos),
                    "the JSON array ends early (truncated?)",
                ))
            }
        }
    }
    let end = skip_ws(bytes, pos);
    if end < bytes.len() {
        return Err(ImportError::at_line(
            path,
            lines.at(bytes, end),
            "unexpected text after the JSON array",
        ));
    }
    Ok(())
}

fn read_cli_object(
    path: &Path,
    line: u64,
    object: serde_json::Map<String, serde_json::Value>,
    out: &mut Collector,
) -> Result<(), ImportError> {
    let mut row = WpComment::default();
    let mut has_content = false;
    for (column, value) in object {
        let value = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                if column.to_ascii_lowercase().starts_with("comment_") {
                    return Err(ImportError::at_line(
                        path,
                        line,
                        format!("field `{column}`: expected a string, got an array or object"),
                    ));
                }
                continue;
            }
        };
        has_content |= column == "comment_content";
        row.set(&column, value);
    }
    if row.approved.is_none() {
        return Err(ImportError::at_line(
            path,
            line,
            format!("the comment has no `comment_approved`, so no verdict; {WP_CLI_HINT}"),
        ));
    }
    if !has_content {
        return Err(ImportError::at_line(
            path,
            line,
            format!("the comment has no `comment_content`; {WP_CLI_HINT}"),
        ));
    }
    row.file(line, out);
    Ok(())
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    // A byte-order mark at the start is whitespace too.
    if pos == 0 && bytes.starts_with("\u{FEFF}".as_bytes()) {
        pos = 3;
    }
    while bytes.get(pos).is_some_and(|b| b.is_ascii_whitespace()) {
        pos += 1;
    }
    pos
}

/// Lines of byte offsets that only move forward, counted incrementally.
#[derive(Default)]
struct LineCounter {
    pos: usize,
    line: u64,
}

impl LineCounter {
    fn at(&mut self, bytes: &[u8], pos: usize) -> u64 {
        if pos < self.pos {
            *self = LineCounter::default();
        }
        let newlines = bytes
            .get(self.pos..pos.min(bytes.len()))
            .unwrap_or_default()
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.line += newlines;
        self.pos = pos.min(bytes.len());
        self.line + 1
    }
}

/// `wp comment list --format=csv`: a header row naming the columns, then one row per comment,
/// quoted as PHP's `fputcsv` quotes (embedded commas, quotes and newlines).
pub(super) fn read_cli_csv(
    path: &Path,
    text: &str,
    out: &mut Collector,
) -> Result<(), ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError::at_line(path, 1, format!("invalid CSV header: {e}")))?
        .clone();
    let columns: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{FEFF}').trim().to_string())
        .collect();
    for required in ["comment_approved", "comment_content"] {
        if !columns.iter().any(|c| c == required) {
            return Err(ImportError::at_line(
                path,
                1,
                format!("the header has no `{required}` column; {WP_CLI_HINT}"),
            ));
        }
    }
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ImportError::at_line(path, line, format!("invalid CSV: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let mut row = WpComment::default();
        for (column, value) in columns.iter().zip(record.iter()) {
            row.set(column, value.to_string());
        }
        row.file(line, out);
    }
    Ok(())
}

fn is_wxr_namespace(ns: &[u8]) -> bool {
    ns.starts_with(b"http://wordpress.org/export/")
        || ns.starts_with(b"https://wordpress.org/export/")
}

/// The WXR export: every `<wp:comment>` of every `<item>`. WordPress leaves spam out of the
/// export, so a comment is ham unless its `wp:comment_approved` says otherwise.
pub(super) fn read_wxr(path: &Path, text: &str, out: &mut Collector) -> Result<(), ImportError> {
    let spec = RecordSpec {
        root: "rss",
        parent: "item",
        local: "comment",
        namespace_ok: is_wxr_namespace,
    };
    xml::read_records(path, text, &spec, |record| {
        let mut row = WpComment::default();
        for column in [
            "comment_id",
            "comment_author",
            "comment_author_email",
            "comment_author_url",
            "comment_author_IP",
            "comment_date",
            "comment_date_gmt",
            "comment_content",
            "comment_type",
            "comment_parent",
        ] {
            row.set(column, record.field(column).to_string());
        }
        if let Some(status) = record.get("comment_approved") {
            row.approved = Some(status.to_string());
        }
        row.file(record.line, out);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::ImportFormat;

    fn collect(format: ImportFormat, text: &str) -> Result<Collector, ImportError> {
        let mut out = Collector::new(format);
        let path = Path::new("c.txt");
        match format {
            ImportFormat::WpCliJson => read_cli_json(path, text, &mut out)?,
            ImportFormat::WpCliCsv => read_cli_csv(path, text, &mut out)?,
            _ => read_wxr(path, text, &mut out)?,
        }
        Ok(out)
    }

    #[test]
    fn statuses_and_types_map() {
        let json = r#"[
 {"comment_ID":"1","comment_approved":"1","comment_content":"a","comment_type":"comment","comment_parent":"0"},
 {"comment_ID":2,"comment_approved":"spam","comment_content":"b","comment_type":"","comment_parent":"1"},
 {"comment_ID":"3","comment_approved":"0","comment_content":"c"},
 {"comment_ID":"4","comment_approved":"trash","comment_content":"d"},
 {"comment_ID":"5","comment_approved":"post-trashed","comment_content":"e"},
 {"comment_ID":"6","comment_approved":"1","comment_content":"f","comment_type":"pingback"},
 {"comment_ID":"7","comment_approved":"1","comment_content":"g","comment_type":"note"},
 {"comment_ID":"8","comment_approved":"weird","comment_content":"h"},
 {"comment_ID":"9","comment_approved":"1","comment_content":"  "},
 {"comment_ID":"1","comment_approved":"1","comment_content":"a again"},
 {"comment_ID":"10","comment_approved":1,"comment_content":"k","comment_type":"webmention","user_id":{"x":1}}
]"#;
        let out = collect(ImportFormat::WpCliJson, json).unwrap();
        let kinds: Vec<(&str, Label, CommentKind, u64)> = out
            .comments
            .iter()
            .map(|c| (c.source_id.as_str(), c.label, c.comment.kind, c.line))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("1", Label::Ham, CommentKind::Comment, 2),
                ("2", Label::Spam, CommentKind::Reply, 3),
                ("6", Label::Ham, CommentKind::Pingback, 7),
                ("10", Label::Ham, CommentKind::Unspecified, 12),
            ]
        );
        let skipped: Vec<(SkipReason, u64)> = out.skipped.into_iter().collect();
        assert_eq!(
            skipped,
            vec![
                (SkipReason::Pending, 1),
                (SkipReason::Trash, 1),
                (SkipReason::PostTrashed, 1),
                (SkipReason::UnknownStatus, 1),
                (SkipReason::NotAComment, 1),
                (SkipReason::EmptyContent, 1),
                (SkipReason::Duplicate, 1),
            ]
        );
    }

    #[test]
    fn json_errors_name_the_line() {
        let err = |text: &str| {
            collect(ImportFormat::WpCliJson, text)
                .err()
                .unwrap()
                .to_string()
        };
        let e = err("[\n{\"comment_approved\":\"1\",\"comment_content\":\"a\"},\n{\"comment_approved\":\"1\",\n \"comment_content\": x}]");
        assert!(
            e.contains("c.txt: line 4") && e.contains("invalid JSON"),
            "{e}"
        );
        let e = err("[\n{\"comment_approved\":\"1\",\"comment_content\":\"a\"},\n{\"comment_content\":\"b\"}]");
        assert!(
            e.contains("line 3") && e.contains("comment_approved"),
            "{e}"
        );
        let e = err("[\n{\"comment_ID\":\"1\",\"comment_approved\":\"1\"}]");
        assert!(e.contains("line 2") && e.contains("--fields="), "{e}");
        let e = err("[\n{\"comment_approved\":\"1\",\"comment_content\":\"a\"},\n");
        assert!(e.contains("truncated"), "{e}");
        let e = err("[{\"comment_approved\":\"1\",\"comment_content\":\"a\"}] x");
        assert!(e.contains("after the JSON array"), "{e}");
        let e = err("[{\"comment_approved\":\"1\",\"comment_content\":\"a\"},]");
        assert!(e.contains("line 1"), "{e}");
        let e = err("{}");
        assert!(e.contains("JSON array"), "{e}");
        assert!(collect(ImportFormat::WpCliJson, " [ ] ")
            .unwrap()
            .comments
            .is_empty());
    }

    #[test]
    fn csv_needs_the_verdict_and_content_columns() {
        let e = collect(ImportFormat::WpCliCsv, "comment_ID,comment_date\n1,x\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("line 1") && e.contains("comment_approved"),
            "{e}"
        );
    }
}
