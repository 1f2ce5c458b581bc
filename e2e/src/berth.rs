//! Berth for a test: one `berth up` process, or the API server, controllers
//! and agents as separate processes; its own state directory, free ports, and
//! the containerd it is given. Stopped (SIGTERM, then SIGKILL) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::poll::poll;

/// A running Berth.
pub struct Berth {
    /// Started in this order, stopped in reverse; each with its log file.
    children: Vec<(Child, PathBuf)>,
    /// Each child's name and arguments to `berth`, to restart it.
    commands: Vec<(String, std::ffi::OsString, Vec<std::ffi::OsString>)>,
    /// Parts killed on purpose and not restarted yet.
    down: std::collections::HashSet<String>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    /// The containerd namespace the agent's containers live in (with
    /// several agents, agent `NAME`'s is this followed by `-NAME`).
    pub containerd_namespace: String,
}

/// One agent of [`Berth::cluster`]: its name and what it offers.
#[derive(Clone, Copy, Debug)]
pub struct AgentSpec<'a> {
    pub name: &'a str,
    pub cpu: &'a str,
    pub memory: &'a str,
}

/// How [`Berth::cluster_opts`] starts its parts.
#[derive(Clone, Copy, Debug)]
pub struct ClusterOptions<'a> {
    /// The API server's `--listen` (`127.0.0.1:0` by default).
    pub listen: &'a str,
    /// More flags for `berth apiserver`.
    pub apiserver: &'a [&'a str],
    /// More flags for `berth controllers`.
    pub controllers: &'a [&'a str],
    /// (agent, network namespace): agents run inside a namespace (`ip netns exec`).
    pub netns: &'a [(&'a str, &'a str)],
    /// (agent, more flags for its `berth agent`).
    pub agent_flags: &'a [(&'a str, &'a [&'a str])],
}

impl Default for ClusterOptions<'_> {
    fn default() -> Self {
        ClusterOptions { listen: "127.0.0.1:0", apiserver: &[], controllers: &[], netns: &[], agent_flags: &[] }
    }
}

/// The `berth` binary built by `cargo build --bin berth` (or `$BERTH_BIN`).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/debug/deps/<test> (a test) or target/debug/<bin> → target/debug/berth
    let dir = exe.parent().expect("target dir");
    let dir = if dir.ends_with("deps") { dir.parent().expect("target dir") } else { dir };
    let bin = dir.join("berth");
    assert!(bin.exists(), "{} is missing: run `cargo build --bin berth` (make test does)", bin.display());
    bin
}

/// The log filter Berth's processes run with: the test's own `BERTH_LOG`
/// when set (e.g. `debug`, to follow a launch step by step), else `info`.
fn log_filter() -> String {
    std::env::var("BERTH_LOG").unwrap_or_else(|_| "info".into())
}

impl Berth {
    /// Starts `berth up` with an agent offering `cpu` and `memory`, and waits
    /// until the API answers and the agent is registered.
    pub fn up(containerd_socket: &Path, cpu: &str, memory: &str) -> Berth {
        Berth::up_with(containerd_socket, cpu, memory, &[])
    }

    /// [`Berth::up`] with `extra` flags for `berth up` (e.g. the agent's policy).
    pub fn up_with(containerd_socket: &Path, cpu: &str, memory: &str, extra: &[&str]) -> Berth {
        let mut berth = Berth::new();
        let state = berth.dir.path().join("state");
        let mut up = Command::new(binary());
        up.args(["up", "--listen", "127.0.0.1:0"]).arg("--state-dir").arg(&state).args(extra);
        let namespace = berth.containerd_namespace.clone();
        berth.agent_flags(&mut up, containerd_socket, &namespace, &AgentSpec { name: "agent-1", cpu, memory });
        berth.spawn("berth-up", &mut up);
        berth.kubeconfig = state.join("kubeconfig");
        berth.wait_until_ready();
        berth
    }

    /// Starts `berth apiserver`, `berth controllers` and `berth agent` as
    /// three processes, as a multi-machine installation runs them.
    pub fn parts(containerd_socket: &Path, cpu: &str, memory: &str) -> Berth {
        Berth::cluster(containerd_socket, &[AgentSpec { name: "agent-1", cpu, memory }], &[])
    }

    /// Starts `berth apiserver` (with `extra` flags), `berth controllers` and
    /// one `berth agent` per entry of `agents`, each with its own data
    /// directory, log port and containerd namespace on the one containerd;
    /// waits until every agent is registered.
    pub fn cluster(containerd_socket: &Path, agents: &[AgentSpec], extra: &[&str]) -> Berth {
        Berth::cluster_with(containerd_socket, agents, extra, &[])
    }

    /// [`Berth::cluster`] with `controllers_extra` flags for `berth controllers`
    /// (e.g. `--agent-ttl-seconds`).
    pub fn cluster_with(
        containerd_socket: &Path,
        agents: &[AgentSpec],
        extra: &[&str],
        controllers_extra: &[&str],
    ) -> Berth {
        let options = ClusterOptions { apiserver: extra, controllers: controllers_extra, ..Default::default() };
        Berth::cluster_opts(containerd_socket, agents, &options)
    }

    /// [`Berth::cluster`] as `options` say.
    pub fn cluster_opts(containerd_socket: &Path, agents: &[AgentSpec], options: &ClusterOptions) -> Berth {
        let names = agents.iter().map(|a| a.name).collect::<Vec<_>>().join(",");
        let mut berth = Berth::apiserver_on(options.listen, &[&["--agents", &names], options.apiserver].concat());
        let api_dir = berth.dir.path().join("apiserver");
        // Each part with the token of its own role, from the kubeconfigs the API server wrote.
        let controllers = api_dir.join("controllers.kubeconfig");
        berth.spawn(
            "controllers",
            Command::new(binary()).arg("controllers").arg("--kubeconfig").arg(&controllers).args(options.controllers),
        );
        for a in agents {
            let mut agent = match options.netns.iter().find(|(n, _)| *n == a.name) {
                Some((_, ns)) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns]).arg(binary());
                    c
                }
                None => Command::new(binary()),
            };
            agent.arg("agent").arg("--kubeconfig").arg(api_dir.join(format!("agent-{}.kubeconfig", a.name)));
            let namespace = match agents.len() {
                1 => berth.containerd_namespace.clone(),
                _ => format!("{}-{}", berth.containerd_namespace, a.name),
            };
            berth.agent_flags(&mut agent, containerd_socket, &namespace, a);
            for (_, flags) in options.agent_flags.iter().filter(|(n, _)| *n == a.name) {
                agent.args(*flags);
            }
            berth.spawn(a.name, &mut agent);
        }
        let names: Vec<String> = agents.iter().map(|a| format!("agent.berth.dev/{}", a.name)).collect();
        berth.wait("every agent to register", Duration::from_secs(60), |b| {
            let out = b.kubectl(&["get", "agents.berth.dev", "-o", "name"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let missing: Vec<&String> = names.iter().filter(|n| !text.lines().any(|l| l == n.as_str())).collect();
            if out.status.success() && missing.is_empty() {
                Ok(())
            } else {
                Err(format!("missing {missing:?}: {}", crate::output_text(&out)))
            }
        });
        berth
    }

    /// Starts `berth apiserver` alone with `extra` flags, and waits until it
    /// answers kubectl with the admin kubeconfig it writes.
    pub fn apiserver(extra: &[&str]) -> Berth {
        Berth::apiserver_on("127.0.0.1:0", extra)
    }

    /// [`Berth::apiserver`] listening on `listen`.
    pub fn apiserver_on(listen: &str, extra: &[&str]) -> Berth {
        let mut berth = Berth::new();
        let api_dir = berth.dir.path().join("apiserver");
        berth.spawn(
            "apiserver",
            Command::new(binary()).args(["apiserver", "--listen", listen]).arg("--data-dir").arg(&api_dir).args(extra),
        );
        berth.kubeconfig = api_dir.join("kubeconfig");
        berth.wait("the API server", Duration::from_secs(60), |b| {
            if !b.kubeconfig.exists() {
                return Err("no kubeconfig yet".into());
            }
            let out = b.kubectl(&["get", "namespaces", "-o", "name"]);
            if out.status.success() { Ok(()) } else { Err(crate::output_text(&out)) }
        });
        berth
    }

    /// Starts `berth apiserver`, `berth controllers` (with `controllers`
    /// flags) and `berth sim` (part `sim`, with `sim` flags): simulated
    /// agents, no containerd. The simulator uses the admin kubeconfig, as
    /// its agents have no tokens of their own.
    pub fn simulated(sim: &[&str], controllers: &[&str]) -> Berth {
        let mut berth = Berth::apiserver(&[]);
        let api_dir = berth.dir.path().join("apiserver");
        let kubeconfig = api_dir.join("controllers.kubeconfig");
        berth.spawn(
            "controllers",
            Command::new(binary()).arg("controllers").arg("--kubeconfig").arg(kubeconfig).args(controllers),
        );
        let admin = berth.kubeconfig.clone();
        berth.spawn("sim", Command::new(binary()).arg("sim").arg("--kubeconfig").arg(admin).args(sim));
        berth
    }

    /// Runs kubectl with another kubeconfig the API server wrote (`controllers.kubeconfig`, …).
    pub fn kubectl_with(&self, kubeconfig: &str, args: &[&str]) -> Output {
        let path = self.kubeconfig.with_file_name(kubeconfig);
        Command::new("kubectl").arg("--kubeconfig").arg(path).args(args).output().expect("running kubectl")
    }

    fn new() -> Berth {
        let dir = tempfile::Builder::new().prefix("berth-e2e-").tempdir().expect("tempdir");
        let containerd_namespace =
            format!("berth-e2e-{}", dir.path().file_name().unwrap_or_default().to_string_lossy());
        Berth {
            children: Vec::new(),
            commands: Vec::new(),
            down: Default::default(),
            kubeconfig: PathBuf::new(),
            containerd_namespace,
            dir,
        }
    }

    fn agent_flags(&self, cmd: &mut Command, containerd_socket: &Path, namespace: &str, a: &AgentSpec) {
        cmd.args(["--logs-listen", "127.0.0.1:0", "--heartbeat-seconds", "2"])
            .arg("--containerd-socket")
            .arg(containerd_socket)
            .args(["--containerd-namespace", namespace])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("{}-data", a.name)))
            .args(["--name", a.name, "--cpu", a.cpu, "--memory", a.memory]);
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) {
        let log = self.dir.path().join(format!("{name}.log"));
        let args = cmd.get_args().map(|a| a.to_os_string()).collect();
        self.commands.push((name.to_string(), cmd.get_program().to_os_string(), args));
        let out = std::fs::File::options().create(true).append(true).open(&log).expect("log file");
        let child = cmd
            .env("BERTH_LOG", log_filter())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.children.push((child, log));
    }

    fn wait_until_ready(&mut self) {
        self.wait("the kubeconfig", Duration::from_secs(60), |b| {
            if b.kubeconfig.exists() { Ok(()) } else { Err("not written yet".into()) }
        });
        self.wait("the API server and agent", Duration::from_secs(60), |b| {
            let out = b.kubectl(&["get", "agents.berth.dev", "-o", "name"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if out.status.success() && text.contains("agent-1") { Ok(()) } else { Err(crate::output_text(&out)) }
        });
    }

    /// The index of part `name` (`apiserver`, `controllers`, an agent's name).
    fn part(&self, name: &str) -> usize {
        self.commands.iter().position(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no part named {name}"))
    }

    /// The PID of part `name`.
    pub fn pid(&self, name: &str) -> u32 {
        self.children[self.part(name)].0.id()
    }

    /// Kills part `name` with SIGKILL, as a crash or a power cut would, and reaps it.
    pub fn kill9(&mut self, name: &str) {
        let i = self.part(name);
        let child = &mut self.children[i].0;
        child.kill().unwrap_or_else(|e| panic!("kill -9 {name}: {e}"));
        let _ = child.wait();
        self.down.insert(name.to_string());
    }

    /// Starts part `name` again with the arguments it was first started
    /// with (after [`Berth::kill9`]); its log continues in the same file.
    pub fn restart(&mut self, name: &str) {
        let i = self.part(name);
        let (_, program, args) = self.commands[i].clone();
        let log = self.children[i].1.clone();
        let out = std::fs::File::options().append(true).open(&log).expect("log file");
        let child = Command::new(program)
            .args(&args)
            .env("BERTH_LOG", log_filter())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("restarting {name}: {e}"));
        self.children[i].0 = child;
        self.down.remove(name);
    }

    /// Runs kubectl against this Berth.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl").arg("--kubeconfig").arg(&self.kubeconfig).args(args).output().expect("running kubectl")
    }

    /// Runs kubectl with `stdin` as its input (for `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        crate::run_with_stdin(Command::new("kubectl").arg("--kubeconfig").arg(&self.kubeconfig).args(args), stdin)
    }

    /// `kubectl apply -f -` of `yaml`; panics with kubectl's output if it fails.
    pub fn apply(&self, yaml: &str) {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], yaml);
        assert!(out.status.success(), "kubectl apply failed: {}\n{yaml}", crate::output_text(&out));
    }

    /// Runs a `berth` subcommand against this Berth.
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(binary()).args(args).env("KUBECONFIG", &self.kubeconfig).output().expect("running berth")
    }

    /// A field of an object, by kubectl's jsonpath (`""` when absent).
    pub fn jsonpath(&self, object: &str, path: &str) -> String {
        let out = self.kubectl(&["get", object, "-o", &format!("jsonpath={{{path}}}")]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Polls `check` until it is `Ok` or `timeout` passes; on timeout panics
    /// with the last observation and the end of Berth's logs.
    pub fn wait<T>(&mut self, what: &str, timeout: Duration, mut check: impl FnMut(&Self) -> Result<T, String>) -> T {
        for ((child, log), (name, _, _)) in self.children.iter_mut().zip(&self.commands) {
            if self.down.contains(name) {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                panic!("{} exited ({status}):\n{text}", log.display());
            }
        }
        let this = &*self;
        match poll(timeout, || check(this)) {
            Ok(v) => v,
            Err(last) => panic!("timed out waiting for {what}; last seen: {last}\n{}", this.log_tail()),
        }
    }

    /// The last lines each Berth process logged.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for (_, log) in &self.children {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- {} ---\n{}\n",
                log.display(),
                lines[lines.len().saturating_sub(40)..].join("\n")
            ));
        }
        out
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        for (child, _) in self.children.iter_mut().rev() {
            crate::terminate(child, Duration::from_secs(20));
        }
    }
}
