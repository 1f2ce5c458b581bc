//! Opening the embedded store's file, and refusing one that is damaged.
//!
//! What redb checks by itself: its header's magic number (a file that is
//! not a redb database is refused), and — because the file is opened with
//! `set_check_integrity_on_open` — the checksum of every page of the
//! committed trees, which covers every stored key and value; a file cut
//! short fails that walk. After a crash it rolls back a commit that was
//! torn before its fsync returned, which no caller had been told about.
//! (Commits are one-phase, one fsync each, so the newest commit after a
//! crash, if damaged later, is indistinguishable from a torn one and is
//! rolled back rather than refused; damage anywhere else is refused.)
//!
//! What it does not check, and this module adds:
//! - an empty file: redb would initialise a new database in it and serve
//!   an empty store. A store is therefore created under a temporary name
//!   and renamed into place only once it is complete, so the data file,
//!   once there, is never legitimately empty or half-initialised;
//! - a redb file that is not a Berth store (no `format` record, or another
//!   version of it, or missing tables);
//! - Berth's own records: every `kv` and `log` value must decode, no key
//!   may be newer than the revision counter, and the log must end at the
//!   revision counter (unless compaction emptied it).

use std::panic::AssertUnwindSafe;
use std::path::Path;

use redb::{Builder, Database, DatabaseError, Durability, ReadableDatabase, ReadableTable};

use super::{COMPACTED, FORMAT, FORMAT_VERSION, KV, LOG, META, REVISION, codec, read};
use crate::storage::{Result, StorageError};

/// Opens the store at `path`, creating it if no file is there.
pub fn open_or_create(path: &Path) -> Result<Database> {
    if !path.exists() {
        create(path)?;
    }
    let db = open_existing(path)?;
    verify(&db).map_err(|what| damaged(path, &what))?;
    Ok(db)
}

fn damaged(path: &Path, what: &str) -> StorageError {
    StorageError::Backend(format!("the embedded store {} {what}; refusing to serve it", path.display()))
}

/// Builds a new, empty store next to `path` and renames it into place.
fn create(path: &Path) -> Result<()> {
    let fail =
        |what: String| StorageError::Backend(format!("cannot create the embedded store {}: {what}", path.display()));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".creating");
    let tmp = std::path::PathBuf::from(tmp);
    // A leftover from a creation that crashed holds nothing of value.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(format!("removing {}: {e}", tmp.display()))),
    }
    {
        let db = Database::create(&tmp).map_err(|e| fail(redb::Error::from(e).to_string()))?;
        let mut txn = db.begin_write().map_err(|e| fail(redb::Error::from(e).to_string()))?;
        txn.set_durability(Durability::Immediate).map_err(|e| fail(e.to_string()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| fail(redb::Error::from(e).to_string()))?;
            meta.insert(FORMAT, FORMAT_VERSION).map_err(|e| fail(e.to_string()))?;
            meta.insert(REVISION, 0).map_err(|e| fail(e.to_string()))?;
            txn.open_table(KV).map_err(|e| fail(redb::Error::from(e).to_string()))?;
            txn.open_table(LOG).map_err(|e| fail(redb::Error::from(e).to_string()))?;
        }
        txn.commit().map_err(|e| fail(redb::Error::from(e).to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| fail(format!("renaming {} into place: {e}", tmp.display())))?;
    // Make the rename itself durable.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail(format!("syncing {}: {e}", dir.display())))?;
    }
    Ok(())
}

fn open_existing(path: &Path) -> Result<Database> {
    let len = std::fs::metadata(path).map_err(|e| damaged(path, &format!("cannot be read: {e}")))?.len();
    if len == 0 {
        return Err(damaged(path, "is empty (0 bytes): it was truncated or never completely written"));
    }
    // redb debug-asserts on some damage it meets; report that as damage too.
    let opened =
        std::panic::catch_unwind(AssertUnwindSafe(|| Builder::new().set_check_integrity_on_open(true).open(path)));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(damaged(path, &describe(e, len))),
        Err(_) => {
            Err(damaged(path, &format!("is corrupt ({len} bytes): reading it failed its internal consistency checks")))
        }
    }
}

fn describe(e: DatabaseError, len: u64) -> String {
    match e {
        DatabaseError::DatabaseAlreadyOpen => "is in use by another process".to_string(),
        DatabaseError::UpgradeRequired(v) => format!("has redb file format {v}, which this build cannot read"),
        DatabaseError::Storage(redb::StorageError::Io(io)) => match io.kind() {
            std::io::ErrorKind::InvalidData => {
                format!("is not a Berth store: it is not a redb database file (no redb header; {len} bytes)")
            }
            std::io::ErrorKind::UnexpectedEof => format!("is truncated ({len} bytes): {io}"),
            _ => format!("cannot be read: {io}"),
        },
        DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
            format!("is corrupt ({len} bytes; truncated or overwritten): {msg}")
        }
        other => format!("cannot be opened: {other}"),
    }
}

/// Checks Berth's own records; the error says what is wrong.
fn verify(db: &Database) -> std::result::Result<(), String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta =
        txn.open_table(META).map_err(|e| format!("is a redb file but not a Berth store (no meta table: {e})"))?;
    match meta.get(FORMAT).map_err(|e| e.to_string())?.map(|v| v.value()) {
        Some(FORMAT_VERSION) => {}
        Some(other) => return Err(format!("has Berth store format {other}; this build reads format {FORMAT_VERSION}")),
        None => return Err("is a redb file but not a Berth store (no format record)".to_string()),
    }
    let revision = read::meta(&meta, REVISION).map_err(|e| e.to_string())?;
    let compacted = read::meta(&meta, COMPACTED).map_err(|e| e.to_string())?;
    if compacted > revision {
        return Err(format!(
            "is inconsistent: compacted revision {compacted} is after the current revision {revision}"
        ));
    }
    let kv = txn.open_table(KV).map_err(|e| format!("is not a Berth store (no kv table: {e})"))?;
    for entry in kv.iter().map_err(|e| e.to_string())? {
        let (k, v) = entry.map_err(|e| e.to_string())?;
        let rec = codec::decode_kv(k.value(), v.value()).map_err(|e| format!("is corrupt: {e}"))?;
        if rec.mod_revision > revision || rec.create_revision > rec.mod_revision {
            return Err(format!(
                "is inconsistent: key {} is at revision {} (created {}), the store only at {revision}",
                rec.key, rec.mod_revision, rec.create_revision
            ));
        }
    }
    let log = txn.open_table(LOG).map_err(|e| format!("is not a Berth store (no log table: {e})"))?;
    let mut last = None;
    for entry in log.iter().map_err(|e| e.to_string())? {
        let (r, v) = entry.map_err(|e| e.to_string())?;
        codec::decode_event(r.value(), v.value()).map_err(|e| format!("is corrupt: log entry {}: {e}", r.value()))?;
        last = Some(r.value());
    }
    match last {
        Some(l) if l != revision => {
            Err(format!("is inconsistent: the log ends at revision {l}, the counter says {revision}"))
        }
        None if revision > compacted => Err(format!(
            "is inconsistent: the log is empty but revisions {}..={revision} were never compacted",
            compacted + 1
        )),
        _ => Ok(()),
    }
}
