//! `berth check store`: how many durable writes per second the embedded
//! store commits on this disk, like `etcdctl check perf`. It opens a fresh
//! store file in a temporary directory under `--dir` (removed afterwards),
//! writes objects of about the size of a placement from many writers at
//! once (the store commits concurrent writes together, each acknowledged
//! only after fsync), and prints the rate. Benchmarks use it as the
//! baseline the API's own write rates are measured against.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use berth_apiserver::storage::Storage;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct CheckArgs {
    #[command(subcommand)]
    what: Check,
}

#[derive(Subcommand)]
enum Check {
    /// Durable writes per second of the embedded store on a disk
    Store(StoreArgs),
}

#[derive(Args)]
struct StoreArgs {
    /// The directory whose disk to measure (a temporary store file is made in it)
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Writers at once
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Writes in all
    #[arg(long, default_value_t = 6400)]
    writes: usize,
    /// Bytes in each written value (a placement is about 1,500)
    #[arg(long, default_value_t = 1500)]
    value_bytes: usize,
    /// `text` or `json`
    #[arg(short = 'o', long, default_value = "text")]
    output: String,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<()> {
    match args.what {
        Check::Store(args) => store(args).await,
    }
}

async fn store(args: StoreArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.writers > 0 && args.writes > 0, "--writers and --writes must be at least 1");
    anyhow::ensure!(matches!(args.output.as_str(), "text" | "json"), "--output must be text or json");
    let dir = tempfile::Builder::new()
        .prefix("berth-check-store-")
        .tempdir_in(&args.dir)
        .with_context(|| format!("making a temporary directory in {}", args.dir.display()))?;
    let store = berth_apiserver::Embedded::open(&dir.path().join("store.redb")).context("opening a temporary store")?;
    let value = bytes::Bytes::from(format!("{{\"pad\":\"{}\"}}", "x".repeat(args.value_bytes.saturating_sub(10))));
    let per_writer = args.writes.div_ceil(args.writers);
    let start = Instant::now();
    let writers: Vec<_> = (0..args.writers)
        .map(|w| {
            let (store, value) = (store.clone(), value.clone());
            tokio::spawn(async move {
                for i in 0..per_writer {
                    store.create(&format!("/check/{w:04}/{i:06}"), value.clone()).await?;
                }
                Ok::<_, berth_apiserver::storage::StorageError>(())
            })
        })
        .collect();
    for w in writers {
        w.await.context("a writer")?.context("a durable write")?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let writes = per_writer * args.writers;
    let rate = writes as f64 / elapsed;
    match args.output.as_str() {
        "json" => println!(
            "{}",
            serde_json::json!({"writes": writes, "writers": args.writers, "valueBytes": args.value_bytes,
                "seconds": elapsed, "writesPerSecond": rate})
        ),
        _ => println!(
            "{writes} durable writes of {} bytes from {} writers in {elapsed:.2} s: {rate:.0} writes/s",
            args.value_bytes, args.writers
        ),
    }
    Ok(())
}
