//! The collection policy, and one collection over the recording runtime.

use std::collections::HashMap;

use super::*;
use crate::fake::{Call, Fake};
use crate::runtime::ContainerSpec;

fn image(name: &str, blobs: &[(&str, u64)], updated_at: i64, in_use: bool) -> ImageInfo {
    ImageInfo { name: name.into(), blobs: blobs.iter().map(|(d, s)| (d.to_string(), *s)).collect(), updated_at, in_use }
}

#[test]
fn shared_blobs_count_once() {
    let a = image("a", &[("base", 100), ("a", 10)], 0, false);
    let b = image("b", &[("base", 100), ("b", 20)], 0, false);
    assert_eq!(usage([&a, &b]), 130);
}

#[test]
fn nothing_is_removed_at_or_under_the_high_mark() {
    let images = [image("a", &[("a", 100)], 0, false), image("b", &[("b", 100)], 0, false)];
    assert_eq!(plan(&images, &HashMap::new(), 200, 0), Vec::<String>::new());
}

#[test]
fn least_recently_used_go_first_until_under_the_low_mark() {
    let images = [
        image("new", &[("n", 100)], 30, false),
        image("old", &[("o", 100)], 10, false),
        image("middle", &[("m", 100)], 20, false),
    ];
    assert_eq!(plan(&images, &HashMap::new(), 250, 150), vec!["old".to_string(), "middle".to_string()]);
    // The agent's own record of use counts when it is later than the image's.
    let used = HashMap::from([("old".to_string(), 40)]);
    assert_eq!(plan(&images, &used, 250, 150), vec!["middle".to_string(), "new".to_string()]);
}

#[test]
fn images_in_use_are_never_planned() {
    let images = [image("used", &[("u", 1000)], 0, true), image("free", &[("f", 10)], 5, false)];
    assert_eq!(plan(&images, &HashMap::new(), 100, 0), vec!["free".to_string()]);
}

#[test]
fn removing_an_image_whose_layers_another_keeps_frees_only_its_own() {
    let images = [image("a", &[("base", 100), ("a", 10)], 1, false), image("b", &[("base", 100), ("b", 10)], 2, false)];
    // Removing `a` frees 10 bytes; the low mark needs `b` gone too.
    assert_eq!(plan(&images, &HashMap::new(), 110, 105), vec!["a".to_string(), "b".to_string()]);
}

#[tokio::test]
async fn a_collection_removes_unused_and_held_images_stay() {
    let fake = Fake::new(true);
    for i in ["127.0.0.1:5000/used:1", "127.0.0.1:5000/free:1", "127.0.0.1:5000/held:1"] {
        fake.pull(i, None).await.unwrap();
    }
    let spec = ContainerSpec { id: "c1".into(), image: "127.0.0.1:5000/used:1".into(), ..Default::default() };
    fake.start(&spec).await.unwrap();
    let uses = ImageUse::default();
    let held = uses.hold("127.0.0.1:5000/held:1").await;

    let removed = collect_once(&fake, &uses, 0, 0).await.unwrap();
    assert_eq!(removed, vec!["127.0.0.1:5000/free:1".to_string()]);
    let left: Vec<String> = fake.images().await.unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(left, vec!["127.0.0.1:5000/held:1".to_string(), "127.0.0.1:5000/used:1".to_string()]);

    drop(held);
    let removed = collect_once(&fake, &uses, 0, 0).await.unwrap();
    assert_eq!(removed, vec!["127.0.0.1:5000/held:1".to_string()]);
    assert!(!fake.calls().contains(&Call::RemoveImage("127.0.0.1:5000/used:1".into())), "{:?}", fake.calls());
}

#[test]
fn a_disk_at_most_its_high_mark_frees_nothing() {
    assert_eq!(disk_marks(1000, 150, 500, 85, 80), None, "85% used is not past 85%");
    assert_eq!(disk_marks(0, 0, 500, 85, 80), None, "an empty filesystem");
}

#[test]
fn a_disk_past_its_high_mark_frees_down_to_its_low_mark() {
    // 900 of 1000 used; 80% is 800: 100 bytes to free from 500 of images.
    let (high, low) = disk_marks(1000, 100, 500, 85, 80).expect("past the high mark");
    assert_eq!((high, low), (499, 400));
    let images = [image("old", &[("o", 150)], 1, false), image("new", &[("n", 350)], 2, false)];
    assert_eq!(plan(&images, &HashMap::new(), high, low), ["old"], "the least recently used goes first");
    // More to free than the images hold: every unused image goes.
    let (high, low) = disk_marks(1000, 0, 500, 85, 10).expect("full");
    assert_eq!(low, 0);
    assert_eq!(plan(&images, &HashMap::new(), high, low), ["old", "new"]);
}

#[test]
fn the_filesystem_of_a_path_has_a_size() {
    let dir = tempfile::tempdir().unwrap();
    let (total, available) = filesystem(dir.path()).expect("statvfs");
    assert!(total > 0 && available <= total, "{total} {available}");
    assert!(filesystem(&dir.path().join("missing")).is_err());
}
