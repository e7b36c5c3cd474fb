//! Engine benchmark: ratios measured in one run on the same machine.
//!
//! ```text
//! python3 ../shared/bench/stonegen.py --out corpus-200 --packages 200 --seed 42 --files-per-package 250
//! cargo run --release -p moss --example bench_engine -- corpus-200 EXTRA1.stone EXTRA2.stone
//! ```
//!
//! Steps, each timed: unpack the corpus into the store, blit and switch to the state of the whole
//! corpus (the "install" transaction), add the first extra package, add the second extra package
//! (the steady state: a recent previous state exists), remove one package, roll back one state.
//! Prints entries per second of the full blit and the ratio of the second small transaction to
//! the whole install, plus peak resident memory.

#![expect(clippy::print_stdout, reason = "the benchmark's report is its output")]

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use moss::{Moss, db::Selection, events::Silent};

fn selections(ids: &[String]) -> Vec<Selection> {
    ids.iter()
        .map(|id| Selection {
            package: id.clone(),
            explicit: true,
            reason: None,
        })
        .collect()
}

fn peak_memory_mib() -> f64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    usage.max_rss() as f64 / 1024.0
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut arguments = std::env::args().skip(1);
    let corpus = PathBuf::from(
        arguments
            .next()
            .ok_or("usage: bench_engine CORPUS_DIR EXTRA1 EXTRA2")?,
    );
    let extra_one = PathBuf::from(arguments.next().ok_or("missing EXTRA1")?);
    let extra_two = PathBuf::from(arguments.next().ok_or("missing EXTRA2")?);
    let mut stones: Vec<PathBuf> = std::fs::read_dir(&corpus)?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "stone")
        })
        .collect();
    stones.sort();
    let work = tempfile::tempdir_in(
        std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
    )?;
    let root = work.path().join("root");
    std::fs::create_dir(&root)?;
    let moss = Moss::open(&root, Arc::new(Silent)).await?;

    let start = Instant::now();
    let unpacked = moss
        .add_stones(
            stones
                .iter()
                .map(|path| (path.clone(), None, "local".to_owned()))
                .collect(),
        )
        .await?;
    let unpack_time = start.elapsed();
    let ids: Vec<String> = unpacked.iter().map(|package| package.id.clone()).collect();
    let start = Instant::now();
    let install = moss.apply(selections(&ids), "Install").await?;
    let switch_time = start.elapsed();
    let install_time = unpack_time + switch_time;
    let entries = install.blit.created;

    let mut all = ids.clone();
    let start = Instant::now();
    let extra = moss
        .add_stones(vec![(extra_one, None, "local".into())])
        .await?;
    all.push(extra[0].id.clone());
    moss.apply(selections(&all), "Install").await?;
    let first_small = start.elapsed();

    let start = Instant::now();
    let extra = moss
        .add_stones(vec![(extra_two, None, "local".into())])
        .await?;
    all.push(extra[0].id.clone());
    let second = moss.apply(selections(&all), "Install").await?;
    let second_small = start.elapsed();

    let start = Instant::now();
    let removed: Vec<String> = all
        .iter()
        .filter(|id| **id != ids[ids.len() / 2])
        .cloned()
        .collect();
    moss.apply(selections(&removed), "Remove").await?;
    let remove_time = start.elapsed();

    let start = Instant::now();
    moss.activate(second.state).await?;
    let rollback_time = start.elapsed();
    moss.database().close().await;

    println!("packages                         {}", ids.len());
    println!("layout entries blitted           {entries}");
    println!(
        "unpack into store                {:.3} s",
        seconds(unpack_time)
    );
    println!(
        "blit + swap (full)               {:.3} s  ({:.0} entries/s)",
        seconds(switch_time),
        entries as f64 / seconds(switch_time)
    );
    println!(
        "install whole corpus             {:.3} s",
        seconds(install_time)
    );
    println!(
        "add first extra package          {:.3} s",
        seconds(first_small)
    );
    println!(
        "add second extra package         {:.3} s  (built from state {:?}, {} created, {} kept)",
        seconds(second_small),
        second.reused,
        second.blit.created,
        second.blit.kept
    );
    println!(
        "ratio second extra / install     {:.2} %",
        100.0 * seconds(second_small) / seconds(install_time)
    );
    println!(
        "remove one package               {:.3} s",
        seconds(remove_time)
    );
    println!(
        "roll back one state              {:.3} s",
        seconds(rollback_time)
    );
    println!(
        "peak resident memory             {:.1} MiB",
        peak_memory_mib()
    );
    Ok(())
}
