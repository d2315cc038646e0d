//! The application's check path without the network: what one `Check` costs hamgate itself
//! (scoring, reasons, identifier hashing, reputation lookup, policy), to compare with the
//! end-to-end figures of `hamgate bench-load` in docs/BENCHMARKS.md.

// A test may panic: unwrap and expect are denied outside tests only (Cargo.toml, clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hamgate::app::{CheckInput, OPEN_SITE};
use hamgate::comment::Comment;
use hamgate::config::Settings;

fn bench_check(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let settings = Settings::default();
    let app = rt
        .block_on(async { hamgate::server::build_app(&settings) })
        .expect("app");
    let caller = app.authenticate(None).expect("open site");
    assert_eq!(caller.site, OPEN_SITE);
    let corpus =
        hamgate::corpus::read_corpus(&[PathBuf::from("models/corpus/youtube")]).expect("corpus");
    let (examples, _) = hamgate::corpus::dedup(corpus.examples);
    let mut lens: Vec<(usize, usize)> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| (e.comment.content.len(), i))
        .collect();
    lens.sort();
    let median = examples[lens[lens.len() / 2].1].comment.content.clone();
    let input = CheckInput {
        comment: Comment {
            content: median,
            ip: "203.0.113.9".into(),
            email: "someone@example.org".into(),
            ..Comment::default()
        },
        is_test: true,
        ..CheckInput::default()
    };

    let mut group = c.benchmark_group("app");
    group.throughput(Throughput::Elements(1));
    group.bench_function("check/median", |b| {
        b.iter(|| {
            rt.block_on(app.check(&caller, input.clone()))
                .expect("check")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(50);
    targets = bench_check
}
criterion_main!(benches);
