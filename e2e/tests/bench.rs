//! `make bench`'s harness, small (`berth_e2e::bench::Options::quick`): the
//! store's write rate is measured, simulated-agent runs in both scheduling
//! modes place and run every task, and each figure comes with its baseline
//! and appears in the table and the JSON record. Speed is never asserted
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
        assert!(f.value.is_finite() && f.value > 0.0, "{}: {}\n{table}", f.name, f.value);
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
}
