//! Measure, in one process, how close the stone reader's extraction gets to raw zstd.
//!
//! ```text
//! cargo run --release -p stone --example extract_ratio -- [-n ITERATIONS] [--only abc] [FILE.stone]
//! ```
//!
//! Without FILE, the benchmark package of `benches/extract.rs` is used (generated once into
//! `target/stone-bench/` with `../shared/bench/stonegen.py`). Each of the three operations runs
//! ITERATIONS times (default 5) after one warm-up, interleaved so that they see the same machine
//! state; the best and median throughputs in MiB/s of plain content are printed, then the ratio
//! of full extraction to raw zstd (target: at least 0.70). `--only` runs a subset (for profiling).
//! Files are extracted under `$STONE_BENCH_TMP` (default: the system temp dir).
#![allow(clippy::print_stdout)]

#[path = "../benches/support/mod.rs"]
mod support;

use std::{env, path::PathBuf, time::Instant};

fn main() {
    let mut path = None;
    let mut iterations = 5usize;
    let mut only = "abc".to_owned();
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" | "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|value| value.parse().ok())
                    .expect("-n takes a number");
            }
            "--only" => only = args.next().expect("--only takes some of a, b, c"),
            _ => path = Some(PathBuf::from(arg)),
        }
    }
    let iterations = iterations.max(1);
    let path = path.unwrap_or_else(support::bench_stone);
    let package = support::Package::open(&path);
    println!(
        "{}: {} index entries, {:.1} MiB plain, {:.1} MiB stored",
        path.display(),
        package.entries,
        package.plain_size() as f64 / 1048576.0,
        package.stored_size() as f64 / 1048576.0,
    );

    let names = [
        "(a) raw zstd decompression",
        "(b) full extraction to files",
        "(c) decompress + verify",
    ];
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..=iterations {
        for (which, samples) in times.iter_mut().enumerate() {
            if !only.contains(["a", "b", "c"][which]) {
                continue;
            }
            let scratch = support::scratch();
            let start = Instant::now();
            let bytes = match which {
                0 => support::raw_zstd(&package),
                1 => support::extract(&package, scratch.path()),
                _ => support::verify(&package),
            };
            let seconds = start.elapsed().as_secs_f64();
            assert_eq!(bytes, package.plain_size());
            // Removing the extracted tree is not part of the measurement.
            drop(scratch);
            if round > 0 {
                samples.push(seconds);
            }
        }
    }

    let mut medians = [0.0; 3];
    let mut bests = [0.0; 3];
    for (((name, samples), median), best) in names
        .iter()
        .zip(&mut times)
        .zip(&mut medians)
        .zip(&mut bests)
    {
        if samples.is_empty() {
            continue;
        }
        samples.sort_by(f64::total_cmp);
        *median = samples[samples.len() / 2];
        *best = samples[0];
        println!(
            "{name:<30} median {:7.1} MiB/s  best {:7.1} MiB/s  ({} runs)",
            support::mib_per_s(package.plain_size(), *median),
            support::mib_per_s(package.plain_size(), samples[0]),
            samples.len(),
        );
    }
    if medians.contains(&0.0) {
        return;
    }
    println!(
        "ratio (b)/(a) = {:.2} of medians, {:.2} of bests   (c)/(a) = {:.2}, {:.2}   (target (b)/(a) >= 0.70)",
        medians[0] / medians[1],
        bests[0] / bests[1],
        medians[0] / medians[2],
        bests[0] / bests[2],
    );
}
