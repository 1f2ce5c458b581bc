//! Size-bounded placement logs, rotated copy-truncate style. The runc shim
//! appends a container's output to `<name>.log` itself (opened `O_APPEND`),
//! so the agent never holds the file: once a second it checks the log of
//! every placement it supervises, and one past `--log-max-bytes` is copied
//! to `<name>.log.1` (older copies shift up to `.N`, `--log-max-files`; the
//! oldest is dropped) and truncated. The shim's next write lands at the new
//! end of the file, so the disk a placement uses stays below about
//! `max_bytes × (max_files + 1)` plus what it writes in one second.
//!
//! The window: bytes the container writes between the copy and the
//! truncation are lost (a few bytes, at most what it writes in that
//! instant) — the price of rotating a file whose writer cannot be told to
//! reopen it, as with logrotate's `copytruncate`. Because the loop only
//! walks the placements supervised now, it needs no state and resumes as
//! it was after an agent restart (adopted containers are supervised too).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::AgentContext;
use crate::runtime::Runtime;

/// How often logs are checked.
pub const PERIOD: Duration = Duration::from_secs(1);
/// The default of `--log-max-bytes`.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// The default of `--log-max-files`.
pub const DEFAULT_MAX_FILES: u32 = 2;

/// The `n`th rotated copy of `log` (`<log>.n`, 1 is the newest).
pub fn rotated(log: &Path, n: u32) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The rotated copies of `log` that exist, oldest first.
pub fn rotated_oldest_first(log: &Path, max_files: u32) -> Vec<PathBuf> {
    (1..=max_files.max(1)).rev().map(|n| rotated(log, n)).filter(|p| p.exists()).collect()
}

/// Rotates `log` if it is longer than `max_bytes`, keeping `max_files`
/// copies (none: it is only truncated). True when it rotated.
pub fn rotate_if_needed(log: &Path, max_bytes: u64, max_files: u32) -> io::Result<bool> {
    let len = match std::fs::metadata(log) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max_bytes {
        return Ok(false);
    }
    if max_files > 0 {
        for n in (1..max_files).rev() {
            match std::fs::rename(rotated(log, n), rotated(log, n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::copy(log, rotated(log, 1))?;
    }
    // Bytes written since the copy are lost here (see the module's docs).
    std::fs::OpenOptions::new().write(true).open(log)?.set_len(0)?;
    Ok(true)
}

/// Rotates the logs of the supervised placements every [`PERIOD`] until
/// `shutdown` resolves.
pub async fn rotate_logs<R: Runtime>(ctx: Arc<AgentContext<R>>, shutdown: impl Future<Output = ()> + Send) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let (max_bytes, max_files) = (ctx.config.log_max_bytes, ctx.config.log_max_files);
        for key in ctx.supervised() {
            let Some((ns, name)) = key.split_once('/') else { continue };
            let log = ctx.config.log_path(ns, name);
            match tokio::task::spawn_blocking(move || rotate_if_needed(&log, max_bytes, max_files)).await {
                Ok(Ok(true)) => tracing::debug!(placement = %key, "rotated its log"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(placement = %key, error = %e, "rotating the log failed"),
                Err(e) => tracing::warn!(placement = %key, error = %e, "rotating the log failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_is_copied_and_truncated_keeping_max_files_copies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("p.log");
        std::fs::write(&log, "first\n").expect("write");
        assert!(!rotate_if_needed(&log, 10, 2).expect("rotate"), "a short log stays");
        for round in ["aaaaaaaaaaaa\n", "bbbbbbbbbbbb\n", "cccccccccccc\n"] {
            std::fs::write(&log, round).expect("write");
            assert!(rotate_if_needed(&log, 10, 2).expect("rotate"));
            assert_eq!(std::fs::metadata(&log).expect("log").len(), 0, "truncated in place");
        }
        assert_eq!(std::fs::read_to_string(rotated(&log, 1)).expect(".1"), "cccccccccccc\n");
        assert_eq!(std::fs::read_to_string(rotated(&log, 2)).expect(".2"), "bbbbbbbbbbbb\n");
        assert!(!rotated(&log, 3).exists(), "the oldest copy is dropped");
        assert_eq!(rotated_oldest_first(&log, 2), [rotated(&log, 2), rotated(&log, 1)]);
    }

    #[test]
    fn an_appending_writer_continues_at_the_new_end() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("p.log");
        let mut writer = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("open");
        writer.write_all(b"0123456789abcdef\n").expect("write");
        assert!(rotate_if_needed(&log, 8, 1).expect("rotate"));
        writer.write_all(b"after\n").expect("write");
        assert_eq!(std::fs::read_to_string(&log).expect("log"), "after\n", "no hole before the new bytes");
        assert_eq!(std::fs::read_to_string(rotated(&log, 1)).expect(".1"), "0123456789abcdef\n");
    }
}
