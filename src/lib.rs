//! hamgate: a self-hosted comment spam filter.
//!
//! A blog's comment handler asks hamgate about each new comment and gets back accept, hold or
//! reject, with a calibrated spam probability and the reasons. This crate is the library behind
//! the `hamgate` binary; the binary only parses its command line and calls in here.
//!
//! # Map of the modules, from the ground up
//! Each floor uses only the floors below it.
//!
//! 1. [`comment`] (the comment and its label), [`text`] (normalisation and tokens),
//!    [`corpus`] (labelled data: readers, deduplication, digest);
//! 2. [`model`] (naive Bayes over hashed sparse features: counts, scoring, calibration,
//!    training, the model file);
//! 3. [`policy`] (calibrated log-odds to accept / hold / reject) and [`eval`] (AUC, F1 and the
//!    three-way view, leave-one-group-out cross-validation);
//! 1. also [`config`] (settings: defaults, TOML file, environment) and [`reputation`] (decaying
//!    spam/ham counts per hashed identifier; embedded and Redis stores);
//! 1. also [`labels`] (moderators' verdicts, durably logged for retraining; file and Redis);
//! 1. also [`stats`] (counts per site, verdict and minute, rolled up to hours and days, with
//!    latency histograms; in memory or in shared Redis buckets);
//! 3. also [`retrain`] (a candidate from the base corpus plus the label log, admitted only when
//!    not worse on held-back labels; the directory of model versions and rollback);
//! 4. [`app`]: the one application API (check, later feedback, stats, model admin) that every
//!    adapter calls;
//! 5. [`grpc`]: the thin gRPC adapter (generated code, conversions, error mapping), and
//!    [`http`]: the thin HTTP adapter (stats JSON API, Prometheus metrics, health, the
//!    dashboard page);
//! 6. [`server`] (wires the app, serves it, shuts down gracefully; [`shutdown`] fans the one
//!    signal out to every listener). The command line (`serve`,
//!    `check`, `bench-load` and its load client, `train`, `eval`, `score`, ...) lives in the
//!    binary, `src/main.rs` and `src/cli/`, and is the only code that prints.
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
pub mod comment;
pub mod config;
pub mod corpus;
pub mod eval;
pub mod grpc;
pub mod http;
pub mod labels;
pub mod model;
pub mod model_store;
pub mod policy;
pub mod redis_conn;
pub mod reputation;
pub mod retrain;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod text;

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
