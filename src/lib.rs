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
//! 4. [`cli`]: the command-line front end (`train`, `eval`, `score`, `corpus`).
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

pub mod cli;
pub mod comment;
pub mod corpus;
pub mod eval;
pub mod model;
pub mod policy;
pub mod text;
