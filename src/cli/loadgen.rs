//! `hamgate bench-load`: a load client for a running hamgate. It lives in the binary, not the
//! library: it is a client of the service, and the binary is where `anyhow` belongs.
//!
//! It opens N connections (one HTTP/2 channel each), and on each runs one loop of `Check`
//! calls with real comments from a corpus, for a bounded time, a bounded count, or both, and
//! optionally paced to a total rate. It reports throughput and latency percentiles. Latency is
//! measured per call from send to answer; with `--rate`, calls are paced on a fixed schedule,
//! and a late call is sent at once (so a stall shows up as latency, not as silently fewer calls).

use std::time::{Duration, Instant};

use serde::Serialize;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use hamgate::grpc::pb;
use hamgate::grpc::pb::comment_filter_client::CommentFilterClient;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The server: `127.0.0.1:50051` or `http://127.0.0.1:50051` (see [`hamgate::grpc::endpoint`]).
    pub addr: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many calls in total (0 = no limit).
    pub requests: u64,
    /// Total calls per second to aim for (0 = as fast as possible).
    pub rate: f64,
    /// API key, if the server wants one.
    pub key: Option<String>,
    /// Comments to send, cycled.
    pub comments: Vec<String>,
    /// Vary the client IP per call (exercises reputation with many identities).
    pub vary_ip: bool,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Successful calls.
    pub ok: u64,
    /// Failed calls.
    pub errors: u64,
    /// Calls answered `degraded`.
    pub degraded: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Successful calls per second.
    pub throughput: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// The latency at quantile `q` of sorted samples.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// Runs the plan.
pub async fn run(plan: LoadPlan) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(!plan.comments.is_empty(), "no comments to send");
    anyhow::ensure!(plan.connections > 0, "--connections must be at least 1");
    let mut channels = Vec::new();
    for _ in 0..plan.connections {
        let ch = hamgate::grpc::endpoint::endpoint(&plan.addr)?
            .tcp_nodelay(true)
            .connect()
            .await?;
        channels.push(ch);
    }
    let per_conn_limit = if plan.requests == 0 {
        u64::MAX
    } else {
        plan.requests.div_ceil(plan.connections as u64)
    };
    let interval = if plan.rate > 0.0 {
        Some(Duration::from_secs_f64(plan.connections as f64 / plan.rate))
    } else {
        None
    };
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut tasks = Vec::new();
    for (i, ch) in channels.into_iter().enumerate() {
        let plan = plan.clone();
        tasks.push(tokio::spawn(worker(
            i,
            ch,
            plan,
            per_conn_limit,
            interval,
            deadline,
        )));
    }
    let mut lat = Vec::new();
    let (mut errors, mut degraded) = (0, 0);
    for t in tasks {
        let (l, e, d) = t.await?;
        lat.extend(l);
        errors += e;
        degraded += d;
    }
    let seconds = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    Ok(LoadReport {
        ok: lat.len() as u64,
        errors,
        degraded,
        seconds,
        throughput: lat.len() as f64 / seconds.max(1e-9),
        p50_us: percentile(&lat, 0.50),
        p90_us: percentile(&lat, 0.90),
        p99_us: percentile(&lat, 0.99),
        p999_us: percentile(&lat, 0.999),
        max_us: lat.last().copied().unwrap_or(0),
    })
}

async fn worker(
    index: usize,
    channel: Channel,
    plan: LoadPlan,
    limit: u64,
    interval: Option<Duration>,
    deadline: Instant,
) -> (Vec<u64>, u64, u64) {
    let mut client = CommentFilterClient::new(channel);
    let auth: Option<MetadataValue<_>> = plan
        .key
        .as_ref()
        .and_then(|k| format!("Bearer {k}").parse().ok());
    let mut lat = Vec::new();
    let (mut errors, mut degraded) = (0u64, 0u64);
    let mut next = Instant::now();
    let mut n = 0u64;
    while n < limit && Instant::now() < deadline {
        if let Some(iv) = interval {
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
            next += iv;
        }
        let content = &plan.comments[(index + n as usize * plan.connections) % plan.comments.len()];
        let ip = if plan.vary_ip {
            format!("10.{}.{}.{}", index % 256, (n / 256) % 256, n % 256)
        } else {
            String::new()
        };
        let mut req = tonic::Request::new(pb::CheckRequest {
            comment: Some(pb::Comment {
                content: content.clone(),
                ..Default::default()
            }),
            client: Some(pb::Client {
                ip,
                ..Default::default()
            }),
            ..Default::default()
        });
        if let Some(a) = &auth {
            req.metadata_mut().insert("authorization", a.clone());
        }
        let t = Instant::now();
        match client.check(req).await {
            Ok(resp) => {
                lat.push(t.elapsed().as_micros() as u64);
                if resp.get_ref().degraded {
                    degraded += 1;
                }
            }
            Err(_) => errors += 1,
        }
        n += 1;
    }
    (lat, errors, degraded)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 500);
        assert_eq!(percentile(&v, 0.99), 990);
        assert_eq!(percentile(&v, 0.999), 999);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
