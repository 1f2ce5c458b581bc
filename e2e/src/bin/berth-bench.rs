//! `berth-bench [--quick] [--out FILE]`: runs Berth's headline benchmarks
//! (`berth_e2e::bench`) against the `berth` binary of `$BERTH_BIN` (or
//! target/debug/berth), prints the table of figures and baselines, and
//! writes the whole record as JSON to FILE. `make bench` runs it on a
//! release build with `--out bench/results.json`.

use std::path::PathBuf;

fn main() {
    let mut quick = false;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => out = Some(args.next().map(PathBuf::from).unwrap_or_else(|| usage("--out needs a file"))),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let options = if quick { berth_e2e::bench::Options::quick() } else { berth_e2e::bench::Options::full() };
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
    eprintln!("usage: berth-bench [--quick] [--out FILE]");
    std::process::exit(if error.is_empty() { 0 } else { 2 })
}
