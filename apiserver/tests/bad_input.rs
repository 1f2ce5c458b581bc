//! Invariant 7 at the HTTP boundary: malformed bodies, bodies that
//! contradict the URL, unknown fields under each `fieldValidation`, bad
//! selectors and list parameters, and oversized objects and bodies — each
//! a 4xx Status naming the field or parameter, nothing stored, and the
//! server still serving afterwards.

mod common;

use common::Server;
use serde_json::{Value, json};

const JOBS: &str = "/apis/berth.dev/v1alpha1/namespaces/default/jobs";
const JSON: [(&str, &str); 1] = [("Content-Type", "application/json")];

type Headers<'a> = &'a [(&'a str, &'a str)];

fn job(name: &str, task_group: Value) -> Value {
    json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Job", "metadata": {"name": name}, "spec": {"taskGroups": [task_group]}})
}

fn main_group() -> Value {
    json!({"name": "main", "image": "img:1"})
}

fn status(body: &str) -> Value {
    let st: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not a Status ({e}): {body}"));
    assert_eq!(st["kind"], "Status", "{body}");
    st
}

/// The names of the stored Jobs in `default`.
async fn stored(server: &Server) -> Vec<String> {
    let (code, _, body) = server.raw("GET", JOBS, &[], "").await;
    assert_eq!(code, 200, "the server still lists: {body}");
    let list: Value = serde_json::from_str(&body).expect("list");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_contradicting_bodies_are_400_and_store_nothing() {
    let server = Server::start().await;
    let yaml = [("Content-Type", "application/yaml")];
    let cases: Vec<(Headers, String, &str)> = vec![
        (&JSON, "{\"metadata\": {\"name\": ".into(), "not valid JSON"),
        (&yaml, "metadata: {name: [\n".into(), "not valid YAML"),
        (&JSON, "[1, 2]".into(), "must be an object"),
        (&JSON, job("a", main_group()).to_string().replace("\"Job\"", "\"Placement\""), "kind"),
        (&JSON, job("a", main_group()).to_string().replace("berth.dev/v1alpha1", "berth.dev/v9"), "API version"),
        (&JSON, job("a", main_group()).to_string().replace("berth.dev/v1alpha1", "apps/v1"), "API version"),
        (&JSON, job("a", main_group()).to_string().replace("\"Job\"", "7"), "kind"),
    ];
    for (headers, body, says) in cases {
        let (code, _, resp) = server.raw("POST", JOBS, headers, &body).await;
        assert_eq!(code, 400, "{body} -> {resp}");
        let st = status(&resp);
        assert_eq!(st["reason"], "BadRequest");
        assert!(st["message"].as_str().unwrap_or("").contains(says), "{body} -> {resp}");
    }
    assert!(stored(&server).await.is_empty());

    let (code, _, body) = server.raw("POST", JOBS, &JSON, &job("a", main_group()).to_string()).await;
    assert_eq!(code, 201, "{body}");
    let renamed = job("b", main_group()).to_string();
    let (code, _, resp) = server.raw("PUT", &format!("{JOBS}/a"), &JSON, &renamed).await;
    assert_eq!(code, 400, "{resp}");
    assert!(status(&resp)["message"].as_str().unwrap_or("").contains("does not match the name on the URL"), "{resp}");
    let merge = [("Content-Type", "application/merge-patch+json")];
    for (patch, field) in [
        (r#"{"metadata": {"name": "b"}}"#, "metadata.name"),
        (r#"{"metadata": {"uid": "6d1f9a43-0000-4000-8000-000000000000"}}"#, "metadata.uid"),
    ] {
        let (code, _, resp) = server.raw("PATCH", &format!("{JOBS}/a"), &merge, patch).await;
        assert_eq!(code, 422, "{patch}: {resp}");
        let st = status(&resp);
        assert_eq!(st["details"]["causes"][0]["field"], field, "{resp}");
    }
    assert_eq!(stored(&server).await, ["a"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_follow_field_validation_and_defaults_apply() {
    let server = Server::start().await;
    let with_foo = |name: &str| {
        let mut j = job(name, json!({"name": "main", "image": "img:1", "env": [{"name": "A"}]}));
        j["spec"]["foo"] = json!(1);
        j.to_string()
    };
    let (code, head, resp) = server.raw("POST", &format!("{JOBS}?fieldValidation=Strict"), &JSON, &with_foo("s")).await;
    assert_eq!(code, 400, "{head}\n{resp}");
    let st = status(&resp);
    assert_eq!(st["reason"], "BadRequest");
    assert_eq!(st["message"], "strict decoding error: unknown field \"spec.foo\"");
    assert!(stored(&server).await.is_empty(), "a strict refusal stores nothing");

    let (code, head, resp) = server.raw("POST", &format!("{JOBS}?fieldValidation=Warn"), &JSON, &with_foo("w")).await;
    assert_eq!(code, 201, "{resp}");
    assert!(head.to_ascii_lowercase().contains("warning: 299 - \"unknown field \\\"spec.foo\\\"\""), "{head}");
    let (code, head, resp) = server.raw("POST", &format!("{JOBS}?fieldValidation=Ignore"), &JSON, &with_foo("i")).await;
    assert_eq!(code, 201, "{resp}");
    assert!(!head.to_ascii_lowercase().contains("warning:"), "Ignore is silent: {head}");
    for name in ["w", "i"] {
        let (_, _, body) = server.raw("GET", &format!("{JOBS}/{name}"), &[], "").await;
        let obj: Value = serde_json::from_str(&body).expect("job");
        assert_eq!(obj["spec"].get("foo"), None, "unknown fields are pruned: {body}");
        let tg = &obj["spec"]["taskGroups"][0];
        assert_eq!(tg["env"][0]["value"], "", "schema defaults apply: {body}");
        assert!(tg["resources"].is_object(), "schema defaults apply: {body}");
    }

    let mut update: Value =
        serde_json::from_str(&server.raw("GET", &format!("{JOBS}/w"), &[], "").await.2).expect("job");
    update["spec"]["bar"] = json!(true);
    let (code, _, resp) =
        server.raw("PUT", &format!("{JOBS}/w?fieldValidation=Strict"), &JSON, &update.to_string()).await;
    assert_eq!(code, 400, "updates are decoded strictly too: {resp}");
    assert!(resp.contains("unknown field \\\"spec.bar\\\""), "{resp}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_selectors_and_list_parameters_name_the_parameter() {
    let server = Server::start().await;
    let cases = [
        ("labelSelector=a%3D%3D%3Db", 400, "labelSelector"),
        ("labelSelector=a+in+(b", 400, "labelSelector"),
        ("fieldSelector=spec", 400, "fieldSelector"),
        ("fieldSelector=spec.nope%3Dx", 400, "fieldSelector"),
        ("resourceVersion=abc", 400, "resourceVersion"),
        ("resourceVersionMatch=Newest&resourceVersion=1", 400, "resourceVersionMatch"),
        ("resourceVersionMatch=Exact", 422, "resourceVersionMatch"),
        ("resourceVersionMatch=Exact&resourceVersion=0", 422, "resourceVersionMatch"),
        ("limit=-1", 400, "limit"),
        ("limit=many", 400, "limit"),
        ("continue=zz", 400, "continue"),
        ("continue=6869", 400, "continue"),
        ("timeoutSeconds=soon&watch=true", 400, "timeoutSeconds"),
    ];
    for (query, code, names) in cases {
        let (got, _, body) = server.raw("GET", &format!("{JOBS}?{query}"), &[], "").await;
        assert_eq!(got, code, "{query}: {body}");
        let st = status(&body);
        assert!(st["message"].as_str().unwrap_or("").contains(names), "{query}: {body}");
        let (got, _, body) = server.raw("DELETE", &format!("{JOBS}?{query}"), &[], "").await;
        assert!((400..500).contains(&got), "deletecollection {query}: {got} {body}");
    }
    assert!(stored(&server).await.is_empty());
    server.stop().await;
}

/// Sends `body` and reads the answer, tolerating a server that answers
/// (and closes) before the body is all sent.
async fn send_large(server: &Server, path: &str, body: Vec<u8>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.url.trim_start_matches("http://").to_string();
    let conn = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let (mut rd, mut wr) = conn.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        wr
    });
    let mut resp = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), rd.read_to_end(&mut resp)).await;
    read.expect("an answer in time").ok();
    drop(writer.await);
    let text = String::from_utf8_lossy(&resp).to_string();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_objects_and_bodies_are_413() {
    let server = Server::start().await;
    let mut big = job("big", main_group());
    big["metadata"]["annotations"] = json!({"blob": "x".repeat(1600 * 1024)});
    let (code, body) = send_large(&server, JOBS, big.to_string().into_bytes()).await;
    assert_eq!(code, 413, "{body}");
    let st = status(&body);
    assert_eq!(st["reason"], "RequestEntityTooLarge");
    assert!(st["message"].as_str().unwrap_or("").contains("1572864"), "names the limit: {body}");

    let mut huge = job("huge", main_group());
    huge["metadata"]["annotations"] = json!({"blob": "x".repeat(3200 * 1024)});
    let (code, body) = send_large(&server, JOBS, huge.to_string().into_bytes()).await;
    assert_eq!(code, 413, "{body}");
    let st = status(&body);
    assert_eq!(st["reason"], "RequestEntityTooLarge");
    assert!(st["message"].as_str().unwrap_or("").contains("3145728"), "names the limit: {body}");

    let mut fits = job("fits", main_group());
    fits["metadata"]["annotations"] = json!({"blob": "x".repeat(200 * 1024)});
    let (code, body) = send_large(&server, JOBS, fits.to_string().into_bytes()).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(stored(&server).await, ["fits"], "nothing of the refused ones is stored");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_bodies_are_refused_and_the_server_survives() {
    let server = Server::start().await;
    let depth = 100_000;
    let json_bomb =
        format!("{{\"metadata\": {{\"name\": \"deep\"}}, \"spec\": {}{}", "[".repeat(depth), "]".repeat(depth));
    let yaml_bomb = format!("metadata: {{name: deep}}\nspec: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let mut laughs =
        String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for i in 1..10 {
        let p = i - 1;
        laughs.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    laughs.push_str("metadata: {name: laughs}\nspec: {taskGroups: *a9}\n");
    let bodies = [("application/json", json_bomb), ("application/yaml", yaml_bomb), ("application/yaml", laughs)];
    for (ctype, body) in bodies {
        let (code, _, resp) = server.raw("POST", JOBS, &[("Content-Type", ctype)], &body).await;
        assert_eq!(code, 400, "{ctype}: {}", resp.chars().take(300).collect::<String>());
        assert_eq!(status(&resp)["reason"], "BadRequest");
    }
    assert!(stored(&server).await.is_empty(), "the server still answers, and stored nothing");
    server.stop().await;
}
