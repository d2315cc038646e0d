//! hamgate: a self-hosted comment spam filter.
//!
//! A blog's comment handler asks hamgate about each new comment and gets back accept, hold or
//! reject, with a calibrated spam probability and the reasons. This crate is the library behind
//! the `hamgate` binary; the binary only parses its command line and calls in here.
//!
//! # Map of the modules, from the ground up
//! Each module uses only modules on the floors below it, or listed before it on its own floor
//! (in brackets: the modules it uses, tests aside). `tests/module_map.rs` checks this against
//! every `crate::` path in the sources.
//!
//! 1. **Shared words**, used by every floor above:
//!    [`verdict`] (accept / hold / reject, the two thresholds, log-odds to probability) [-];
//!    [`clock`] (the one injectable clock: system or manual) [-];
//!    [`comment`] (the comment, its label and metadata) [-];
//!    [`redis_conn`] (a Redis target, single or cluster, its timeouts, connect-with-timeouts
//!    and connect-in-background) [-];
//!    [`shutdown`] (one shutdown signal fanned out to every listener) [-];
//!    [`text`] (normalisation, tokens, feature ids, URL parsing, shapes) [comment];
//!    [`report`] (AUC, F1 and the three-way view of scored examples) [comment, verdict].
//! 2. **Data and stores**:
//!    [`corpus`] (labelled data: readers, deduplication, digest) [comment, text];
//!    [`labels`] (the label log of moderators' verdicts, durable before acknowledged: file and
//!    Redis stream) [comment, redis_conn];
//!    [`stats`] (counts per site, verdict and minute, rolled up to hours and days, latency
//!    histograms; in memory or shared Redis buckets) [clock, comment, redis_conn, verdict];
//!    [`reputation`] (decaying spam/ham counts per keyed-hash identifier; embedded and Redis
//!    stores) [comment, corpus, redis_conn, text];
//!    [`import`] (a site's moderation history: WP-CLI JSON/CSV, WordPress WXR, Disqus XML, and
//!    hamgate's JSONL/CSV, read all-or-nothing into labelled comments with stable import keys)
//!    [comment, corpus].
//! 3. **The model**: [`model`] (naive Bayes over hashed sparse features: counts, scoring,
//!    calibration, training, the online site layer, the model file)
//!    [comment, corpus, report, text, verdict].
//! 4. **Above the model**:
//!    [`policy`] (text score + reputation + rules -> verdict with reasons; what a verdict
//!    teaches reputation) [comment, model, reputation, verdict];
//!    [`eval`] (prediction and leave-one-group-out cross-validation, `eval-adapt`)
//!    [corpus, model, report, text];
//!    [`retrain`] (a candidate from the base corpus plus the label log, admitted only when not
//!    worse on held-back labels; the directory of model versions) [comment, corpus, eval,
//!    labels, model];
//!    [`model_store`] (where model versions live: that directory, or Redis for all replicas)
//!    [model, redis_conn, retrain];
//!    [`config`] (settings: defaults, TOML file, environment; validation) [corpus, model,
//!    redis_conn].
//! 5. **The application**: [`app`], the one API every adapter calls, a file per use case:
//!    `app/mod.rs` (the handle, construction, authentication, the model slot), `check.rs`,
//!    `feedback.rs` (labels, and layers following the label log), `import.rs` (a site's history
//!    as labels, idempotent by import key), `layers.rs` (the sites' online layers and hourly
//!    budgets), `admin.rs` (model info, retrain, rollback, refresh),
//!    `stats.rs` [clock, comment, config, corpus, labels, model, model_store, policy,
//!    reputation, retrain, stats, text, verdict].
//! 6. **Adapters**, thin: [`grpc`] (generated code, proto <-> domain conversion, the one error ->
//!    `Status` mapping) [app, comment, config, policy, stats, verdict]; [`http`] (stats JSON API,
//!    Prometheus metrics, health, the dashboard page, the Akismet-compatible API) [app,
//!    comment, config, shutdown, stats, verdict].
//! 7. **Process**: [`server`] (builds the app from settings, serves gRPC and HTTP, shuts down
//!    gracefully) [app, config, grpc, http, labels, model, redis_conn, reputation, retrain,
//!    shutdown, stats]. The command line (`serve`, `check`, `bench-load` and its load client,
//!    `train`, `eval`, `retrain`, `config`, ...) lives in the binary, `src/main.rs` and
//!    `src/cli/` (a file per kind of command), and is the only code that prints.
//!
//! # Example
//! ```
//! use hamgate::comment::Comment;
//! use hamgate::model::Model;
//!
//! let model = Model::embedded().expect("the shipped model loads");
//! let score = model.score(&Comment::from_content("Check out my channel and subscribe!!! http://bit.ly/xyz"));
//! assert!(score.probability() > 0.5);
//! let verdict = model.thresholds().decide(score.log_odds);
//! println!("{verdict:?} p={:.3}", score.probability());
//! ```
#![deny(missing_docs)]

pub mod app;
pub mod clock;
pub mod comment;
pub mod config;
pub mod corpus;
pub mod eval;
pub mod grpc;
pub mod http;
pub mod import;
pub mod labels;
pub mod model;
pub mod model_store;
pub mod policy;
pub mod redis_conn;
pub mod report;
pub mod reputation;
pub mod retrain;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod text;
pub mod verdict;

/// 64 random bits from the standard library's per-process SipHash keys (seeded by the OS), for
/// check-id prefixes and the embedded store's throwaway HMAC secret. Not for long-lived keys.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.finish()
}
