//! Criterion benchmarks of the model on real comments: scoring, training and explaining.
//!
//! Data: the shipped YouTube corpus (`models/corpus/youtube`), deduplicated as training does.
//! Model: the shipped default model (`Model::embedded()`).
//!
//! Run with `cargo bench --bench model`; results and targets are in docs/BENCH-model.md.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use hamgate::comment::Comment;
use hamgate::corpus::{dedup, read_corpus, DedupStats, Example};
use hamgate::model::train::{fit_counts, train, TrainParams};
use hamgate::model::Model;
use hamgate::text::Scratch;

/// The deduplicated shipped corpus.
fn corpus() -> Vec<Example> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/corpus/youtube");
    let corpus = read_corpus(&[dir]).expect("the shipped corpus reads");
    let (examples, stats) = dedup(corpus.examples);
    eprintln!(
        "corpus: {} comments before dedup, {} kept",
        stats.before, stats.kept
    );
    examples
}

/// The comment whose content length (bytes) is the median of the corpus; ties keep corpus order.
fn median_comment(examples: &[Example]) -> Comment {
    let mut by_len: Vec<&Example> = examples.iter().collect();
    by_len.sort_by_key(|e| e.comment.content.len());
    let median = by_len[by_len.len() / 2].comment.clone();
    eprintln!(
        "median comment: {} bytes, {} chars: {:?}",
        median.content.len(),
        median.content.chars().count(),
        median.content
    );
    median
}

fn model() -> Model {
    let model = Model::embedded().expect("the shipped model loads");
    eprintln!(
        "model: {} features, heap_bytes = {} ({:.2} MiB)",
        model.counts().vocabulary(),
        model.heap_bytes(),
        model.heap_bytes() as f64 / (1024.0 * 1024.0)
    );
    model
}

fn bench_score(c: &mut Criterion) {
    let examples = corpus();
    let median = median_comment(&examples);
    let model = model();
    let mut scratch = Scratch::default();
    let mut feats = Vec::new();

    let mut group = c.benchmark_group("score");
    group.throughput(Throughput::Elements(1));
    group.bench_function("median", |b| {
        b.iter(|| model.score_with(black_box(&median), &mut scratch, &mut feats))
    });

    group.throughput(Throughput::Elements(examples.len() as u64));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for ex in &examples {
                sum += model
                    .score_with(black_box(&ex.comment), &mut scratch, &mut feats)
                    .log_odds;
            }
            sum
        })
    });
    group.finish();
}

fn bench_train(c: &mut Criterion) {
    let examples = corpus();
    let refs: Vec<&Example> = examples.iter().collect();
    let params = TrainParams::default();

    let mut group = c.benchmark_group("train");
    group.throughput(Throughput::Elements(examples.len() as u64));
    group.bench_function("fit_counts", |b| {
        b.iter(|| fit_counts(params.nb, black_box(&refs)))
    });
    // One call = 5 out-of-fold fits and scorings for the calibration + 1 final fit, so each
    // comment is tokenised and counted 6 times; comments/s here means corpus comments per second
    // of a whole `train` call.
    group.bench_function("full", |b| {
        b.iter(|| {
            train(
                black_box(&examples),
                &params,
                "",
                DedupStats::default(),
                &|| {},
            )
            .expect("training succeeds")
        })
    });
    group.finish();
}

fn bench_explain(c: &mut Criterion) {
    let examples = corpus();
    let median = median_comment(&examples);
    let model = model();

    let mut group = c.benchmark_group("explain");
    group.throughput(Throughput::Elements(1));
    group.bench_function("median", |b| {
        b.iter(|| model.explain(black_box(&median), 5))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(50);
    targets = bench_score, bench_train, bench_explain
}
criterion_main!(benches);
