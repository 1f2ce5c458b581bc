//! Every isolation property the agent promises, each shown by a container
//! that tries to break it and fails, judged by what a user sees: the
//! placement's phase and reason, and its output through `berth logs`.
//!
//! The tests share one containerd, registry and `berth up` (an agent that
//! allows only the local registry's `berth/` images and host paths under
//! one directory) while any of them runs: the last test to finish with it
//! stops it, by PID, as every harness handle does.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use berth_e2e::berth::Berth;
use berth_e2e::poll::poll;
use berth_e2e::{Containerd, Registry, ShellJob, build_demo_image, output_text};

const WAIT: Duration = Duration::from_secs(120);
/// The last line every task prints.
const END: &str = "-- end of output --";

/// Dropped in field order: berth first, then what it used.
struct Env {
    berth: Berth,
    registry: Registry,
    _containerd: Containerd,
    /// `allowed/` may be mounted into containers; `private/` may not.
    host: tempfile::TempDir,
}

static SHARED: Mutex<Weak<Env>> = Mutex::new(Weak::new());

/// What a finished task showed.
#[derive(Debug)]
struct Outcome {
    phase: String,
    reason: String,
    message: String,
    logs: String,
}

impl Env {
    /// The environment the running tests share, started if none runs.
    fn shared() -> Arc<Env> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(env) = shared.upgrade() {
            return env;
        }
        let env = Arc::new(Env::start());
        *shared = Arc::downgrade(&env);
        env
    }

    fn start() -> Env {
        let containerd = Containerd::start();
        let registry = Registry::start();
        build_demo_image(&registry.host(), "berth/demo:latest");
        let host = tempfile::Builder::new().prefix("berth-isolation-").tempdir().expect("tempdir");
        for (dir, file, text) in [("allowed/in", "data.txt", "from the host\n"), ("private", "secret.txt", "secret\n")]
        {
            std::fs::create_dir_all(host.path().join(dir)).expect("mkdir");
            std::fs::write(host.path().join(dir).join(file), text).expect("write");
        }
        std::fs::create_dir_all(host.path().join("allowed/out")).expect("mkdir");
        let images = format!("--allowed-images={}/berth/", registry.host());
        let paths = format!("--allowed-host-paths={}", host.path().join("allowed").display());
        let berth = Berth::up_with(containerd.socket(), "2", "2Gi", &[&images, &paths]);
        Env { berth, registry, _containerd: containerd, host }
    }

    fn image(&self) -> String {
        format!("{}/berth/demo:latest", self.registry.host())
    }

    fn host_path(&self, rel: &str) -> PathBuf {
        self.host.path().join(rel)
    }

    /// Runs `script` with `sh -c` as Job `name` (in `image`, with `extra`
    /// task group fields; stderr into stdout, to keep their order) and
    /// waits for its placement to end and, if it succeeded, for all of its
    /// output: the shim may still be copying the last of it when the exit is
    /// reported.
    fn run_in(&self, name: &str, image: &str, script: &str, memory: &str, extra: &str) -> Outcome {
        let script = format!("exec 2>&1; {script}; echo {END}");
        let yaml = ShellJob::new(name, image, &script).resources("200m", memory).group_fields(extra).yaml();
        self.berth.apply(&yaml);
        let placement = format!("placements.berth.dev/{name}-main-0-0");
        let phase = poll(WAIT, || match self.berth.jsonpath(&placement, ".status.phase").as_str() {
            p @ ("Succeeded" | "Failed" | "Killed" | "Lost") => Ok(p.to_string()),
            _ => Err(self.berth.jsonpath(&placement, ".status")),
        })
        .unwrap_or_else(|last| panic!("{placement} did not end; last seen: {last}\n{}", self.berth.log_tail()));
        let logs = || String::from_utf8_lossy(&self.berth.berth(&["logs", name]).stdout).to_string();
        let logs = match phase.as_str() {
            "Succeeded" => poll(Duration::from_secs(30), || logs().contains(END).then(logs).ok_or_else(logs))
                .unwrap_or_else(|last| panic!("{name}'s output did not end with {END:?}:\n{last}")),
            _ => logs(),
        };
        Outcome {
            phase,
            reason: self.berth.jsonpath(&placement, ".status.reason"),
            message: self.berth.jsonpath(&placement, ".status.message"),
            logs,
        }
    }

    fn run(&self, name: &str, script: &str, extra: &str) -> Outcome {
        self.run_in(name, &self.image(), script, "32Mi", extra)
    }
}

/// The number after `key` (`key=N` or `key N`) in `text`.
fn number(text: &str, key: &str) -> u64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    let value = words.iter().enumerate().find_map(|(i, w)| match w.strip_prefix(key) {
        Some("") => words.get(i + 1)?.parse().ok(),
        Some(rest) => rest.strip_prefix('=')?.parse().ok(),
        None => None,
    });
    value.unwrap_or_else(|| panic!("no number after {key:?} in:\n{text}"))
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed() {
    let env = Env::shared();
    // `tail` keeps the last line of a newline-free stream in memory: 200 MiB against a 16 MiB limit.
    let out = env.run_in("hog", &env.image(), "head -c 200m /dev/zero | tail >/dev/null; exit $?", "16Mi", "");
    assert_eq!((out.phase.as_str(), out.reason.as_str()), ("Failed", "OOMKilled"), "{out:?}");
}

#[test]
fn a_busy_loop_is_throttled_to_its_cpu_quota() {
    let env = Env::shared();
    let cg = "/sys/fs/cgroup/cpu";
    let script = format!(
        "yes >/dev/null & busy=$!; sleep 3; kill $busy; \
         echo quota=$(cat {cg}/cpu.cfs_quota_us) period=$(cat {cg}/cpu.cfs_period_us); cat {cg}/cpu.stat"
    );
    let out = env.run("busy", &script, "");
    assert_eq!(out.phase, "Succeeded", "{out:?}");
    assert!(out.logs.contains("quota=20000 period=100000"), "200m is 20 ms of every 100 ms:\n{}", out.logs);
    assert!(number(&out.logs, "nr_throttled") > 0, "the busy loop was never throttled:\n{}", out.logs);
    assert!(number(&out.logs, "throttled_time") > 0, "{}", out.logs);
}

#[test]
fn a_fork_bomb_is_held_to_the_pids_limit_and_the_agent_keeps_working() {
    let env = Env::shared();
    // Forks until the kernel refuses; then counts processes with builtins
    // only (no fork is left), reports, and ends them all.
    let script = "read max < /sys/fs/cgroup/pids/pids.max; \
         (while :; do sleep 1000 & done) 2>/tmp/bomb; \
         set -- /proc/[0-9]*; read current < /sys/fs/cgroup/pids/pids.current; read err < /tmp/bomb; \
         echo \"max=$max processes=$# current=$current\"; echo \"bomb: $err\"; kill -9 -1; echo contained";
    let out = env.run_in("bomb", &env.image(), script, "512Mi", "");
    assert_eq!(out.phase, "Succeeded", "{out:?}");
    let (max, processes) = (number(&out.logs, "max"), number(&out.logs, "processes"));
    assert_eq!(max, 1024, "{}", out.logs);
    assert!(processes <= max && processes + 8 >= max, "the bomb filled the limit and no more:\n{}", out.logs);
    assert!(out.logs.contains("can't fork"), "the kernel refused the fork past the limit:\n{}", out.logs);
    assert!(out.logs.contains("contained"), "{}", out.logs);

    let after = env.run("after-bomb", "echo still working", "");
    assert_eq!(after.phase, "Succeeded", "{after:?}");
    assert!(after.logs.contains("still working"), "{after:?}");
}

#[test]
fn no_new_privileges_keeps_a_setuid_binary_from_raising_privileges() {
    let env = Env::shared();
    let script = "grep NoNewPrivs /proc/self/status; ls -l /bin/su; su -c id root </dev/null; echo \"su exit $?\"";
    let out = env.run("setuid", script, "securityContext:\n  runAsUser: 1000");
    assert_eq!(out.phase, "Succeeded", "{out:?}");
    assert!(out.logs.contains("NoNewPrivs:\t1"), "{}", out.logs);
    assert!(out.logs.contains("-rwsr-xr-x"), "/bin/su is setuid root in the image:\n{}", out.logs);
    assert!(out.logs.contains("must be suid to work properly"), "su gained no privileges:\n{}", out.logs);
    assert!(out.logs.contains("su exit 1"), "{}", out.logs);
}

#[test]
fn without_cap_net_raw_root_cannot_ping() {
    let env = Env::shared();
    let script = "cap=$(grep CapEff /proc/self/status | cut -f2); \
         echo \"uid=$(id -u) chown=$(( (0x$cap >> 0) & 1 )) net_raw=$(( (0x$cap >> 13) & 1 ))\"; \
         ping -c 1 -W 1 127.0.0.1; echo \"ping exit $?\"";
    let out = env.run("ping", script, "");
    assert!(out.logs.contains("uid=0 chown=1 net_raw=0"), "root keeps CAP_CHOWN but not CAP_NET_RAW:\n{}", out.logs);
    assert!(out.logs.contains("permission denied"), "{}", out.logs);
    assert!(out.logs.contains("ping exit 1"), "{}", out.logs);
}

#[test]
fn run_as_user_1000_cannot_write_root_owned_paths() {
    let env = Env::shared();
    let script = "echo \"uid=$(id -u) gid=$(id -g)\"; touch /bin/planted; echo \"touch exit $?\"; \
         echo 'evil::0:0::/:/bin/sh' >> /etc/passwd; echo \"append exit $?\"; ls -ln /etc/passwd";
    let out = env.run("nonroot", script, "securityContext:\n  runAsUser: 1000");
    assert!(out.logs.contains("uid=1000 gid=1000"), "{}", out.logs);
    assert!(out.logs.contains("touch exit 1") && out.logs.contains("append exit 1"), "{}", out.logs);
    assert_eq!(out.logs.matches("Permission denied").count(), 2, "{}", out.logs);
}

#[test]
fn a_read_only_root_filesystem_cannot_be_written() {
    let env = Env::shared();
    let script = "touch /x; echo \"root exit $?\"; touch /tmp/x; echo \"tmp exit $?\"";
    let out = env.run("readonly", script, "securityContext:\n  readOnlyRootFilesystem: true");
    assert!(out.logs.contains("Read-only file system"), "{}", out.logs);
    assert!(out.logs.contains("root exit 1") && out.logs.contains("tmp exit 1"), "{}", out.logs);
}

#[test]
fn the_container_sees_only_its_own_processes() {
    let env = Env::shared();
    // Builtins only: the shell is the one process there should be.
    let script = "echo \"self=$$\"; for d in /proc/[0-9]*; do read c < $d/comm; echo \"proc ${d#/proc/} $c\"; done";
    let out = env.run("pidns", script, "");
    assert!(out.logs.contains("self=1"), "the container's process is PID 1 of its own namespace:\n{}", out.logs);
    let procs: Vec<&str> = out.logs.lines().filter(|l| l.starts_with("proc ")).collect();
    assert_eq!(procs, ["proc 1 sh"], "no process of the host is visible:\n{}", out.logs);
}

#[test]
fn the_container_sees_only_its_own_mounts_and_the_host_paths_it_was_given() {
    let env = Env::shared();
    let (input, output) = (env.host_path("allowed/in"), env.host_path("allowed/out"));
    let private = env.host_path("private/secret.txt");
    let script = format!(
        "cat /in/data.txt; touch /in/new; echo \"in exit $?\"; echo written > /out/result; echo \"out exit $?\"; \
         cat {private}; echo \"private exit $?\"; cat /proc/self/mounts",
        private = private.display()
    );
    let extra = format!(
        "mounts:\n  - {{hostPath: {}, path: /in, readOnly: true}}\n  - {{hostPath: {}, path: /out}}",
        input.display(),
        output.display()
    );
    let out = env.run("mountns", &script, &extra);
    assert_eq!(out.phase, "Succeeded", "{out:?}");
    assert!(out.logs.contains("from the host"), "the allowed host path is visible:\n{}", out.logs);
    assert!(out.logs.contains("Read-only file system") && out.logs.contains("in exit 1"), "{}", out.logs);
    assert!(out.logs.contains("out exit 0"), "{}", out.logs);
    assert_eq!(std::fs::read_to_string(output.join("result")).ok().as_deref(), Some("written\n"));
    assert!(out.logs.contains("No such file or directory") && out.logs.contains("private exit 1"), "{}", out.logs);

    // No mount point of the host's own shows through, beyond the kernel
    // filesystems every container gets and the name resolution files it is given.
    let points = |text: &str| -> BTreeSet<String> {
        text.lines().filter_map(|l| l.split_whitespace().nth(1)).map(str::to_string).collect()
    };
    let given = |m: &String| {
        ["/etc/resolv.conf", "/etc/hosts", "/in", "/out"].contains(&m.as_str())
            || ["/", "/proc", "/dev", "/sys"].iter().any(|c| m == c || m.starts_with(&format!("{c}/")))
    };
    let host = points(&std::fs::read_to_string("/proc/self/mounts").expect("host mounts"));
    let container = points(&out.logs);
    let leaked: Vec<&String> = container.intersection(&host).filter(|m| !given(m)).collect();
    assert!(leaked.is_empty(), "host mounts visible in the container: {leaked:?}\n{}", out.logs);
}

#[test]
fn the_agent_refuses_images_and_host_paths_outside_its_policy() {
    let env = Env::shared();
    let image = env.run_in("foreign", "registry.example/evil/miner:latest", "true", "32Mi", "");
    assert_eq!((image.phase.as_str(), image.reason.as_str()), ("Failed", "PolicyViolation"), "{image:?}");
    assert!(image.message.starts_with("spec.image: \"registry.example/evil/miner:latest\""), "{image:?}");

    let mount = env.run("etc", "cat /host/shadow", "mounts:\n  - {hostPath: /etc, path: /host}");
    assert_eq!((mount.phase.as_str(), mount.reason.as_str()), ("Failed", "PolicyViolation"), "{mount:?}");
    assert!(mount.message.starts_with("spec.mounts[0].hostPath: \"/etc\" is not allowed"), "{mount:?}");

    // A mount path that is not absolute never gets that far: the API refuses it, naming the field.
    let relative = format!(
        "apiVersion: berth.dev/v1alpha1\nkind: Job\nmetadata: {{name: relative, namespace: default}}\nspec:\n  \
         taskGroups:\n    - name: main\n      image: {}\n      mounts:\n        - {{hostPath: /etc, path: data}}\n",
        env.image()
    );
    let out = env.berth.kubectl_stdin(&["apply", "-f", "-"], &relative);
    assert!(!out.status.success(), "a relative mount path was accepted: {}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec.taskGroups[0].mounts[0].path"),
        "{}",
        output_text(&out)
    );

    let table = env.berth.kubectl(&["get", "placements.berth.dev"]);
    let table = String::from_utf8_lossy(&table.stdout);
    for name in ["foreign-main-0-0", "etc-main-0-0"] {
        let row = table.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        assert!(row.contains("Failed") && row.contains("PolicyViolation"), "{name} in:\n{table}");
    }
}
