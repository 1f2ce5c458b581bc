//! `berth-bench [--quick] [--agents N,N,…] [--tasks N] [--modes
//! SharedState,Offers] [--running AGENTSxTASKS] [--deadline SECONDS] [--out
//! FILE]`: runs Berth's headline benchmarks
//! (`berth_e2e::bench`) against the `berth` binary of `$BERTH_BIN` (or
//! target/debug/berth), prints the table of figures and baselines, and
//! writes the whole record as JSON to FILE. `make bench` runs it on a
//! release build with `--out bench/results.json`.

use std::path::PathBuf;

fn main() {
    let mut options = berth_e2e::bench::Options::full();
    let mut out: Option<PathBuf> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).cloned().unwrap_or_else(|| usage(&format!("{} needs a value", args[i])));
        match args[i].as_str() {
            "--quick" => options = berth_e2e::bench::Options::quick(),
            "--out" => out = Some(PathBuf::from(value())),
            f @ ("--agents" | "--tasks" | "--deadline" | "--modes" | "--running") => sizes.push((f, value())),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
        i += if matches!(args[i].as_str(), "--quick" | "-h" | "--help") { 1 } else { 2 };
    }
    // Sizes apply over --quick or the full run, wherever they are given.
    let number =
        |flag: &str, v: &str| v.parse::<usize>().unwrap_or_else(|_| usage(&format!("{flag}: {v:?} is not a number")));
    for (flag, v) in sizes {
        match flag {
            "--agents" => options.agents = v.split(',').map(|n| number(flag, n)).collect(),
            "--tasks" => options.tasks = number(flag, &v),
            "--modes" => {
                options.modes = v
                    .split(',')
                    .map(|m| match m {
                        "SharedState" => berth_e2e::bench::scale::Mode::SharedState,
                        "Offers" => berth_e2e::bench::scale::Mode::Offers,
                        other => usage(&format!("--modes: {other:?} is not SharedState or Offers")),
                    })
                    .collect()
            }
            "--running" => {
                let (a, t) = v.split_once('x').unwrap_or_else(|| usage("--running takes AGENTSxTASKS, or 0x0 to skip"));
                options.running = (number(flag, a), number(flag, t));
            }
            _ => options.deadline = std::time::Duration::from_secs(number(flag, &v) as u64),
        }
    }
    if options.agents.is_empty() || options.agents.contains(&0) || options.tasks == 0 {
        usage("--agents and --tasks must be at least 1");
    }
    let (figures, record) = berth_e2e::bench::run(&options);
    print!("{}", berth_e2e::bench::report::table(&figures));
    if let Some(path) = out {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        }
        let text = serde_json::to_string_pretty(&record).expect("JSON");
        std::fs::write(&path, text + "\n").unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("wrote {}", path.display());
    }
}

fn usage(error: &str) -> ! {
    if !error.is_empty() {
        eprintln!("berth-bench: {error}");
    }
    eprintln!(
        "usage: berth-bench [--quick] [--agents N,N,...] [--tasks N] [--modes SharedState,Offers] \
         [--running AGENTSxTASKS (0x0: skip)] [--deadline SECONDS] [--out FILE]"
    );
    std::process::exit(if error.is_empty() { 0 } else { 2 })
}
