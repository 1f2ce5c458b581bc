//! The launch-overhead benchmark's measuring code runs end to end: a few
//! launches of a one-task Job through `berth up`, beside bare `ctr run -d`.
//! No timing targets are asserted here; `make bench` reports the figures
//! (and `launch_overhead_50`, ignored, prints them for 50 runs).

use std::time::Duration;

use berth_e2e::bench::launch::{Launch, measure, percentile};

#[test]
fn measure_gives_one_sample_per_run_on_each_side() {
    let Launch { berth, ctr } = measure(3);
    assert_eq!(berth.len(), 3, "berth samples: {berth:?}");
    assert_eq!(ctr.len(), 3, "ctr samples: {ctr:?}");
    assert!(berth.iter().chain(&ctr).all(|d| *d > Duration::ZERO), "berth {berth:?}, ctr {ctr:?}");
    assert!(berth.is_sorted() && ctr.is_sorted(), "berth {berth:?}, ctr {ctr:?}");
}

#[test]
#[ignore = "a benchmark: 50 launches; run with BERTH_BIN set to a release build"]
fn launch_overhead_50() {
    let Launch { berth, ctr } = measure(50);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for p in [50.0, 99.0] {
        let (b, c) = (percentile(&berth, p), percentile(&ctr, p));
        println!("p{p}: berth {:.0} ms, ctr {:.0} ms, overhead {:.0} ms", ms(b), ms(c), ms(b.saturating_sub(c)));
    }
    println!(
        "berth: {:?}\nctr: {:?}",
        berth.iter().map(|d| ms(*d) as u64).collect::<Vec<_>>(),
        ctr.iter().map(|d| ms(*d) as u64).collect::<Vec<_>>()
    );
}
