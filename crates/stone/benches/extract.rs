//! Extraction throughput of the stone reader against raw zstd, on one large generated package.
//!
//! ```text
//! cargo bench -p stone --bench extract
//! ```
//!
//! The package (208.5 MiB of plain content in 8 778 unique bodies, realistic size model) is
//! generated once with `../shared/bench/stonegen.py` into `target/stone-bench/`; set
//! `STONE_BENCH_FILE` to measure another stone, `STONE_BENCH_TMP` to extract somewhere other
//! than the system temp dir (e.g. `/dev/shm`, where file creation costs microseconds rather than
//! whatever the disk's filesystem charges). Throughput is plain content bytes per second in
//! every group:
//!
//! * `raw_zstd`: the content payload decompressed by the zstd crate, output discarded;
//! * `extract_files`: the reader's full path writing one file per index entry;
//! * `decompress_verify`: the reader's full path with a discarding sink.
//!
//! `cargo run --release -p stone --example extract_ratio` prints the ratio directly.

#[path = "support/mod.rs"]
mod support;

use std::{hint::black_box, time::Duration};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn extract(c: &mut Criterion) {
    let package = support::Package::open(&support::bench_stone());
    let mut group = c.benchmark_group("extract");
    group
        .throughput(Throughput::Bytes(package.plain_size()))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15));
    group.bench_function("raw_zstd", |b| {
        b.iter(|| black_box(support::raw_zstd(&package)))
    });
    group.bench_function("extract_files", |b| {
        b.iter_batched(
            support::scratch,
            |scratch| {
                black_box(support::extract(&package, scratch.path()));
                // Returned so that criterion removes the tree outside the measurement.
                scratch
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("decompress_verify", |b| {
        b.iter(|| black_box(support::verify(&package)))
    });
    group.finish();
}

criterion_group!(benches, extract);
criterion_main!(benches);
