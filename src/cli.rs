//! The command line, part of the `hamgate` binary (not the library): it parses arguments, calls
//! the library, and is the only place that prints to stdout/stderr.
//!
//! Each command reads its inputs, calls the library and prints; errors are reported by
//! [`main`] with their full cause chain and a non-zero exit code.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use hamgate::comment::Comment;
use hamgate::corpus::{dedup, read_corpus, DedupStats, Example};
use hamgate::eval::{cross_validate, predict_as, report, report_by, Deciding, HoldOut, Report};
use hamgate::model::{train, Model, NbParams, TrainParams, Variant};

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

/// `hamgate config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a settings file (with the environment applied, as `serve` would): prints `ok`,
    /// or the error naming the key, and exits 1.
    Check {
        /// The TOML settings file.
        file: PathBuf,
    },
    /// Print the effective settings as TOML: defaults, the file, the environment (the
    /// reputation secret masked).
    Show {
        /// The TOML settings file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

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

/// `hamgate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML settings file (see deploy/hamgate.example.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long)]
    pub grpc_addr: Option<std::net::SocketAddr>,
    /// HTTP listen address (metrics, dashboard) [default: 127.0.0.1:8080].
    #[arg(long)]
    pub http_addr: Option<std::net::SocketAddr>,
    /// Serve this model file instead of the built-in one.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Serve the CURRENT model of this directory and follow retrains and rollbacks.
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Keep reputation in Redis at this URL (shared by every replica).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Allow serving without API keys on a non-loopback address.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Log format: text or json.
    #[arg(long)]
    pub log_format: Option<String>,
}

/// `hamgate check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The server: HOST:PORT as `serve --grpc-addr` prints it, or a URL (http://HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// API key (or HAMGATE_API_KEY).
    #[arg(long, env = "HAMGATE_API_KEY")]
    pub key: Option<String>,
    /// The comment's text.
    #[arg(long)]
    pub content: String,
    /// Author name.
    #[arg(long, default_value = "")]
    pub author: String,
    /// Author e-mail.
    #[arg(long, default_value = "")]
    pub email: String,
    /// Author URL.
    #[arg(long, default_value = "")]
    pub url: String,
    /// Client IP.
    #[arg(long, default_value = "")]
    pub ip: String,
    /// Client user agent.
    #[arg(long, default_value = "")]
    pub user_agent: String,
    /// Honeypot field value.
    #[arg(long, default_value = "")]
    pub honeypot: String,
    /// Comment type: comment, reply, trackback, pingback, contact-form, signup, message.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Mark as a test call (no reputation effects).
    #[arg(long)]
    pub test: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hamgate health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The server: HOST:PORT as `serve --grpc-addr` prints it, or a URL (http://HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// Poll for up to this many seconds until SERVING (0 = ask once).
    #[arg(long, default_value_t = 0.0)]
    pub wait: f64,
}

/// `hamgate bench-load`.
#[derive(Debug, Args)]
pub struct BenchLoadArgs {
    /// The server: HOST:PORT as `serve --grpc-addr` prints it, or a URL (http://HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// API key.
    #[arg(long, env = "HAMGATE_API_KEY")]
    pub key: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds to run (bounded: at most 300).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many calls (0 = only the duration bounds it).
    #[arg(long, default_value_t = 0)]
    pub requests: u64,
    /// Target total calls per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Comments to send (default: the shipped YouTube corpus).
    #[arg(long, default_value = "models/corpus/youtube")]
    pub corpus: Vec<PathBuf>,
    /// Give every call its own client IP.
    #[arg(long)]
    pub vary_ip: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
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
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hamgate retrain`.
#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// The base corpus.
    #[arg(long, default_value = "models/corpus/youtube", num_args = 1..)]
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
fn init_tracing(format: hamgate::config::LogFormat, log: &LogFilter) {
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
        Command::Serve(a) => cmd_serve(a, log),
        Command::Check(a) => cmd_check(a),
        Command::BenchLoad(a) => cmd_bench_load(a),
        Command::Health(a) => cmd_health(a),
        Command::HashKey { key } => {
            println!("{}", hamgate::config::hash_key(&key));
            Ok(())
        }
        Command::Train(a) => cmd_train(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Score(a) => cmd_score(a),
        Command::EvalAdapt(a) => cmd_eval_adapt(a),
        Command::Retrain(a) => cmd_retrain(a),
        Command::Rollback { model_dir } => {
            let dir = hamgate::retrain::ModelDir::open_existing(&model_dir)?;
            let v = dir.rollback()?;
            println!("current model is now {v}");
            Ok(())
        }
        Command::ModelInfo { model, model_dir } => cmd_model_info(model, model_dir),
        Command::Corpus(a) => cmd_corpus(a),
        Command::Config(ConfigCommand::Check { file }) => {
            let settings = hamgate::config::Settings::load(Some(&file))?;
            settings.validate()?;
            println!("ok: {}", file.display());
            Ok(())
        }
        Command::Config(ConfigCommand::Show { config }) => {
            let settings = hamgate::config::Settings::load(config.as_deref())?;
            print!("{}", settings.to_toml_masked()?);
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn cmd_serve(a: ServeArgs, log: &LogFilter) -> Result<()> {
    let mut settings = hamgate::config::Settings::load(a.config.as_deref())?;
    if let Some(v) = a.grpc_addr {
        settings.grpc_addr = v;
    }
    if let Some(v) = a.http_addr {
        settings.http_addr = v;
    }
    if let Some(v) = a.model {
        settings.model = Some(v);
    }
    if let Some(v) = a.model_dir {
        settings.model_dir = Some(v);
    }
    if let Some(v) = a.redis_url {
        settings.reputation.redis_url = Some(v);
        settings.reputation.backend = hamgate::config::ReputationBackend::Redis;
    }
    if a.insecure_no_auth {
        settings.insecure_no_auth = true;
    }
    if let Some(v) = a.log_format {
        settings.log_format = match v.as_str() {
            "json" => hamgate::config::LogFormat::Json,
            "text" => hamgate::config::LogFormat::Text,
            other => bail!("--log-format: `{other}` is not `text` or `json`"),
        };
    }
    init_tracing(settings.log_format, log);
    let rt = runtime()?;
    rt.block_on(async move {
        let started = std::time::Instant::now();
        let app = hamgate::server::build_app(&settings)?;
        let listeners = hamgate::server::Listeners {
            grpc: hamgate::server::bind(settings.grpc_addr).await?,
            http: hamgate::server::bind(settings.http_addr).await?,
            metrics: match settings.metrics_addr {
                Some(addr) => Some(hamgate::server::bind(addr).await?),
                None => None,
            },
        };
        tracing::info!(
            grpc_addr = %settings.grpc_addr,
            http_addr = %settings.http_addr,
            sites = if app.is_open() { "one open site (no keys configured)" } else { "keyed" },
            reputation = ?settings.reputation.backend,
            startup_ms = started.elapsed().as_millis() as u64,
            "hamgate ready"
        );
        hamgate::server::serve_all(
            app,
            listeners,
            &settings,
            hamgate::server::shutdown_signal(),
        )
        .await?;
        Ok(())
    })
}

fn cmd_check(a: CheckArgs) -> Result<()> {
    use hamgate::grpc::pb;
    let kind = match a.kind.as_deref() {
        None => pb::CommentType::Unspecified,
        Some(name) => hamgate::grpc::convert::comment_type_from_name(name)
            .with_context(|| format!("--type: unknown comment type `{name}`"))?,
    };
    let req = pb::CheckRequest {
        comment: Some(pb::Comment {
            content: a.content,
            author_name: a.author,
            author_email: a.email,
            author_url: a.url,
            comment_type: kind as i32,
            ..Default::default()
        }),
        client: Some(pb::Client {
            ip: a.ip,
            user_agent: a.user_agent,
            honeypot: a.honeypot,
            ..Default::default()
        }),
        is_test: a.test,
        ..Default::default()
    };
    let endpoint = hamgate::grpc::endpoint::endpoint(&a.addr).context("--addr")?;
    let rt = runtime()?;
    let resp = rt.block_on(async {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {}", a.addr))?;
        let mut client = pb::comment_filter_client::CommentFilterClient::new(channel);
        let mut request = tonic::Request::new(req);
        if let Some(key) = &a.key {
            let v = format!("Bearer {key}")
                .parse()
                .context("--key: not a valid header value")?;
            request.metadata_mut().insert("authorization", v);
        }
        let resp = client
            .check(request)
            .await
            .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?;
        anyhow::Ok(resp.into_inner())
    })?;
    let verdict = pb::Verdict::try_from(resp.verdict).unwrap_or(pb::Verdict::Unspecified);
    if a.json {
        let reasons: Vec<_> = resp
            .reasons
            .iter()
            .map(|r| serde_json::json!({"label": r.label, "log_odds": r.log_odds}))
            .collect();
        let v = serde_json::json!({
            "verdict": verdict.as_str_name(),
            "spam_probability": resp.spam_probability,
            "discard": resp.discard,
            "degraded": resp.degraded,
            "model_version": resp.model_version,
            "check_id": resp.check_id,
            "reasons": reasons,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let name = verdict
            .as_str_name()
            .trim_start_matches("VERDICT_")
            .to_ascii_lowercase();
        println!(
            "verdict:          {name}{}",
            if resp.discard { " (discard)" } else { "" }
        );
        println!("spam probability: {:.4}", resp.spam_probability);
        println!("check id:         {}", resp.check_id);
        println!("model version:    {}", resp.model_version);
        if resp.degraded {
            println!("degraded:         yes (an optional part was unavailable)");
        }
        println!("reasons (log-odds towards spam):");
        for r in &resp.reasons {
            println!("  {:>+7.3}  {}", r.log_odds, r.label);
        }
    }
    Ok(())
}

/// Exits 0 when SERVING; prints the status and, with --wait, how long it took to get there.
fn cmd_health(a: HealthArgs) -> Result<()> {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs_f64(a.wait.clamp(0.0, 600.0));
    let endpoint = hamgate::grpc::endpoint::endpoint(&a.addr).context("--addr")?;
    let rt = runtime()?;
    rt.block_on(async {
        loop {
            let attempt = async {
                let channel = endpoint.connect().await?;
                let mut client = HealthClient::new(channel);
                let resp = client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await?;
                anyhow::Ok(resp.into_inner().status)
            };
            match attempt.await {
                Ok(status)
                    if status
                        == tonic_health::pb::health_check_response::ServingStatus::Serving
                            as i32 =>
                {
                    println!(
                        "SERVING after {:.1} ms",
                        started.elapsed().as_secs_f64() * 1000.0
                    );
                    return Ok(());
                }
                Ok(status) if std::time::Instant::now() >= deadline => {
                    bail!("not serving (status {status})")
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    return Err(e.context(format!("asking {} for its health", a.addr)))
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
            }
        }
    })
}

fn cmd_bench_load(a: BenchLoadArgs) -> Result<()> {
    anyhow::ensure!(
        a.duration > 0.0 && a.duration <= 300.0,
        "--duration must be in (0, 300] seconds"
    );
    let corpus = read_corpus(&a.corpus)?;
    let (examples, _) = dedup(corpus.examples);
    let plan = hamgate::loadgen::LoadPlan {
        addr: a.addr,
        connections: a.connections,
        duration: std::time::Duration::from_secs_f64(a.duration),
        requests: a.requests,
        rate: a.rate,
        key: a.key,
        comments: examples.into_iter().map(|e| e.comment.content).collect(),
        vary_ip: a.vary_ip,
    };
    let rt = runtime()?;
    let r = rt.block_on(hamgate::loadgen::run(plan))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} ok, {} errors, {} degraded in {:.2}s: {:.0} checks/s",
            r.ok, r.errors, r.degraded, r.seconds, r.throughput
        );
        println!(
            "latency: p50 {} µs, p90 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
            r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us
        );
    }
    Ok(())
}

/// The creation time for new models: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn created_at() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
}

fn load_dedup(paths: &[PathBuf]) -> Result<(Vec<Example>, DedupStats, String)> {
    let corpus = read_corpus(paths)?;
    let (examples, stats) = dedup(corpus.examples);
    tracing::info!(
        before = stats.before,
        kept = stats.kept,
        dropped = stats.dropped,
        conflicting = stats.conflicting,
        "corpus read and deduplicated"
    );
    Ok((examples, stats, corpus.digest))
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

fn cmd_train(a: TrainArgs) -> Result<()> {
    let (examples, stats, digest) = load_dedup(&a.corpus)?;
    let params = a.model.params();
    let (_, folds) = hamgate::model::train::fold_assignment(&examples, params.folds);
    let bar = progress(folds as u64 + 1, "training");
    let model =
        train(&examples, &params, &digest, stats, &|| bar.inc(1)).map_err(anyhow::Error::msg)?;
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

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let (examples, stats, digest) = load_dedup(&a.corpus)?;
    let mut parts = Vec::new();
    let deciding = if a.deciding == "trained" {
        Deciding::Trained
    } else {
        Deciding::NewSite
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
            if model.header().corpus_digest == digest {
                bail!("{what} was trained on this very corpus; evaluate on data it did not see (or use --cv group)");
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

fn cmd_eval_adapt(a: EvalAdaptArgs) -> Result<()> {
    let model = match &a.model {
        Some(p) => Model::load(p)?,
        None => Model::embedded()?,
    };
    let (examples, _, _) = load_dedup(&a.corpus)?;
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

fn cmd_retrain(a: RetrainArgs) -> Result<()> {
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
            let model = Model::embedded()?;
            let version = hamgate::model::file::version_of(hamgate::model::EMBEDDED_MODEL);
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

fn cmd_model_info(model: Option<PathBuf>, model_dir: Option<PathBuf>) -> Result<()> {
    let (m, version) = match (model, model_dir) {
        (Some(p), _) => {
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            let m = Model::from_bytes(&bytes).map_err(|kind| hamgate::model::ModelFileError {
                path: p.clone(),
                kind,
            })?;
            (m, hamgate::model::file::version_of(&bytes))
        }
        (None, Some(d)) => hamgate::retrain::ModelDir::open_existing(&d)?.load_current()?,
        (None, None) => (
            Model::embedded()?,
            hamgate::model::file::version_of(hamgate::model::EMBEDDED_MODEL),
        ),
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

fn cmd_score(a: ScoreArgs) -> Result<()> {
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

fn cmd_corpus(a: CorpusArgs) -> Result<()> {
    use std::io::Write;
    let (examples, _, _) = load_dedup(&a.corpus)?;
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
