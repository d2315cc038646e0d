//! Retraining: a new model from the base corpus plus the label log, admitted only when it is
//! not worse than the model in service on labels neither has learned from.
//!
//! The most recent labels (by log position, [`RetrainParams::holdback`] of them) are held back:
//! the candidate is trained on the base corpus and the older labels, and both the candidate and
//! the current model score the held-back labels. The candidate is accepted when its AUC there is
//! at least the current model's minus [`RetrainParams::tolerance`]; both scores are reported
//! either way. A log of deliberately flipped labels makes the candidate worse on the held-back
//! (true) labels, so it is refused and the current model stays.
//!
//! [`ModelDir`] keeps the versions: `model-<version>.hgm` files plus a `CURRENT` file naming
//! the one in service, replaced atomically (write, fsync, rename); the last
//! [`ModelDir::KEEP`] versions are kept, so a rollback is one step back.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::comment::Label;
use crate::corpus::{dedup, DedupStats, Example};
use crate::eval::{predict, report};
use crate::labels::LoggedLabel;
use crate::model::{train, Model, ModelFileError, TrainParams};

/// How a retrain runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrainParams {
    /// Training parameters of the candidate.
    pub train: TrainParams,
    /// Fraction of the most recent labels held back for the comparison (at least 20 labels).
    pub holdback: f64,
    /// How much lower than the current model's AUC the candidate's may be and still be accepted.
    pub tolerance: f64,
}

impl Default for RetrainParams {
    fn default() -> Self {
        RetrainParams {
            train: TrainParams::default(),
            holdback: 0.2,
            tolerance: 0.005,
        }
    }
}

/// What a retrain found.
#[derive(Debug, Clone, Serialize)]
pub struct RetrainReport {
    /// Base corpus comments used (after deduplication with the labels).
    pub base_examples: usize,
    /// Labels trained on.
    pub labels_trained: usize,
    /// Labels held back for the comparison.
    pub labels_held_back: usize,
    /// The current model's AUC on the held-back labels.
    pub current_auc: f64,
    /// The candidate's AUC on the held-back labels.
    pub candidate_auc: f64,
    /// Whether the candidate is accepted.
    pub accepted: bool,
    /// Why, in words.
    pub verdict: String,
}

/// Why a retrain could not run.
#[derive(Debug, thiserror::Error)]
pub enum RetrainError {
    /// Too few labels, or a class missing among the held-back labels.
    #[error("{0}")]
    NotEnoughLabels(String),
    /// Training failed.
    #[error("training the candidate: {0}")]
    Train(String),
}

/// Trains a candidate and compares it with `current`; see the module docs.
pub fn retrain(
    base: &[Example],
    labels: &[LoggedLabel],
    current: &Model,
    params: &RetrainParams,
    corpus_digest: &str,
) -> Result<(Model, RetrainReport), RetrainError> {
    let mut ordered: Vec<&LoggedLabel> = labels.iter().collect();
    ordered.sort_by_key(|l| l.seq);
    let n_hold = ((ordered.len() as f64 * params.holdback).ceil() as usize).max(20);
    if ordered.len() < n_hold + 1 {
        return Err(RetrainError::NotEnoughLabels(format!(
            "{} labels in the log; a retrain holds back the most recent {n_hold} to judge the candidate and needs more to learn from",
            ordered.len()
        )));
    }
    let (older, recent) = ordered.split_at(ordered.len() - n_hold);
    let as_example = |l: &LoggedLabel| Example {
        comment: l.record.comment.clone(),
        label: l.record.label,
        group: format!("labels:{}", l.record.site),
        site: l.record.site.clone(),
        source: format!("labels:{}", l.record.site),
    };
    let held: Vec<Example> = recent.iter().map(|l| as_example(l)).collect();
    if !held.iter().any(|e| e.label == Label::Spam) || !held.iter().any(|e| e.label == Label::Ham) {
        return Err(RetrainError::NotEnoughLabels(
            "the held-back labels need both spam and ham to compare models".into(),
        ));
    }

    // Labels come first so that, on a duplicate, the moderator's label wins over the corpus.
    let mut training: Vec<Example> = older.iter().map(|l| as_example(l)).collect();
    training.extend(base.iter().cloned());
    let before = training.len();
    let (training, stats) = dedup(training);
    let labels_trained = older.len();
    let mut candidate = train(
        &training,
        &params.train,
        corpus_digest,
        DedupStats { before, ..stats },
        &|| {},
    )
    .map_err(RetrainError::Train)?;
    candidate.header_mut().labels_through = older.last().map_or(0, |l| l.seq);

    let current_auc = report(&predict(current, &held)).auc;
    let candidate_auc = report(&predict(&candidate, &held)).auc;
    let accepted = candidate_auc >= current_auc - params.tolerance;
    let verdict = if accepted {
        format!("accepted: AUC on the {} held-back labels {candidate_auc:.4} (current {current_auc:.4})", held.len())
    } else {
        format!(
            "refused: AUC on the {} held-back labels {candidate_auc:.4} is worse than the current model's {current_auc:.4}; the current model stays",
            held.len()
        )
    };
    Ok((
        candidate,
        RetrainReport {
            base_examples: base.len(),
            labels_trained,
            labels_held_back: held.len(),
            current_auc,
            candidate_auc,
            accepted,
            verdict,
        },
    ))
}

/// A model file and its version (the hash of its bytes, the name a model directory gives it),
/// for whoever serves or describes a model outside a model directory.
pub fn load_with_version(path: &Path) -> Result<(Model, String), ModelFileError> {
    let bytes = std::fs::read(path).map_err(|e| ModelFileError {
        path: path.to_path_buf(),
        kind: crate::model::file::ModelFileErrorKind::Io(e),
    })?;
    let model = Model::from_bytes(&bytes).map_err(|kind| ModelFileError {
        path: path.to_path_buf(),
        kind,
    })?;
    Ok((model, crate::model::file::version_of(&bytes)))
}

/// The built-in model and its version.
pub fn embedded_with_version() -> Result<(Model, String), ModelFileError> {
    Ok((
        Model::embedded()?,
        crate::model::file::version_of(crate::model::EMBEDDED_MODEL),
    ))
}

/// A directory of model versions with a `CURRENT` pointer; see the module docs.
#[derive(Debug, Clone)]
pub struct ModelDir {
    path: PathBuf,
}

/// Why the model directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    /// A file operation failed.
    #[error("model directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A model file is bad.
    #[error(transparent)]
    Model(#[from] ModelFileError),
    /// There is no version to go back to, or none at all.
    #[error("{0}")]
    NoVersion(String),
}

impl ModelDir {
    /// Versions kept.
    pub const KEEP: usize = 5;

    /// The directory at `path`, created when missing (for `serve --model-dir`, which installs
    /// versions there).
    pub fn open(path: impl AsRef<Path>) -> Result<ModelDir, ModelDirError> {
        let dir = Self::existing_or_new(path);
        dir.create()?;
        Ok(dir)
    }

    /// The directory at `path`, which must exist: for commands that only read it or change
    /// what is already there (`model-info`, `rollback`). Nothing is created.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<ModelDir, ModelDirError> {
        let path = path.as_ref().to_path_buf();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => Ok(ModelDir { path }),
            Ok(_) => Err(ModelDirError::Io {
                path,
                source: std::io::Error::other("not a directory"),
            }),
            Err(source) => Err(ModelDirError::Io { path, source }),
        }
    }

    /// The directory at `path`, whether or not it exists yet; nothing is touched until
    /// [`ModelDir::create`] or [`ModelDir::install`]. A missing directory has no versions.
    pub fn existing_or_new(path: impl AsRef<Path>) -> ModelDir {
        ModelDir {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// Creates the directory when missing.
    pub fn create(&self) -> Result<(), ModelDirError> {
        std::fs::create_dir_all(&self.path).map_err(self.io(&self.path))
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> ModelDirError {
        let path = path.to_path_buf();
        move |source| ModelDirError::Io {
            path: path.clone(),
            source,
        }
    }

    /// The versions present, oldest first (by the order they were installed).
    pub fn versions(&self) -> Result<Vec<String>, ModelDirError> {
        let history = self.path.join("HISTORY");
        match std::fs::read_to_string(&history) {
            Ok(text) => Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && self.file_of(l).exists())
                .map(String::from)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.io(&history)(e)),
        }
    }

    fn file_of(&self, version: &str) -> PathBuf {
        self.path.join(format!("model-{version}.hgm"))
    }

    /// The version in service, if any.
    pub fn current_version(&self) -> Result<Option<String>, ModelDirError> {
        let current = self.path.join("CURRENT");
        match std::fs::read_to_string(&current) {
            Ok(v) => Ok(Some(v.trim().to_string()).filter(|v| !v.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&current)(e)),
        }
    }

    /// Loads the model in service with its version.
    pub fn load_current(&self) -> Result<(Model, String), ModelDirError> {
        let version = self.current_version()?.ok_or_else(|| {
            ModelDirError::NoVersion(format!("{} has no CURRENT model", self.path.display()))
        })?;
        Ok((Model::load(&self.file_of(&version))?, version))
    }

    fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<(), ModelDirError> {
        use std::io::Write;
        let target = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp{}", std::process::id()));
        let err = self.io(&target);
        let mut f = std::fs::File::create(&tmp).map_err(&err)?;
        f.write_all(bytes).map_err(&err)?;
        f.sync_all().map_err(&err)?;
        std::fs::rename(&tmp, &target).map_err(&err)?;
        if let Ok(dir) = std::fs::File::open(&self.path) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Installs `model` as a new version and makes it current; returns its version. Versions
    /// beyond the last [`ModelDir::KEEP`] are deleted.
    pub fn install(&self, model: &Model) -> Result<String, ModelDirError> {
        let bytes = model.to_bytes();
        let version = crate::model::file::version_of(&bytes);
        self.write_atomically(&format!("model-{version}.hgm"), &bytes)?;
        let mut history = self.versions()?;
        history.retain(|v| v != &version);
        history.push(version.clone());
        while history.len() > Self::KEEP {
            let old = history.remove(0);
            let _ = std::fs::remove_file(self.file_of(&old));
        }
        self.write_atomically("HISTORY", (history.join("\n") + "\n").as_bytes())?;
        self.write_atomically("CURRENT", version.as_bytes())?;
        Ok(version)
    }

    /// Makes the version before the current one current again; returns it.
    pub fn rollback(&self) -> Result<String, ModelDirError> {
        let history = self.versions()?;
        let current = self.current_version()?;
        let pos = current
            .as_ref()
            .and_then(|c| history.iter().position(|v| v == c))
            .ok_or_else(|| {
                ModelDirError::NoVersion("no current version to roll back from".into())
            })?;
        if pos == 0 {
            return Err(ModelDirError::NoVersion(
                "the current version is the oldest kept; there is nothing to roll back to".into(),
            ));
        }
        let previous = history[pos - 1].clone();
        // Drop the rolled-back version from the history so a second rollback goes further back.
        let remaining: Vec<String> = history
            .iter()
            .filter(|v| Some(*v) != current.as_ref())
            .cloned()
            .collect();
        self.write_atomically("HISTORY", (remaining.join("\n") + "\n").as_bytes())?;
        self.write_atomically("CURRENT", previous.as_bytes())?;
        Ok(previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::read_corpus;
    use crate::labels::LabelRecord;

    fn corpus(path: &str) -> Vec<Example> {
        let c = read_corpus(&[PathBuf::from(path)]).unwrap();
        dedup(c.examples).0
    }

    fn as_labels(examples: &[Example], flip: bool) -> Vec<LoggedLabel> {
        examples
            .iter()
            .enumerate()
            .map(|(i, e)| LoggedLabel {
                seq: i as u64 + 1,
                record: LabelRecord {
                    site: "sms".into(),
                    label: match (e.label, flip) {
                        (l, false) => l,
                        (Label::Spam, true) => Label::Ham,
                        (Label::Ham, true) => Label::Spam,
                    },
                    comment: e.comment.clone(),
                    check_id: String::new(),
                    moderator: String::new(),
                    reason: String::new(),
                    at: 0,
                    posted_at: None,
                    imported: false,
                },
            })
            .collect()
    }

    #[test]
    fn the_gate_accepts_true_labels_and_refuses_flipped_ones() {
        let base = corpus(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/corpus/youtube"
        ));
        let sms = corpus(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/corpus/sms/SMSSpamCollection"
        ));
        // The current model knows only YouTube (the shipped one has learned SMS already).
        let current = train(
            &base,
            &TrainParams::default(),
            "",
            DedupStats::default(),
            &|| {},
        )
        .unwrap();
        // 400 true SMS labels, the last 100 held back (true labels in both runs: the judge
        // must be honest data; flipping applies to what the candidate learns from).
        let true_labels = as_labels(&sms[..400], false);
        let params = RetrainParams {
            holdback: 0.25,
            ..RetrainParams::default()
        };
        let (_, good) = retrain(&base, &true_labels, &current, &params, "").unwrap();
        assert!(good.accepted, "{good:?}");
        assert!(good.candidate_auc > good.current_auc, "{good:?}");

        let mut poisoned = as_labels(&sms[..300], true);
        poisoned.extend(as_labels(&sms[300..400], false).into_iter().map(|mut l| {
            l.seq += 300;
            l
        }));
        let (_, bad) = retrain(&base, &poisoned, &current, &params, "").unwrap();
        assert!(!bad.accepted, "{bad:?}");
        assert!(bad.candidate_auc < bad.current_auc, "{bad:?}");
        assert!(bad.verdict.starts_with("refused"));
    }

    #[test]
    fn too_few_labels_is_a_clear_error() {
        let base = corpus(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/corpus/youtube"
        ));
        let labels = as_labels(&base[..10], false);
        let err = retrain(
            &base,
            &labels,
            &Model::embedded().unwrap(),
            &RetrainParams::default(),
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("10 labels"), "{err}");
    }

    #[test]
    fn model_dir_installs_keeps_and_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let md = ModelDir::open(dir.path()).unwrap();
        assert!(md.load_current().is_err());
        let base = corpus(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/corpus/youtube"
        ));
        let mut versions = Vec::new();
        for i in 0..7 {
            let params = TrainParams {
                created_at: i,
                ..TrainParams::default()
            };
            let m = train(&base[..600], &params, "", DedupStats::default(), &|| {}).unwrap();
            versions.push(md.install(&m).unwrap());
        }
        assert_eq!(
            md.versions().unwrap(),
            versions[2..].to_vec(),
            "keeps the last 5"
        );
        assert_eq!(
            md.current_version().unwrap().as_deref(),
            Some(versions[6].as_str())
        );
        let (loaded, v) = md.load_current().unwrap();
        assert_eq!(v, versions[6]);
        assert_eq!(crate::model::file::version_of(&loaded.to_bytes()), v);
        assert_eq!(md.rollback().unwrap(), versions[5]);
        assert_eq!(md.load_current().unwrap().1, versions[5]);
        assert_eq!(md.rollback().unwrap(), versions[4]);
        assert!(!dir
            .path()
            .join(format!("model-{}.hgm", versions[0]))
            .exists());
    }
}
