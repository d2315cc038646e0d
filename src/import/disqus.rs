//! The Disqus XML export: `<disqus xmlns="http://disqus.com">` holding `<category>`, `<thread>`
//! and `<post>` elements side by side; each `<post>` is one comment.

use std::path::Path;

use crate::comment::{Comment, CommentKind, Label};

use super::xml::{self, RecordSpec, XmlRecord};
use super::{parse_utc, Collector, Draft, ImportError, SkipReason};

/// The namespace of Disqus's own attributes (`dsq:id`).
const INTERNALS: &str = "http://disqus.com/disqus-internals";

fn is_disqus_namespace(ns: &[u8]) -> bool {
    // Some hand-made or re-exported files drop the default namespace; accept those too.
    ns == b"http://disqus.com" || ns.is_empty()
}

/// Every `<post>` of the export, labelled from its moderation flags:
/// - `isSpam` true: spam (whether or not it was also deleted);
/// - `isDeleted` true and not spam: skipped as [`SkipReason::Deleted`]. A moderator deletes
///   comments for many reasons (off topic, rude, a duplicate, the author's own request), and
///   authors delete their own, so a deletion is not a spam verdict and must not teach one;
/// - otherwise ham: it stood on the site.
pub(super) fn read_disqus(path: &Path, text: &str, out: &mut Collector) -> Result<(), ImportError> {
    let spec = RecordSpec {
        root: "disqus",
        parent: "disqus",
        local: "post",
        namespace_ok: is_disqus_namespace,
    };
    xml::read_records(path, text, &spec, |post| file_post(&post, out))
}

fn flag(post: &XmlRecord, name: &str) -> Result<bool, String> {
    match post.field(name).trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(format!("<{name}> must be true or false, got `{other}`")),
    }
}

fn file_post(post: &XmlRecord, out: &mut Collector) -> Result<(), String> {
    let spam = flag(post, "isSpam")?;
    let deleted = flag(post, "isDeleted")?;
    let label = if spam {
        Label::Spam
    } else if deleted {
        out.skip(SkipReason::Deleted);
        return Ok(());
    } else {
        Label::Ham
    };
    // `<parent dsq:id="..."/>` is there only for replies.
    let is_reply = post.get("parent").is_some();
    let date = post.field("createdAt").trim().to_string();
    out.push(Draft {
        id: post
            .attr(INTERNALS, "id")
            .unwrap_or_default()
            .trim()
            .to_string(),
        label,
        comment: Comment {
            content: post.field("message").to_string(),
            author: post.field("author/name").trim().to_string(),
            email: post.field("author/email").trim().to_string(),
            url: String::new(),
            ip: post.field("ipAddress").trim().to_string(),
            user_agent: String::new(),
            kind: if is_reply {
                CommentKind::Reply
            } else {
                CommentKind::Comment
            },
        },
        posted_at: parse_utc(&date),
        date,
        line: post.line,
    });
    Ok(())
}
