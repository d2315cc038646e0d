//! Wiring: builds the [`App`] from settings and serves it.
//!
//! [`serve`] takes a bound listener and a shutdown future (as mini-redis does), so tests start a
//! server on `127.0.0.1:0` exactly as `main` does. Health (`grpc.health.v1`) says SERVING once
//! the model is loaded and the listener is up; when the shutdown future completes it says
//! NOT_SERVING, stops accepting, lets in-flight calls finish, and returns.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::app::App;
use crate::config::Settings;
use crate::grpc::pb::comment_filter_server::CommentFilterServer;
use crate::grpc::{pb, FilterService};
use crate::labels::file::FileLabelLog;
use crate::labels::redis::RedisLabelLog;
use crate::labels::{LabelLog, LabelLogError, LabelRecord, LogFuture, LoggedLabel};
use crate::redis_conn::RedisTarget;
use crate::reputation::memory::MemoryStore;
use crate::reputation::redis::RedisStore;
use crate::reputation::{IdentityHasher, ReputationStore};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The settings are not usable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::model::ModelFileError),
    /// The reputation store could not be set up.
    #[error(transparent)]
    Reputation(#[from] crate::reputation::ReputationError),
    /// The transport failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be set up.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The model directory is unusable.
    #[error(transparent)]
    ModelDir(#[from] crate::retrain::ModelDirError),
    /// The label log could not be opened.
    #[error(transparent)]
    LabelLog(#[from] LabelLogError),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Builds the application: validates settings, loads the model (the built-in one unless a
/// file is named), and sets up the reputation store. Must run inside a Tokio runtime (the Redis
/// store connects in the background).
pub fn build_app(settings: &Settings) -> Result<App, ServeError> {
    build_app_with_clock(settings, Arc::new(crate::stats::SystemClock))
}

/// [`build_app`] with the clock that stats are counted by (tests pass a manual one).
pub fn build_app_with_clock(
    settings: &Settings,
    clock: Arc<dyn crate::stats::Clock>,
) -> Result<App, ServeError> {
    settings.validate()?;
    let from_dir = match &settings.model_dir {
        Some(dir) => match crate::retrain::ModelDir::open(dir)?.load_current() {
            Ok(m) => Some(m),
            Err(crate::retrain::ModelDirError::NoVersion(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let (model, version) = match (&settings.model, from_dir) {
        (_, Some(m)) => m,
        (Some(path), None) => crate::retrain::load_with_version(path)?,
        (None, None) => crate::retrain::embedded_with_version()?,
    };
    let rep = &settings.reputation;
    let store: Arc<dyn ReputationStore> = match settings.redis_target()? {
        Some(target) => RedisStore::connect(target, rep.timeout_ms, rep.half_life_secs)?,
        None => Arc::new(MemoryStore::new(rep.max_entries, rep.half_life_secs)),
    };
    let secret = match &rep.secret {
        Some(s) if !s.is_empty() => s.as_bytes().to_vec(),
        // Embedded and no secret configured: a random one, which lives as long as the
        // in-process store it keys.
        _ => (0..4)
            .flat_map(|_| crate::random_u64().to_le_bytes())
            .collect(),
    };
    let label_log: Arc<dyn LabelLog> = Arc::new(LazyLabelLog::new(settings)?);
    Ok(App::new(
        settings,
        model,
        version,
        store,
        IdentityHasher::new(&secret),
        label_log,
    )
    .with_stats(stats_store(settings)?, clock))
}

/// In memory, or in Redis buckets shared by every replica when Redis is configured.
fn stats_store(settings: &Settings) -> Result<Arc<dyn crate::stats::StatsStore>, ServeError> {
    use crate::redis_conn::Timeouts;
    use crate::stats::redis::RedisStats;
    Ok(match settings.redis_target()? {
        Some(target) => {
            let t = target.timeouts;
            let timeouts = Timeouts {
                connect: t.background_connect,
                response: t.stats,
            };
            RedisStats::start(
                move || {
                    let target = target.clone();
                    async move { target.connect(timeouts).await }
                },
                t,
            )
        }
        None => Arc::new(crate::stats::memory::MemoryStats::new()),
    })
}

/// The label log, opened on the first label rather than at start-up: a service that never
/// receives feedback creates no file, and a Redis log that is down at start does not stop the
/// service from checking comments. Embedded mode logs to a file; Redis mode to a Redis Stream.
struct LazyLabelLog {
    target: LogTarget,
    log: tokio::sync::OnceCell<Box<dyn LabelLog>>,
}

enum LogTarget {
    File(std::path::PathBuf),
    Redis(RedisTarget),
}

impl LazyLabelLog {
    fn new(settings: &Settings) -> Result<LazyLabelLog, ServeError> {
        let target = match settings.redis_target()? {
            Some(t) => LogTarget::Redis(t),
            None => LogTarget::File(settings.feedback.label_log.clone()),
        };
        // A log file that exists is opened now: one that is not a label log (a mistyped path
        // to a model file) or cannot be read stops the start with its path named, instead of
        // surfacing on the first label; and damage found in it is on `/readyz` from the start.
        let log = match &target {
            LogTarget::File(path) if path.exists() => {
                let (log, report) = FileLabelLog::open_existing(path)?;
                tracing::info!(
                    path = %path.display(),
                    records = report.records,
                    "label log opened"
                );
                tokio::sync::OnceCell::new_with(Some(Box::new(log) as Box<dyn LabelLog>))
            }
            _ => tokio::sync::OnceCell::new(),
        };
        Ok(LazyLabelLog { target, log })
    }

    async fn get(&self) -> Result<&dyn LabelLog, LabelLogError> {
        let log = self
            .log
            .get_or_try_init(|| async {
                match &self.target {
                    LogTarget::File(path) => {
                        // Opening reads and checks the whole file (and may repair it): blocking
                        // work, kept off the async workers.
                        let p = path.clone();
                        let (log, report) =
                            tokio::task::spawn_blocking(move || FileLabelLog::open(p))
                                .await
                                .map_err(|e| {
                                    LabelLogError::Unavailable(format!(
                                        "opening the label log: {e}"
                                    ))
                                })??;
                        tracing::info!(
                            path = %path.display(),
                            records = report.records,
                            created = report.created,
                            "label log opened"
                        );
                        Ok::<Box<dyn LabelLog>, LabelLogError>(Box::new(log))
                    }
                    LogTarget::Redis(target) => {
                        let log = RedisLabelLog::connect_to(
                            target,
                            crate::labels::redis::DEFAULT_STREAM_KEY,
                        )
                        .await?;
                        Ok(Box::new(log) as Box<dyn LabelLog>)
                    }
                }
            })
            .await?;
        Ok(log.as_ref())
    }
}

impl LabelLog for LazyLabelLog {
    fn append<'a>(&'a self, record: LabelRecord) -> LogFuture<'a, u64> {
        Box::pin(async move { self.get().await?.append(record).await })
    }

    fn read_all<'a>(&'a self) -> LogFuture<'a, Vec<LoggedLabel>> {
        Box::pin(async move { self.get().await?.read_all().await })
    }

    fn read_after<'a>(&'a self, after: u64) -> LogFuture<'a, Vec<LoggedLabel>> {
        Box::pin(async move { self.get().await?.read_after(after).await })
    }

    fn name(&self) -> &'static str {
        match self.target {
            LogTarget::File(_) => "file",
            LogTarget::Redis(_) => "redis",
        }
    }

    fn notices(&self) -> Vec<String> {
        self.log.get().map(|l| l.notices()).unwrap_or_default()
    }

    fn expire_before<'a>(&'a self, before: u64) -> LogFuture<'a, u64> {
        Box::pin(async move {
            // A file log that does not exist yet has nothing to expire; creating it for that
            // would be a write nobody asked for.
            if matches!(self.target, LogTarget::File(_)) && self.log.get().is_none() {
                return Ok(0);
            }
            self.get().await?.expire_before(before).await
        })
    }
}

/// Serves `app` on `listener` until `shutdown` completes; see the module docs.
pub async fn serve(
    app: App,
    listener: TcpListener,
    max_message_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Before SERVING: the model other replicas published, and the sites' layers rebuilt from
    // the label log. A Redis that is down or slow must not hold the start up, so this gets
    // START_BUDGET and otherwise finishes in the background, before the follower starts.
    let start_app = app.clone();
    let mut catch_up = tokio::spawn(async move {
        if let Err(e) = start_app.refresh_model().await {
            tracing::warn!(cause = %e, "model store not read at start");
        }
        if let Err(e) = start_app.restore_layers().await {
            tracing::warn!(cause = %e, "could not restore the sites' layers; they start empty");
        }
    });
    let pending = match tokio::time::timeout(START_BUDGET, &mut catch_up).await {
        Ok(_) => None,
        Err(_) => {
            tracing::warn!("the model store or label log is slow; serving while they catch up");
            Some(catch_up)
        }
    };
    // Stops following when serving ends, however it ends.
    let _follower = AbortOnDrop(follow_replicas(app.clone(), pending));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // Reflection in both versions: `grpc.reflection.v1` for current tools, and `v1alpha` for
    // the many that still speak only it (Python's grpcio-reflection ships only v1alpha stubs).
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let filter = CommentFilterServer::new(FilterService::new(app.clone()))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes.saturating_mul(4));

    health_reporter
        .set_serving::<CommentFilterServer<FilterService>>()
        .await;
    // The empty service name stands for the whole server.
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, model_version = app.model_version(), "serving gRPC");

    let reporter = health_reporter.clone();
    // `/readyz` follows the same state as gRPC health.
    app.set_serving(true);
    let serving = app.clone();
    let shutdown = async move {
        shutdown.await;
        serving.set_serving(false);
        tracing::info!("shutting down: NOT_SERVING, draining in-flight calls");
        reporter
            .set_not_serving::<CommentFilterServer<FilterService>>()
            .await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    };

    tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(
            crate::grpc::status::decode_errors_are_invalid_argument,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(filter)
        // Small request/response pairs: without TCP_NODELAY, Nagle's algorithm meets the
        // client's delayed ACK and a call can stall for 40 ms.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// How long the start waits for the model store and the label log before serving anyway.
const START_BUDGET: std::time::Duration = std::time::Duration::from_millis(200);
/// How often a replica asks the model store whether the model in service changed.
pub const MODEL_POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// How often labels past `feedback.label_retention_days` are removed (and once at start).
pub const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// How often a replica reads labels other replicas appended to a shared (Redis) log.
pub const LABEL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Keeps `app` in step with the other replicas until the returned handle is aborted (after
/// `after`, the start's own catch-up, when it is still running): every
/// [`MODEL_POLL`] it serves the model store's current version if it changed (a retrain or
/// rollback anywhere), and every [`LABEL_POLL`] its sites' layers learn the labels other
/// replicas logged. Errors are logged and retried on the next tick; the running model stays.
pub fn follow_replicas(
    app: App,
    after: Option<tokio::task::JoinHandle<()>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(start) = after {
            let _ = start.await;
        }
        let mut retention = tokio::time::interval(RETENTION_EVERY);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut models = tokio::time::interval(MODEL_POLL);
        let mut labels = tokio::time::interval(LABEL_POLL);
        models.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        labels.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = models.tick() => {
                    if let Err(e) = app.refresh_model().await {
                        tracing::warn!(cause = %e, "model store: keeping the model in service");
                    }
                }
                _ = retention.tick() => {
                    if let Err(e) = app.expire_labels().await {
                        tracing::warn!(cause = %e, "label retention: expiring old labels failed; retrying in an hour");
                    }
                }
                _ = labels.tick() => {
                    if let Err(e) = app.follow_labels().await {
                        tracing::debug!(cause = %e, "following the label log failed; retrying");
                    }
                }
            }
        }
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Binds the configured gRPC address.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Everything `hamgate serve` listens on.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC API.
    pub grpc: TcpListener,
    /// The HTTP side: dashboard, stats API, health, and `/metrics` unless `metrics` is given.
    pub http: TcpListener,
    /// `/metrics` on its own (`metrics_addr`).
    pub metrics: Option<TcpListener>,
}

/// Serves gRPC and HTTP together until `shutdown` completes (or either fails, which stops the
/// other), then sends the stats still queued for a shared store.
pub async fn serve_all(
    app: App,
    listeners: Listeners,
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let shutdown = crate::shutdown::Shutdown::on(shutdown);
    let grpc = async {
        let r = serve(
            app.clone(),
            listeners.grpc,
            settings.limits.max_message_bytes,
            shutdown.stopped(),
        )
        .await;
        // Either listener ending stops the other.
        shutdown.trigger();
        r
    };
    let http = async {
        let r = crate::http::serve(
            app.clone(),
            listeners.http,
            listeners.metrics,
            settings.metrics_key_sha256.clone(),
            shutdown.stopped(),
        )
        .await;
        // Either listener ending stops the other.
        shutdown.trigger();
        r
    };
    let (grpc, http) = tokio::join!(grpc, http);
    match tokio::time::timeout(std::time::Duration::from_secs(2), app.flush_stats()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(cause = %e, "stats not flushed at shutdown"),
        Err(_) => tracing::warn!("stats flush at shutdown timed out"),
    }
    grpc?;
    http.map_err(ServeError::Http)
}
