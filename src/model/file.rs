//! The model file (`.hgm`): versioned, self-describing, checksummed.
//!
//! Layout, all integers little-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `HGMODEL\0` |
//! | 4 | format version (`u32`, currently 1) |
//! | 4 | header length `h` (`u32`) |
//! | h | header: UTF-8 JSON ([`ModelHeader`]: feature space, tokenizer version, variant, corpus digest, thresholds, calibration, metrics, creation time) |
//! | 8 | feature count `n` (`u64`) |
//! | 16 n | features sorted by id: id `u64`, ham count `u32`, spam count `u32` |
//! | 32 | SHA-256 of everything above |
//!
//! Writing is deterministic: the same counts and header give the same bytes (features are sorted,
//! the header is a struct serialised in field order, the creation time comes from the caller).
//! Reading checks every length against the file before trusting it, so a truncated, corrupt or
//! foreign file is an error that names the file and the problem, never a panic.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::calibration::Calibration;
use super::counts::CountTable;
use super::{Model, NbParams};
use crate::corpus::DedupStats;
use crate::text::TOKENIZER_VERSION;
use crate::verdict::Thresholds;

/// The file's first eight bytes.
pub const MAGIC: &[u8; 8] = b"HGMODEL\0";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The feature space this build's tokenizer produces ids in.
pub const FEATURE_SPACE: &str = "fnv1a-64(kind, token)";
/// Headers larger than this are refused rather than allocated.
const MAX_HEADER_BYTES: u32 = 1 << 20;

/// What a model says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    /// How feature ids are computed.
    pub feature_space: String,
    /// The tokenizer version the counts were made with.
    pub tokenizer_version: u32,
    /// Naive Bayes variant and smoothing.
    pub nb: NbParams,
    /// Digest of the corpus files the model was trained on.
    pub corpus_digest: String,
    /// Digest of each of those files alone (see [`crate::corpus::Corpus::file_digests`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corpus_file_digests: Vec<String>,
    /// What deduplication did to the training corpus.
    pub dedup: DedupStats,
    /// Training documents per class as counted, `[ham, spam]`: with balanced sources a comment
    /// of a small (source, class) counts several times (see `model::train::balance_weights`).
    pub train_docs: [u64; 2],
    /// Platt calibration of the raw scores.
    pub calibration: Calibration,
    /// Decision thresholds (calibrated log-odds).
    pub thresholds: Thresholds,
    /// Training targets the thresholds were chosen for: `[ham rejected, spam accepted]`.
    pub threshold_targets: [f64; 2],
    /// Metrics measured on out-of-fold predictions at training time, as JSON.
    pub metrics: serde_json::Value,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// The seq of the last label-log record trained into the model (0: none, or not trained by
    /// a retrain). Records after it are what the sites' online layers still need to learn.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub labels_through: u64,
    /// How to score text of a kind the model never saw (a new site): a calibration and
    /// thresholds fitted on leave-one-source-out scores. `None` when the model was trained on a
    /// single source; the main calibration and thresholds serve then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<UnseenFit>,
}

/// Calibration and thresholds for text of an unseen kind, fitted on scores of each training
/// source by a model trained on the other sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnseenFit {
    /// The calibration of the evidence.
    pub calibration: Calibration,
    /// The thresholds on the calibrated log-odds.
    pub thresholds: Thresholds,
    /// The sources the fit held out one at a time.
    pub sources: Vec<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl ModelHeader {
    /// A header for a model with the given parameters and nothing measured yet.
    pub fn new(nb: NbParams) -> Self {
        ModelHeader {
            feature_space: FEATURE_SPACE.into(),
            tokenizer_version: TOKENIZER_VERSION,
            nb,
            corpus_digest: String::new(),
            corpus_file_digests: Vec::new(),
            dedup: DedupStats::default(),
            train_docs: [0, 0],
            calibration: Calibration::default(),
            thresholds: Thresholds::default(),
            threshold_targets: [0.005, 0.04],
            metrics: serde_json::Value::Null,
            created_at: 0,
            labels_through: 0,
            unseen: None,
        }
    }
}

/// Why a model file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("model file {path}: {kind}")]
pub struct ModelFileError {
    /// The file (or `<embedded>` for the built-in model).
    pub path: PathBuf,
    /// What is wrong.
    pub kind: ModelFileErrorKind,
}

/// The ways a model file can be bad.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelFileErrorKind {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a hamgate model.
    #[error("not a hamgate model (bad magic bytes)")]
    BadMagic,
    /// Written by another format version.
    #[error("format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// Shorter than its own lengths say.
    #[error("truncated: {0}")]
    Truncated(String),
    /// The checksum does not match the contents.
    #[error("checksum mismatch: the file is corrupt")]
    ChecksumMismatch,
    /// The header or body does not make sense.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Made with another tokenizer or feature space, so its feature ids mean other things.
    #[error("incompatible: {0}")]
    Incompatible(String),
}

/// A model's version: the first 12 hex digits of the SHA-256 of its file bytes, so every
/// replica serving the same file reports the same version.
pub fn version_of(bytes: &[u8]) -> String {
    crate::corpus::hex(&Sha256::digest(bytes)[..6])
}

impl Model {
    /// Serialises the model to bytes (deterministically; see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(self.header()).unwrap_or_default();
        let features = self.counts().sorted();
        let mut out = Vec::with_capacity(8 + 8 + header.len() + 8 + features.len() * 16 + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(features.len() as u64).to_le_bytes());
        for (id, [ham, spam]) in features {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&ham.to_le_bytes());
            out.extend_from_slice(&spam.to_le_bytes());
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Writes the model to `path` atomically (a temporary file in the same directory, fsync'd,
    /// then renamed over the target), so a reader never sees half a model.
    pub fn save(&self, path: &Path) -> Result<(), ModelFileError> {
        let err = |e: std::io::Error| ModelFileError {
            path: path.to_path_buf(),
            kind: ModelFileErrorKind::Io(e),
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&self.to_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(())
    }

    /// Reads a model from `path`.
    pub fn load(path: &Path) -> Result<Model, ModelFileError> {
        let bytes = std::fs::read(path).map_err(|e| ModelFileError {
            path: path.to_path_buf(),
            kind: ModelFileErrorKind::Io(e),
        })?;
        Model::from_bytes(&bytes).map_err(|kind| ModelFileError {
            path: path.to_path_buf(),
            kind,
        })
    }

    /// Parses a model from bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelFileErrorKind> {
        use ModelFileErrorKind::*;
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.take(8, "magic")?;
        if magic != MAGIC {
            return Err(BadMagic);
        }
        let version = r.u32("format version")?;
        if version != FORMAT_VERSION {
            return Err(UnsupportedVersion { found: version });
        }
        // The checksum covers everything but itself; check it before trusting any length
        // beyond the fixed prefix.
        if bytes.len() < 32 + r.pos {
            return Err(Truncated(format!(
                "{} bytes is too short for a model",
                bytes.len()
            )));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        let header_len = r.u32("header length")?;
        if header_len > MAX_HEADER_BYTES {
            return Err(Malformed(format!(
                "header length {header_len} is over the limit"
            )));
        }
        let header_bytes = r.take(header_len as usize, "header")?;
        let n = r.u64("feature count")?;
        let need = n
            .checked_mul(16)
            .and_then(|b| b.checked_add(r.pos as u64 + 32))
            .ok_or_else(|| Malformed(format!("feature count {n} is impossible")))?;
        if need != bytes.len() as u64 {
            return Err(if need > bytes.len() as u64 {
                Truncated(format!(
                    "{n} features need {need} bytes, file has {}",
                    bytes.len()
                ))
            } else {
                Malformed(format!(
                    "{} trailing bytes after the features",
                    bytes.len() as u64 - need
                ))
            });
        }
        if Sha256::digest(body).as_slice() != sum {
            return Err(ChecksumMismatch);
        }
        let header: ModelHeader = serde_json::from_slice(header_bytes)
            .map_err(|e| Malformed(format!("header is not a valid model header: {e}")))?;
        if header.feature_space != FEATURE_SPACE {
            return Err(Incompatible(format!(
                "feature space `{}`, this build uses `{FEATURE_SPACE}`",
                header.feature_space
            )));
        }
        if header.tokenizer_version != TOKENIZER_VERSION {
            return Err(Incompatible(format!(
                "tokenizer version {}, this build has version {TOKENIZER_VERSION}",
                header.tokenizer_version
            )));
        }
        header.nb.check().map_err(Malformed)?;
        let mut table = CountTable::default();
        table.features.reserve(n as usize);
        let mut last: Option<u64> = None;
        for _ in 0..n {
            let id = r.u64("feature id")?;
            let ham = r.u32("ham count")?;
            let spam = r.u32("spam count")?;
            if last.is_some_and(|l| l >= id) {
                return Err(Malformed("feature ids are not strictly increasing".into()));
            }
            last = Some(id);
            table.features.insert(id, [ham, spam]);
            table.totals[0] += u64::from(ham);
            table.totals[1] += u64::from(spam);
        }
        table.docs = header.train_docs;
        Ok(Model::new(header, table))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ModelFileErrorKind> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                ModelFileErrorKind::Truncated(format!(
                    "ends inside the {what} at byte {}",
                    self.bytes.len()
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, ModelFileErrorKind> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, ModelFileErrorKind> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}
