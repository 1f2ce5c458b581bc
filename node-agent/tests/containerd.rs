//! The containerd runtime against the real thing: each test starts its own
//! containerd (with runc) and a local registry holding the busybox demo
//! image, and drives `berth_agent::containerd::Containerd` through the
//! `Runtime` trait. Needs root and the Debian packages `containerd`, `runc`,
//! `docker-registry`, `skopeo`, `umoci`, `busybox-static` and `apache2-utils`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use berth_agent::containerd::Containerd;
use berth_agent::image_gc::{ImageUse, collect_once};
use berth_agent::runtime::{ContainerSpec, ExecOutcome, ExitStatus, RegistryAuth, Runtime, RuntimeError};
use berth_e2e::{Registry, build_demo_image};

const DEADLINE: Duration = Duration::from_secs(60);

/// One test's world. Dropped in field order: the client, then containerd
/// (which stops its containers), then the registry.
struct Env {
    runtime: Containerd,
    containerd: berth_e2e::Containerd,
    registry: Registry,
    logs: tempfile::TempDir,
    namespace: String,
    /// Held for the test's life: one world at a time (see [`ONE_AT_A_TIME`]).
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// The tests of this file take turns. Twelve containerds, registries and
/// image builds at once on a two-core machine starved containerd 1.6's runc
/// shim, which copies a container's output into its log file and, when the
/// task is deleted, waits at most 2 s for that copy before closing the
/// pipes: a container's last line was lost (seen once in CI). Berth cannot
/// lengthen that wait; the issue notes say so.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Env {
    async fn start() -> Env {
        let turn = ONE_AT_A_TIME.lock().await;
        assert!(
            berth_e2e::tool_available("containerd"),
            "containerd is not installed: run `make deps` (apt-get install containerd runc)"
        );
        let containerd = berth_e2e::Containerd::start();
        let registry = Registry::start();
        build_demo_image(&registry.host(), "berth/demo:latest");
        // runc keeps state per namespace and id outside containerd's root:
        // a namespace of its own keeps concurrent tests apart.
        let logs = tempfile::Builder::new().prefix("berth-test-").tempdir().expect("tempdir");
        let namespace = logs.path().file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let runtime = Containerd::connect(containerd.socket(), &namespace).await.expect("connecting to containerd");
        Env { runtime, containerd, registry, logs, namespace, _turn: turn }
    }

    fn image(&self) -> String {
        format!("{}/berth/demo:latest", self.registry.host())
    }

    /// A spec running `sh -c script` in the demo image.
    fn spec(&self, id: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            id: id.to_string(),
            image: self.image(),
            command: vec!["/bin/sh".into(), "-c".into()],
            args: vec![script.into()],
            labels: BTreeMap::from([("berth.dev/test".to_string(), id.to_string())]),
            log_path: self.log_path(id),
            ..Default::default()
        }
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.logs.path().join(format!("{id}.log"))
    }

    fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// Pulls, starts and waits for `spec` to exit, with a deadline.
    async fn run(&self, spec: &ContainerSpec) -> ExitStatus {
        self.runtime.pull(&spec.image, None).await.expect("pulling the demo image");
        self.runtime.start(spec).await.expect("starting the container");
        self.wait(&spec.id).await
    }

    async fn wait(&self, id: &str) -> ExitStatus {
        match tokio::time::timeout(DEADLINE, self.runtime.wait(id)).await {
            Ok(Ok(exit)) => exit,
            Ok(Err(e)) => panic!("waiting for {id}: {e}\n--- log ---\n{}", self.log(id)),
            Err(_) => panic!(
                "{id} did not exit within {DEADLINE:?}; containers: {:?}\n--- log ---\n{}\n--- containerd ---\n{}",
                self.runtime.list().await,
                self.log(id),
                self.containerd.log()
            ),
        }
    }
}

#[tokio::test]
async fn concurrent_pulls_of_one_image_fetch_it_once() {
    let env = Env::start().await;
    let image = env.image();
    let (a, b) = tokio::join!(env.runtime.pull(&image, None), env.runtime.pull(&image, None));
    a.expect("first pull");
    b.expect("second pull");
    assert_eq!(env.runtime.registry_pulls(), 1, "two concurrent pulls of {image} went to the registry");
    env.runtime.pull(&image, None).await.expect("pulling a present image");
    assert_eq!(env.runtime.registry_pulls(), 1, "a present image was pulled again");
}

#[tokio::test]
async fn echo_hello_exits_zero_and_logs_hello() {
    let env = Env::start().await;
    let spec = env.spec("hello", "echo hello; echo to-stderr >&2");
    let exit = env.run(&spec).await;
    assert_eq!((exit.code, exit.oom_killed), (0, false), "{exit:?}; log: {}", env.log("hello"));
    let log = env.log("hello");
    assert!(log.contains("hello") && log.contains("to-stderr"), "stdout and stderr are not in the log: {log:?}");
    assert!(exit.finished_at.parse::<jiff::Timestamp>().is_ok(), "finished_at {:?} is not RFC 3339", exit.finished_at);
    // Asked again (as after the agent restarts), the same exit comes back.
    let again = env.wait("hello").await;
    assert_eq!(again, exit, "a second wait");
}

#[tokio::test]
async fn env_working_dir_and_limits_reach_the_process() {
    let env = Env::start().await;
    let mut spec = env.spec("envdir", "echo FOO=$FOO; pwd; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us");
    spec.env = vec![("FOO".into(), "bar".into())];
    spec.working_dir = Some("/tmp".into());
    spec.cpu_millis = 500;
    spec.memory_bytes = 64 << 20;
    let exit = env.run(&spec).await;
    let log = env.log("envdir");
    assert_eq!(exit.code, 0, "{exit:?}; log: {log}");
    assert!(log.contains("FOO=bar"), "env not set: {log:?}");
    assert!(log.lines().any(|l| l == "/tmp"), "working dir not /tmp: {log:?}");
    assert!(log.lines().any(|l| l == "50000"), "CFS quota is not 50000 for 500m: {log:?}");
}

#[tokio::test]
async fn a_root_image_is_refused_when_root_is_forbidden_and_runs_as_the_user_asked() {
    let env = Env::start().await;
    let mut spec = env.spec("nonroot", "id -u; id -g");
    spec.run_as_non_root = true;
    env.runtime.pull(&spec.image, None).await.expect("pulling the demo image");
    let err = env.runtime.start(&spec).await.expect_err("the demo image's user is root");
    assert!(matches!(err, RuntimeError::Policy(_)), "{err:?}");
    assert!(err.to_string().starts_with("spec.securityContext.runAsUser: unset, and image"), "{err}");
    assert!(env.runtime.list().await.expect("list").is_empty(), "nothing was created for it");

    spec.run_as_user = Some(1000);
    spec.run_as_group = Some(2000);
    let exit = env.run(&spec).await;
    assert_eq!(exit.code, 0, "{exit:?}; log: {}", env.log("nonroot"));
    assert_eq!(env.log("nonroot"), "1000\n2000\n");
}

#[tokio::test]
async fn exit_code_three_is_reported_as_three() {
    let env = Env::start().await;
    let exit = env.run(&env.spec("three", "exit 3")).await;
    assert_eq!((exit.code, exit.oom_killed), (3, false), "{exit:?}");
}

#[tokio::test]
async fn exceeding_the_memory_limit_is_reported_as_oom_killed() {
    let env = Env::start().await;
    let mut spec = env.spec("oom", "dd if=/dev/zero of=/dev/null bs=64M count=1");
    spec.memory_bytes = 16 << 20;
    let exit = env.run(&spec).await;
    assert!(exit.oom_killed, "not reported as OOM-killed: {exit:?}; log: {}", env.log("oom"));
    assert_ne!(exit.code, 0, "{exit:?}");
}

#[tokio::test]
async fn sigkill_without_memory_pressure_is_not_oom() {
    let env = Env::start().await;
    let mut spec = env.spec("selfkill", "sh -c 'kill -9 $$'; exit $?");
    spec.memory_bytes = 16 << 20;
    let exit = env.run(&spec).await;
    assert_eq!((exit.code, exit.oom_killed), (137, false), "{exit:?}");
}

#[tokio::test]
async fn a_missing_image_fails_with_the_registry_message() {
    let env = Env::start().await;
    let image = format!("{}/berth/missing:latest", env.registry.host());
    match env.runtime.pull(&image, None).await {
        Err(RuntimeError::ImagePull { image: i, message }) => {
            assert_eq!(i, image);
            assert!(message.to_lowercase().contains("unknown"), "not the registry's message: {message:?}");
        }
        other => panic!("pulling {image} gave {other:?}"),
    }
}

#[tokio::test]
async fn kill_ends_a_sleeping_container_and_remove_cleans_up_as_list_and_get_see_it() {
    let env = Env::start().await;
    let spec = env.spec("sleeper", "touch /left-behind; sleep 1000");
    env.runtime.pull(&spec.image, None).await.expect("pull");
    env.runtime.start(&spec).await.expect("start");

    let listed = env.runtime.list().await.expect("list");
    let me = listed.iter().find(|c| c.id == "sleeper").unwrap_or_else(|| panic!("not listed: {listed:?}"));
    assert!(me.running, "not running: {me:?}");
    assert_eq!(me.labels.get("berth.dev/test").map(String::as_str), Some("sleeper"), "{me:?}");
    assert_eq!(env.runtime.get("sleeper").await.expect("get").as_ref(), Some(me), "get agrees with list");

    env.runtime.kill("sleeper", libc::SIGKILL).await.expect("kill");
    let exit = env.wait("sleeper").await;
    assert_eq!((exit.code, exit.oom_killed), (137, false), "{exit:?}");
    let listed = env.runtime.list().await.expect("list");
    assert!(listed.iter().any(|c| c.id == "sleeper" && !c.running), "after kill: {listed:?}");
    let got = env.runtime.get("sleeper").await.expect("get");
    assert!(got.as_ref().is_some_and(|c| !c.running), "get after kill: {got:?}");
    env.runtime.kill("sleeper", libc::SIGKILL).await.expect("killing a dead container succeeds");

    env.runtime.remove("sleeper").await.expect("remove");
    let listed = env.runtime.list().await.expect("list");
    assert!(!listed.iter().any(|c| c.id == "sleeper"), "still listed after remove: {listed:?}");
    assert_eq!(env.runtime.get("sleeper").await.expect("get"), None, "get after remove");
    env.runtime.remove("sleeper").await.expect("removing a missing container succeeds");
    assert!(matches!(env.runtime.wait("sleeper").await, Err(RuntimeError::NotFound(_))));

    // The id is free again: a new container with it runs from a fresh snapshot.
    let again = env.spec("sleeper", "test ! -e /left-behind && touch /left-behind");
    let exit = env.run(&again).await;
    assert_eq!(exit.code, 0, "{exit:?}; log: {}", env.log("sleeper"));
}

#[tokio::test]
async fn a_running_container_is_adopted_by_a_new_client_and_its_log_kept() {
    let env = Env::start().await;
    let spec = env.spec("adopted", "echo before; sleep 1000");
    env.runtime.pull(&spec.image, None).await.expect("pull");
    env.runtime.start(&spec).await.expect("start");
    let logged = berth_e2e::poll::poll(DEADLINE, || {
        let log = env.log("adopted");
        if log.contains("before") { Ok(()) } else { Err(format!("log so far: {log:?}")) }
    });
    logged.expect("the container's output in its log");

    // The agent restarts: a new connection finds the container and can end it.
    let again = Containerd::connect(env.containerd.socket(), &env.namespace).await.expect("reconnecting");
    let listed = again.list().await.expect("list");
    assert!(listed.iter().any(|c| c.id == "adopted" && c.running), "not adopted: {listed:?}");
    again.kill("adopted", libc::SIGKILL).await.expect("kill");
    let exit = tokio::time::timeout(DEADLINE, again.wait("adopted")).await.expect("exit in time").expect("wait");
    assert_eq!(exit.code, 137, "{exit:?}");
    assert!(env.log("adopted").starts_with("before"), "log lost: {:?}", env.log("adopted"));
    again.remove("adopted").await.expect("remove");

    // Another namespace sees none of it.
    let other = Containerd::connect(env.containerd.socket(), "someone-else").await.expect("connect");
    assert_eq!(other.list().await.expect("list"), vec![]);
}

#[tokio::test]
async fn a_command_exec_runs_inside_the_container_with_its_env_and_cwd_and_is_bounded() {
    let env = Env::start().await;
    let mut spec = env.spec("checked", "sleep 2; touch /tmp/ok; sleep 1000");
    spec.env = vec![("FOO".into(), "bar".into())];
    spec.working_dir = Some("/tmp".into());
    env.runtime.pull(&spec.image, None).await.expect("pull");
    env.runtime.start(&spec).await.expect("start");
    let check = ["test", "-f", "/tmp/ok"].map(String::from);
    let second = Duration::from_secs(1);

    // Unhealthy before the container creates the file, healthy after.
    let first = env.runtime.exec("checked", &check, second).await.expect("exec");
    assert_eq!(first, ExecOutcome::Exited { code: 1, output: String::new() }, "the file is not there yet");
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        match env.runtime.exec("checked", &check, second).await.expect("exec") {
            ExecOutcome::Exited { code: 0, .. } => break,
            seen if std::time::Instant::now() > deadline => panic!("never passed; last: {seen:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }

    let script = ["/bin/sh", "-c", "echo FOO=$FOO; pwd; echo oops >&2; exit 3"].map(String::from);
    match env.runtime.exec("checked", &script, Duration::from_secs(10)).await.expect("exec") {
        ExecOutcome::Exited { code, output } => {
            assert_eq!(code, 3, "{output}");
            assert!(output.contains("FOO=bar") && output.contains("/tmp") && output.contains("oops"), "{output:?}");
        }
        other => panic!("{other:?}"),
    }
    let slow = ["sleep", "100"].map(String::from);
    assert_eq!(env.runtime.exec("checked", &slow, second).await.expect("exec"), ExecOutcome::TimedOut);
    let listed = env.runtime.list().await.expect("list");
    assert!(listed.iter().any(|c| c.id == "checked" && c.running), "the container runs on: {listed:?}");
    let pids = std::process::Command::new("ctr")
        .arg("--address")
        .arg(env.containerd.socket())
        .args(["-n", &env.namespace, "task", "ps", "checked"])
        .output()
        .expect("running ctr");
    let rows = String::from_utf8_lossy(&pids.stdout).lines().skip(1).count();
    assert!(rows <= 2, "exec'd processes were left behind: {}", berth_e2e::output_text(&pids));
    assert!(env.runtime.exec("missing", &check, second).await.is_err(), "no such container");
}

/// `ctr -n NAMESPACE <what> ls` against the test's containerd: its rows, without the header.
fn ctr_ls(env: &Env, what: &str) -> Vec<String> {
    let out = std::process::Command::new("ctr")
        .arg("--address")
        .arg(env.containerd.socket())
        .args(["-n", &env.namespace, what, "ls"])
        .output()
        .expect("running ctr");
    assert!(out.status.success(), "ctr {what} ls: {}", berth_e2e::output_text(&out));
    String::from_utf8_lossy(&out.stdout).lines().skip(1).map(str::to_string).collect()
}

#[tokio::test]
async fn unused_images_are_collected_with_their_content_and_snapshots_and_used_ones_kept() {
    let env = Env::start().await;
    let other = format!("{}/berth/other:latest", env.registry.host());
    env.registry.push_demo_image("berth/other:latest", Some("only in the other image"));
    let spec = env.spec("user", "sleep 1000");
    env.runtime.pull(&spec.image, None).await.expect("pulling the demo image");
    env.runtime.start(&spec).await.expect("starting a container of the demo image");
    env.runtime.pull(&other, None).await.expect("pulling the other image");

    let images = env.runtime.images().await.expect("listing images");
    let names: Vec<(&str, bool)> = images.iter().map(|i| (i.name.as_str(), i.in_use)).collect();
    assert_eq!(names, vec![(env.image().as_str(), true), (other.as_str(), false)], "{images:?}");
    assert!(images.iter().all(|i| i.size() > 100_000 && i.blobs.len() == 3), "sizes: {images:?}");
    match env.runtime.remove_image(&env.image()).await {
        Err(RuntimeError::ImageInUse { container, .. }) => assert_eq!(container, "user"),
        other => panic!("removing an image a container uses gave {other:?}"),
    }
    let (content, snapshots) = (ctr_ls(&env, "content"), ctr_ls(&env, "snapshots"));

    // Over a threshold of zero, everything unused goes; the image in use stays.
    let removed = collect_once(&env.runtime, &ImageUse::default(), 0, 0).await.expect("collecting");
    assert_eq!(removed, vec![other.clone()]);
    let left: Vec<String> = env.runtime.images().await.expect("images").into_iter().map(|i| i.name).collect();
    assert_eq!(left, vec![env.image()]);
    let (content_after, snapshots_after) = (ctr_ls(&env, "content"), ctr_ls(&env, "snapshots"));
    assert!(content_after.len() < content.len(), "content not collected: {content:?} -> {content_after:?}");
    assert!(snapshots_after.len() < snapshots.len(), "snapshots not collected: {snapshots:?} -> {snapshots_after:?}");

    // The container still runs on its image; the removed image pulls afresh.
    assert!(env.runtime.list().await.expect("list").iter().any(|c| c.id == "user" && c.running));
    env.runtime.pull(&other, None).await.expect("pulling the removed image again");
    assert_eq!(env.runtime.registry_pulls(), 3, "the removed image was not fetched again");
}

#[tokio::test]
async fn a_registry_with_basic_auth_serves_the_right_credentials_only() {
    let env = Env::start().await;
    let private = Registry::start_with_auth("puller", "right-password");
    private.push_demo_image("berth/private:latest", None);
    let image = format!("{}/berth/private:latest", private.host());
    for auth in [None, Some(RegistryAuth { username: "puller".into(), password: "wrong".into() })] {
        match env.runtime.pull(&image, auth.as_ref()).await {
            Err(RuntimeError::ImagePull { message, .. }) => {
                assert!(message.to_lowercase().contains("unauthorized"), "with {auth:?}: {message}")
            }
            other => panic!("pulling {image} with {auth:?} gave {other:?}"),
        }
    }
    let right = RegistryAuth { username: "puller".into(), password: "right-password".into() };
    env.runtime.pull(&image, Some(&right)).await.expect("pulling with the right credentials");
}
