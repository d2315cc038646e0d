//! linfa-bayes as the reference oracle for our sparse multinomial naive Bayes.
//!
//! We fit `linfa_bayes::MultinomialNb` on a dense projection of the shipped YouTube corpus onto
//! a small vocabulary (the most frequent features), fit our own count table on the same
//! projection, and require that the per-class joint log-likelihoods agree to 1e-9, that our fast
//! log-odds path equals their difference, that normalised class log-probabilities agree, and that
//! every prediction is the same.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use linfa::prelude::*;
use linfa_bayes::{MultinomialNb, NaiveBayes};
use ndarray::{Array1, Array2};

use hamgate::comment::Label;
use hamgate::corpus::{dedup, read_corpus};
use hamgate::model::counts::CountTable;
use hamgate::model::{features_for, Model, ModelHeader, NbParams, Variant};
use hamgate::text::{FeatureId, Scratch};

const VOCABULARY: usize = 300;
const ALPHA: f64 = 1.0;

#[test]
fn multinomial_scorer_matches_linfa_bayes_on_the_shipped_corpus() {
    let corpus = read_corpus(&[PathBuf::from("models/corpus/youtube")]).expect("corpus reads");
    let (examples, _) = dedup(corpus.examples);
    assert!(examples.len() > 1500);

    // Token counts per comment (multinomial: repeats count).
    let mut scratch = Scratch::default();
    let docs: Vec<Vec<FeatureId>> = examples
        .iter()
        .map(|e| {
            let mut f = Vec::new();
            features_for(Variant::Multinomial, &e.comment, &mut scratch, &mut f);
            f
        })
        .collect();

    // The vocabulary: the most frequent features, ties broken by id so it is deterministic.
    let mut freq: HashMap<FeatureId, usize> = HashMap::new();
    for d in &docs {
        for f in d {
            *freq.entry(*f).or_default() += 1;
        }
    }
    let mut by_freq: Vec<(FeatureId, usize)> = freq.into_iter().collect();
    by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let vocab: Vec<FeatureId> = by_freq.iter().take(VOCABULARY).map(|&(f, _)| f).collect();
    let column: HashMap<FeatureId, usize> =
        vocab.iter().enumerate().map(|(i, &f)| (f, i)).collect();

    // Dense projection for linfa, and the same projection as sparse feature lists for us.
    let mut x = Array2::<f64>::zeros((docs.len(), vocab.len()));
    let mut projected: Vec<Vec<FeatureId>> = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        let kept: Vec<FeatureId> = d
            .iter()
            .copied()
            .filter(|f| column.contains_key(f))
            .collect();
        for f in &kept {
            x[(i, column[f])] += 1.0;
        }
        projected.push(kept);
    }
    let y: Array1<usize> = examples.iter().map(|e| e.label.index()).collect();

    let dataset = Dataset::new(x.clone(), y.clone());
    let oracle = MultinomialNb::params()
        .alpha(ALPHA)
        .fit(&dataset)
        .expect("linfa fits");

    let mut table = CountTable::default();
    for (d, e) in projected.iter().zip(&examples) {
        table.add(e.label, d);
    }
    assert_eq!(
        table.vocabulary(),
        vocab.len(),
        "every vocabulary feature occurs"
    );
    let mut header = ModelHeader::new(NbParams {
        variant: Variant::Multinomial,
        alpha: ALPHA,
        length_norm: 0.0,
    });
    header.train_docs = table.docs;
    let ours = Model::new(header, table);

    let jll = oracle.joint_log_likelihood(x.view());
    let (log_proba, classes) = oracle.predict_log_proba(x.view());
    assert_eq!(classes, vec![&0usize, &1usize]);
    let predicted = oracle.predict(&x);

    let mut disagreements = 0;
    let mut compared = 0;
    let mut linfa_underflows = 0;
    for (i, feats) in projected.iter().enumerate() {
        let mine = ours.class_log_likelihoods(feats);
        for (c, &m) in mine.iter().enumerate() {
            let theirs = jll[&c][i];
            assert!(
                (m - theirs).abs() < 1e-9,
                "comment {i} class {c}: ours {m} linfa {theirs}"
            );
            // Normalised log P(class | comment). linfa 0.8.1 computes ln(e^a + e^b) without
            // the max trick, so for long comments (joint log-likelihoods below about -745) its
            // value underflows to ln(0) and it reports infinities; we use log-sum-exp and
            // compare wherever linfa's value is finite.
            let theirs = log_proba[(i, c)];
            if theirs.is_finite() {
                let norm = log_sum_exp(mine[0], mine[1]);
                assert!(
                    (m - norm - theirs).abs() < 1e-9,
                    "comment {i} class {c}: ours {} linfa {theirs}",
                    m - norm
                );
                compared += 1;
            } else {
                linfa_underflows += 1;
            }
        }
        let fast = ours.raw_log_odds(feats);
        assert!(
            (fast - (mine[1] - mine[0])).abs() < 1e-9,
            "comment {i}: fast path {fast} vs {}",
            mine[1] - mine[0]
        );
        let our_label = if fast > 0.0 { Label::Spam } else { Label::Ham };
        if our_label.index() != predicted[i] {
            disagreements += 1;
        }
    }
    assert_eq!(disagreements, 0, "every prediction agrees with linfa-bayes");
    // The underflow only hits a few very long comments; the rest must have been compared.
    assert!(
        compared > 2 * (docs.len() - 20),
        "compared {compared}, linfa underflowed {linfa_underflows}"
    );
}

fn log_sum_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}
