//! Model work on files, with no server: `train`, `eval`, `eval-adapt`, `score` and `corpus`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use hamgate::comment::Comment;
use hamgate::corpus::{dedup, read_corpus, DedupStats, Example};
use hamgate::eval::{cross_validate, predict_as, report, report_by, HoldOut, Report};
use hamgate::model::{train, Model, NbParams, TrainParams, Variant};

/// Model hyperparameters shared by `train` and `eval --cv`.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Naive Bayes variant: binary-multinomial, multinomial, robinson-fisher.
    #[arg(long, default_value = "binary-multinomial")]
    pub variant: Variant,
    /// Smoothing (Lidstone alpha; Robinson's strength for robinson-fisher).
    #[arg(long, default_value_t = NbParams::default().alpha)]
    pub alpha: f64,
    /// Length normalisation exponent (0 = textbook naive Bayes).
    #[arg(long, default_value_t = NbParams::default().length_norm)]
    pub length_norm: f64,
    /// Largest fraction of validation ham the reject threshold may reject.
    #[arg(long, default_value_t = TrainParams::default().ham_reject_target)]
    pub ham_reject: f64,
    /// Largest fraction of validation spam the accept threshold may accept (4%: a point of
    /// margin under the 5% aimed at, as unseen data spreads wider than validation scores).
    #[arg(long, default_value_t = TrainParams::default().spam_accept_target)]
    pub spam_accept: f64,
    /// Weigh every (source, class) of the training data alike (true / false).
    #[arg(long, default_value_t = TrainParams::default().balance_sources, action = clap::ArgAction::Set)]
    pub balance_sources: bool,
    /// For a new site: largest fraction of any held-out source's ham the reject threshold may
    /// reject (fitted leave-one-source-out).
    #[arg(long, default_value_t = TrainParams::default().unseen_ham_reject)]
    pub unseen_ham_reject: f64,
    /// For a new site: largest fraction of any held-out source's spam the accept threshold may
    /// accept.
    #[arg(long, default_value_t = TrainParams::default().unseen_spam_accept)]
    pub unseen_spam_accept: f64,
}

impl ModelArgs {
    fn params(&self) -> TrainParams {
        TrainParams {
            nb: NbParams {
                variant: self.variant,
                alpha: self.alpha,
                length_norm: self.length_norm,
            },
            ham_reject_target: self.ham_reject,
            spam_accept_target: self.spam_accept,
            folds: 5,
            balance_sources: self.balance_sources,
            unseen_ham_reject: self.unseen_ham_reject,
            unseen_spam_accept: self.unseen_spam_accept,
            created_at: created_at(),
        }
    }
}
/// `hamgate train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Corpus files or directories (JSONL, YouTube CSV, SMS collection).
    #[arg(long, required = true, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
    /// Where to write the model.
    #[arg(long)]
    pub out: PathBuf,
    /// Hyperparameters.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// `hamgate eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model to evaluate (not with --cv).
    #[arg(long, conflicts_with = "cv")]
    pub model: Option<PathBuf>,
    /// Corpus files or directories to evaluate on (deduplicated first).
    #[arg(long, required = true, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
    /// Cross-validate instead: `group` trains on all groups but one and tests on it, for each;
    /// `source` does the same by source (a record's `source` field, else the file or directory
    /// named here) and reports each held-out source as well as the pooled figures.
    #[arg(long, value_parser = ["group", "source"])]
    pub cv: Option<String>,
    /// Decide as the service does for a site with too few labels of its own (`new-site`, the
    /// default), or with the thresholds fitted on seen kinds of text (`trained`).
    #[arg(long = "as", value_parser = ["new-site", "trained"], default_value = "new-site")]
    pub deciding: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write every prediction (label, verdict, probability, group, text) as JSONL here.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Hyperparameters for --cv.
    #[command(flatten)]
    pub params: ModelArgs,
}

/// `hamgate eval-adapt`.
#[derive(Debug, Args)]
pub struct EvalAdaptArgs {
    /// The starting model (default: the built-in one).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The new site's labelled comments (deduplicated first).
    #[arg(long, required = true, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
    /// Numbers of labels to learn, comma-separated.
    #[arg(long, default_value = "0,25,50,100,200", value_delimiter = ',')]
    pub steps: Vec<usize>,
    /// Random orders to average over.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// How many global counts one site count is worth.
    #[arg(long, default_value_t = hamgate::model::online::LayerParams::default().weight)]
    pub weight: f64,
    /// Labels of each class before the site is decided with the main thresholds (as the
    /// service's `policy.min_learns`).
    #[arg(long, default_value_t = hamgate::config::PolicySettings::default().min_learns)]
    pub min_learns: u64,
    /// Most of the site's ham its fitted thresholds may reject (as `policy.max_ham_rejected`).
    #[arg(long, default_value_t = hamgate::model::site_fit::Targets::default().max_ham_rejected)]
    pub max_ham_rejected: f64,
    /// Most of the site's spam its fitted thresholds may accept.
    #[arg(long, default_value_t = hamgate::model::site_fit::Targets::default().max_spam_accepted)]
    pub max_spam_accepted: f64,
    /// Decide with the model's main thresholds, not the site's own fitted ones (as
    /// `policy.site_thresholds = false`).
    #[arg(long)]
    pub main_thresholds: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
/// `hamgate score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The model (default: the one built into the binary).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// How many reasons to show.
    #[arg(long, default_value_t = 8)]
    pub top: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hamgate corpus`.
#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Corpus files or directories.
    #[arg(long, required = true, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
    /// Output file (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The creation time for new models: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
pub(crate) fn created_at() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
}

/// The deduplicated examples, what deduplication did, the corpus digest and each file's.
fn load_dedup(paths: &[PathBuf]) -> Result<(Vec<Example>, DedupStats, String, Vec<String>)> {
    let corpus = read_corpus(paths)?;
    let (examples, stats) = dedup(corpus.examples);
    tracing::info!(
        before = stats.before,
        kept = stats.kept,
        dropped = stats.dropped,
        conflicting = stats.conflicting,
        "corpus read and deduplicated"
    );
    Ok((examples, stats, corpus.digest, corpus.file_digests))
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} fits ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

pub fn cmd_train(a: TrainArgs) -> Result<()> {
    let (examples, stats, digest, file_digests) = load_dedup(&a.corpus)?;
    let params = a.model.params();
    let (_, folds) = hamgate::model::train::fold_assignment(&examples, params.folds);
    let bar = progress(folds as u64 + 1, "training");
    let mut model =
        train(&examples, &params, &digest, stats, &|| bar.inc(1)).map_err(anyhow::Error::msg)?;
    model.header_mut().corpus_file_digests = file_digests;
    bar.finish_and_clear();
    model.save(&a.out)?;
    let h = model.header();
    tracing::info!(
        path = %a.out.display(),
        features = model.counts().vocabulary(),
        ham = h.train_docs[0],
        spam = h.train_docs[1],
        accept_below_p = h.thresholds.accept_below_probability(),
        reject_at_p = h.thresholds.reject_at_probability(),
        "model written"
    );
    Ok(())
}

pub fn cmd_eval(a: EvalArgs) -> Result<()> {
    let (examples, stats, digest, file_digests) = load_dedup(&a.corpus)?;
    let mut parts = Vec::new();
    let deciding = if a.deciding == "trained" {
        hamgate::model::Familiarity::Known
    } else {
        hamgate::model::Familiarity::NewSite
    };
    let (preds, what) = match (&a.cv, &a.model) {
        (Some(cv), _) => {
            let params = a.params.params();
            let hold_out = if cv == "source" {
                HoldOut::Source
            } else {
                HoldOut::Group
            };
            let keys = hold_out.keys(&examples);
            let fits = keys
                .iter()
                .map(|k| {
                    let rest: Vec<Example> = examples
                        .iter()
                        .filter(|e| hold_out.key(e) != k)
                        .cloned()
                        .collect();
                    hamgate::model::train::fold_assignment(&rest, params.folds).1 as u64 + 1
                })
                .sum();
            let bar = progress(fits, "cross-validating");
            let preds = cross_validate(&examples, &params, hold_out, deciding, &|| bar.inc(1))
                .map_err(anyhow::Error::msg)?;
            bar.finish_and_clear();
            if hold_out == HoldOut::Source || HoldOut::Source.keys(&examples).len() > 1 {
                parts = report_by(&examples, &preds, HoldOut::Source);
            }
            (
                preds,
                format!("leave-one-{cv}-out over {} {cv}s", keys.len()),
            )
        }
        (None, model_path) => {
            let (model, what) = match model_path {
                Some(path) => (Model::load(path)?, format!("model {}", path.display())),
                None => (Model::embedded()?, "the built-in model".to_string()),
            };
            // Scores on a model's own training data say nothing about unseen comments.
            let seen = file_digests
                .iter()
                .filter(|d| model.header().corpus_file_digests.contains(d))
                .count();
            if model.header().corpus_digest == digest || seen > 0 {
                bail!("{what} was trained on this very corpus ({seen} of its {} files); evaluate on data it did not see (or use --cv group or --cv source)", file_digests.len());
            }
            (predict_as(&model, &examples, deciding), what)
        }
    };
    if let Some(path) = &a.predictions {
        write_predictions(path, &examples, &preds)?;
    }
    let r = report(&preds);
    if a.json {
        let mut v = serde_json::to_value(r)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("evaluated".into(), what.into());
            obj.insert("dedup".into(), serde_json::to_value(stats)?);
            if !parts.is_empty() {
                obj.insert("sources".into(), serde_json::to_value(&parts)?);
            }
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_report(&r, &what, &stats);
        if !parts.is_empty() {
            println!("by source:");
            println!(
                "  source                n     AUC     F1  ham rejected  spam accepted   held"
            );
            for p in &parts {
                let r = &p.report;
                println!(
                    "  {:<16} {:>6}  {:.4}  {:.3}  {:>11.2}%  {:>12.2}%  {:>5.1}%",
                    p.source,
                    r.n,
                    r.auc,
                    r.f1,
                    100.0 * r.ham_rejected,
                    100.0 * r.spam_accepted,
                    100.0 * r.held
                );
            }
        }
    }
    Ok(())
}

fn write_predictions(
    path: &std::path::Path,
    examples: &[Example],
    preds: &[hamgate::eval::Prediction],
) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for (ex, p) in examples.iter().zip(preds) {
        let line = serde_json::json!({
            "label": ex.label,
            "verdict": p.verdict,
            "spam_probability": hamgate::model::sigmoid(p.log_odds),
            "log_odds": p.log_odds,
            "group": ex.group,
            "content": ex.comment.content,
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

pub fn cmd_eval_adapt(a: EvalAdaptArgs) -> Result<()> {
    let model = match &a.model {
        Some(p) => Model::load(p)?,
        None => Model::embedded()?,
    };
    let (examples, _, _, _) = load_dedup(&a.corpus)?;
    anyhow::ensure!(
        a.weight > 0.0 && a.weight.is_finite(),
        "--weight must be positive"
    );
    let points = hamgate::eval::eval_adapt(
        &model,
        &examples,
        &a.steps,
        a.seeds,
        hamgate::model::online::LayerParams { weight: a.weight },
        a.min_learns,
        (!a.main_thresholds).then_some(hamgate::model::site_fit::Targets {
            max_ham_rejected: a.max_ham_rejected,
            max_spam_accepted: a.max_spam_accepted,
        }),
    );
    if a.json {
        println!("{}", serde_json::to_string_pretty(&points)?);
    } else {
        println!(
            "    k     AUC     F1  ham rejected  spam accepted   held   (mean of {} seeds)",
            a.seeds
        );
        for p in &points {
            println!(
                "{:>5}  {:.4}  {:.3}  {:>11.2}%  {:>12.2}%  {:>5.1}%",
                p.k,
                p.auc,
                p.f1,
                100.0 * p.ham_rejected,
                100.0 * p.spam_accepted,
                100.0 * p.held
            );
        }
    }
    Ok(())
}

fn print_report(r: &Report, what: &str, stats: &DedupStats) {
    println!("evaluated: {what}");
    println!(
        "examples:  {} ({} spam, {} ham) after dropping {} duplicates",
        r.n, r.n_spam, r.n_ham, stats.dropped
    );
    println!("AUC:       {:.4}", r.auc);
    println!(
        "at p=0.5:  precision {:.4}  recall {:.4}  F1 {:.4}  (TP {} FP {} TN {} FN {})",
        r.precision,
        r.recall,
        r.f1,
        r.true_positives,
        r.false_positives,
        r.true_negatives,
        r.false_negatives
    );
    println!("three-way:        accepted   held   rejected");
    println!(
        "  ham             {:>7.2}% {:>6.2}% {:>8.2}%",
        100.0 * r.ham_accepted,
        100.0 * r.ham_held,
        100.0 * r.ham_rejected
    );
    println!(
        "  spam            {:>7.2}% {:>6.2}% {:>8.2}%",
        100.0 * r.spam_accepted,
        100.0 * r.spam_held,
        100.0 * r.spam_rejected
    );
    println!("  held overall:   {:.2}%", 100.0 * r.held);
}

/// Largest comment `score` reads from stdin.
const MAX_STDIN_BYTES: u64 = 1 << 20;

pub fn cmd_score(a: ScoreArgs) -> Result<()> {
    let model = match &a.model {
        Some(p) => Model::load(p)?,
        None => Model::embedded()?,
    };
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("reading the comment from stdin")?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        bail!("the comment on stdin is over the 1 MiB limit");
    }
    let input = String::from_utf8(bytes).context("the comment on stdin is not valid UTF-8")?;
    let comment = parse_comment(&input)?;
    let score = model.score(&comment);
    let verdict = model.thresholds().decide(score.log_odds);
    let reasons = model.explain(&comment, a.top);
    if a.json {
        let v = serde_json::json!({
            "verdict": verdict,
            "spam_probability": score.probability(),
            "log_odds": score.log_odds,
            "reasons": reasons,
            "thresholds": {
                "accept_below": model.thresholds().accept_below_probability(),
                "reject_at": model.thresholds().reject_at_probability(),
            },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("verdict:          {}", verdict.as_str());
        println!("spam probability: {:.4}", score.probability());
        println!(
            "thresholds:       accept below {:.4}, reject from {:.4}",
            model.thresholds().accept_below_probability(),
            model.thresholds().reject_at_probability()
        );
        println!("reasons (log-odds towards spam):");
        for r in &reasons {
            println!("  {:>+7.3}  {}", r.log_odds, r.label);
        }
    }
    Ok(())
}

/// A comment from `score`'s stdin: JSON with the corpus fields when it parses as such, else the
/// whole input is the comment's text.
pub fn parse_comment(input: &str) -> Result<Comment> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        bail!("no comment on stdin");
    }
    if trimmed.starts_with('{') {
        if let Ok(c) = serde_json::from_str::<Comment>(trimmed) {
            if c.content.trim().is_empty() {
                bail!("field `content` is empty");
            }
            return Ok(c);
        }
    }
    Ok(Comment::from_content(input))
}

pub fn cmd_corpus(a: CorpusArgs) -> Result<()> {
    use std::io::Write;
    let (examples, _, _, _) = load_dedup(&a.corpus)?;
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for ex in &examples {
        serde_json::to_writer(&mut out, ex)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
