//! The command line, part of the `hamgate` binary (not the library): it parses arguments, calls
//! the library, and is the only place that prints to stdout/stderr.
//!
//! Each command reads its inputs, calls the library and prints; errors are reported by
//! [`main`] with their full cause chain and a non-zero exit code. One file per kind of command:
//! - [`serve`]: the server (settings, flags, listeners, shutdown on a signal);
//! - [`client`]: commands that talk to a running server over gRPC (`check`, `health`,
//!   `bench-load`, with the load client in [`loadgen`]);
//! - [`import`]: a blog's history into a label log or a running server (`import`);
//! - [`offline`]: model work on files, no server (`train`, `eval`, `eval-adapt`, `score`,
//!   `corpus`);
//! - [`model_dir`]: the directory of model versions (`retrain`, `rollback`, `model-info`);
//! - [`config`]: settings files and keys (`config check`, `config show`, `hash-key`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod client;
mod config;
mod import;
mod loadgen;
mod model_dir;
mod offline;
mod serve;

use client::{BenchLoadArgs, CheckArgs, HealthArgs};
use config::ConfigCommand;
use model_dir::RetrainArgs;
use offline::{CorpusArgs, EvalAdaptArgs, EvalArgs, ScoreArgs, TrainArgs};
use serve::ServeArgs;

/// hamgate: a self-hosted comment spam filter.
#[derive(Debug, Parser)]
#[command(name = "hamgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API and the HTTP side (dashboard, stats, metrics), with the built-in model
    /// and embedded reputation unless configured otherwise.
    Serve(ServeArgs),
    /// Check one comment against a running hamgate, from a shell.
    Check(CheckArgs),
    /// Load-test a running hamgate with real comments: throughput and latency percentiles.
    BenchLoad(BenchLoadArgs),
    /// Ask a running hamgate's gRPC health service; with --wait, poll until it is SERVING.
    Health(HealthArgs),
    /// Print the SHA-256 of an API key, as the settings' `key_sha256` wants it.
    HashKey {
        /// The key.
        key: String,
    },
    /// Train a model from labelled corpora (deduplicated first).
    Train(TrainArgs),
    /// Evaluate a model on data it did not see, or cross-validate by group.
    Eval(EvalArgs),
    /// How fast a new site is learned: feed k labelled comments through online learning and
    /// evaluate on the rest, for several k.
    EvalAdapt(EvalAdaptArgs),
    /// Import a blog's moderation history (WP-CLI, WordPress WXR, Disqus, JSONL/CSV) as one
    /// site's labels, into a label log or a running server (--addr, admin key); importing
    /// twice counts once.
    Import(import::ImportArgs),
    /// Retrain from the base corpus plus the label log; install the candidate in the model
    /// directory only if it is not worse on held-back labels.
    Retrain(RetrainArgs),
    /// Make the previous model version in the model directory current again.
    Rollback {
        /// The model directory.
        #[arg(long)]
        model_dir: PathBuf,
    },
    /// Describe a model: version, training data, thresholds, metrics, when it was trained.
    ModelInfo {
        /// A model file (default: the built-in model).
        #[arg(long, conflicts_with = "model_dir")]
        model: Option<PathBuf>,
        /// Or the current model of a model directory.
        #[arg(long)]
        model_dir: Option<PathBuf>,
    },
    /// Score one comment read from stdin (plain text, or JSON with the corpus fields).
    Score(ScoreArgs),
    /// Read corpora, deduplicate them and write the neutral JSONL format.
    Corpus(CorpusArgs),
    /// Check a settings file, or print the settings `serve` would run with.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Runs the command line and turns errors into a message and exit code 1 (2 for usage errors:
/// clap reports its own, and an invalid `HAMGATE_LOG` is one too).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = match LogFilter::from_env() {
        Ok(log) => log,
        Err(e) => {
            eprintln!("hamgate: error: {e}");
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, Command::Serve(_)) {
        init_tracing(hamgate::config::LogFormat::Text, &log);
    }
    match run(cli, &log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hamgate: error: {}", error_report(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: many errors already name their cause in their own
/// message (`cannot listen on ADDR: Address already in use`), and the chain would repeat it.
fn error_report(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    out
}

/// The log filter: `HAMGATE_LOG` (tracing-subscriber's `EnvFilter` directives), `info` when it
/// is not set. Checked once at start, so a typo stops the program instead of being ignored.
#[derive(Debug, Clone)]
pub struct LogFilter(String);

impl LogFilter {
    const VAR: &'static str = "HAMGATE_LOG";

    /// Reads and checks `HAMGATE_LOG`; the error names the variable and the bad value.
    fn from_env() -> Result<LogFilter, String> {
        let directives = match std::env::var(Self::VAR) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => return Ok(LogFilter("info".into())),
            Err(std::env::VarError::NotUnicode(v)) => {
                return Err(format!("{}={v:?} is not valid UTF-8", Self::VAR))
            }
        };
        match tracing_subscriber::EnvFilter::try_new(&directives) {
            Ok(_) => Ok(LogFilter(directives)),
            Err(e) => Err(format!(
                "{}=`{directives}` is not a valid log filter ({e}); \
                 try e.g. `info` or `warn,hamgate=debug`",
                Self::VAR
            )),
        }
    }

    /// The filter itself. `EnvFilter` is not `Clone`, so it is built again from the directives
    /// [`LogFilter::from_env`] checked: this parse cannot find an invalid one.
    fn env_filter(&self) -> tracing_subscriber::EnvFilter {
        tracing_subscriber::EnvFilter::new(&self.0)
    }
}

/// Logs to stderr, in colour only when stderr is a terminal (a log file or a pipe gets no
/// escape codes).
pub(crate) fn init_tracing(format: hamgate::config::LogFormat, log: &LogFilter) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log.env_filter())
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        hamgate::config::LogFormat::Json => builder.json().try_init(),
        hamgate::config::LogFormat::Text => builder.try_init(),
    };
}

/// Runs one parsed command.
pub fn run(cli: Cli, log: &LogFilter) -> Result<()> {
    match cli.command {
        Command::Serve(a) => serve::cmd_serve(a, log),
        Command::Check(a) => client::cmd_check(a),
        Command::BenchLoad(a) => client::cmd_bench_load(a),
        Command::Health(a) => client::cmd_health(a),
        Command::HashKey { key } => config::cmd_hash_key(&key),
        Command::Train(a) => offline::cmd_train(a),
        Command::Eval(a) => offline::cmd_eval(a),
        Command::Score(a) => offline::cmd_score(a),
        Command::EvalAdapt(a) => offline::cmd_eval_adapt(a),
        Command::Corpus(a) => offline::cmd_corpus(a),
        Command::Retrain(a) => model_dir::cmd_retrain(a),
        Command::Import(a) => import::cmd_import(a),
        Command::Rollback { model_dir } => model_dir::cmd_rollback(&model_dir),
        Command::ModelInfo { model, model_dir } => model_dir::cmd_model_info(model, model_dir),
        Command::Config(c) => config::cmd_config(c),
    }
}

/// A multi-threaded runtime for the commands that talk to the network.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
