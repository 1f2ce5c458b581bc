use serde_json::json;

use super::*;

fn now() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().expect("time")
}

fn offer(state: &str, expires: &str) -> Value {
    json!({
        "metadata": {"name": "o1", "namespace": "team-a"},
        "spec": {"framework": "fa", "agent": "agent-1", "resources": {"cpu": "1", "memory": "2Gi"}, "expiresAt": expires},
        "status": {"state": state},
    })
}

fn open() -> Value {
    offer("Outstanding", "2030-01-01T00:01:00Z")
}

fn placement(name: &str, agent: &str, framework: Option<&str>, cpu: &str, memory: &str) -> Value {
    let labels = framework.map(|f| json!({"berth.dev/framework": f})).unwrap_or(json!({}));
    json!({
        "metadata": {"name": name, "namespace": "team-a", "labels": labels},
        "spec": {"agent": agent, "offer": "o1", "job": "j", "taskGroup": "main", "image": "i",
                 "resources": {"cpu": cpu, "memory": memory}},
    })
}

fn fields(p: &Value, offer: Option<&Value>, others: &[Value]) -> Vec<(String, String)> {
    let a = Accept { offer: "o1", namespace: "team-a", obj: p };
    let others: Vec<Sharer> = others.iter().filter_map(|o| sharer(o, "o1")).collect();
    judge(&a, offer, &others, now()).into_iter().map(|c| (c.field, c.message)).collect()
}

#[test]
fn a_fitting_accept_of_an_open_offer_passes() {
    let p = placement("p2", "agent-1", Some("fa"), "500m", "1Gi");
    let done = json!({"metadata": {"name": "old"}, "spec": {"offer": "o1", "resources": {"cpu": "1"}},
                      "status": {"phase": "Failed"}});
    let elsewhere = json!({"metadata": {"name": "x"}, "spec": {"offer": "o2", "resources": {"cpu": "1"}}});
    let other = placement("p1", "agent-1", Some("fa"), "500m", "1Gi");
    assert_eq!(fields(&p, Some(&open()), &[other, done, elsewhere]), vec![]);
}

#[test]
fn a_missing_offer_is_not_found_on_spec_offer() {
    let p = placement("p", "agent-1", Some("fa"), "1", "1Gi");
    let got = fields(&p, None, &[]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "spec.offer");
    assert!(got[0].1.contains("offer o1 not found in namespace team-a"), "{got:?}");
}

#[test]
fn closed_and_expired_offers_say_their_state() {
    let p = placement("p", "agent-1", Some("fa"), "1", "1Gi");
    let mut rescinded = offer("Rescinded", "2029-12-31T00:00:00Z");
    rescinded["status"]["reason"] = json!("Expired");
    let mut declining = open();
    declining["spec"]["decline"] = json!({});
    for (o, says) in [
        (offer("Accepted", "2030-01-01T00:01:00Z"), "offer o1 was already Accepted"),
        (offer("Declined", "2030-01-01T00:01:00Z"), "offer o1 was Declined"),
        (rescinded, "offer o1 was Rescinded (Expired)"),
        (declining, "offer o1 was Declined"),
        (offer("Outstanding", "2029-12-31T23:59:59Z"), "offer o1 expired at 2029-12-31T23:59:59Z"),
        (offer("Outstanding", "soon"), "no valid spec.expiresAt"),
    ] {
        let got = fields(&p, Some(&o), &[]);
        assert_eq!(got.len(), 1, "{says}: {got:?}");
        assert_eq!(got[0].0, "spec.offer");
        assert!(got[0].1.contains(says), "{says}: {got:?}");
    }
}

#[test]
fn another_agent_and_a_wrong_or_missing_label_name_their_fields() {
    let got = fields(&placement("p", "agent-2", Some("fb"), "1", "1Gi"), Some(&open()), &[]);
    assert_eq!(got.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["spec.agent", "metadata.labels"]);
    assert!(got[0].1.contains("offer o1 is for agent agent-1"), "{got:?}");
    assert!(got[1].1.contains("must name framework fa, whose offer o1 is"), "{got:?}");
    let got = fields(&placement("p", "agent-1", None, "1", "1Gi"), Some(&open()), &[]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "metadata.labels");
    assert!(got[0].1.contains("needs the label berth.dev/framework: fa"), "{got:?}");
}

#[test]
fn exceeding_what_is_left_says_the_numbers() {
    let p = placement("p2", "agent-1", Some("fa"), "1500m", "1Gi");
    let other = placement("p1", "agent-1", Some("fa"), "500m", "1Gi");
    let got = fields(&p, Some(&open()), &[other]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "spec.resources");
    assert_eq!(
        got[0].1,
        "Invalid value: \"cpu 1500m, memory 1Gi\": offer o1 has cpu 1, memory 2Gi \
         of which cpu 500m, memory 1Gi are taken by 1 placement (p1): cpu 1500m is more than the 500m left"
    );
}

#[test]
fn exceeding_the_offer_alone_names_no_sharers() {
    let got = fields(&placement("p", "agent-1", Some("fa"), "64", "1Gi"), Some(&open()), &[]);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1,
        "Invalid value: \"cpu 64, memory 1Gi\": offer o1 has cpu 1, memory 2Gi: \
         cpu 64 is more than the 1 left"
    );
}

#[test]
fn wanting_more_ports_than_the_offer_has_left_names_spec_ports() {
    let mut o = open();
    o["spec"]["ports"] = json!([{"begin": 31000, "end": 31002}]);
    let mut p = placement("p2", "agent-1", Some("fa"), "100m", "1Mi");
    p["spec"]["ports"] = json!([{}, {"name": "admin"}]);
    assert!(fields(&p, Some(&o), &[]).is_empty(), "3 held, 2 wanted");
    let mut other = placement("p1", "agent-1", Some("fa"), "100m", "1Mi");
    other["spec"]["ports"] = json!([{}, {}]);
    let got = fields(&p, Some(&o), &[other]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "spec.ports");
    assert_eq!(got[0].1, "Invalid value: 2 ports: offer o1 holds 3 host ports, 1 of them left");
    assert_eq!(fields(&p, Some(&open()), &[])[0].0, "spec.ports", "an offer without ports has none to give");
}
