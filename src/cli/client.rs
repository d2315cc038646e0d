//! The commands that talk to a running hamgate over gRPC: `check`, `health` and `bench-load`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use hamgate::corpus::{dedup, read_corpus};

use super::runtime;

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

pub fn cmd_check(a: CheckArgs) -> Result<()> {
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
pub fn cmd_health(a: HealthArgs) -> Result<()> {
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

pub fn cmd_bench_load(a: BenchLoadArgs) -> Result<()> {
    anyhow::ensure!(
        a.duration > 0.0 && a.duration <= 300.0,
        "--duration must be in (0, 300] seconds"
    );
    let corpus = read_corpus(&a.corpus)?;
    let (examples, _) = dedup(corpus.examples);
    let plan = super::loadgen::LoadPlan {
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
    let r = rt.block_on(super::loadgen::run(plan))?;
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
