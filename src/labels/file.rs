//! The file label log: an append-only file of checksummed frames behind a file header, with
//! group commit.
//!
//! # Format (version 2)
//! ```text
//! file header   16 bytes  b"HGLABELS", format version u32 LE (2), reserved u32 (0)
//! frame*
//!   magic        4 bytes  b"HGL2"
//!   length       u32 LE   bytes in the payload, at most MAX_RECORD_BYTES (1 MiB)
//!   crc          u32 LE   CRC-32 (IEEE) of the seq and the payload
//!   seq          u64 LE   the record's seq: 1 for the first, increasing by one per append
//!   payload      length   JSON of one LabelRecord
//! ```
//!
//! The header makes a label log recognisable: [`FileLabelLog::open`] refuses any file that does
//! not start with it (a model file, a CSV, a mistyped path), names the path, and leaves the file
//! exactly as it was. The only files it writes a header into are new ones and empty ones.
//! Version 1 logs (no file header, `HGL1` frames without a seq, written by earlier hamgate
//! releases) are recognised by a valid first frame and rewritten as version 2 on open, with
//! seqs by position, as they were numbered before.
//!
//! Seqs are stored in the frames, so they never change: a record that is lost to damage leaves
//! a gap instead of renumbering every record after it (a retrained model remembers the last seq
//! it learned, and the sites' layers rely on that).
//!
//! # Recovery
//! [`FileLabelLog::open`] reads the whole file and checks every frame (magic, a sane length, the
//! CRC, a label record inside). A frame that fails is damage, and recovery never throws away
//! what it cannot read:
//! - **Damage in the middle** (a bad sector, a copy gone wrong): recovery resynchronises on the
//!   next frame that checks out (its magic, length and CRC; the CRC makes a false match about one
//!   in four billion), keeps every valid record after the damage, copies the damaged bytes to a
//!   quarantine file beside the log (`<log>.quarantine-<unix time>`), rewrites the log without
//!   them (a temporary file, fsync, rename), and says so in an ERROR log line that names the
//!   quarantine file. The report's [`RecoveryReport::notice`] carries the same words to
//!   `/readyz`.
//! - **A torn tail** (the last bytes, after which no valid frame follows): what a crash in the
//!   middle of a write leaves. None of it was acknowledged (an append resolves only after its
//!   frame and everything before it are on disk), so the file is cut after the last good frame,
//!   with a WARN; the cut bytes still go to the quarantine file first.
//! - A frame whose CRC matches but whose payload is not a label record, or whose seq does not
//!   increase, is exactly what some writer wrote (perhaps a newer hamgate, or two logs pasted
//!   together): opening fails with [`LabelLogError::Corrupt`] and nothing is changed.
//!
//! [`read_log`] is the read-only way in (for `hamgate retrain --labels`): the same checks and
//! the same resynchronisation, but it never creates, repairs or writes anything.
//!
//! # Group commit
//! One writer thread owns the file. Appends encode their payload on the caller's task, queue it
//! and wait. The writer takes everything that is queued (up to a few MiB), gives each record its
//! seq, writes them with one `write`, calls `sync_data` once, and only then acknowledges every
//! append in that batch, in order. While one `fsync` runs, the next appends queue up and share
//! the next one, so the number of `fsync`s per second stays bounded by the disk while throughput
//! grows with the number of concurrent callers.
//!
//! If a write or `fsync` fails, the writer acknowledges that batch and every later append with
//! [`LabelLogError::WriterFailed`] and never writes again: after a failed `fsync` the kernel may
//! already have dropped the dirty pages, so retrying could acknowledge data that is not on disk.
//! Reopening the log (which recovers the tail) is the way back.
//!
//! One process per file: nothing locks the file, and two writers would interleave frames.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use super::{LabelLog, LabelLogError, LabelRecord, LogFuture, LoggedLabel, MAX_RECORD_BYTES};

/// The first eight bytes of a label log file.
pub const FILE_MAGIC: [u8; 8] = *b"HGLABELS";
/// The format this build writes (and the only one it appends to).
pub const FORMAT_VERSION: u32 = 2;
/// The file header: magic, format version, reserved.
pub const FILE_HEADER_BYTES: usize = 16;
/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"HGL2";
/// Magic, length, CRC and seq.
pub const HEADER_BYTES: usize = 20;
/// Version 1 frames: magic, length and CRC, no seq, no file header.
const V1_MAGIC: [u8; 4] = *b"HGL1";
const V1_HEADER_BYTES: usize = 12;
/// Appends that may wait for the writer before `append` itself waits (back-pressure).
const QUEUE: usize = 4096;
/// The writer stops adding records to a batch once it holds this many bytes.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// The header every label log file starts with.
pub fn file_header() -> [u8; FILE_HEADER_BYTES] {
    let mut h = [0u8; FILE_HEADER_BYTES];
    let (magic, rest) = h.split_at_mut(FILE_MAGIC.len());
    magic.copy_from_slice(&FILE_MAGIC);
    let (version, _reserved) = rest.split_at_mut(4);
    version.copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// What was wrong with a frame that did not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The file ends inside a frame.
    Incomplete,
    /// The frame does not start with [`MAGIC`].
    BadMagic,
    /// The frame claims a payload longer than [`MAX_RECORD_BYTES`].
    TooLong(u32),
    /// The CRC does not match the frame's seq and payload.
    CrcMismatch,
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defect::Incomplete => f.write_str("the file ends inside a frame"),
            Defect::BadMagic => f.write_str("the frame has a bad magic"),
            Defect::TooLong(n) => write!(f, "the frame claims an absurd length of {n} bytes"),
            Defect::CrcMismatch => f.write_str("the frame's CRC does not match its payload"),
        }
    }
}

/// A run of bytes that held no valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Where it starts in the file as it was found.
    pub offset: u64,
    /// How long it is.
    pub bytes: u64,
    /// What was wrong with the frame that should have started there.
    pub defect: Defect,
}

/// What opening (or reading) a log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Valid records (the log's length after opening).
    pub records: u64,
    /// The highest seq in the log (0 when empty); the next append gets the one after it.
    pub last_seq: u64,
    /// The file's length after opening: the header and every valid frame.
    pub valid_bytes: u64,
    /// Bytes that held no valid frame, in the middle and at the end together (0 for a clean
    /// file). They are in [`RecoveryReport::quarantine`], not lost.
    pub bytes_dropped: u64,
    /// Damage followed by valid frames: skipped, every record after it kept.
    pub damaged: Vec<Damage>,
    /// Bytes after the last valid frame: a torn write, cut off.
    pub torn_tail: Option<Damage>,
    /// Where the bytes that held no valid frame were copied before anything was cut.
    pub quarantine: Option<PathBuf>,
    /// The format the file was in when it was not the current one (it was rewritten).
    pub upgraded_from: Option<u32>,
    /// Whether the log was created by this open.
    pub created: bool,
}

impl RecoveryReport {
    /// The first defect found, if any.
    pub fn defect(&self) -> Option<Defect> {
        self.damaged
            .first()
            .or(self.torn_tail.as_ref())
            .map(|d| d.defect)
    }

    /// For an operator: what was wrong and where the bytes went, when anything was.
    pub fn notice(&self, path: &Path) -> Option<String> {
        let quarantine = self.quarantine.as_ref().map_or_else(
            || "nowhere (read-only)".to_string(),
            |q| q.display().to_string(),
        );
        if let Some(first) = self.damaged.first() {
            let bytes: u64 = self.damaged.iter().map(|d| d.bytes).sum();
            Some(format!(
                "label log {} was damaged: {} run(s) of {} bytes in the middle (first at byte {}: {}) held no valid record; every valid record after them was kept; the damaged bytes are in {}",
                path.display(),
                self.damaged.len(),
                bytes,
                first.offset,
                first.defect,
                quarantine
            ))
        } else {
            self.torn_tail.map(|t| {
                format!(
                    "label log {} had a torn final record ({} bytes at byte {}: {}), from a crash during a write; cut off, the bytes are in {}",
                    path.display(),
                    t.bytes,
                    t.offset,
                    t.defect,
                    quarantine
                )
            })
        }
    }
}

/// The file label log. Cheap to share behind an `Arc`; dropping it stops the writer thread once
/// the queue is empty.
pub struct FileLabelLog {
    path: PathBuf,
    queue: mpsc::Sender<Job>,
    committed: Arc<Mutex<Committed>>,
    syncs: Arc<AtomicU64>,
    /// What the open found, for `/readyz`.
    notice: Option<String>,
    #[cfg(test)]
    hooks: Arc<test_hooks::Hooks>,
}

impl fmt::Debug for FileLabelLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let committed = *lock(&self.committed);
        f.debug_struct("FileLabelLog")
            .field("path", &self.path)
            .field("records", &committed.records)
            .field("bytes", &committed.bytes)
            .finish()
    }
}

/// What is durable: the file's first `bytes` bytes, holding `records` frames. Published by the
/// writer after each `fsync`, before it acknowledges; `read_all` reads exactly that prefix.
#[derive(Debug, Clone, Copy)]
struct Committed {
    bytes: u64,
    records: u64,
}

/// One append waiting for the writer: the encoded record, not yet framed (the writer gives it
/// its seq).
struct PendingAppend {
    payload: Vec<u8>,
    ack: oneshot::Sender<Result<u64, LabelLogError>>,
}

/// What the writer is asked to do.
enum Job {
    Append(PendingAppend),
    /// Drop the records given before `before` (seconds since the epoch); answers how many.
    Expire {
        before: u64,
        ack: oneshot::Sender<Result<u64, LabelLogError>>,
    },
}

/// How a file's first bytes read.
enum Layout {
    /// Empty, or a prefix of the header (a crash while a new log was being created): nothing
    /// in it to lose.
    Blank,
    /// The current format; frames start after the header.
    Current,
    /// Version 1: frames from byte 0.
    V1,
}

impl FileLabelLog {
    /// Opens the log at `path`, creating it if nothing exists there, recovers damage and a torn
    /// tail (see the module docs) and starts the writer thread. A file that is not a label log
    /// is refused and left untouched. Blocking: call it at start-up, or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<(FileLabelLog, RecoveryReport), LabelLogError> {
        Self::open_with(path.as_ref(), true)
    }

    /// [`FileLabelLog::open`] for a log that must already exist: a missing file is an error.
    pub fn open_existing(
        path: impl AsRef<Path>,
    ) -> Result<(FileLabelLog, RecoveryReport), LabelLogError> {
        Self::open_with(path.as_ref(), false)
    }

    fn open_with(
        path: &Path,
        create: bool,
    ) -> Result<(FileLabelLog, RecoveryReport), LabelLogError> {
        let path = path.to_path_buf();
        let mut report = RecoveryReport::default();
        let bytes = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                create_log(&path)?;
                report.created = true;
                file_header().to_vec()
            }
            Err(source) => {
                return Err(LabelLogError::Io {
                    path,
                    op: "open",
                    source,
                })
            }
            Ok(meta) if !meta.is_file() => {
                return Err(LabelLogError::NotALabelLog {
                    path,
                    detail: "it is not a regular file".into(),
                })
            }
            Ok(_) => std::fs::read(&path).map_err(io_error(&path, "read"))?,
        };

        let layout = layout_of(&path, &bytes)?;
        let recovered = match layout {
            Layout::Blank => {
                // Nothing to keep: write the header the interrupted create did not finish.
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_error(&path, "open"))?;
                file.set_len(0)
                    .and_then(|()| file.write_all(&file_header()))
                    .and_then(|()| file.sync_all())
                    .map_err(io_error(&path, "write the header"))?;
                Recovered::default()
            }
            Layout::Current => recover(&path, &bytes, FILE_HEADER_BYTES, false, |_, _| ())?,
            Layout::V1 => {
                report.upgraded_from = Some(1);
                recover(&path, &bytes, 0, true, |_, _| ())?
            }
        };
        report.records = recovered.frames.len() as u64;
        report.last_seq = recovered.frames.last().map_or(0, |f| f.seq);
        report.damaged = recovered.damaged.clone();
        report.torn_tail = recovered.tail;
        report.bytes_dropped = recovered.damaged.iter().map(|d| d.bytes).sum::<u64>()
            + recovered.tail.map_or(0, |t| t.bytes);

        if report.bytes_dropped > 0 {
            report.quarantine = Some(write_quarantine(&path, &bytes, &recovered)?);
        }
        let valid_bytes = if report.upgraded_from.is_some() || !recovered.damaged.is_empty() {
            rewrite(
                &path,
                &bytes,
                &recovered.frames,
                matches!(layout, Layout::V1),
            )?
        } else if let Some(tail) = recovered.tail {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_error(&path, "open"))?;
            file.set_len(tail.offset)
                .and_then(|()| file.sync_all())
                .map_err(io_error(&path, "cut the torn tail"))?;
            tail.offset
        } else if matches!(layout, Layout::Blank) {
            FILE_HEADER_BYTES as u64
        } else {
            bytes.len() as u64
        };
        report.valid_bytes = valid_bytes;

        let notice = report.notice(&path);
        if !report.damaged.is_empty() {
            tracing::error!(
                path = %path.display(),
                kept_records = report.records,
                damaged_runs = report.damaged.len(),
                quarantine = %report.quarantine.as_deref().map(Path::display).map_or_else(String::new, |d| d.to_string()),
                "{}",
                notice.as_deref().unwrap_or("label log damaged")
            );
        } else if report.torn_tail.is_some() {
            tracing::warn!(
                path = %path.display(),
                kept_records = report.records,
                "{}",
                notice.as_deref().unwrap_or("label log had a torn tail")
            );
        }
        if let Some(v) = report.upgraded_from {
            tracing::info!(path = %path.display(), from = v, to = FORMAT_VERSION, records = report.records, "label log rewritten in the current format");
        }

        // Append mode: every write lands at the end, whatever anyone did to the file position.
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path, "open"))?;
        let committed = Arc::new(Mutex::new(Committed {
            bytes: valid_bytes,
            records: report.records,
        }));
        let syncs = Arc::new(AtomicU64::new(0));
        let (queue, pending) = mpsc::channel(QUEUE);
        #[cfg(test)]
        let hooks = Arc::new(test_hooks::Hooks::default());
        let writer = Writer {
            path: path.clone(),
            file,
            written: valid_bytes,
            records: report.records,
            next_seq: report.last_seq + 1,
            committed: Arc::clone(&committed),
            syncs: Arc::clone(&syncs),
            failed: None,
            #[cfg(test)]
            hooks: Arc::clone(&hooks),
        };
        // A dedicated OS thread rather than a Tokio task: the writer spends its whole life in
        // blocking system calls (`write`, `fdatasync`), which must not run on the runtime's
        // worker threads, and `spawn_blocking` is meant for jobs that end; a never-ending one
        // would pin a blocking-pool thread anyway, and need a runtime just to open the log.
        // `blocking_recv` then gives group commit for free: whatever queued during the last
        // `fsync` is the next batch.
        std::thread::Builder::new()
            .name("hamgate-label-log".into())
            .spawn(move || writer.run(pending))
            .map_err(io_error(&path, "start the writer thread"))?;

        let log = FileLabelLog {
            path,
            queue,
            committed,
            syncs,
            notice,
            #[cfg(test)]
            hooks,
        };
        Ok((log, report))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many `fsync`s the writer has made since the log was opened; appends divided by this
    /// is the mean group-commit size.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn writer_stopped(&self) -> LabelLogError {
        LabelLogError::WriterFailed {
            path: self.path.clone(),
            cause: "the writer thread has stopped".into(),
        }
    }
}

/// Reads the log at `path` without changing anything: the file must exist and be a label log;
/// damage is skipped as [`FileLabelLog::open`] skips it (the report says where), but nothing is
/// repaired, cut or set aside.
pub fn read_log(
    path: impl AsRef<Path>,
) -> Result<(Vec<LoggedLabel>, RecoveryReport), LabelLogError> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(io_error(path, "open"))?;
    if !meta.is_file() {
        return Err(LabelLogError::NotALabelLog {
            path: path.to_path_buf(),
            detail: "it is not a regular file".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(io_error(path, "read"))?;
    let mut out = Vec::new();
    let mut report = RecoveryReport::default();
    let recovered = match layout_of(path, &bytes)? {
        Layout::Blank => Recovered::default(),
        Layout::Current => recover(path, &bytes, FILE_HEADER_BYTES, false, |seq, record| {
            out.push(LoggedLabel { seq, record })
        })?,
        Layout::V1 => {
            report.upgraded_from = Some(1);
            recover(path, &bytes, 0, true, |seq, record| {
                out.push(LoggedLabel { seq, record })
            })?
        }
    };
    report.records = out.len() as u64;
    report.last_seq = out.last().map_or(0, |l| l.seq);
    report.valid_bytes = bytes.len() as u64;
    report.bytes_dropped = recovered.damaged.iter().map(|d| d.bytes).sum::<u64>()
        + recovered.tail.map_or(0, |t| t.bytes);
    report.damaged = recovered.damaged;
    report.torn_tail = recovered.tail;
    Ok((out, report))
}

impl LabelLog for FileLabelLog {
    fn append<'a>(&'a self, record: LabelRecord) -> LogFuture<'a, u64> {
        Box::pin(async move {
            let payload = encode_payload(&record)?;
            let (ack, acked) = oneshot::channel();
            // If this future is dropped after the send, the record is still written (and may be
            // in the log) but nobody is told: the same "maybe" as any failed append.
            self.queue
                .send(Job::Append(PendingAppend { payload, ack }))
                .await
                .map_err(|_| self.writer_stopped())?;
            acked.await.map_err(|_| self.writer_stopped())?
        })
    }

    fn expire_before<'a>(&'a self, before: u64) -> LogFuture<'a, u64> {
        Box::pin(async move {
            let (ack, acked) = oneshot::channel();
            self.queue
                .send(Job::Expire { before, ack })
                .await
                .map_err(|_| self.writer_stopped())?;
            acked.await.map_err(|_| self.writer_stopped())?
        })
    }

    fn read_all<'a>(&'a self) -> LogFuture<'a, Vec<LoggedLabel>> {
        Box::pin(async move {
            // A std mutex is fine here: it guards two integers, is held for a copy and never
            // across an await.
            let path = self.path.clone();
            let task_path = path.clone();
            let shared = Arc::clone(&self.committed);
            tokio::task::spawn_blocking(move || {
                // Opened under the lock: the writer replaces the file (expiry) under it too, so
                // the file and its committed length always belong together.
                let (file, committed) = {
                    let committed = lock(&shared);
                    let file =
                        File::open(&task_path).map_err(io_error(&task_path, "open for reading"))?;
                    (file, *committed)
                };
                read_committed(&task_path, file, committed)
            })
            .await
            .map_err(|e| LabelLogError::Io {
                path,
                op: "read",
                source: std::io::Error::other(e.to_string()),
            })?
        })
    }

    fn name(&self) -> &'static str {
        "file"
    }

    fn notices(&self) -> Vec<String> {
        self.notice.iter().cloned().collect()
    }
}

/// The writer thread's state. It alone writes to the file and assigns seqs.
struct Writer {
    path: PathBuf,
    file: File,
    /// Bytes in the file that are durable.
    written: u64,
    /// Records in the file.
    records: u64,
    /// The seq the next record gets.
    next_seq: u64,
    committed: Arc<Mutex<Committed>>,
    syncs: Arc<AtomicU64>,
    /// The first failure; once set, nothing more is written.
    failed: Option<String>,
    #[cfg(test)]
    hooks: Arc<test_hooks::Hooks>,
}

impl Writer {
    /// Commits batches until every sender (the log) is gone and the queue is empty.
    fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut batch = Vec::new();
        let mut buf = Vec::new();
        while let Some(first) = queue.blocking_recv() {
            #[cfg(test)]
            self.hooks.wait_while_paused();
            let mut later = None;
            match first {
                Job::Append(first) => {
                    let mut bytes = first.payload.len();
                    batch.push(first);
                    while bytes < MAX_BATCH_BYTES {
                        match queue.try_recv() {
                            Ok(Job::Append(next)) => {
                                bytes += next.payload.len();
                                batch.push(next);
                            }
                            Ok(other) => {
                                later = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(&mut batch, &mut buf);
                }
                other => later = Some(other),
            }
            // Only an expiry is ever left over: appends were batched above.
            if let Some(Job::Expire { before, ack }) = later {
                let _ = ack.send(self.expire(before));
            }
        }
        tracing::debug!(path = %self.path.display(), "label log writer stopped");
    }

    /// Rewrites the log without the records given before `before`, keeping every other record
    /// with its seq: a temporary file, fsync, rename, under the committed lock so readers see
    /// the old file or the new one whole. Returns how many records went.
    fn expire(&mut self, before: u64) -> Result<u64, LabelLogError> {
        if let Some(cause) = &self.failed {
            return Err(LabelLogError::WriterFailed {
                path: self.path.clone(),
                cause: cause.clone(),
            });
        }
        let path = self.path.clone();
        let file = File::open(&path).map_err(io_error(&path, "open for reading"))?;
        let mut bytes = Vec::new();
        file.take(self.written)
            .read_to_end(&mut bytes)
            .map_err(io_error(&path, "read"))?;
        let mut keep = Vec::new();
        let recovered = recover(&path, &bytes, FILE_HEADER_BYTES, false, |_, record| {
            keep.push(record.at >= before)
        })?;
        if let Some(d) = recovered.damaged.first().or(recovered.tail.as_ref()) {
            return Err(LabelLogError::Corrupt {
                path,
                offset: d.offset,
                detail: format!("{}, in data that was acknowledged as durable", d.defect),
            });
        }
        let dropped = keep.iter().filter(|k| !**k).count() as u64;
        if dropped == 0 {
            return Ok(0);
        }
        let kept: Vec<GoodFrame> = recovered
            .frames
            .into_iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect();
        let mut committed = lock(&self.committed);
        let len = rewrite(&path, &bytes, &kept, false)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path, "reopen after expiry"))?;
        self.written = len;
        self.records = kept.len() as u64;
        *committed = Committed {
            bytes: self.written,
            records: self.records,
        };
        drop(committed);
        tracing::info!(path = %path.display(), expired = dropped, kept = self.records, "label log: records past their retention removed");
        Ok(dropped)
    }

    /// Writes and syncs `batch` as one, then answers every append in it.
    fn commit(&mut self, batch: &mut Vec<PendingAppend>, buf: &mut Vec<u8>) {
        if let Some(cause) = &self.failed {
            for pending in batch.drain(..) {
                let _ = pending.ack.send(Err(LabelLogError::WriterFailed {
                    path: self.path.clone(),
                    cause: cause.clone(),
                }));
            }
            return;
        }
        buf.clear();
        for (seq, pending) in (self.next_seq..).zip(batch.iter()) {
            push_frame(buf, seq, &pending.payload);
        }
        #[cfg(test)]
        let injected = self.hooks.injected_failure();
        #[cfg(not(test))]
        let injected: Option<std::io::Error> = None;
        let result = match injected {
            Some(e) => Err(("write", e)),
            None => self
                .file
                .write_all(buf)
                .map_err(|e| ("write", e))
                .and_then(|()| self.file.sync_data().map_err(|e| ("fsync", e))),
        };
        match result {
            Ok(()) => {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                let first_seq = self.next_seq;
                self.next_seq += batch.len() as u64;
                self.records += batch.len() as u64;
                self.written += buf.len() as u64;
                // Publish before acknowledging, so a read after an acknowledged append sees it.
                *lock(&self.committed) = Committed {
                    bytes: self.written,
                    records: self.records,
                };
                for (seq, pending) in (first_seq..).zip(batch.drain(..)) {
                    // The caller may have given up waiting; the record is logged all the same.
                    let _ = pending.ack.send(Ok(seq));
                }
            }
            Err((op, e)) => {
                let cause = format!("{op} failed: {e}");
                tracing::error!(
                    path = %self.path.display(),
                    op,
                    cause = %e,
                    records = batch.len(),
                    "label log write failed; refusing every further append"
                );
                // Best effort: cut off what this batch may have left, so that a reopen does not
                // find records that were never acknowledged. Recovery copes if this fails too.
                if let Err(e) = self.file.set_len(self.written) {
                    tracing::warn!(
                        path = %self.path.display(),
                        cause = %e,
                        "could not truncate the failed batch"
                    );
                }
                for pending in batch.drain(..) {
                    let _ = pending.ack.send(Err(LabelLogError::WriterFailed {
                        path: self.path.clone(),
                        cause: cause.clone(),
                    }));
                }
                self.failed = Some(cause);
            }
        }
    }
}

/// The JSON payload of `record`, refused when too large to frame.
fn encode_payload(record: &LabelRecord) -> Result<Vec<u8>, LabelLogError> {
    let payload = serde_json::to_vec(record).map_err(|e| LabelLogError::Encode(e.to_string()))?;
    if payload.len() > MAX_RECORD_BYTES {
        return Err(LabelLogError::TooLarge {
            bytes: payload.len(),
            max: MAX_RECORD_BYTES,
        });
    }
    Ok(payload)
}

/// Appends the frame of `payload` with `seq` to `buf`. The payload is at most
/// [`MAX_RECORD_BYTES`], checked when it was encoded.
fn push_frame(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let seq = seq.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq);
    crc.update(payload);
    buf.reserve(HEADER_BYTES + payload.len());
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(&seq);
    buf.extend_from_slice(payload);
}

/// The frame of `record` with `seq`: magic, length, CRC, seq, payload.
pub fn encode_frame(seq: u64, record: &LabelRecord) -> Result<Vec<u8>, LabelLogError> {
    let payload = encode_payload(record)?;
    let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
    push_frame(&mut frame, seq, &payload);
    Ok(frame)
}

/// Decides what `bytes` (a whole file) are, refusing anything that is not a label log.
fn layout_of(path: &Path, bytes: &[u8]) -> Result<Layout, LabelLogError> {
    let header = file_header();
    if bytes.len() < FILE_HEADER_BYTES && header.starts_with(bytes) {
        return Ok(Layout::Blank);
    }
    if bytes.starts_with(&FILE_MAGIC) {
        let version = le_u32(bytes, FILE_MAGIC.len()).unwrap_or(0);
        if version != FORMAT_VERSION || bytes.len() < FILE_HEADER_BYTES {
            return Err(LabelLogError::NotALabelLog {
                path: path.to_path_buf(),
                detail: format!(
                    "it is a label log of format version {version}, and this hamgate reads version {FORMAT_VERSION} (and 1)"
                ),
            });
        }
        return Ok(Layout::Current);
    }
    if bytes.starts_with(&V1_MAGIC) && parse_frame(bytes, 0, true).is_ok() {
        return Ok(Layout::V1);
    }
    Err(LabelLogError::NotALabelLog {
        path: path.to_path_buf(),
        detail: "it does not start with a label log header".into(),
    })
}

/// A frame that checked out.
#[derive(Debug, Clone)]
struct GoodFrame {
    /// Its seq (for version 1 frames, its position).
    seq: u64,
    /// The whole frame in the file.
    frame: Range<usize>,
    /// Its payload in the file.
    payload: Range<usize>,
}

/// What a scan with resynchronisation found.
#[derive(Debug, Default)]
struct Recovered {
    frames: Vec<GoodFrame>,
    damaged: Vec<Damage>,
    tail: Option<Damage>,
}

fn le_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn le_u64(buf: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Checks the frame at `pos`: magic, length, completeness and CRC. Returns the frame's seq (none
/// for version 1), its payload and where it ends.
fn parse_frame(buf: &[u8], pos: usize, v1: bool) -> Result<(Option<u64>, Range<usize>), Defect> {
    let rest = buf.get(pos..).unwrap_or(&[]);
    let (magic, header) = if v1 {
        (V1_MAGIC, V1_HEADER_BYTES)
    } else {
        (MAGIC, HEADER_BYTES)
    };
    // Judge the magic on the bytes that are there, so short garbage counts as garbage.
    let seen = rest.len().min(magic.len());
    if rest.get(..seen) != magic.get(..seen) {
        return Err(Defect::BadMagic);
    }
    if rest.len() < header {
        return Err(Defect::Incomplete);
    }
    let len = le_u32(rest, 4).ok_or(Defect::Incomplete)?;
    if len as usize > MAX_RECORD_BYTES {
        return Err(Defect::TooLong(len));
    }
    let crc = le_u32(rest, 8).ok_or(Defect::Incomplete)?;
    let end = header + len as usize;
    let payload = rest.get(header..end).ok_or(Defect::Incomplete)?;
    let (seq, computed) = if v1 {
        (None, crc32fast::hash(payload))
    } else {
        let seq_bytes = rest.get(12..20).ok_or(Defect::Incomplete)?;
        let mut h = crc32fast::Hasher::new();
        h.update(seq_bytes);
        h.update(payload);
        (le_u64(rest, 12), h.finalize())
    };
    if computed != crc {
        return Err(Defect::CrcMismatch);
    }
    Ok((seq, pos + header..pos + end))
}

/// The next offset after `from` where a frame checks out.
fn next_frame(buf: &[u8], from: usize, v1: bool) -> Option<usize> {
    let magic = if v1 { V1_MAGIC } else { MAGIC };
    let mut at = from;
    while let Some(window) = buf.get(at..) {
        let found = window.windows(magic.len()).position(|w| w == magic)?;
        let candidate = at + found;
        if parse_frame(buf, candidate, v1).is_ok() {
            return Some(candidate);
        }
        at = candidate + 1;
    }
    None
}

/// Reads every frame of `buf` from `start`, resynchronising after damage, and hands each record
/// to `keep`. A frame that checks out but is not a record, or whose seq does not increase, is an
/// error: those bytes are what a writer wrote, and an operator has to look.
fn recover(
    path: &Path,
    buf: &[u8],
    start: usize,
    v1: bool,
    mut keep: impl FnMut(u64, LabelRecord),
) -> Result<Recovered, LabelLogError> {
    let mut out = Recovered::default();
    let mut pos = start;
    let mut last_seq = 0u64;
    while pos < buf.len() {
        match parse_frame(buf, pos, v1) {
            Ok((seq, payload)) => {
                let seq = seq.unwrap_or(last_seq + 1);
                if seq <= last_seq {
                    return Err(LabelLogError::Corrupt {
                        path: path.to_path_buf(),
                        offset: pos as u64,
                        detail: format!("a valid frame has seq {seq} after seq {last_seq}"),
                    });
                }
                let bytes = buf.get(payload.clone()).unwrap_or(&[]);
                let record = serde_json::from_slice(bytes).map_err(|e| LabelLogError::Corrupt {
                    path: path.to_path_buf(),
                    offset: pos as u64,
                    detail: format!(
                        "the frame's CRC matches but its payload is not a label record: {e}"
                    ),
                })?;
                keep(seq, record);
                out.frames.push(GoodFrame {
                    seq,
                    frame: pos..payload.end,
                    payload: payload.clone(),
                });
                last_seq = seq;
                pos = payload.end;
            }
            Err(defect) => match next_frame(buf, pos + 1, v1) {
                Some(next) => {
                    out.damaged.push(Damage {
                        offset: pos as u64,
                        bytes: (next - pos) as u64,
                        defect,
                    });
                    pos = next;
                }
                None => {
                    out.tail = Some(Damage {
                        offset: pos as u64,
                        bytes: (buf.len() - pos) as u64,
                        defect,
                    });
                    break;
                }
            },
        }
    }
    Ok(out)
}

/// Copies every run that held no valid frame to a new file beside the log, synced, and returns
/// its path.
fn write_quarantine(
    path: &Path,
    bytes: &[u8],
    recovered: &Recovered,
) -> Result<PathBuf, LabelLogError> {
    let name = path
        .file_name()
        .map_or_else(|| "labels.log".into(), |n| n.to_string_lossy().into_owned());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let runs = recovered.damaged.iter().chain(recovered.tail.iter());
    for attempt in 0..100u32 {
        let suffix = if attempt == 0 {
            String::new()
        } else {
            format!("-{attempt}")
        };
        let q = path.with_file_name(format!("{name}.quarantine-{secs}{suffix}"));
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&q) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(LabelLogError::Io {
                    path: q,
                    op: "create the quarantine file",
                    source,
                })
            }
        };
        for run in runs {
            let range = run.offset as usize..(run.offset + run.bytes) as usize;
            file.write_all(bytes.get(range).unwrap_or(&[]))
                .map_err(io_error(&q, "write the quarantine file"))?;
        }
        file.sync_all()
            .map_err(io_error(&q, "sync the quarantine file"))?;
        sync_parent_dir(&q)?;
        return Ok(q);
    }
    Err(LabelLogError::Io {
        path: path.to_path_buf(),
        op: "name a quarantine file",
        source: std::io::Error::other("100 quarantine files of this second already exist"),
    })
}

/// Writes the header and `frames` (re-framed when they are version 1) to a temporary file beside
/// the log, syncs it and renames it over the log. Returns the new length.
fn rewrite(
    path: &Path,
    bytes: &[u8],
    frames: &[GoodFrame],
    v1: bool,
) -> Result<u64, LabelLogError> {
    let name = path
        .file_name()
        .map_or_else(|| "labels.log".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!("{name}.rewrite-tmp"));
    let mut out = Vec::with_capacity(bytes.len() + FILE_HEADER_BYTES);
    out.extend_from_slice(&file_header());
    for f in frames {
        if v1 {
            push_frame(&mut out, f.seq, bytes.get(f.payload.clone()).unwrap_or(&[]));
        } else {
            out.extend_from_slice(bytes.get(f.frame.clone()).unwrap_or(&[]));
        }
    }
    let mut file = File::create(&tmp).map_err(io_error(&tmp, "create"))?;
    file.write_all(&out)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&tmp, "write"))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_error(path, "replace with the rewritten log"))?;
    sync_parent_dir(path)?;
    Ok(out.len() as u64)
}

/// Creates a new, empty log (just the header) where nothing exists, durably.
fn create_log(path: &Path) -> Result<(), LabelLogError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error(path, "create"))?;
    file.write_all(&file_header())
        .and_then(|()| file.sync_all())
        .map_err(io_error(path, "write the header"))?;
    // A newly created file is durable only once its directory entry is.
    sync_parent_dir(path)
}

/// Reads the durable prefix of the log. Everything in it was synced and acknowledged (and
/// checked when the log was opened), so any defect there is corruption, reported rather than
/// skipped.
fn read_committed(
    path: &Path,
    file: File,
    committed: Committed,
) -> Result<Vec<LoggedLabel>, LabelLogError> {
    let mut bytes = Vec::with_capacity(committed.bytes.min(1 << 26) as usize);
    file.take(committed.bytes)
        .read_to_end(&mut bytes)
        .map_err(io_error(path, "read"))?;
    if (bytes.len() as u64) < committed.bytes {
        return Err(LabelLogError::Corrupt {
            path: path.to_path_buf(),
            offset: bytes.len() as u64,
            detail: format!(
                "the file ends before the {} bytes that were acknowledged",
                committed.bytes
            ),
        });
    }
    if bytes.get(..12) != file_header().get(..12) {
        return Err(LabelLogError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            detail: "the file header changed while the log was open".into(),
        });
    }
    let mut out = Vec::with_capacity(committed.records.min(1 << 16) as usize);
    let recovered = recover(path, &bytes, FILE_HEADER_BYTES, false, |seq, record| {
        out.push(LoggedLabel { seq, record })
    })?;
    if let Some(d) = recovered.damaged.first().or(recovered.tail.as_ref()) {
        return Err(LabelLogError::Corrupt {
            path: path.to_path_buf(),
            offset: d.offset,
            detail: format!("{}, in data that was acknowledged as durable", d.defect),
        });
    }
    Ok(out)
}

/// Syncs the directory holding `path`, so that the file's creation (or a rename) is durable.
fn sync_parent_dir(path: &Path) -> Result<(), LabelLogError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir, "sync the directory"))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn io_error(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> LabelLogError {
    let path = path.to_path_buf();
    move |source| LabelLogError::Io { path, op, source }
}

/// Locks, ignoring poisoning: the guarded value is two integers written in one assignment.
fn lock(m: &Mutex<Committed>) -> std::sync::MutexGuard<'_, Committed> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod test_hooks {
    //! Lets a test hold the writer after it has taken the first append of a batch, so that a
    //! group commit can be observed deterministically, and make its writes fail.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Condvar, Mutex, PoisonError};

    #[derive(Default)]
    pub(super) struct Hooks {
        paused: Mutex<bool>,
        resumed: Condvar,
        fail_writes: AtomicBool,
    }

    impl Hooks {
        pub(super) fn set_paused(&self, paused: bool) {
            *self.paused.lock().unwrap_or_else(PoisonError::into_inner) = paused;
            self.resumed.notify_all();
        }

        pub(super) fn wait_while_paused(&self) {
            let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
            while *paused {
                paused = self
                    .resumed
                    .wait(paused)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }

        pub(super) fn fail_writes(&self) {
            self.fail_writes.store(true, Ordering::SeqCst);
        }

        pub(super) fn injected_failure(&self) -> Option<std::io::Error> {
            self.fail_writes
                .load(Ordering::SeqCst)
                .then(|| std::io::Error::from_raw_os_error(28))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::labels::testing::record;

    fn records_of(logged: &[LoggedLabel]) -> Vec<LabelRecord> {
        logged.iter().map(|l| l.record.clone()).collect()
    }

    fn seqs_of(logged: &[LoggedLabel]) -> Vec<u64> {
        logged.iter().map(|l| l.seq).collect()
    }

    /// The records in raw log bytes, read without the log.
    fn decode(bytes: &[u8]) -> (Vec<LabelRecord>, Recovered) {
        let mut out = Vec::new();
        let rec = recover(
            Path::new("<bytes>"),
            bytes,
            FILE_HEADER_BYTES,
            false,
            |_, r| out.push(r),
        )
        .expect("scan");
        (out, rec)
    }

    /// A log at `path` holding `record(1..=n)`, closed again; returns the file length after
    /// each record.
    async fn write_log(path: &Path, n: u64) -> Vec<u64> {
        let (log, report) = FileLabelLog::open(path).expect("open");
        assert_eq!(report.records, 0);
        assert!(report.created);
        let mut ends = Vec::new();
        for i in 1..=n {
            assert_eq!(log.append(record(i)).await.expect("append"), i);
            ends.push(std::fs::metadata(path).expect("stat").len());
        }
        ends
    }

    /// A version 1 file (no header, frames without seqs) holding `record(1..=n)`.
    fn v1_bytes(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 1..=n {
            let payload = serde_json::to_vec(&record(i)).expect("encode");
            out.extend_from_slice(&V1_MAGIC);
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            out.extend_from_slice(&payload);
        }
        out
    }

    /// Opens `path` expecting `kept` records (`record(1..=kept)`) to survive, then checks that
    /// the recovered log takes a new append at seq `kept + 1` and reads it back.
    async fn assert_recovers(path: &Path, kept: u64, valid_bytes: u64) -> RecoveryReport {
        let (log, report) = FileLabelLog::open(path).expect("reopen");
        assert_eq!(report.records, kept, "{report:?}");
        assert_eq!(report.valid_bytes, valid_bytes, "{report:?}");
        assert_eq!(std::fs::metadata(path).expect("stat").len(), valid_bytes);
        let expected: Vec<_> = (1..=kept).map(record).collect();
        assert_eq!(records_of(&log.read_all().await.expect("read")), expected);
        assert_eq!(log.append(record(99)).await.expect("append"), kept + 1);
        let all = log.read_all().await.expect("read");
        assert_eq!(seqs_of(&all), (1..=kept + 1).collect::<Vec<_>>());
        assert_eq!(all.last().map(|l| &l.record), Some(&record(99)));
        report
    }

    /// The quarantine files beside `path`.
    fn quarantines(path: &Path) -> Vec<PathBuf> {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let mut out: Vec<PathBuf> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy()
                        .starts_with(&format!("{name}.quarantine-"))
                })
            })
            .collect();
        out.sort();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_all_acknowledged_in_seq_order_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let (log, report) = FileLabelLog::open(&path).expect("open");
        assert_eq!(report.records, 0);
        assert_eq!(report.bytes_dropped, 0);
        let log = Arc::new(log);

        // 32 tasks, 8 appends each, one after the other within a task.
        let mut tasks = Vec::new();
        for t in 0..32u64 {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(async move {
                let mut acks = Vec::new();
                for k in 0..8u64 {
                    let i = t * 8 + k + 1;
                    acks.push((i, log.append(record(i)).await.expect("append")));
                }
                acks
            }));
        }
        let mut acks = Vec::new();
        for task in tasks {
            let task_acks = task.await.expect("task");
            // Within one task, later appends get later seqs.
            assert!(task_acks.windows(2).all(|w| w[0].1 < w[1].1));
            acks.extend(task_acks);
        }
        let n = 256;
        assert_eq!(acks.len(), n);
        let seqs: BTreeSet<u64> = acks.iter().map(|&(_, s)| s).collect();
        assert_eq!(seqs, (1..=n as u64).collect());

        let all = log.read_all().await.expect("read_all");
        assert_eq!(seqs_of(&all), (1..=n as u64).collect::<Vec<_>>());
        for &(i, seq) in &acks {
            assert_eq!(all[seq as usize - 1].record, record(i), "seq {seq}");
        }

        drop(log);
        let (reopened, report) = FileLabelLog::open(&path).expect("reopen");
        assert_eq!(report.records, n as u64);
        assert_eq!(report.bytes_dropped, 0);
        assert_eq!(report.defect(), None);
        assert!(!report.created);
        assert_eq!(reopened.read_all().await.expect("read_all"), all);
        assert_eq!(
            reopened.append(record(1000)).await.expect("append"),
            n as u64 + 1
        );
        assert!(quarantines(&path).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_queued_during_a_write_share_one_fsync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = FileLabelLog::open(dir.path().join("labels.log")).expect("open");
        let log = Arc::new(log);
        log.hooks.set_paused(true);
        let tasks: Vec<_> = (1..=100u64)
            .map(|i| {
                let log = Arc::clone(&log);
                tokio::spawn(async move { log.append(record(i)).await })
            })
            .collect();
        // The writer holds the first append; wait until the other 99 are queued behind it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.queue.max_capacity() - log.queue.capacity() < 99 {
            assert!(Instant::now() < deadline, "appends did not queue");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(log.syncs(), 0);
        log.hooks.set_paused(false);
        let mut seqs = BTreeSet::new();
        for task in tasks {
            seqs.insert(task.await.expect("task").expect("append"));
        }
        assert_eq!(seqs, (1..=100).collect());
        assert_eq!(log.syncs(), 1, "100 queued appends should share one fsync");
    }

    #[tokio::test]
    async fn an_acknowledged_append_is_in_the_file_before_the_log_is_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let (log, _) = FileLabelLog::open(&path).expect("open");
        assert_eq!(std::fs::read(&path).expect("read"), file_header());
        for i in 1..=3u64 {
            assert_eq!(log.append(record(i)).await.expect("append"), i);
            // Read behind the log's back, with the log still open.
            let bytes = std::fs::read(&path).expect("read");
            let (records, rec) = decode(&bytes);
            assert_eq!(records, (1..=i).map(record).collect::<Vec<_>>());
            assert!(rec.damaged.is_empty() && rec.tail.is_none());
        }
        // One at a time, so one fsync each.
        assert_eq!(log.syncs(), 3);
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_label_log_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A model file, a CSV, a JSON file, a short text: anything that is not a label log.
        let model = crate::model::EMBEDDED_MODEL.to_vec();
        let others: [(&str, Vec<u8>); 4] = [
            ("model.hgm", model),
            (
                "comments.csv",
                b"COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n1,a,b,c,1\n".to_vec(),
            ),
            ("x.json", br#"{"a": 1}"#.to_vec()),
            ("short", b"hi\n".to_vec()),
        ];
        for (name, bytes) in others {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).expect("write");
            let err = FileLabelLog::open(&path).expect_err("must not open");
            assert!(matches!(err, LabelLogError::NotALabelLog { .. }), "{err}");
            assert!(err.to_string().contains(name), "{err}");
            let err = read_log(&path).expect_err("must not read");
            assert!(matches!(err, LabelLogError::NotALabelLog { .. }), "{err}");
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "{name} changed");
            assert!(quarantines(&path).is_empty());
        }
        // A directory is refused too.
        let err = FileLabelLog::open(dir.path()).expect_err("a directory");
        assert!(matches!(err, LabelLogError::NotALabelLog { .. }), "{err}");
        // A newer format is refused, not rewritten.
        let mut newer = file_header().to_vec();
        newer[8] = 3;
        let path = dir.path().join("newer.log");
        std::fs::write(&path, &newer).expect("write");
        let err = FileLabelLog::open(&path).expect_err("newer");
        assert!(err.to_string().contains("version 3"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), newer);
    }

    #[tokio::test]
    async fn only_open_creates_a_log_and_an_empty_file_gets_a_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.log");
        let err = FileLabelLog::open_existing(&missing).expect_err("missing");
        assert!(matches!(err, LabelLogError::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing.log"), "{err}");
        assert!(read_log(&missing).is_err());
        assert!(
            !missing.exists(),
            "a read or open_existing created the file"
        );

        let empty = dir.path().join("empty.log");
        std::fs::write(&empty, b"").expect("write");
        let (records, report) = read_log(&empty).expect("an empty file reads as empty");
        assert!(records.is_empty() && report.bytes_dropped == 0);
        assert_eq!(std::fs::read(&empty).expect("read"), b"", "read_log wrote");
        let (log, report) = FileLabelLog::open_existing(&empty).expect("open");
        assert_eq!(report.records, 0);
        assert_eq!(log.append(record(1)).await.expect("append"), 1);
        assert!(std::fs::read(&empty)
            .expect("read")
            .starts_with(&file_header()));
    }

    #[tokio::test]
    async fn a_version_1_log_is_rewritten_in_the_current_format_with_the_same_seqs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let old = v1_bytes(5);
        std::fs::write(&path, &old).expect("write");
        // Reading does not change it.
        let (records, report) = read_log(&path).expect("read v1");
        assert_eq!(seqs_of(&records), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            records_of(&records),
            (1..=5).map(record).collect::<Vec<_>>()
        );
        assert_eq!(report.upgraded_from, Some(1));
        assert_eq!(std::fs::read(&path).expect("read"), old);

        let (log, report) = FileLabelLog::open(&path).expect("open v1");
        assert_eq!(report.upgraded_from, Some(1));
        assert_eq!(report.records, 5);
        assert!(std::fs::read(&path)
            .expect("read")
            .starts_with(&file_header()));
        assert_eq!(log.append(record(6)).await.expect("append"), 6);
        let all = log.read_all().await.expect("read");
        assert_eq!(seqs_of(&all), (1..=6).collect::<Vec<_>>());
        assert_eq!(records_of(&all), (1..=6).map(record).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn torn_tail_at_every_length_of_the_last_frame_keeps_the_records_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, 3).await;
        let full = std::fs::read(&path).expect("read");
        let start = ends[1] as usize;
        assert_eq!(full.len() as u64, ends[2]);
        assert!(full.len() - start > HEADER_BYTES + 50);

        for cut in start..full.len() {
            let sub = dir.path().join(format!("torn-{cut}"));
            std::fs::create_dir(&sub).expect("mkdir");
            let torn = sub.join("labels.log");
            std::fs::write(&torn, &full[..cut]).expect("write");
            let report = assert_recovers(&torn, 2, start as u64).await;
            assert_eq!(report.bytes_dropped, (cut - start) as u64, "cut at {cut}");
            assert!(report.damaged.is_empty());
            let expected = if cut == start {
                None
            } else {
                Some(Defect::Incomplete)
            };
            assert_eq!(report.defect(), expected, "cut at {cut}");
            // The cut bytes were set aside first.
            let q = quarantines(&torn);
            if cut == start {
                assert!(q.is_empty());
            } else {
                assert_eq!(q.len(), 1);
                assert_eq!(std::fs::read(&q[0]).expect("read"), &full[start..cut]);
            }
            std::fs::remove_dir_all(&sub).expect("remove");
        }
    }

    #[tokio::test]
    async fn any_single_corrupt_byte_in_the_last_frame_drops_only_that_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, 3).await;
        let full = std::fs::read(&path).expect("read");
        let start = ends[1] as usize;

        for at in start..full.len() {
            let mut bad = full.clone();
            bad[at] ^= 0xA5;
            let p = dir.path().join(format!("flip-{at}.log"));
            std::fs::write(&p, &bad).expect("write");
            let report = assert_recovers(&p, 2, start as u64).await;
            assert_eq!(report.bytes_dropped, (full.len() - start) as u64);
            let defect = report.defect().expect("a defect");
            // A flipped length byte may read as too short (CRC mismatch), past the end of the
            // file (incomplete) or absurd; any of them is fine, as long as the frame goes.
            if at < start + 4 {
                assert_eq!(defect, Defect::BadMagic, "byte {at}");
            } else if at >= start + 8 {
                assert_eq!(defect, Defect::CrcMismatch, "byte {at}");
            }
            std::fs::remove_file(&p).expect("remove");
        }
    }

    #[tokio::test]
    async fn garbage_after_valid_records_is_cut_and_set_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, 3).await;
        let full = std::fs::read(&path).expect("read");

        const JUNK: &[u8] = b"not a frame at all, just some junk\n";
        let mut garbage = full.clone();
        garbage.extend_from_slice(JUNK);
        std::fs::write(&path, &garbage).expect("write");
        let report = assert_recovers(&path, 3, ends[2]).await;
        assert_eq!(report.defect(), Some(Defect::BadMagic));
        assert_eq!(report.bytes_dropped, JUNK.len() as u64);
        let q = report.quarantine.expect("quarantined");
        assert_eq!(std::fs::read(&q).expect("read"), JUNK);

        // A header with the right magic but an absurd length.
        let mut absurd = full.clone();
        absurd.extend_from_slice(&MAGIC);
        absurd.extend_from_slice(&u32::MAX.to_le_bytes());
        absurd.extend_from_slice(&[0; 12]);
        absurd.extend_from_slice(&[b'x'; 100]);
        std::fs::write(&path, &absurd).expect("write");
        let report = assert_recovers(&path, 3, ends[2]).await;
        assert_eq!(report.defect(), Some(Defect::TooLong(u32::MAX)));
        assert_eq!(report.bytes_dropped, 120);
    }

    #[tokio::test]
    async fn damage_in_the_middle_is_skipped_and_every_record_after_it_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, 3).await;
        let full = std::fs::read(&path).expect("read");
        let (second, third) = (ends[0] as usize, ends[1] as usize);
        for at in second..third {
            let sub = dir.path().join(format!("mid-{at}"));
            std::fs::create_dir(&sub).expect("mkdir");
            let p = sub.join("labels.log");
            let mut bad = full.clone();
            bad[at] ^= 0x5A;
            std::fs::write(&p, &bad).expect("write");

            let (log, report) = FileLabelLog::open(&p).expect("open");
            assert_eq!(report.records, 2, "byte {at}: {report:?}");
            assert_eq!(report.damaged.len(), 1, "byte {at}");
            assert_eq!(report.damaged[0].offset, second as u64);
            assert_eq!(report.damaged[0].bytes, (third - second) as u64);
            assert!(report.torn_tail.is_none());
            let notice = report.notice(&p).expect("a notice");
            assert!(notice.contains("quarantine"), "{notice}");
            // The damaged bytes are set aside exactly; the log is clean again.
            let q = report.quarantine.clone().expect("quarantine");
            assert_eq!(std::fs::read(&q).expect("read"), &bad[second..third]);
            assert_eq!(log.notices(), vec![notice]);
            let all = log.read_all().await.expect("read");
            assert_eq!(seqs_of(&all), vec![1, 3], "byte {at}");
            assert_eq!(records_of(&all), vec![record(1), record(3)]);
            // Seqs never repeat: the next append comes after the highest.
            assert_eq!(log.append(record(4)).await.expect("append"), 4);
            drop(log);
            let (_, again) = FileLabelLog::open(&p).expect("reopen");
            assert_eq!(again.bytes_dropped, 0, "the repair was not durable");
            assert_eq!(again.records, 3);
            std::fs::remove_dir_all(&sub).expect("remove");
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_anywhere_loses_at_most_the_record_it_hit() {
        const N: u64 = 100;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, N).await;
        let full = std::fs::read(&path).expect("read");
        // Which record each byte belongs to (0 for the file header).
        let owner = |at: usize| -> u64 {
            if at < FILE_HEADER_BYTES {
                0
            } else {
                ends.iter()
                    .position(|&e| (at as u64) < e)
                    .expect("in a frame") as u64
                    + 1
            }
        };
        // Every 7th byte: every position within a frame is hit across the records.
        for at in (0..full.len()).step_by(7) {
            let mut bad = full.clone();
            bad[at] ^= 0xFF;
            let p = dir.path().join("flip.log");
            std::fs::write(&p, &bad).expect("write");
            let hit = owner(at);
            if hit == 0 {
                // The file header: refused untouched, or (reserved bytes) read as it is.
                match read_log(&p) {
                    Err(e) => {
                        assert!(matches!(e, LabelLogError::NotALabelLog { .. }), "{e}");
                        assert!(FileLabelLog::open(&p).is_err());
                        assert_eq!(std::fs::read(&p).expect("read"), bad);
                    }
                    Ok((all, _)) => assert_eq!(all.len() as u64, N),
                }
                continue;
            }
            // Read-only first: the same records, nothing written.
            let (read, _) = read_log(&p).expect("read_log");
            assert_eq!(std::fs::read(&p).expect("read"), bad);
            let (log, report) = FileLabelLog::open(&p).expect("open");
            let all = log.read_all().await.expect("read");
            assert_eq!(all, read, "byte {at}");
            let expected: Vec<u64> = (1..=N).filter(|&i| i != hit).collect();
            assert_eq!(seqs_of(&all), expected, "byte {at} in record {hit}");
            for l in &all {
                assert_eq!(l.record, record(l.seq));
            }
            assert_eq!(report.records, N - 1);
            drop(log);
            std::fs::remove_file(&p).expect("remove");
            for q in quarantines(&p) {
                std::fs::remove_file(q).expect("remove");
            }
        }
    }

    #[tokio::test]
    async fn a_checksummed_frame_that_is_not_a_record_fails_the_open_instead_of_being_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, 1).await;
        let mut bytes = std::fs::read(&path).expect("read");
        push_frame(&mut bytes, 2, br#"{"something":"else"}"#);
        std::fs::write(&path, &bytes).expect("write");
        let err = FileLabelLog::open(&path).expect_err("must not open");
        assert!(
            matches!(err, LabelLogError::Corrupt { offset, .. } if offset == ends[0]),
            "{err}"
        );
        assert!(err.to_string().contains("labels.log"), "{err}");
        // Nothing was truncated.
        assert_eq!(std::fs::read(&path).expect("read"), bytes);

        // Nor is a valid frame whose seq goes backwards (two logs pasted together).
        let mut pasted = std::fs::read(&path).expect("read");
        pasted.truncate(ends[0] as usize);
        let again = encode_frame(1, &record(7)).expect("frame");
        pasted.extend_from_slice(&again);
        std::fs::write(&path, &pasted).expect("write");
        let err = FileLabelLog::open(&path).expect_err("must not open");
        assert!(err.to_string().contains("seq 1 after seq 1"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), pasted);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_removes_old_records_keeps_the_seqs_of_the_rest_and_readers_never_see_a_torn_file(
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        // record(i) is given at 1_700_000_000 + i.
        write_log(&path, 40).await;
        let (log, _) = FileLabelLog::open(&path).expect("open");
        let log = Arc::new(log);
        // Readers and a writer busy while the log is rewritten.
        let reader = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                for _ in 0..200 {
                    let all = log.read_all().await.expect("a read during expiry");
                    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
                    tokio::task::yield_now().await;
                }
            })
        };
        let writer = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 100..120 {
                    seqs.push(log.append(record(i)).await.expect("append"));
                }
                seqs
            })
        };
        let gone = log.expire_before(1_700_000_000 + 26).await.expect("expire");
        assert_eq!(gone, 25);
        reader.await.expect("reader");
        let appended = writer.await.expect("writer");
        assert_eq!(appended, (41..=60).collect::<Vec<_>>());
        assert_eq!(
            log.expire_before(1_700_000_000 + 26).await.expect("again"),
            0
        );

        let all = log.read_all().await.expect("read");
        let seqs: Vec<u64> = all.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, (26..=60).collect::<Vec<_>>());
        for l in &all {
            let i = if l.seq <= 40 { l.seq } else { l.seq - 41 + 100 };
            assert_eq!(l.record, record(i), "seq {}", l.seq);
        }
        assert_eq!(log.append(record(7)).await.expect("append"), 61);
        drop(log);
        let (reopened, report) = FileLabelLog::open(&path).expect("reopen");
        assert_eq!(report.bytes_dropped, 0);
        assert_eq!(report.records, 36);
        assert_eq!(report.last_seq, 61);
        assert_eq!(reopened.read_all().await.expect("read").len(), 36);
        assert!(!dir.path().join("labels.log.rewrite-tmp").exists());
    }

    #[tokio::test]
    async fn an_oversized_record_is_refused_and_the_log_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = FileLabelLog::open(dir.path().join("labels.log")).expect("open");
        let mut big = record(1);
        big.comment.content = "x".repeat(MAX_RECORD_BYTES);
        let err = log.append(big).await.expect_err("too large");
        assert!(matches!(err, LabelLogError::TooLarge { .. }), "{err}");
        assert_eq!(log.append(record(2)).await.expect("append"), 1);
        assert_eq!(
            records_of(&log.read_all().await.expect("read")),
            vec![record(2)]
        );
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("labels.log");
        let err = FileLabelLog::open(&path).expect_err("no directory");
        assert!(
            matches!(err, LabelLogError::Io { op: "create", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("no-such-dir/labels.log"), "{err}");
    }

    #[tokio::test]
    async fn after_a_failed_write_every_append_fails_and_none_is_acknowledged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let (log, _) = FileLabelLog::open(&path).expect("open");
        assert_eq!(log.append(record(1)).await.expect("append"), 1);
        log.hooks.fail_writes();
        let first = log.append(record(2)).await.expect_err("the write fails");
        let failed_on_write = |e: &LabelLogError| match e {
            LabelLogError::WriterFailed { cause, .. } => cause.starts_with("write failed"),
            _ => false,
        };
        assert!(failed_on_write(&first), "{first}");
        assert!(first.to_string().contains("labels.log"), "{first}");
        for i in 3..=5 {
            let later = log.append(record(i)).await.expect_err("poisoned");
            // The first cause, not a new one: nothing was written after the failure.
            assert!(failed_on_write(&later), "{later}");
        }
        assert_eq!(log.syncs(), 1);
        assert_eq!(
            records_of(&log.read_all().await.expect("read")),
            vec![record(1)]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_all_during_appends_sees_only_whole_acknowledged_prefixes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = FileLabelLog::open(dir.path().join("labels.log")).expect("open");
        let log = Arc::new(log);
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    for k in 0..100u64 {
                        log.append(record(t * 100 + k)).await.expect("append");
                    }
                })
            })
            .collect();
        let mut last = 0;
        let mut reads = 0;
        while writers.iter().any(|w| !w.is_finished()) {
            let all = log.read_all().await.expect("read_all");
            assert_eq!(seqs_of(&all), (1..=all.len() as u64).collect::<Vec<_>>());
            assert!(
                all.len() >= last,
                "the log shrank from {last} to {}",
                all.len()
            );
            last = all.len();
            reads += 1;
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.expect("writer");
        }
        assert_eq!(log.read_all().await.expect("read_all").len(), 400);
        assert!(reads > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_concurrent_appends_complete_and_read_back() {
        const N: u64 = 10_000;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let (log, _) = FileLabelLog::open(&path).expect("open");
        let log = Arc::new(log);
        let tasks: Vec<_> = (1..=N)
            .map(|i| {
                let log = Arc::clone(&log);
                tokio::spawn(async move { (i, log.append(record(i)).await) })
            })
            .collect();
        let mut acks = Vec::with_capacity(N as usize);
        for task in tasks {
            let (i, seq) = task.await.expect("task");
            acks.push((i, seq.expect("append")));
        }
        // Group commit: concurrent appends share fsyncs (2-5 in all when measured; a tenth of
        // the appends is far above anything seen, and still proves the sharing).
        assert!(
            log.syncs() < N / 10,
            "{} fsyncs for {N} concurrent appends",
            log.syncs()
        );

        let all = log.read_all().await.expect("read_all");
        assert_eq!(seqs_of(&all), (1..=N).collect::<Vec<_>>());
        for &(i, seq) in &acks {
            assert_eq!(all[seq as usize - 1].record, record(i));
        }
        drop(log);
        let (_, report) = FileLabelLog::open(&path).expect("reopen");
        assert_eq!(report.records, N);
        assert_eq!(report.bytes_dropped, 0);
    }
}
