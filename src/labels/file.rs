//! The file label log: an append-only file of checksummed frames, with group commit.
//!
//! # Format
//! The file is a sequence of frames and nothing else (no file header):
//!
//! ```text
//! magic    4 bytes   b"HGL1"
//! length   u32 LE    bytes in the payload, at most MAX_RECORD_BYTES (1 MiB)
//! crc      u32 LE    CRC-32 (IEEE) of the payload
//! payload  length    JSON of one LabelRecord
//! ```
//!
//! A record's seq is its 1-based position in the file. Frames are only ever added at the end.
//!
//! # Recovery
//! A crash (or power loss) in the middle of a write can leave a torn frame at the end of the
//! file: a partial header, a partial payload, or a full-length payload whose bytes never made it
//! to the disk. [`FileLabelLog::open`] therefore scans from the start and stops at the first frame
//! that is incomplete, has a bad magic, claims an absurd length (more than 1 MiB) or fails its
//! CRC. Everything from there on is the tail: the file is truncated to the end of the last good
//! frame (and synced), and the [`RecoveryReport`] says how many records were kept and how many
//! bytes were dropped. None of those records was ever acknowledged: an append resolves only
//! after its frame and everything before it are on disk.
//!
//! A bad frame followed by good-looking frames is still treated as the end of the log. A length
//! field cannot be trusted once its frame is bad, so there is no sound way to find the next frame
//! boundary; searching for the magic could land inside a payload that happens to contain it. The
//! log never misreads and never skips: what follows a bad frame is dropped. (A bad frame in the
//! middle means the disk lost acknowledged data; only the warning tells, so alert on it.)
//!
//! A frame whose CRC matches but whose payload is not a `LabelRecord` is different: those bytes
//! are exactly what some writer wrote (perhaps a newer hamgate), so opening fails with
//! [`LabelLogError::Corrupt`] instead of truncating them away.
//!
//! # Group commit
//! One writer thread owns the file. Appends encode their frame on the caller's task, queue it
//! and wait. The writer takes everything that is queued (up to a few MiB), writes it with one
//! `write`, calls `sync_data` once, and only then acknowledges every append in that batch, in
//! order. While one `fsync` runs, the next appends queue up and share the next one, so the
//! number of `fsync`s per second stays bounded by the disk while throughput grows with the
//! number of concurrent callers.
//!
//! If a write or `fsync` fails, the writer acknowledges that batch and every later append with
//! [`LabelLogError::WriterFailed`] and never writes again: after a failed `fsync` the kernel may
//! already have dropped the dirty pages, so retrying could acknowledge data that is not on disk.
//! Reopening the log (which recovers the tail) is the way back.
//!
//! One process per file: nothing locks the file, and two writers would interleave frames.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use super::{LabelLog, LabelLogError, LabelRecord, LogFuture, LoggedLabel, MAX_RECORD_BYTES};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"HGL1";
/// Magic, length and CRC.
pub const HEADER_BYTES: usize = 12;
/// Appends that may wait for the writer before `append` itself waits (back-pressure).
const QUEUE: usize = 4096;
/// The writer stops adding frames to a batch once it holds this many bytes.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Why recovery stopped reading before the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailDefect {
    /// The file ends inside a frame.
    Incomplete,
    /// The frame does not start with [`MAGIC`].
    BadMagic,
    /// The frame claims a payload longer than [`MAX_RECORD_BYTES`].
    TooLong(u32),
    /// The payload's CRC does not match the header's.
    CrcMismatch,
}

impl fmt::Display for TailDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TailDefect::Incomplete => f.write_str("the file ends inside a frame"),
            TailDefect::BadMagic => f.write_str("the frame has a bad magic"),
            TailDefect::TooLong(n) => write!(f, "the frame claims an absurd length of {n} bytes"),
            TailDefect::CrcMismatch => f.write_str("the frame's CRC does not match its payload"),
        }
    }
}

/// What [`FileLabelLog::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records kept (the log's length after opening).
    pub records: u64,
    /// Bytes kept: the end of the last good frame, and now the file's length.
    pub valid_bytes: u64,
    /// Bytes of torn or corrupt tail that were cut off (0 for a clean file).
    pub bytes_dropped: u64,
    /// What was wrong with the first dropped frame, when anything was dropped.
    pub defect: Option<TailDefect>,
}

/// The file label log. Cheap to share behind an `Arc`; dropping it stops the writer thread once
/// the queue is empty.
pub struct FileLabelLog {
    path: PathBuf,
    queue: mpsc::Sender<PendingAppend>,
    committed: Arc<Mutex<Committed>>,
    syncs: Arc<AtomicU64>,
    #[cfg(test)]
    pause: Arc<test_hooks::Pause>,
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

/// One append waiting for the writer.
struct PendingAppend {
    frame: Vec<u8>,
    ack: oneshot::Sender<Result<u64, LabelLogError>>,
}

impl FileLabelLog {
    /// Opens (or creates) the log at `path`, recovers a torn or corrupt tail (see the module
    /// docs) and starts the writer thread. Blocking: call it at start-up, or from
    /// `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<(FileLabelLog, RecoveryReport), LabelLogError> {
        let path = path.as_ref().to_path_buf();
        // Append mode: every write lands at the end, whatever anyone did to the file position.
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_error(&path, "open"))?;
        // A newly created file is durable only once its directory entry is.
        sync_parent_dir(&path)?;
        let file_len = file.metadata().map_err(io_error(&path, "stat"))?.len();

        let scan = scan(&path, BufReader::new(&file), |_| ())?;
        let bytes_dropped = file_len.saturating_sub(scan.good_bytes);
        let report = RecoveryReport {
            records: scan.records,
            valid_bytes: scan.good_bytes,
            bytes_dropped,
            defect: scan.defect.filter(|_| bytes_dropped > 0),
        };
        if bytes_dropped > 0 {
            file.set_len(scan.good_bytes)
                .map_err(io_error(&path, "truncate the torn tail"))?;
            file.sync_all()
                .map_err(io_error(&path, "sync after truncating"))?;
            tracing::warn!(
                path = %path.display(),
                kept_records = scan.records,
                kept_bytes = scan.good_bytes,
                dropped_bytes = bytes_dropped,
                defect = %scan.defect.map_or_else(String::new, |d| d.to_string()),
                "label log had a torn or corrupt tail; truncated it after the last good record"
            );
        } else {
            tracing::debug!(path = %path.display(), records = scan.records, "label log opened");
        }

        let committed = Arc::new(Mutex::new(Committed {
            bytes: scan.good_bytes,
            records: scan.records,
        }));
        let syncs = Arc::new(AtomicU64::new(0));
        let (queue, pending) = mpsc::channel(QUEUE);
        #[cfg(test)]
        let pause = Arc::new(test_hooks::Pause::default());
        let writer = Writer {
            path: path.clone(),
            file,
            written: scan.good_bytes,
            next_seq: scan.records + 1,
            committed: Arc::clone(&committed),
            syncs: Arc::clone(&syncs),
            failed: None,
            #[cfg(test)]
            pause: Arc::clone(&pause),
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
            #[cfg(test)]
            pause,
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

impl LabelLog for FileLabelLog {
    fn append<'a>(&'a self, record: LabelRecord) -> LogFuture<'a, u64> {
        Box::pin(async move {
            let frame = encode_frame(&record)?;
            let (ack, acked) = oneshot::channel();
            // If this future is dropped after the send, the record is still written (and may be
            // in the log) but nobody is told: the same "maybe" as any failed append.
            self.queue
                .send(PendingAppend { frame, ack })
                .await
                .map_err(|_| self.writer_stopped())?;
            acked.await.map_err(|_| self.writer_stopped())?
        })
    }

    fn read_all<'a>(&'a self) -> LogFuture<'a, Vec<LoggedLabel>> {
        Box::pin(async move {
            // A std mutex is fine here: it guards two integers, is held for a copy and never
            // across an await.
            let committed = *lock(&self.committed);
            let path = self.path.clone();
            let task_path = path.clone();
            tokio::task::spawn_blocking(move || read_committed(&task_path, committed))
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
}

/// The writer thread's state. It alone writes to the file and assigns seqs.
struct Writer {
    path: PathBuf,
    file: File,
    /// Bytes in the file that are durable.
    written: u64,
    /// The seq the next record gets.
    next_seq: u64,
    committed: Arc<Mutex<Committed>>,
    syncs: Arc<AtomicU64>,
    /// The first failure; once set, nothing more is written.
    failed: Option<String>,
    #[cfg(test)]
    pause: Arc<test_hooks::Pause>,
}

impl Writer {
    /// Commits batches until every sender (the log) is gone and the queue is empty.
    fn run(mut self, mut queue: mpsc::Receiver<PendingAppend>) {
        let mut batch = Vec::new();
        let mut buf = Vec::new();
        while let Some(first) = queue.blocking_recv() {
            #[cfg(test)]
            self.pause.wait_while_paused();
            let mut bytes = first.frame.len();
            batch.push(first);
            while bytes < MAX_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(next) => {
                        bytes += next.frame.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.commit(&mut batch, &mut buf);
        }
        tracing::debug!(path = %self.path.display(), "label log writer stopped");
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
        for pending in batch.iter() {
            buf.extend_from_slice(&pending.frame);
        }
        let result = self
            .file
            .write_all(buf)
            .map_err(|e| ("write", e))
            .and_then(|()| self.file.sync_data().map_err(|e| ("fsync", e)));
        match result {
            Ok(()) => {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                let first_seq = self.next_seq;
                self.next_seq += batch.len() as u64;
                self.written += buf.len() as u64;
                // Publish before acknowledging, so a read after an acknowledged append sees it.
                *lock(&self.committed) = Committed {
                    bytes: self.written,
                    records: self.next_seq - 1,
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

/// The frame of `record`: magic, payload length, payload CRC, payload.
pub fn encode_frame(record: &LabelRecord) -> Result<Vec<u8>, LabelLogError> {
    let payload = serde_json::to_vec(record).map_err(|e| LabelLogError::Encode(e.to_string()))?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n as usize <= MAX_RECORD_BYTES)
        .ok_or(LabelLogError::TooLarge {
            bytes: payload.len(),
            max: MAX_RECORD_BYTES,
        })?;
    let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// How far a scan got.
#[derive(Debug)]
struct Scan {
    /// Good frames read.
    records: u64,
    /// Where the last good frame ends.
    good_bytes: u64,
    /// Why the scan stopped, when it stopped at a bad frame rather than at the end.
    defect: Option<TailDefect>,
}

/// Reads frames from `reader` until the end or the first bad frame, handing each record to
/// `keep`. A frame with a good CRC that is not a label record is an error, not a defect.
fn scan(
    path: &Path,
    mut reader: impl Read,
    mut keep: impl FnMut(LabelRecord),
) -> Result<Scan, LabelLogError> {
    let mut scan = Scan {
        records: 0,
        good_bytes: 0,
        defect: None,
    };
    let mut header = [0u8; HEADER_BYTES];
    loop {
        let got = read_up_to(&mut reader, &mut header).map_err(io_error(path, "read"))?;
        if got == 0 {
            return Ok(scan);
        }
        let [m0, m1, m2, m3, l0, l1, l2, l3, c0, c1, c2, c3] = header;
        let magic = [m0, m1, m2, m3];
        // Judge the magic on the bytes that are there, so short garbage counts as garbage.
        let seen = got.min(MAGIC.len());
        if magic.get(..seen) != MAGIC.get(..seen) {
            scan.defect = Some(TailDefect::BadMagic);
            return Ok(scan);
        }
        if got < HEADER_BYTES {
            scan.defect = Some(TailDefect::Incomplete);
            return Ok(scan);
        }
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        if len as usize > MAX_RECORD_BYTES {
            scan.defect = Some(TailDefect::TooLong(len));
            return Ok(scan);
        }
        let mut payload = vec![0u8; len as usize];
        let got = read_up_to(&mut reader, &mut payload).map_err(io_error(path, "read"))?;
        if got < payload.len() {
            scan.defect = Some(TailDefect::Incomplete);
            return Ok(scan);
        }
        if crc32fast::hash(&payload) != u32::from_le_bytes([c0, c1, c2, c3]) {
            scan.defect = Some(TailDefect::CrcMismatch);
            return Ok(scan);
        }
        let record = serde_json::from_slice(&payload).map_err(|e| LabelLogError::Corrupt {
            path: path.to_path_buf(),
            offset: scan.good_bytes,
            detail: format!("the frame's CRC matches but its payload is not a label record: {e}"),
        })?;
        keep(record);
        scan.records += 1;
        scan.good_bytes += (HEADER_BYTES + payload.len()) as u64;
    }
}

/// Reads the durable prefix of the log. Everything in it was synced and acknowledged, so any
/// defect there is corruption, reported rather than skipped.
fn read_committed(path: &Path, committed: Committed) -> Result<Vec<LoggedLabel>, LabelLogError> {
    let file = File::open(path).map_err(io_error(path, "open for reading"))?;
    // Capacity from the count, bounded in case the file is far smaller than it should be.
    let mut out = Vec::with_capacity(committed.records.min(1 << 16) as usize);
    let reader = BufReader::new(file).take(committed.bytes);
    let scan = scan(path, reader, |record| {
        out.push(LoggedLabel {
            seq: out.len() as u64 + 1,
            record,
        })
    })?;
    if let Some(defect) = scan.defect {
        return Err(LabelLogError::Corrupt {
            path: path.to_path_buf(),
            offset: scan.good_bytes,
            detail: format!("{defect}, in data that was acknowledged as durable"),
        });
    }
    if scan.good_bytes < committed.bytes {
        return Err(LabelLogError::Corrupt {
            path: path.to_path_buf(),
            offset: scan.good_bytes,
            detail: format!(
                "the file ends before the {} bytes that were acknowledged",
                committed.bytes
            ),
        });
    }
    Ok(out)
}

/// Fills as much of `buf` as the reader has; fewer bytes than asked only at the end.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Syncs the directory holding `path`, so that the file's creation is durable.
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
    //! group commit can be observed deterministically.
    use std::sync::{Condvar, Mutex, PoisonError};

    #[derive(Default)]
    pub(super) struct Pause {
        paused: Mutex<bool>,
        resumed: Condvar,
    }

    impl Pause {
        pub(super) fn set(&self, paused: bool) {
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
    fn decode(bytes: &[u8]) -> (Vec<LabelRecord>, Scan) {
        let mut out = Vec::new();
        let scan = scan(Path::new("<bytes>"), bytes, |r| out.push(r)).expect("scan");
        (out, scan)
    }

    /// A log at `path` holding `record(1..=n)`, closed again; returns the file length after
    /// each record.
    async fn write_log(path: &Path, n: u64) -> Vec<u64> {
        let (log, report) = FileLabelLog::open(path).expect("open");
        assert_eq!(report.records, 0);
        let mut ends = Vec::new();
        for i in 1..=n {
            assert_eq!(log.append(record(i)).await.expect("append"), i);
            ends.push(std::fs::metadata(path).expect("stat").len());
        }
        ends
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
        assert_eq!(report.defect, None);
        assert_eq!(reopened.read_all().await.expect("read_all"), all);
        assert_eq!(
            reopened.append(record(1000)).await.expect("append"),
            n as u64 + 1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_queued_during_a_write_share_one_fsync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = FileLabelLog::open(dir.path().join("labels.log")).expect("open");
        let log = Arc::new(log);
        log.pause.set(true);
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
        log.pause.set(false);
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
        assert_eq!(std::fs::read(&path).expect("read").len(), 0);
        for i in 1..=3u64 {
            assert_eq!(log.append(record(i)).await.expect("append"), i);
            // Read behind the log's back, with the log still open.
            let bytes = std::fs::read(&path).expect("read");
            let (records, scan) = decode(&bytes);
            assert_eq!(records, (1..=i).map(record).collect::<Vec<_>>());
            assert_eq!(scan.defect, None);
            assert_eq!(scan.good_bytes, bytes.len() as u64);
        }
        // One at a time, so one fsync each.
        assert_eq!(log.syncs(), 3);
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
            let torn = dir.path().join(format!("torn-{cut}.log"));
            std::fs::write(&torn, &full[..cut]).expect("write");
            let report = assert_recovers(&torn, 2, start as u64).await;
            assert_eq!(report.bytes_dropped, (cut - start) as u64, "cut at {cut}");
            let expected = if cut == start {
                None
            } else {
                Some(TailDefect::Incomplete)
            };
            assert_eq!(report.defect, expected, "cut at {cut}");
            std::fs::remove_file(&torn).expect("remove");
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
            let defect = report.defect.expect("a defect");
            // A flipped length byte may read as too short (CRC mismatch), past the end of the
            // file (incomplete) or absurd; any of them is fine, as long as the frame goes.
            if at < start + 4 {
                assert_eq!(defect, TailDefect::BadMagic, "byte {at}");
            } else if at >= start + 8 {
                assert_eq!(defect, TailDefect::CrcMismatch, "byte {at}");
            }
            std::fs::remove_file(&p).expect("remove");
        }
    }

    #[tokio::test]
    async fn garbage_after_valid_records_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, 3).await;
        let full = std::fs::read(&path).expect("read");

        const JUNK: &[u8] = b"not a frame at all, just some junk\n";
        let mut garbage = full.clone();
        garbage.extend_from_slice(JUNK);
        std::fs::write(&path, &garbage).expect("write");
        let report = assert_recovers(&path, 3, ends[2]).await;
        assert_eq!(report.defect, Some(TailDefect::BadMagic));
        assert_eq!(report.bytes_dropped, JUNK.len() as u64);

        // A header with the right magic but an absurd length.
        let mut absurd = full.clone();
        absurd.extend_from_slice(&MAGIC);
        absurd.extend_from_slice(&u32::MAX.to_le_bytes());
        absurd.extend_from_slice(&[0; 4]);
        absurd.extend_from_slice(&[b'x'; 100]);
        std::fs::write(&path, &absurd).expect("write");
        let report = assert_recovers(&path, 3, ends[2]).await;
        assert_eq!(report.defect, Some(TailDefect::TooLong(u32::MAX)));
        assert_eq!(report.bytes_dropped, 112);
    }

    #[tokio::test]
    async fn a_bad_frame_ends_the_log_even_when_good_frames_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, 3).await;
        let mut bytes = std::fs::read(&path).expect("read");
        // Corrupt the second record's payload; the third stays intact but is dropped.
        bytes[ends[0] as usize + HEADER_BYTES + 3] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        let report = assert_recovers(&path, 1, ends[0]).await;
        assert_eq!(report.defect, Some(TailDefect::CrcMismatch));
        assert_eq!(report.bytes_dropped, ends[2] - ends[0]);
    }

    #[tokio::test]
    async fn a_checksummed_frame_that_is_not_a_record_fails_the_open_instead_of_being_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.log");
        let ends = write_log(&path, 1).await;
        let payload = br#"{"something":"else"}"#;
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        bytes.extend_from_slice(payload);
        std::fs::write(&path, &bytes).expect("write");
        let err = FileLabelLog::open(&path).expect_err("must not open");
        assert!(
            matches!(err, LabelLogError::Corrupt { offset, .. } if offset == ends[0]),
            "{err}"
        );
        assert!(err.to_string().contains("labels.log"), "{err}");
        // Nothing was truncated.
        assert_eq!(std::fs::read(&path).expect("read"), bytes);
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
        assert!(matches!(err, LabelLogError::Io { op: "open", .. }), "{err}");
        assert!(err.to_string().contains("no-such-dir/labels.log"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn after_a_failed_write_every_append_fails_and_none_is_acknowledged() {
        // Every write to /dev/full fails with ENOSPC.
        let (log, report) = FileLabelLog::open("/dev/full").expect("open /dev/full");
        assert_eq!(report.records, 0);
        let first = log.append(record(1)).await.expect_err("the write fails");
        let failed_on_write = |e: &LabelLogError| match e {
            LabelLogError::WriterFailed { cause, .. } => cause.starts_with("write failed"),
            _ => false,
        };
        assert!(failed_on_write(&first), "{first}");
        assert!(first.to_string().contains("/dev/full"), "{first}");
        for i in 2..=4 {
            let later = log.append(record(i)).await.expect_err("poisoned");
            // The first cause, not a new one: nothing was written after the failure.
            assert!(failed_on_write(&later), "{later}");
        }
        assert_eq!(log.syncs(), 0);
        assert!(log.read_all().await.expect("read").is_empty());
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
        let started = Instant::now();
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
        let elapsed = started.elapsed();
        eprintln!(
            "{N} concurrent appends took {elapsed:?} with {} fsyncs (mean group {:.1})",
            log.syncs(),
            N as f64 / log.syncs().max(1) as f64
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
