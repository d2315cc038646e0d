//! hamgate's own labelled formats, read by [`crate::corpus`]'s readers. They carry no record
//! ids, so their keys come from the content (see the module docs).

use std::path::Path;

use crate::corpus::{self, CorpusError, Example};

use super::{Collector, Draft, ImportError, Position};

fn from_corpus(err: CorpusError) -> ImportError {
    match err {
        CorpusError::Io { path, source } => ImportError::Io { path, source },
        CorpusError::Malformed {
            path,
            line,
            message,
        } => ImportError::Malformed {
            path,
            at: Position::Line(line),
            message,
        },
        CorpusError::Empty(what) => ImportError::UnknownFormat {
            path: what.into(),
            detail: "no labelled comments".into(),
        },
    }
}

fn file(examples: Vec<Example>, lines: impl Iterator<Item = u64>, out: &mut Collector) {
    for (example, line) in examples.into_iter().zip(lines) {
        out.push(Draft {
            id: String::new(),
            label: example.label,
            comment: example.comment,
            date: String::new(),
            posted_at: None,
            line,
        });
    }
}

/// hamgate JSONL: one labelled comment per non-blank line.
pub(super) fn read_jsonl(path: &Path, text: &str, out: &mut Collector) -> Result<(), ImportError> {
    let mut examples = Vec::new();
    corpus::read_jsonl(path, text, &mut examples).map_err(from_corpus)?;
    // The reader keeps one example per non-blank line, in order.
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, _)| i as u64 + 1);
    file(examples, lines, out);
    Ok(())
}

/// hamgate CSV (`COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS`).
pub(super) fn read_csv(path: &Path, text: &str, out: &mut Collector) -> Result<(), ImportError> {
    let mut examples = Vec::new();
    corpus::read_youtube_csv(path, text, &mut examples).map_err(from_corpus)?;
    // The corpus reader does not say where each row starts; a second pass over the (already
    // validated) text does.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let lines: Vec<u64> = reader
        .records()
        .map(|r| {
            r.ok()
                .and_then(|r| r.position().map(|p| p.line()))
                .unwrap_or(0)
        })
        .collect();
    file(examples, lines.into_iter(), out);
    Ok(())
}
