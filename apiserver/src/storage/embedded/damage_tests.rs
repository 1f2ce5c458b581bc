//! A damaged data file is refused at open with an error naming the file
//! and what is wrong, never served.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::Embedded;
use crate::storage::Storage;

/// A store with `n` keys written (each value carrying a findable marker),
/// closed again; returns its directory and file.
async fn written_store(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let s = Embedded::open(&path).expect("open");
    for i in 0..n {
        let value = format!("{{\"marker\":\"MARKER-{i:05}\",\"pad\":\"{}\"}}", "p".repeat(200));
        s.create(&format!("/a/{i:05}"), Bytes::from(value)).await.expect("create");
    }
    // Later writes elsewhere, so the marked pages belong to older commits too.
    for i in 0..50 {
        s.create(&format!("/z/{i:05}"), Bytes::from_static(b"later")).await.expect("create");
    }
    drop(s);
    (dir, path)
}

fn refused(path: &Path) -> String {
    match Embedded::open(path) {
        Ok(_) => panic!("{} was opened although it is damaged", path.display()),
        Err(e) => {
            let msg = e.to_string();
            eprintln!("refused: {msg}");
            assert!(msg.contains(&path.display().to_string()), "the error must name the file: {msg}");
            msg
        }
    }
}

#[tokio::test]
async fn an_intact_store_reopens_with_its_data() {
    let (_dir, path) = written_store(300).await;
    let s = Embedded::open(&path).expect("reopen");
    let kv = s.get("/a/00042").await.expect("get").expect("present");
    assert!(String::from_utf8_lossy(&kv.value).contains("MARKER-00042"));
}

#[tokio::test]
async fn a_truncated_file_is_refused() {
    let (_dir, path) = written_store(300).await;
    let len = std::fs::metadata(&path).expect("stat").len();
    for cut in [len / 2, 4096, 100] {
        let copy = path.with_file_name(format!("cut-{cut}.redb"));
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&copy, &bytes[..cut as usize]).expect("write");
        let msg = refused(&copy);
        assert!(msg.contains("corrupt") || msg.contains("truncated"), "cut at {cut} of {len}: {msg}");
    }
}

#[tokio::test]
async fn an_empty_file_is_refused_not_made_a_new_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    std::fs::write(&path, b"").expect("write");
    let msg = refused(&path);
    assert!(msg.contains("empty"), "{msg}");
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), 0, "the file is left as it was");
}

#[tokio::test]
async fn overwritten_bytes_are_refused() {
    let (_dir, path) = written_store(300).await;
    let mut bytes = std::fs::read(&path).expect("read");
    let marker = b"MARKER-00150";
    let mut hits = 0;
    for at in 0..bytes.len() - marker.len() {
        if &bytes[at..at + marker.len()] == marker {
            bytes[at..at + marker.len()].copy_from_slice(b"XXXXXXXXXXXX");
            hits += 1;
        }
    }
    assert!(hits > 0, "the marker must be in the file");
    std::fs::write(&path, &bytes).expect("write");
    let msg = refused(&path);
    assert!(msg.contains("corrupt"), "{msg}");
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    std::fs::write(&path, vec![0x5a; 8192]).expect("write");
    let msg = refused(&path);
    assert!(msg.contains("not a Berth store"), "{msg}");
    std::fs::write(&path, "apiVersion: v1\nkind: Config\n").expect("write");
    let msg = refused(&path);
    assert!(msg.contains("not a Berth store"), "{msg}");
}

#[test]
fn a_redb_file_of_another_program_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    {
        let db = redb::Database::create(&path).expect("create");
        let txn = db.begin_write().expect("txn");
        {
            let table: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("other");
            txn.open_table(table).expect("table").insert("k", "v").expect("insert");
        }
        txn.commit().expect("commit");
    }
    let msg = refused(&path);
    assert!(msg.contains("not a Berth store"), "{msg}");
}
