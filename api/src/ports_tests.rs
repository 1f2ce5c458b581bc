use proptest::prelude::*;

use super::*;

fn r(begin: u16, end: u16) -> PortRange {
    PortRange { begin, end }
}

#[test]
fn ranges_and_single_ports_parse_sorted_and_merged() {
    assert_eq!(parse("31000-32000").unwrap(), vec![r(31000, 32000)]);
    assert_eq!(parse("40000, 31000-31001,31002").unwrap(), vec![r(31000, 31002), r(40000, 40000)]);
    assert_eq!(parse("").unwrap(), vec![]);
    for bad in ["x", "0-10", "10-5", "1-70000", "5-"] {
        assert!(parse(bad).unwrap_err().to_string().contains(bad), "{bad}");
    }
}

#[test]
fn claimed_ports_are_cut_out_of_the_ranges() {
    let ranges = [r(100, 105)];
    assert_eq!(minus(&ranges, [100, 103, 105, 7]), vec![r(101, 102), r(104, 104)]);
    assert_eq!(count(&minus(&ranges, [100, 103, 105])), 3);
    assert_eq!(minus(&ranges, 100..=105), vec![]);
}

#[test]
fn assignment_takes_the_lowest_free_ports_and_refuses_when_short() {
    let free = minus(&[r(100, 102), r(200, 201)], [101]);
    assert_eq!(lowest(&free, 3), Some(vec![100, 102, 200]));
    assert_eq!(lowest(&free, 0), Some(vec![]));
    assert_eq!(lowest(&free, 5), None, "4 free ports cannot give 5");
}

#[test]
fn port_names_must_be_unique_and_dns_label_like() {
    let group = |names: &[&str]| crate::TaskGroup {
        name: "web".into(),
        container: crate::Container {
            ports: names.iter().map(|n| PortRequest { name: Some(n.to_string()) }).collect(),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(validate(&[group(&["http", "admin-1"])]), Ok(()));
    let dup = validate(&[group(&["http", "http"])]).unwrap_err();
    assert!(dup.starts_with("spec.taskGroups[0].ports[1].name: \"http\""), "{dup}");
    let bad = validate(&[group(&["Http"])]).unwrap_err();
    assert!(bad.starts_with("spec.taskGroups[0].ports[0].name"), "{bad}");
}

#[test]
fn the_container_sees_numbered_named_and_first_ports() {
    let reqs = [PortRequest { name: None }, PortRequest { name: Some("admin-ui".into()) }];
    let env = env(&reqs, &[31000, 31005]);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("PORT0"), Some("31000"));
    assert_eq!(get("PORT1"), Some("31005"));
    assert_eq!(get("PORT"), Some("31000"));
    assert_eq!(get("PORT_ADMIN_UI"), Some("31005"));
    assert!(super::env(&[], &[]).is_empty());
}

proptest! {
    #[test]
    fn minus_removes_exactly_the_taken_ports_in_range(
        spans in prop::collection::vec((1u16..2000, 0u16..50), 0..5),
        taken in prop::collection::vec(1u16..2100, 0..40),
    ) {
        let ranges = normalize(spans.iter().map(|(b, l)| r(*b, b + l)).collect());
        let free = minus(&ranges, taken.iter().copied());
        let mut inside: Vec<u16> = taken.iter().copied().filter(|p| contains(&ranges, *p)).collect();
        inside.sort_unstable();
        inside.dedup();
        prop_assert_eq!(count(&free), count(&ranges) - inside.len() as u32);
        for p in &taken {
            prop_assert!(!contains(&free, *p));
        }
        prop_assert_eq!(normalize(free.clone()), free.clone());
        // Giving the taken ports back restores the ranges.
        let mut back = free.clone();
        back.extend(to_ranges(&inside));
        prop_assert_eq!(normalize(back), ranges.clone());
        // What `lowest` hands out is free, ascending, and never more than there is.
        let n = count(&free).min(7);
        let got = lowest(&free, n).unwrap();
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(got.iter().all(|p| contains(&free, *p)));
        prop_assert!(lowest(&free, count(&free) + 1).is_none());
    }
}
