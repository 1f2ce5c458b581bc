//! `berth import marathon` as a user runs it: the committed example app is
//! imported with the real binary, applied with the real kubectl to a
//! two-agent cluster, stored as the service it describes, and run: its two
//! instances turn healthy on different agents (`hostname UNIQUE`) and
//! answer over HTTP on their host ports. An app Berth cannot carry over is
//! refused with exit 2 naming the field, and nothing is printed to apply.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_api::rollout::IntOrPercent;
use berth_api::{Framework, Job};
use std::time::Duration;

use berth_api::Placement;
use berth_e2e::berth::{AgentSpec, Berth, ClusterOptions, binary};
use berth_e2e::{Containerd, Registry, build_demo_image, output_text, run_with_stdin};

const AGENTS: [AgentSpec; 2] = [
    AgentSpec { name: "agent-a", cpu: "1", memory: "512Mi" },
    AgentSpec { name: "agent-b", cpu: "1", memory: "512Mi" },
];

/// Two agents on one machine: hostnames of their own (what `hostname
/// UNIQUE` tells apart) and host ports of their own.
const OPTIONS: ClusterOptions = ClusterOptions {
    listen: "127.0.0.1:0",
    apiserver: &[],
    controllers: &[],
    netns: &[],
    agent_flags: &[
        ("agent-a", &["--hostname", "host-a", "--ports", "33000-33499"]),
        ("agent-b", &["--hostname", "host-b", "--ports", "33500-33999"]),
    ],
};

/// The example as committed, with the registry the demo image is in.
const EXAMPLE: &str = "manifests/examples/marathon-app.json";
const EXAMPLE_IMAGE: &str = "127.0.0.1:5000/berth/demo:latest";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `berth import marathon ARGS…` run from the workspace root.
fn import(args: &[&str]) -> Output {
    Command::new(binary())
        .args(["import", "marathon"])
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("running berth import")
}

fn get<T: serde::de::DeserializeOwned>(berth: &Berth, object: &str) -> T {
    let out = berth.kubectl(&["get", object, "-o", "json"]);
    assert!(out.status.success(), "kubectl get {object}: {}", output_text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{object} as kubectl printed it: {e}"))
}

#[test]
fn an_imported_marathon_app_applies_with_kubectl_as_a_builtin_service() {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let mut berth = Berth::cluster_opts(containerd.socket(), &AGENTS, &OPTIONS);

    let out = import(&[EXAMPLE, "--with-framework"]);
    assert!(out.status.success(), "berth import: {}", output_text(&out));
    let yaml = String::from_utf8(out.stdout).expect("YAML is UTF-8");
    // The example names the registry `make up` runs; this test's has its own port.
    let yaml = yaml.replace(EXAMPLE_IMAGE, &format!("{}/berth/demo:latest", registry.host()));

    let applied = berth.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    let text = output_text(&applied);
    assert!(applied.status.success(), "kubectl apply: {text}\n{yaml}");
    for created in ["framework.berth.dev/services created", "job.berth.dev/demo-web created"] {
        assert!(text.contains(created), "kubectl apply said:\n{text}");
    }
    let again = berth.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    assert!(output_text(&again).contains("job.berth.dev/demo-web unchanged"), "{}", output_text(&again));

    let fw: Framework = get(&berth, "frameworks.berth.dev/services");
    assert_eq!(fw.spec.scheduler, berth_api::framework::Scheduler::BuiltinService);

    let job: Job = get(&berth, "jobs.berth.dev/demo-web");
    assert_eq!(job.spec.framework.as_deref(), Some("services"));
    let annotations = job.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("berth.dev/marathon-id").map(String::as_str), Some("/demo/web"));
    assert_eq!(job.metadata.labels.clone().unwrap_or_default().get("team").map(String::as_str), Some("web"));
    let [group] = job.spec.task_groups.as_slice() else { panic!("one task group: {:?}", job.spec) };
    assert_eq!((group.name.as_str(), group.instances), ("web", Some(2)));
    assert_eq!(group.constraints, [["hostname", "UNIQUE"]]);
    let strategy = group.update_strategy.clone().expect("an update strategy");
    assert_eq!(
        (strategy.max_surge, strategy.max_unavailable),
        (Some(IntOrPercent::Int(1)), Some(IntOrPercent::Int(1)))
    );
    let c = &group.container;
    assert_eq!(c.image, format!("{}/berth/demo:latest", registry.host()));
    assert_eq!(c.command[..2], ["/bin/sh", "-c"]);
    assert!(c.command[2].contains("httpd -f -p 127.0.0.1:$PORT0"), "{:?}", c.command);
    assert_eq!(c.ports.iter().map(|p| p.name.as_deref()).collect::<Vec<_>>(), [Some("http")]);
    let check = c.health_checks.first().and_then(|h| h.http.clone()).expect("an HTTP health check");
    assert_eq!((check.path.as_deref(), check.port_index), (Some("/health"), Some(0)));
    let resources = (c.resources.cpu.as_ref().map(|q| q.0.as_str()), c.resources.memory.as_ref().map(|q| q.0.as_str()));
    assert_eq!(resources, (Some("100m"), Some("32Mi")));
    assert!(berth_api::validate::job_spec(&job.spec).is_empty());

    // It runs as the app did on Marathon: both instances healthy, one per
    // host, each answering on the port it was given.
    let agents = berth.wait("both instances of demo-web healthy on two agents", Duration::from_secs(180), |b| {
        let out = b.kubectl(&["get", "placements.berth.dev", "-l", "berth.dev/job=demo-web", "-o", "json"]);
        let list: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| output_text(&out) + &e.to_string())?;
        let items: Vec<Placement> = serde_json::from_value(list["items"].clone()).map_err(|e| e.to_string())?;
        let healthy: Vec<&Placement> = items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.health.as_ref()).is_some_and(|h| h.healthy))
            .collect();
        let seen =
            || format!("{:?}", items.iter().map(|p| (&p.metadata.name, &p.spec.agent, &p.status)).collect::<Vec<_>>());
        if healthy.len() != 2 {
            return Err(seen());
        }
        let mut answers = Vec::new();
        for p in &healthy {
            let port = p.status.as_ref().and_then(|s| s.ports.first()).ok_or_else(seen)?;
            let answer =
                berth_e2e::http::request(&format!("127.0.0.1:{port}"), "GET", "/", None).map_err(|e| e.to_string())?;
            if !answer.body.contains("hello from a Marathon app") {
                return Err(format!("port {port} answered {answer:?}"));
            }
            answers.push(p.spec.agent.clone());
        }
        Ok(answers)
    });
    assert_ne!(agents[0], agents[1], "hostname UNIQUE puts one instance on each agent");

    // `-o json` with the Framework is two JSON objects in a row, which kubectl applies as well.
    let json = import(&[EXAMPLE, "--with-framework", "-o", "json", "--name", "web-json", "-n", "default"]);
    assert!(json.status.success(), "berth import -o json: {}", output_text(&json));
    let applied = berth.kubectl_stdin(&["apply", "-f", "-"], &String::from_utf8_lossy(&json.stdout));
    let text = output_text(&applied);
    assert!(applied.status.success() && text.contains("job.berth.dev/web-json created"), "kubectl apply: {text}");
    assert!(text.contains("framework.berth.dev/services unchanged"), "{text}");
}

#[test]
fn an_app_with_volumes_is_refused_with_exit_2_naming_container_volumes() {
    let app = r#"{
        "id": "/db/postgres",
        "cmd": "postgres",
        "container": {
            "type": "DOCKER",
            "docker": {"image": "127.0.0.1:5000/berth/demo:latest"},
            "volumes": [{"containerPath": "/var/lib/postgresql", "hostPath": "/srv/pg", "mode": "RW"}]
        },
        "env": {"PGPASSWORD": {"secret": "pg"}}
    }"#;
    let out = run_with_stdin(Command::new(binary()).args(["import", "marathon", "-f", "-"]), app);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    for field in ["container.volumes", "env.PGPASSWORD"] {
        assert!(stderr.contains(field), "stderr names {field}:\n{stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing to apply is printed: {}", String::from_utf8_lossy(&out.stdout));

    let dropped = run_with_stdin(
        Command::new(binary()).args(["import", "marathon", "-f", "-", "--ignore-unsupported", "-o", "json"]),
        app,
    );
    assert!(dropped.status.success(), "{}", output_text(&dropped));
    assert!(
        String::from_utf8_lossy(&dropped.stderr).contains("warning: container.volumes"),
        "{}",
        output_text(&dropped)
    );
    let job: Job = serde_json::from_slice(&dropped.stdout).expect("-o json prints the Job");
    assert_eq!(job.metadata.name.as_deref(), Some("db-postgres"));
    assert!(job.spec.task_groups[0].container.env.is_empty());
}
