//! The in-process server harness shared by the network tests: the real `build_app` and `serve`
//! on `127.0.0.1:0`, a oneshot for the shutdown future, and a tonic client.
#![allow(dead_code)]

use std::net::SocketAddr;
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
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    /// Builds the app from `settings` and serves it on a free loopback port. Must be called
    /// inside a Tokio runtime.
    pub async fn start(settings: Settings) -> TestServer {
        let app = hamgate::server::build_app(&settings).expect("the app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender also stops the server.
            let _ = rx.await;
        };
        let handle = tokio::spawn(hamgate::server::serve(
            app,
            listener,
            settings.limits.max_message_bytes,
            shutdown,
        ));
        TestServer {
            addr,
            shutdown: Some(tx),
            handle: Some(handle),
        }
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
