//! The mapping, field by field, and the committed example.

use berth_api::Job;
use berth_api::rollout::IntOrPercent;
use serde_json::{Value, json};

use super::error::{Problem, Severity};
use super::*;

fn app(extra: Value) -> String {
    let mut base = json!({"id": "/shop/web", "container": {"docker": {"image": "127.0.0.1:5000/berth/demo:latest"}}});
    base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    base.to_string()
}

fn ok(extra: Value) -> map::Imported {
    import(&app(extra), &Options::default()).unwrap_or_else(|e| panic!("refused: {e}"))
}

fn refused(extra: Value, opts: &Options) -> Vec<Problem> {
    match import(&app(extra), opts) {
        Err(ImportError::Refused(p)) => p,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

/// The warnings that are dropped fields (not notes).
fn dropped(i: &map::Imported) -> Vec<&str> {
    i.warnings.iter().filter(|w| w.severity == Severity::Unsupported).map(|w| w.path.as_str()).collect()
}

fn group(i: &map::Imported) -> &berth_api::TaskGroup {
    &i.job.spec.task_groups[0]
}

#[test]
fn the_committed_example_is_what_importing_its_json_gives() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
    let json = std::fs::read_to_string(dir.join("marathon-app.json")).unwrap();
    let opts = Options { with_framework: true, ..Options::default() };
    let imported = import(&json, &opts).unwrap();
    let yaml = render(&imported, Format::Yaml);
    let committed = std::fs::read_to_string(dir.join("marathon-app.yaml")).unwrap_or_default();
    assert!(
        committed == yaml,
        "manifests/examples/marathon-app.yaml is stale: regenerate it with\n  \
         berth import marathon manifests/examples/marathon-app.json --with-framework > manifests/examples/marathon-app.yaml\n\
         it should be:\n{yaml}"
    );
}

#[test]
fn the_output_reads_back_as_a_valid_job_in_yaml_and_json() {
    let imported = ok(json!({"instances": 3, "healthChecks": [{"protocol": "TCP"}]}));
    let yaml = render(&imported, Format::Yaml);
    let job: Job = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!((&job.spec, &job.metadata), (&imported.job.spec, &imported.job.metadata));
    assert!(berth_api::validate::job_spec(&job.spec).is_empty());
    let from_json: Job = serde_json::from_str(&render(&imported, Format::Json)).unwrap();
    assert_eq!(from_json.spec, imported.job.spec);

    let with_fw = import(&app(json!({})), &Options { with_framework: true, ..Options::default() }).unwrap();
    let yaml = render(&with_fw, Format::Yaml);
    let docs: Vec<&str> = yaml.split("\n---\n").collect();
    assert_eq!(docs.len(), 2);
    let fw: berth_api::Framework = serde_saphyr::from_str(docs[0]).unwrap();
    assert_eq!(fw.spec.scheduler, berth_api::framework::Scheduler::BuiltinService);
    let stream = render(&with_fw, Format::Json);
    let objects: Vec<Value> = serde_json::Deserializer::from_str(&stream).into_iter().map(Result::unwrap).collect();
    assert_eq!((objects.len(), objects[0]["kind"].as_str()), (2, Some("Framework")));
    let _: Job = serde_json::from_value(objects[1].clone()).unwrap();
}

#[test]
fn the_id_becomes_the_job_and_its_last_segment_the_task_group() {
    let i = ok(json!({"id": "/Shop/Front.End"}));
    assert_eq!((i.job.metadata.name.as_deref(), group(&i).name.as_str()), (Some("shop-front.end"), "front-end"));
    assert_eq!(i.job.spec.framework.as_deref(), Some("services"));
    let bad = refused(json!({"id": "/shop/web_1"}), &Options::default());
    assert_eq!(paths(&bad), ["id"]);
    assert!(bad[0].message.contains("'_'"), "{}", bad[0]);
    let opts = Options { name: Some("storefront".into()), namespace: Some("prod".into()), ..Options::default() };
    let named = import(&app(json!({})), &opts).unwrap();
    assert_eq!(named.job.metadata.name.as_deref(), Some("storefront"));
    assert_eq!(named.job.metadata.namespace.as_deref(), Some("prod"));
}

#[test]
fn cmd_runs_in_a_shell_and_args_replace_the_images_arguments() {
    let i = ok(json!({"cmd": "echo $PORT0"}));
    assert_eq!(group(&i).container.command, ["/bin/sh", "-c", "echo $PORT0"]);
    let i = ok(json!({"args": ["--port", "80"]}));
    assert_eq!((group(&i).container.command.len(), group(&i).container.args.len()), (0, 2));
    assert_eq!(paths(&refused(json!({"cmd": "x", "args": ["y"]}), &Options::default())), ["args"]);
}

#[test]
fn cpus_and_mem_become_quantities_with_marathons_defaults() {
    let i = ok(json!({"cpus": 0.25, "mem": 128.5}));
    let r = &group(&i).container.resources;
    assert_eq!((r.cpu.as_ref().unwrap().0.as_str(), r.memory.as_ref().unwrap().0.as_str()), ("250m", "129Mi"));
    let d = ok(json!({}));
    let r = &group(&d).container.resources;
    assert_eq!((r.cpu.as_ref().unwrap().0.as_str(), r.memory.as_ref().unwrap().0.as_str()), ("1", "128Mi"));
    assert_eq!(group(&d).instances, Some(1));
    assert_eq!(paths(&refused(json!({"cpus": -1}), &Options::default())), ["cpus"]);
}

#[test]
fn env_takes_strings_and_refuses_secret_references_by_name() {
    let i = ok(json!({"env": {"A": "1"}}));
    assert_eq!(group(&i).container.env[0].value, "1");
    let env = json!({"env": {"A": "1", "DB_PASSWORD": {"secret": "db"}}});
    let p = refused(env.clone(), &Options::default());
    assert_eq!(paths(&p), ["env.DB_PASSWORD"]);
    assert!(p[0].message.contains("secret"));
    let lenient = import(&app(env), &Options { ignore_unsupported: true, ..Options::default() }).unwrap();
    assert_eq!(group(&lenient).container.env.len(), 1);
    assert_eq!(dropped(&lenient), ["env.DB_PASSWORD"]);
}

#[test]
fn ports_are_assigned_by_berth_and_fixed_numbers_are_noted_or_refused() {
    let i = ok(json!({"portDefinitions": [{"port": 0, "name": "http"}, {"port": 10001}]}));
    let names: Vec<_> = group(&i).container.ports.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, [Some("http".to_string()), None]);
    assert_eq!(paths(&i.warnings), ["portDefinitions[1].port"]);
    assert_eq!(i.warnings[0].severity, Severity::Note);
    let p = refused(json!({"portDefinitions": [{"port": 10001}], "requirePorts": true}), &Options::default());
    assert_eq!(paths(&p), ["portDefinitions[0].port"]);
    assert_eq!(group(&ok(json!({"ports": [0, 0]}))).container.ports.len(), 2);
    assert_eq!(group(&ok(json!({}))).container.ports.len(), 1, "Marathon's default: one port");
    assert_eq!(group(&ok(json!({"portDefinitions": []}))).container.ports.len(), 0);
    assert_eq!(
        paths(&refused(json!({"portDefinitions": [{"name": "HTTP_1"}]}), &Options::default())),
        ["portDefinitions[0].name"]
    );
}

#[test]
fn constraints_are_checked_and_is_becomes_an_exact_like() {
    let i = ok(json!({"constraints": [["hostname", "UNIQUE"], ["rack", "IS", "r1.a"]]}));
    assert_eq!(group(&i).constraints[1], ["rack", "LIKE", "r1\\.a"]);
    let p = refused(json!({"constraints": [["hostname", "UNIQUE"], ["rack", "NEAR", "x"]]}), &Options::default());
    assert_eq!(paths(&p), ["constraints[1]"]);
    assert!(p[0].message.contains("NEAR"));
}

#[test]
fn health_checks_map_by_protocol_with_marathons_timings() {
    let i = ok(json!({"portDefinitions": [{}, {}], "healthChecks": [
        {"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 1, "intervalSeconds": 5},
        {"protocol": "TCP"},
        {"protocol": "COMMAND", "command": {"value": "test -f /ready"}},
    ]}));
    let checks = &group(&i).container.health_checks;
    let http = checks[0].http.as_ref().unwrap();
    assert_eq!(
        (http.path.as_deref(), http.port_index, checks[0].interval_seconds),
        (Some("/health"), Some(1), Some(5))
    );
    assert_eq!(checks[1].tcp.as_ref().unwrap().port_index, Some(0));
    assert_eq!(checks[2].command, ["/bin/sh", "-c", "test -f /ready"]);
    let timings = (checks[1].grace_period_seconds, checks[1].timeout_seconds, checks[1].max_consecutive_failures);
    assert_eq!(timings, (Some(300), Some(20), Some(3)));
    let bad = json!({"healthChecks": [{"protocol": "HTTPS"}, {"protocol": "TCP", "port": 8080}, {"portIndex": 3}]});
    let p = refused(bad, &Options::default());
    assert_eq!(paths(&p), ["healthChecks[1].port", "healthChecks[0].protocol", "healthChecks[2].portIndex"]);
}

#[test]
fn upgrade_strategy_becomes_integer_surge_and_unavailable() {
    let i =
        ok(json!({"instances": 10, "upgradeStrategy": {"minimumHealthCapacity": 0.9, "maximumOverCapacity": 0.25}}));
    let s = group(&i).update_strategy.clone().unwrap();
    assert_eq!((s.max_surge, s.max_unavailable), (Some(IntOrPercent::Int(2)), Some(IntOrPercent::Int(1))));
    assert!(render(&i, Format::Yaml).contains("maxUnavailable: 1 # floor((1 - minimumHealthCapacity 0.9) x 10"));
    let d = group(&ok(json!({"instances": 4}))).update_strategy.clone().unwrap();
    assert_eq!((d.max_surge, d.max_unavailable), (Some(IntOrPercent::Int(4)), Some(IntOrPercent::Int(0))));
    let p = refused(json!({"upgradeStrategy": {"minimumHealthCapacity": 1.5}}), &Options::default());
    assert_eq!(paths(&p), ["upgradeStrategy.minimumHealthCapacity"]);
}

#[test]
fn backoff_labels_and_kill_grace_carry_over() {
    let i = ok(json!({"backoffSeconds": 3, "maxLaunchDelaySeconds": 120, "taskKillGracePeriodSeconds": 7,
                      "labels": {"team": "shop", "HAPROXY_GROUP": "external"}}));
    let r = group(&i).retries.clone().unwrap();
    assert_eq!((r.limit, r.backoff_seconds, r.max_backoff_seconds), (None, Some(3), Some(120)));
    assert_eq!(group(&i).container.termination_grace_period_seconds, Some(7));
    assert_eq!(i.job.metadata.labels.as_ref().unwrap()["HAPROXY_GROUP"], "external");
    let p = refused(json!({"labels": {"ok": "yes", "url": "http://x/"}}), &Options::default());
    assert_eq!(paths(&p), ["labels.url"]);
}

#[test]
fn every_unmappable_field_is_named_by_its_path_at_once() {
    let bad = json!({
        "container": {"type": "DOCKER", "docker": {"image": "i", "privileged": true},
                      "volumes": [{"containerPath": "/data", "hostPath": "/srv", "mode": "RW"}]},
        "fetch": [{"uri": "https://example.com/a.tgz"}],
        "user": "nobody",
        "disk": 100,
        "networks": [{"mode": "container/bridge"}],
        "dependencies": ["/db"],
        "frobnicate": 1,
    });
    let p = refused(bad.clone(), &Options::default());
    let mut got = paths(&p);
    got.sort();
    assert_eq!(
        got,
        [
            "container.docker.privileged",
            "container.volumes",
            "dependencies",
            "disk",
            "fetch",
            "frobnicate",
            "networks",
            "user"
        ]
    );
    assert!(p.iter().all(|p| p.severity == Severity::Unsupported));
    let message = ImportError::Refused(p).to_string();
    assert!(message.contains("container.volumes: Berth has no volumes"), "{message}");

    let lenient = import(&app(bad), &Options { ignore_unsupported: true, ..Options::default() }).unwrap();
    assert_eq!(dropped(&lenient).len(), 8);
    assert!(berth_api::validate::job_spec(&lenient.job.spec).is_empty());
}

#[test]
fn marathons_defaults_and_status_fields_as_exported_are_accepted() {
    let exported = json!({
        "disk": 0, "gpus": 0, "user": null, "fetch": [], "uris": [], "storeUrls": [], "dependencies": [],
        "acceptedResourceRoles": ["*"], "networks": [{"mode": "host"}], "executor": "", "requirePorts": false,
        "backoffFactor": 1.15, "killSelection": "YOUNGEST_FIRST", "version": "2024-01-01T00:00:00.000Z",
        "versionInfo": {"lastScalingAt": "x"}, "tasksRunning": 2, "deployments": [], "secrets": {},
        "container": {"type": "MESOS", "docker": {"image": "i", "forcePullImage": false}, "volumes": []},
    });
    let i = ok(exported);
    assert_eq!(paths(&i.warnings), ["backoffFactor", "portDefinitions"]);
    assert!(i.warnings.iter().all(|w| w.severity == Severity::Note));
}

#[test]
fn bad_input_is_refused_with_what_is_wrong() {
    assert!(matches!(import("[1]", &Options::default()), Err(ImportError::Refused(_))));
    assert!(matches!(import("{\"id\": ", &Options::default()), Err(ImportError::Json(_))));
    let p = refused(json!({"cpus": "many", "healthChecks": [{"portIndex": -1}]}), &Options::default());
    assert_eq!(paths(&p), ["cpus", "healthChecks"]);
    assert!(p[0].message.contains("\"many\""), "{}", p[0]);
    let p = refused(json!({"container": {"type": "DOCKER"}}), &Options::default());
    assert_eq!(paths(&p), ["container.docker.image"]);
    let p = match import("{\"container\": {\"docker\": {\"image\": \"i\"}}}", &Options::default()) {
        Err(ImportError::Refused(p)) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(paths(&p), ["id"]);
}
