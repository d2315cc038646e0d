//! The directory of model versions: `retrain` (install a candidate only when it is not worse),
//! `rollback` and `model-info`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use hamgate::corpus::{dedup, read_corpus};
use hamgate::model::TrainParams;

use super::offline::created_at;

/// `hamgate retrain`.
#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// The base corpus.
    #[arg(long, default_values = ["models/corpus/youtube", "models/corpus/sms", "models/corpus/spamassassin"], num_args = 1..)]
    pub base_corpus: Vec<PathBuf>,
    /// The label log file.
    #[arg(long)]
    pub labels: PathBuf,
    /// The model directory (versions and CURRENT). With no current version there, the
    /// built-in model is the one to beat.
    #[arg(long)]
    pub model_dir: PathBuf,
    /// Fraction of the most recent labels held back to judge the candidate.
    #[arg(long, default_value_t = 0.2)]
    pub holdback: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_retrain(a: RetrainArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let corpus = read_corpus(&a.base_corpus)?;
    let digest = corpus.digest.clone();
    let (base, _) = dedup(corpus.examples);
    // Read-only: a retrain never creates, repairs or cuts a label log (the server does that).
    let (labels, recovery) = hamgate::labels::file::read_log(&a.labels)?;
    if let Some(notice) = recovery.notice(&a.labels) {
        tracing::warn!(
            "{notice}; retraining on the {} valid records",
            recovery.records
        );
    }
    // Nothing is written to the directory unless the candidate is installed.
    let dir = hamgate::retrain::ModelDir::existing_or_new(&a.model_dir);
    let (current, current_version, first_install) = match dir.load_current() {
        Ok((m, v)) => (m, v, false),
        Err(hamgate::retrain::ModelDirError::NoVersion(_)) => {
            let (model, version) = hamgate::retrain::embedded_with_version()?;
            (model, version, true)
        }
        Err(e) => return Err(e.into()),
    };
    let params = hamgate::retrain::RetrainParams {
        holdback: a.holdback,
        train: TrainParams {
            created_at: created_at(),
            ..TrainParams::default()
        },
        ..Default::default()
    };
    let (candidate, report) =
        hamgate::retrain::retrain(&base, &labels, &current, &params, &digest)?;
    let installed = if report.accepted {
        dir.create()?;
        if first_install {
            // A new directory starts from the built-in model, installed as its first version
            // so that a rollback can always return to it.
            dir.install(&current)?;
        }
        Some(dir.install(&candidate)?)
    } else {
        None
    };
    let seconds = started.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({
            "report": report,
            "previous_version": current_version,
            "installed_version": installed,
            "seconds": seconds,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", report.verdict);
        println!(
            "labels: {} trained on, {} held back; base corpus {} comments; {:.2} s",
            report.labels_trained, report.labels_held_back, report.base_examples, seconds
        );
        match installed {
            Some(v) => println!("installed version {v} (was {current_version})"),
            None => println!("kept version {current_version}"),
        }
    }
    if !report.accepted {
        std::process::exit(3);
    }
    Ok(())
}

pub fn cmd_model_info(model: Option<PathBuf>, model_dir: Option<PathBuf>) -> Result<()> {
    let (m, version) = match (model, model_dir) {
        (Some(p), _) => hamgate::retrain::load_with_version(&p)?,
        (None, Some(d)) => hamgate::retrain::ModelDir::open_existing(&d)?.load_current()?,
        (None, None) => hamgate::retrain::embedded_with_version()?,
    };
    let h = m.header();
    let v = serde_json::json!({
        "version": version,
        "created_at": h.created_at,
        "variant": h.nb,
        "features": m.counts().vocabulary(),
        "train_docs": {"ham": h.train_docs[0], "spam": h.train_docs[1]},
        "corpus_digest": h.corpus_digest,
        "thresholds": {
            "accept_below": h.thresholds.accept_below_probability(),
            "reject_at": h.thresholds.reject_at_probability(),
        },
        "metrics": h.metrics,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub fn cmd_rollback(model_dir: &Path) -> Result<()> {
    let dir = hamgate::retrain::ModelDir::open_existing(model_dir)?;
    let v = dir.rollback()?;
    println!("current model is now {v}");
    Ok(())
}
