//! `hamgate serve`: settings from defaults, the file, the environment and then the flags; the
//! listeners bound before the app logs "ready"; shutdown on SIGTERM/SIGINT.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::{init_tracing, runtime, LogFilter};

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
    /// Keep reputation, labels, stats and the model in Redis at this URL (shared by every
    /// replica); the same as `redis.url`.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Allow serving without API keys on a non-loopback address.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Log format: text or json.
    #[arg(long)]
    pub log_format: Option<String>,
}

pub fn cmd_serve(a: ServeArgs, log: &LogFilter) -> Result<()> {
    // Logging starts only once the settings say its format: their notices wait until then.
    let (mut settings, notices) =
        hamgate::config::Settings::load_with_notices(a.config.as_deref())?;
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
        settings.redis.url = Some(v);
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
    for notice in notices {
        tracing::warn!("{notice}");
    }
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
