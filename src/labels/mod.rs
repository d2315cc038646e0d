//! The label log: moderators' verdicts, written down durably before they are acknowledged.
//!
//! When a moderator says "this comment is spam" (or "this one was ham after all"), that verdict
//! is the most valuable data hamgate ever gets: it is what the next model is trained on. So the
//! service must not tell the moderator "saved" and then lose it in a crash. Every verdict is
//! appended to a [`LabelLog`] first, and the acknowledgement waits until the append is durable;
//! retraining later reads the whole log back with [`LabelLog::read_all`].
//!
//! Two backends:
//! - [`file::FileLabelLog`]: an append-only file of checksummed frames on the local disk, with
//!   group commit (many concurrent appends share one `fsync`) and torn-tail recovery on open.
//!   For a single replica.
//! - [`redis::RedisLabelLog`]: one Redis stream shared by every replica. Durable only as far as
//!   the server's own persistence goes (see that module).
//!
//! A log is append-only and never rewritten: a moderator who changes their mind appends a second
//! record, and whoever reads the log decides that the later one wins (records carry the
//! `check_id` they correct for that). An append that returned an error may nevertheless be in
//! the log (the write may have reached the disk before the failure was noticed), so a caller that
//! retries can produce a duplicate; readers must tolerate duplicates.

pub mod file;
pub mod redis;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::comment::{Comment, Label};

/// The largest encoded record either backend takes (1 MiB). The file log's recovery treats a
/// frame claiming more as garbage, so nothing larger may ever be written.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// One moderator verdict, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRecord {
    /// The site the comment was posted on.
    pub site: String,
    /// The verdict.
    pub label: Label,
    /// The comment the verdict is about, as the blog sent it (retraining needs the text).
    pub comment: Comment,
    /// The check this verdict corrects, if any (empty when the comment was never checked).
    #[serde(default)]
    pub check_id: String,
    /// Who gave the verdict, as the caller names them (may be empty).
    #[serde(default)]
    pub moderator: String,
    /// Why, in the moderator's words (may be empty).
    #[serde(default)]
    pub reason: String,
    /// When the verdict was given, seconds since the Unix epoch; for an imported label
    /// ([`LabelRecord::imported`]), when it was imported. Retention counts from it: an
    /// imported history is kept `label_retention_days` from its import, not expired at once
    /// for being old.
    pub at: u64,
    /// When the comment was posted, for an imported label whose export says so (seconds since
    /// the Unix epoch); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posted_at: Option<u64>,
    /// Whether the label comes from a blog's own history (`hamgate import`, the ImportLabels
    /// RPC) rather than a moderator's live feedback. Its `check_id` is then its import key.
    /// Imported labels predate the model by design and are the operator's own, so the sites'
    /// layers learn them whatever their date and outside the hourly online budget. Absent in
    /// records written before it existed (false), and left out when false, so a live label
    /// encodes exactly as it always did.
    #[serde(default, skip_serializing_if = "is_false")]
    pub imported: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The prefix of every import key (`import-` and a hash of the export's own record id).
pub const IMPORT_KEY_PREFIX: &str = "import-";

impl LabelRecord {
    /// The record's import key when it was imported: its `check_id`. Records imported before
    /// [`LabelRecord::imported`] existed are known by the key's prefix (a live label's
    /// `check_id` is one the service made, or empty, never `import-...`).
    pub fn import_key(&self) -> Option<&str> {
        (self.imported || self.check_id.starts_with(IMPORT_KEY_PREFIX))
            .then_some(self.check_id.as_str())
    }

    /// Whether the record is the operator's imported history (see [`LabelRecord::imported`]).
    pub fn is_import(&self) -> bool {
        self.import_key().is_some()
    }
}

/// A record read back from a log, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedLabel {
    /// The record's seq: 1 for the first, increasing by one per append, never reused (a record
    /// lost to damage leaves a gap).
    pub seq: u64,
    /// The record.
    pub record: LabelRecord,
}

/// Why a label log could not do what was asked. Messages name the file (or stream key).
#[derive(Debug, thiserror::Error)]
pub enum LabelLogError {
    /// A file operation failed.
    #[error("label log {}: {op} failed: {source}", path.display())]
    Io {
        /// The log file (or its directory).
        path: PathBuf,
        /// What was being done: `open`, `read`, `truncate`, ...
        op: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Data that was acknowledged as durable no longer reads back as written (or was written by
    /// an incompatible version). Nothing is dropped or repaired: an operator has to look.
    #[error("label log {} is corrupt at byte {offset}: {detail}", path.display())]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// The file is not a label log (or one of a format this build does not read). Nothing in
    /// it was changed.
    #[error("{} is not a hamgate label log: {detail}; the file was left untouched", path.display())]
    NotALabelLog {
        /// The file.
        path: PathBuf,
        /// Why not.
        detail: String,
    },
    /// A stream entry in Redis is not a label record.
    #[error("label log stream `{key}` has a bad entry {id}: {detail}")]
    BadEntry {
        /// The stream key.
        key: String,
        /// The entry's stream id.
        id: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A record is too large to be framed (the limit protects recovery from absurd lengths).
    #[error("label record is {bytes} bytes encoded; the most a label log takes is {max}")]
    TooLarge {
        /// The encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The record could not be encoded.
    #[error("label record could not be encoded: {0}")]
    Encode(String),
    /// The file log's writer failed (or stopped). The append that saw the failure, and every
    /// append after it, gets this error: the log never acknowledges what it could not make
    /// durable. Reopen the log to recover.
    #[error("label log {} no longer accepts appends: {cause}", path.display())]
    WriterFailed {
        /// The log file.
        path: PathBuf,
        /// The first failure.
        cause: String,
    },
    /// The backend (Redis) is not reachable or answered with an error.
    #[error("label log unavailable: {0}")]
    Unavailable(String),
}

/// A boxed future, so the trait can be used as `Arc<dyn LabelLog>`.
pub type LogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LabelLogError>> + Send + 'a>>;

/// A durable, append-only log of moderator verdicts.
pub trait LabelLog: Send + Sync + 'static {
    /// Appends `record` and resolves with its seq only once it is durable.
    ///
    /// - File: the frame is written and `fsync`ed (`sync_data`) before the future resolves.
    /// - Redis: the `XADD` is acknowledged by the server. That is durable only when the server
    ///   runs with `appendonly yes` and `appendfsync always` (nothing acknowledged is lost) or
    ///   `appendfsync everysec` (a power failure may lose about the last second); without an
    ///   append-only file an acknowledged label lives only in memory until the next snapshot.
    ///
    /// An error means the record may or may not be in the log; never that it is there for sure.
    fn append<'a>(&'a self, record: LabelRecord) -> LogFuture<'a, u64>;
    /// Every acknowledged record, in log order, with increasing seqs from 1 (a file log that
    /// lost records to damage has gaps where they were; seqs are never reused).
    fn read_all<'a>(&'a self) -> LogFuture<'a, Vec<LoggedLabel>>;
    /// The records after seq `after`, in log order: how a replica follows labels that other
    /// replicas append. The default reads everything and skips; a log shared by replicas
    /// (Redis) reads just the tail.
    fn read_after<'a>(&'a self, after: u64) -> LogFuture<'a, Vec<LoggedLabel>> {
        Box::pin(async move {
            let mut all = self.read_all().await?;
            all.retain(|l| l.seq > after);
            Ok(all)
        })
    }
    /// Removes the records given before `before` (seconds since the epoch, the records' `at`)
    /// for the retention rule, keeping every later record and its seq; returns how many went.
    fn expire_before<'a>(&'a self, before: u64) -> LogFuture<'a, u64>;
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
    /// What an operator should know about the log (damage found and set aside when it was
    /// opened), for `/readyz`; empty when all is well.
    fn notices(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Records for the backends' tests.
    use super::LabelRecord;
    use crate::comment::{Comment, Label};

    /// A distinct record for `i`: odd ones spam, even ones ham.
    pub(crate) fn record(i: u64) -> LabelRecord {
        LabelRecord {
            site: format!("site-{}", i % 3),
            label: if i % 2 == 1 { Label::Spam } else { Label::Ham },
            comment: Comment {
                content: format!("comment number {i}: buy cheap pills at example.test"),
                author: format!("author {i}"),
                ..Comment::default()
            },
            check_id: format!("chk-{i:06}"),
            moderator: "mod".into(),
            reason: if i % 5 == 0 {
                String::new()
            } else {
                "obvious".into()
            },
            at: 1_700_000_000 + i,
            posted_at: None,
            imported: false,
        }
    }
}
