//! `make bench`'s harness, small (`berth_e2e::bench::Options::quick`): the
//! store's write rate is measured, three launches through a real agent and
//! containerd are timed beside three bare `ctr run`s, simulated-agent runs
//! in both scheduling modes place and run every task, and each figure comes
//! with its baseline and appears in the table and the JSON record. Speed is never asserted
//! here: the figures are `make bench`'s to print.

use berth_e2e::bench::{self, Options, report};

#[test]
fn the_bench_harness_measures_every_figure_in_quick_mode() {
    let options = Options::quick();
    let (figures, record) = bench::run(&options);
    let table = report::table(&figures);
    println!("{table}");
    let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
    for want in [
        "store: durable writes/s",
        "launch overhead p50",
        "launch overhead p99",
        "SharedState: placements/s, 300 tasks on 10 agents",
        "SharedState: placements/s, 300 tasks on 50 agents",
        "Offers: placements/s, 300 tasks on 10 agents",
        "Offers: placements/s, 300 tasks on 50 agents",
        "SharedState: cost per placement, 50 vs 10 agents",
        "Offers: cost per placement, 50 vs 10 agents",
        "apiserver RSS at 50 agents",
        "controllers RSS at 50 agents",
        "apply -> all Running: 200 tasks, 20 agents",
    ] {
        assert!(names.iter().any(|n| n.starts_with(want)), "no figure {want:?} in:\n{table}");
    }
    for f in &figures {
        // An overhead is a difference of two timings: any finite number.
        let positive = !f.name.starts_with("launch overhead");
        assert!(f.value.is_finite() && (f.value > 0.0 || !positive), "{}: {}\n{table}", f.name, f.value);
        assert!(
            f.note.as_deref().is_none_or(|n| !n.contains("cut at the deadline")),
            "{}: {:?}\n{table}",
            f.name,
            f.note
        );
        assert!(table.contains(&f.name), "{} missing from the table", f.name);
    }
    let runs = record["scaleRuns"].as_array().expect("scaleRuns");
    assert_eq!(runs.len(), 5, "{record:#}");
    for r in runs {
        assert_eq!(r["placed"], r["tasks"], "every task placed: {r}");
        assert_eq!(r["running"], r["tasks"], "every task Running: {r}");
    }
    assert_eq!(record["figures"].as_array().map(Vec::len), Some(figures.len()));
    for side in ["berthMs", "ctrMs"] {
        let samples = record["launches"][side].as_array().unwrap_or_else(|| panic!("no launches.{side}: {record:#}"));
        assert_eq!(samples.len(), 3, "{side}: {samples:?}");
        assert!(samples.iter().all(|ms| ms.as_f64().is_some_and(|ms| ms > 0.0)), "{side}: {samples:?}");
    }
}
