//! Launch overhead: how long `kubectl apply` of a one-task Job takes to get
//! its container running, beside a bare `ctr run -d` of the same image in
//! the same containerd, measured in the same run so both see the same load.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::berth::Berth;
use crate::{Containerd, Registry, ShellJob, build_demo_image, output_text};

/// How long one launch, or one clean-up, may take before the benchmark gives up.
const DEADLINE: Duration = Duration::from_secs(60);
/// The task: a shell that ends on SIGTERM, so deleting its Job is quick.
const SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

/// One launch-overhead run's samples, each sorted ascending.
pub struct Launch {
    /// `kubectl apply` of a one-task Job until its container runs (placement Running), per run.
    pub berth: Vec<Duration>,
    /// A bare `ctr run -d` of the same image in the same containerd until its task runs, per run.
    pub ctr: Vec<Duration>,
}

/// Starts its own containerd, registry (demo image) and `berth up` (the
/// binary of [`crate::berth::binary`], so `BERTH_BIN` picks a release
/// build), warms up (the image is pulled once before timing: like
/// Kubernetes' pod-startup SLO, the figures exclude image pulls), then
/// times `runs` launches of each, interleaved (berth, ctr, berth, ctr…) so
/// both see the same machine load.
///
/// A Berth sample is what a user sees: it starts just before the `kubectl
/// apply -f -` process is spawned (so it includes kubectl's own start-up,
/// reading its kubeconfig, discovery and the apply request), covers the
/// controllers placing the task, the agent creating and starting its
/// container and reporting it, and ends when a watch opened before the
/// apply (`kubectl get placements -w`) delivers the placement's `Running`.
/// A ctr sample starts just before `ctr run -d` is spawned and ends when it
/// returns, its task started (snapshot, container and task create, start).
pub fn measure(runs: usize) -> Launch {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let image = format!("{}/berth/demo:latest", registry.host());
    let berth = Berth::up(containerd.socket(), "4", "4Gi");
    let ctr_ns = format!("{}-ctr", berth.containerd_namespace);
    containerd.pull(&ctr_ns, &image);
    let mut watch = PlacementWatch::start(&berth);

    // Warm-up, untimed: the agent pulls the image; each side starts once.
    launch_berth(&berth, &mut watch, &image, "launch-warmup");
    launch_ctr(containerd.socket(), &ctr_ns, &image, "launch-warmup");

    let mut samples = Launch { berth: Vec::with_capacity(runs), ctr: Vec::with_capacity(runs) };
    for run in 0..runs {
        samples.berth.push(launch_berth(&berth, &mut watch, &image, &format!("launch-{run}")));
        samples.ctr.push(launch_ctr(containerd.socket(), &ctr_ns, &image, &format!("launch-{run}")));
    }
    samples.berth.sort();
    samples.ctr.sort();
    samples
}

/// The nearest-rank percentile `p` (in percent: 50.0, 99.0) of `sorted`
/// (ascending); zero when there are no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Applies Job `name`, times it until its placement runs, then deletes it
/// and waits until its placement is gone.
fn launch_berth(berth: &Berth, watch: &mut PlacementWatch, image: &str, name: &str) -> Duration {
    let yaml = ShellJob::new(name, image, SCRIPT).resources("10m", "16Mi").yaml();
    let start = Instant::now();
    berth.apply(&yaml);
    watch.wait_for(name, "Running");
    let took = start.elapsed();
    let out = berth.kubectl(&["delete", "jobs.berth.dev", name, "--wait=false"]);
    assert!(out.status.success(), "kubectl delete job {name}: {}", output_text(&out));
    watch.wait_for(name, "DELETED");
    took
}

/// Times `ctr run -d` of `image` as container `id`, then removes it.
fn launch_ctr(socket: &Path, namespace: &str, image: &str, id: &str) -> Duration {
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .arg("--address")
            .arg(socket)
            .args(["--timeout", "60s", "-n", namespace])
            .args(args)
            .output()
            .expect("running ctr")
    };
    let start = Instant::now();
    let out = ctr(&["run", "-d", image, id, "/bin/sh", "-c", SCRIPT]);
    let took = start.elapsed();
    assert!(out.status.success(), "ctr run -d {image} {id}: {}", output_text(&out));
    let out = ctr(&["tasks", "rm", "-f", id]);
    assert!(out.status.success(), "ctr tasks rm -f {id}: {}", output_text(&out));
    let out = ctr(&["containers", "rm", id]);
    assert!(out.status.success(), "ctr containers rm {id}: {}", output_text(&out));
    took
}

/// A `kubectl get placements -w` kept open across runs: each event as
/// (type, the placement's Job, its phase), read as it comes.
struct PlacementWatch {
    child: Child,
    events: Receiver<String>,
}

impl PlacementWatch {
    /// Starts the watch and waits until kubectl has listed (the watch is
    /// open once its initial list is printed, even when empty).
    fn start(berth: &Berth) -> PlacementWatch {
        let template = r#"jsonpath={.type} {.object.metadata.labels.berth\.dev/job} {.object.status.phase}{"\n"}"#;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&berth.kubeconfig)
            .args(["get", "placements.berth.dev", "-n", "default", "-w", "--output-watch-events", "-o", template])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting kubectl get -w");
        let stdout = child.stdout.take().expect("kubectl's stdout");
        let (send, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        PlacementWatch { child, events }
    }

    /// Reads events until one of Job `job`'s placement says `what` (a
    /// phase, or `DELETED`); panics with what was seen after [`DEADLINE`].
    fn wait_for(&mut self, job: &str, what: &str) {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(line) => {
                    let mut fields = line.split_whitespace();
                    let (kind, owner, phase) = (fields.next(), fields.next(), fields.next());
                    if owner == Some(job) && (kind == Some(what) || (kind != Some("DELETED") && phase == Some(what))) {
                        return;
                    }
                    seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no placement of Job {job} {what} within {DEADLINE:?}; watch events seen: {seen:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("kubectl get -w ended; waiting for Job {job}'s placement {what}; seen: {seen:?}")
                }
            }
        }
    }
}

impl Drop for PlacementWatch {
    fn drop(&mut self) {
        crate::terminate(&mut self.child, Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let s: Vec<Duration> = (1..=50).map(ms).collect();
        assert_eq!(percentile(&s, 50.0), ms(25));
        assert_eq!(percentile(&s, 99.0), ms(50));
        assert_eq!(percentile(&s, 0.0), ms(1));
        assert_eq!(percentile(&[ms(7)], 99.0), ms(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
