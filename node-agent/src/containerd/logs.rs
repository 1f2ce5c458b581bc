//! Where a container's output goes: containerd's runc shim takes a
//! `file:///abs/path` URI for stdout and stderr and appends both to that
//! file itself, so the output lands on disk with no pipe through the agent
//! and keeps being written while the agent restarts.

use std::fmt::Write as _;
use std::path::Path;

use crate::runtime::RuntimeError;

/// The `file://` URI of `path` for a task's stdout and stderr. The file's
/// directory is created if missing (the shim would, but with its own
/// permissions); `path` must be absolute.
pub(super) fn log_uri(path: &Path) -> Result<String, RuntimeError> {
    if !path.is_absolute() {
        return Err(RuntimeError::Other(format!("log path {} is not absolute", path.display())));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| RuntimeError::Other(format!("creating log directory {}: {e}", dir.display())))?;
    }
    let text = path.to_str().ok_or_else(|| RuntimeError::Other(format!("log path {} is not UTF-8", path.display())))?;
    Ok(format!("file://{}", percent_encode(text)))
}

/// Escapes what a URI path may not hold as it is (the shim decodes it).
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_become_file_uris() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ns/a b%#.log");
        let uri = log_uri(&path).expect("uri");
        assert!(uri.starts_with("file:///"), "{uri}");
        assert!(uri.ends_with("/ns/a%20b%25%23.log"), "{uri}");
        assert!(dir.path().join("ns").is_dir());
        assert!(log_uri(Path::new("relative.log")).is_err());
    }
}
