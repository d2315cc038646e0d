//! The in-process server harness shared by the network tests: the real `build_app` and
//! `serve_all` (gRPC and HTTP) on `127.0.0.1:0`, a oneshot for the shutdown future, a tonic
//! client, and a tiny HTTP/1.1 client. Beside it, what tests of the real binary and of Redis
//! share: a free port and a child-process guard ([`process`]), and a `redis-server` launcher
//! ([`redis_server`]).
#![allow(dead_code)]

pub mod process;
pub mod redis_server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hamgate::config::Settings;
use hamgate::grpc::pb;
use hamgate::grpc::pb::comment_filter_client::CommentFilterClient;
use hamgate::server::ServeError;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A server running in this process, stopped when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its HTTP side listens.
    pub http_addr: SocketAddr,
    /// Where `/metrics` listens when `metrics_addr` is set.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
}

/// Default settings but sites decided with the model's main thresholds from the first check
/// (`policy.min_learns = 0`), for tests of the API's mechanics with blatant spam and plain ham.
/// A new site's stricter thresholds (the shipped default) have tests of their own
/// (tests/feedback.rs, tests/readme.rs).
pub fn known_site_settings() -> Settings {
    let mut s = Settings::default();
    s.policy.min_learns = 0;
    s
}

impl TestServer {
    /// Builds the app from `settings` and serves it on a free loopback port. Must be called
    /// inside a Tokio runtime.
    pub async fn start(settings: Settings) -> TestServer {
        TestServer::start_with_clock(settings, Arc::new(hamgate::stats::SystemClock)).await
    }

    /// [`TestServer::start`] with the clock stats are counted by.
    pub async fn start_with_clock(
        settings: Settings,
        clock: Arc<dyn hamgate::stats::Clock>,
    ) -> TestServer {
        let app = hamgate::server::build_app_with_clock(&settings, clock).expect("the app builds");
        let bind = || async {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0")
        };
        let listener = bind().await;
        let addr = listener.local_addr().expect("local addr");
        let http = bind().await;
        let http_addr = http.local_addr().expect("local addr");
        let metrics = match settings.metrics_addr {
            Some(_) => Some(bind().await),
            None => None,
        };
        let metrics_addr = metrics
            .as_ref()
            .map(|m| m.local_addr().expect("local addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender also stops the server.
            let _ = rx.await;
        };
        let listeners = hamgate::server::Listeners {
            grpc: listener,
            http,
            metrics,
        };
        let handle = tokio::spawn(async move {
            hamgate::server::serve_all(app, listeners, &settings, shutdown).await
        });
        TestServer {
            addr,
            http_addr,
            metrics_addr,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// The server with [`known_site_settings`]: blatant spam rejected, plain ham accepted from
    /// the first check.
    pub async fn start_known() -> TestServer {
        TestServer::start(known_site_settings()).await
    }

    /// The server with default settings (one open site, embedded reputation).
    pub async fn start_default() -> TestServer {
        TestServer::start(Settings::default()).await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected channel.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("valid url")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("the client connects")
    }

    /// A connected `CommentFilter` client.
    pub async fn client(&self) -> CommentFilterClient<Channel> {
        CommentFilterClient::new(self.channel().await)
    }

    /// Triggers shutdown and waits (at most `within`) for the server task to end, returning
    /// what `serve` returned.
    pub async fn stop(mut self, within: Duration) -> Result<Result<(), ServeError>, String> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let handle = self.handle.take().expect("running");
        match tokio::time::timeout(within, handle).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(join)) => Err(format!("the server task panicked: {join}")),
            Err(_) => Err(format!("the server did not stop within {within:?}")),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// One health check of the server behind `endpoint`: a channel to it when it answers SERVING,
/// `None` when it is not up yet or not serving. Tests of the real binary poll this, bounded.
pub async fn serving_channel(endpoint: tonic::transport::Endpoint) -> Option<Channel> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let channel = endpoint.connect().await.ok()?;
    let r = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    (r.into_inner().status == ServingStatus::Serving as i32).then_some(channel)
}

/// A check request for `content` with nothing else set.
pub fn check_req(content: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        comment: Some(pb::Comment {
            content: content.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A check request for `content` sent from `ip`.
pub fn check_from(content: &str, ip: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        client: Some(pb::Client {
            ip: ip.into(),
            ..Default::default()
        }),
        ..check_req(content)
    }
}

/// Clear spam in the style of the YouTube Spam Collection.
pub const SPAM: &str =
    "Check out my channel and subscribe! http://www.youtube.com/user/coolvids123 please subscribe";
/// Clear ham.
pub const HAM: &str = "This song is amazing, I still listen to it every day";

/// An HTTP response, as the tiny client read it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding undone).
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `GET path` over a fresh connection with `Connection: close`, optionally with a bearer key:
/// a tiny HTTP/1.1 client, so the tests need no HTTP client crate.
pub async fn http_get(addr: SocketAddr, path: &str, bearer: Option<&str>) -> HttpResponse {
    let auth = bearer.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    http_request(addr, "GET", path, &headers, b"").await
}

/// `method path` with `headers` (a `host` among them replaces the default) and `body`, over a
/// fresh connection with `Connection: close`.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("HTTP connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.expect("HTTP write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("HTTP response within 10 s")
        .expect("HTTP read");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n").expect("chunk size line");
            let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            if size == 0 {
                break;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        out
    } else {
        body.to_string()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}
