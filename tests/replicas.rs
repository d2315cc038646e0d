//! Two replicas on one Redis, and on a Redis Cluster of three masters: what one replica learns
//! or publishes, the other serves.
//!
//! Each test starts its own `redis-server` processes on free loopback ports (the cluster with
//! `--cluster-enabled yes` and `redis-cli --cluster create`), and two in-process hamgate
//! servers (the real `build_app` and `serve`) sharing them. Then, through replica A only:
//! feedback changes the reputation that B sees, and the sites' layers of both learn the same
//! labels; a retrain is served by B within seconds; a rollback restores the old version on both.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use common::redis_server::{free_cluster_port, redis_cli};
use common::{check_from, check_req, TestServer};
use hamgate::comment::Label;
use hamgate::config::{hash_key, ReputationBackend, Settings, SiteSettings};
use hamgate::grpc::pb;
use hamgate::grpc::pb::comment_filter_client::CommentFilterClient;
use tonic::transport::Channel;
use tonic::Request;

type Client = CommentFilterClient<Channel>;

const SITE_KEY: &str = "blog-key";
const ADMIN_KEY: &str = "admin-key";
/// How long a replica may take to see what the other did ("within seconds").
const PROPAGATION: Duration = Duration::from_secs(5);

fn with_key<T>(msg: T, key: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii metadata"),
    );
    req
}

// ---------------------------------------------------------------------------------------------
// Redis processes.

/// `redis-server` processes (tests/common's [`RedisServer`]), each killed on drop (also when the
/// test panics).
struct Redis {
    nodes: Vec<RedisServer>,
}

impl Redis {
    /// One server.
    fn single() -> Redis {
        Redis {
            nodes: vec![RedisServer::start()],
        }
    }

    /// A cluster of three masters, no replicas, every slot assigned.
    fn cluster() -> Redis {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(
                    free_cluster_port(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let r = Redis { nodes };
        let addrs: Vec<String> = r.ports().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        redis_cli(r.nodes[0].port, &args).expect("redis-cli --cluster create succeeds");
        // Every node must agree the cluster is whole before clients use it.
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in r.ports() {
            loop {
                let info = redis_cli(port, &["cluster", "info"]).unwrap_or_default();
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster not ok on {port}: {info}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        r
    }

    fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes.iter().map(|n| n.port)
    }

    /// The `redis_url` setting: one URL, or the seed nodes separated by commas.
    fn url(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Keys of every node matching `pattern`.
    fn keys(&self, pattern: &str) -> Vec<(u16, String)> {
        let mut out = Vec::new();
        for port in self.ports() {
            let text = redis_cli(port, &["--scan", "--pattern", pattern]).unwrap_or_default();
            out.extend(
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(|k| (port, k.to_string())),
            );
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The replicas.

fn replica_settings(redis: &Redis, cluster: bool) -> Settings {
    let mut s = Settings::default();
    s.reputation.backend = ReputationBackend::Redis;
    s.reputation.redis_url = Some(redis.url());
    s.reputation.redis_cluster = cluster;
    s.reputation.secret = Some("shared-install-secret".into());
    // Cluster calls may need a new topology on first use; a slow first lookup must not count
    // as Redis being down.
    s.reputation.timeout_ms = 1000;
    s.sites.insert(
        "blog".into(),
        SiteSettings {
            key_sha256: vec![hash_key(SITE_KEY)],
            ..Default::default()
        },
    );
    s.admin_key_sha256 = Some(hash_key(ADMIN_KEY));
    s.feedback.site_labels_per_hour = 10_000;
    s.feedback.base_corpus = vec![root().join("models/corpus/youtube")];
    s
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn probe(client: &mut Client, req: pb::CheckRequest) -> pb::CheckResponse {
    let req = pb::CheckRequest {
        is_test: true,
        ..req
    };
    client
        .check(with_key(req, SITE_KEY))
        .await
        .expect("check")
        .into_inner()
}

async fn model_info(client: &mut Client) -> pb::GetModelInfoResponse {
    client
        .get_model_info(with_key(pb::GetModelInfoRequest {}, SITE_KEY))
        .await
        .expect("model info")
        .into_inner()
}

async fn label(client: &mut Client, req: pb::CheckRequest, label: pb::Label) -> u64 {
    client
        .feedback(with_key(
            pb::FeedbackRequest {
                target: Some(pb::feedback_request::Target::Check(req)),
                label: label as i32,
                ..Default::default()
            },
            SITE_KEY,
        ))
        .await
        .expect("feedback")
        .into_inner()
        .label_seq
}

/// Polls `f` until it returns `Some`, or fails the test after [`PROPAGATION`].
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return (v, start.elapsed());
        }
        assert!(
            start.elapsed() < PROPAGATION,
            "{what}: not seen within {PROPAGATION:?}"
        );
        // Finely, so the times printed measure the replicas rather than this loop.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn reputation_log_odds(r: &pb::CheckResponse) -> f64 {
    r.reasons
        .iter()
        .filter(|x| x.kind == pb::ReasonKind::Reputation as i32)
        .map(|x| x.log_odds)
        .sum()
}

async fn two_replicas_act_as_one(redis: &Redis, cluster: bool) {
    let settings = replica_settings(redis, cluster);
    let a = TestServer::start(settings.clone()).await;
    let b = TestServer::start(settings).await;
    let mut ca = a.client().await;
    let mut cb = b.client().await;

    // Both replicas reach Redis (they connect in the background).
    for c in [&mut ca, &mut cb] {
        eventually("a replica connected to Redis", || {
            let mut c = c.clone();
            async move { (!probe(&mut c, check_req("hello")).await.degraded).then_some(()) }
        })
        .await;
    }

    // 1. Feedback through A changes the reputation B sees for the same sender.
    let ip = "203.0.113.77";
    let before = probe(&mut cb, check_from("What a lovely melody", ip)).await;
    assert!(!before.degraded);
    assert_eq!(reputation_log_odds(&before), 0.0, "{before:?}");
    for text in [
        "cheap pills here",
        "visit my page for prizes",
        "free followers now",
    ] {
        label(&mut ca, check_from(text, ip), pb::Label::Spam).await;
    }
    let (after, took) = eventually("A's spam labels in B's reputation of the sender", || {
        let mut cb = cb.clone();
        async move {
            let r = probe(&mut cb, check_from("What a lovely melody", ip)).await;
            (reputation_log_odds(&r) > 0.5).then_some(r)
        }
    })
    .await;
    assert!(
        after.spam_probability > before.spam_probability,
        "{before:?} -> {after:?}"
    );
    eprintln!("reputation through A seen by B after {took:?}");

    // 2. The sites' layers: B learns A's labels by following the shared log.
    let (info_a, info_b) = (model_info(&mut ca).await, model_info(&mut cb).await);
    assert_eq!(info_a.site_labels, 3, "{info_a:?}");
    let (_, took) = eventually("A's labels in B's site layer", || {
        let mut cb = cb.clone();
        async move { (model_info(&mut cb).await.site_labels == 3).then_some(()) }
    })
    .await;
    eprintln!(
        "site layer: B learned A's labels after {took:?} (had {})",
        info_b.site_labels
    );

    // 3. A retrain through A is served by B within seconds.
    let original = info_a.version.clone();
    assert_eq!(model_info(&mut cb).await.version, original);
    let sms = hamgate::corpus::read_corpus(&[root().join("models/corpus/sms/SMSSpamCollection")])
        .expect("sms corpus");
    let (sms, _) = hamgate::corpus::dedup(sms.examples);
    let spam = sms.iter().filter(|e| e.label == Label::Spam).take(60);
    let ham = sms.iter().filter(|e| e.label == Label::Ham).take(60);
    for (s, h) in spam.zip(ham) {
        label(&mut ca, check_req(&s.comment.content), pb::Label::Spam).await;
        label(&mut ca, check_req(&h.comment.content), pb::Label::Ham).await;
    }
    // The site's own thresholds, fitted on those labels, are the same on both replicas: each
    // learns the shared log in the same order and scores each label the same way.
    let site_of = |i: pb::GetModelInfoResponse| i.sites.into_iter().next().expect("the site");
    let fitted_a = site_of(model_info(&mut ca).await);
    assert_eq!(
        (fitted_a.labels_ham, fitted_a.labels_spam, fitted_a.learning),
        (60, 63, false),
        "{fitted_a:?}"
    );
    assert_eq!(
        fitted_a.thresholds_source(),
        pb::ThresholdsSource::Fitted,
        "{fitted_a:?}"
    );
    eventually("A's fitted thresholds on B", || {
        let mut cb = cb.clone();
        let want = fitted_a.clone();
        async move { (site_of(model_info(&mut cb).await) == want).then_some(()) }
    })
    .await;
    let report = ca
        .retrain(with_key(pb::RetrainRequest {}, ADMIN_KEY))
        .await
        .expect("retrain")
        .into_inner();
    assert!(report.accepted, "{report:?}");
    let retrained = report.model_version.clone();
    assert_ne!(retrained, original);
    let (_, took) = eventually("the retrained model on B", || {
        let mut cb = cb.clone();
        let want = retrained.clone();
        async move {
            let r = probe(&mut cb, check_req("hello")).await;
            (r.model_version == want).then_some(())
        }
    })
    .await;
    eprintln!("retrain through A served by B after {took:?}");
    // Both dropped their layers with the old model and replayed the labels newer than the new
    // one, so they agree again.
    let layers_a = model_info(&mut ca).await.site_labels;
    assert!(
        layers_a < 123,
        "the retrained model learned the labels: {layers_a}"
    );
    eventually("B's layers equal A's after the swap", || {
        let mut cb = cb.clone();
        async move { (model_info(&mut cb).await.site_labels == layers_a).then_some(()) }
    })
    .await;

    // The model is published through Redis, under one hash tag.
    let keys = redis.keys("hg:model:*");
    assert!(
        keys.iter()
            .any(|(_, k)| k == &format!("hg:model:{{model}}:v:{retrained}")),
        "{keys:?}"
    );
    let nodes: std::collections::BTreeSet<u16> = keys.iter().map(|(p, _)| *p).collect();
    assert_eq!(nodes.len(), 1, "model keys on one node: {keys:?}");

    // 4. A rollback through B restores the old version on both.
    let back = cb
        .rollback(with_key(pb::RollbackRequest {}, ADMIN_KEY))
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(back.model_version, original);
    for c in [&mut ca, &mut cb] {
        let (_, took) = eventually("the rolled-back model", || {
            let mut c = c.clone();
            let want = original.clone();
            async move { (model_info(&mut c).await.version == want).then_some(()) }
        })
        .await;
        eprintln!("rollback seen after {took:?}");
    }
    let r = probe(&mut ca, check_req("hello")).await;
    assert_eq!(r.model_version, original);

    // 5. A third replica started now serves the published version and the layers of the others.
    let c = TestServer::start(replica_settings(redis, cluster)).await;
    let mut cc = c.client().await;
    let info_c = model_info(&mut cc).await;
    assert_eq!(info_c.version, original);
    assert_eq!(
        info_c.site_labels,
        model_info(&mut ca).await.site_labels,
        "a new replica rebuilds the same layers from the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_act_as_one() {
    let redis = Redis::single();
    two_replicas_act_as_one(&redis, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_a_redis_cluster_act_as_one() {
    let redis = Redis::cluster();
    two_replicas_act_as_one(&redis, true).await;
    // The data really is spread over the masters: the cluster is used, not one node of it.
    let keys = redis.keys("hg:*");
    let nodes: std::collections::BTreeSet<u16> = keys.iter().map(|(p, _)| *p).collect();
    assert!(
        nodes.len() >= 2,
        "keys on {} node(s): {keys:?}",
        nodes.len()
    );
}
