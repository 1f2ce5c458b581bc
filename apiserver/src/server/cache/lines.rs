//! Encoded watch events shared by every watcher of a change: with many
//! watchers on one kind, an event is serialized once, not once per watcher.
//! Only the plain object form is shared (tables and metadata-only forms
//! depend on the request), keyed by revision, event type and apiVersion.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

/// How many recent encoded events are kept.
const KEPT: usize = 256;

type Key = (u64, &'static str, String);

#[derive(Default)]
pub struct Lines {
    recent: Mutex<VecDeque<(Key, Bytes)>>,
}

impl Lines {
    /// The line for change `revision` as event `type_` of `api_version`,
    /// encoded by `encode` only if no watcher has encoded it yet.
    pub fn get(&self, revision: u64, type_: &'static str, api_version: &str, encode: impl FnOnce() -> Bytes) -> Bytes {
        let found = |recent: &VecDeque<(Key, Bytes)>| {
            recent
                .iter()
                .rev()
                .find(|((r, t, v), _)| *r == revision && *t == type_ && v == api_version)
                .map(|e| e.1.clone())
        };
        if let Some(line) = found(&self.recent.lock().unwrap_or_else(|p| p.into_inner())) {
            return line;
        }
        // Encode outside the lock; two watchers may both encode a line, which is harmless.
        let line = encode();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if found(&recent).is_none() {
            if recent.len() == KEPT {
                recent.pop_front();
            }
            recent.push_back(((revision, type_, api_version.to_string()), line.clone()));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_encoded_once_per_revision_type_and_version() {
        let lines = Lines::default();
        let mut encoded = 0;
        for _ in 0..3 {
            let line = lines.get(7, "ADDED", "v1", || {
                encoded += 1;
                Bytes::from_static(b"a\n")
            });
            assert_eq!(line, Bytes::from_static(b"a\n"));
        }
        assert_eq!(encoded, 1);
        assert_eq!(lines.get(7, "MODIFIED", "v1", || Bytes::from_static(b"m\n")), Bytes::from_static(b"m\n"));
        assert_eq!(lines.get(7, "ADDED", "v2", || Bytes::from_static(b"b\n")), Bytes::from_static(b"b\n"));
        assert_eq!(lines.get(8, "ADDED", "v1", || Bytes::from_static(b"c\n")), Bytes::from_static(b"c\n"));
    }

    #[test]
    fn only_the_most_recent_lines_are_kept() {
        let lines = Lines::default();
        for r in 0..(KEPT as u64 + 10) {
            lines.get(r, "ADDED", "v1", || Bytes::from(r.to_string()));
        }
        assert_eq!(lines.recent.lock().unwrap().len(), KEPT);
        let again = lines.get(0, "ADDED", "v1", || Bytes::from_static(b"re-encoded"));
        assert_eq!(again, Bytes::from_static(b"re-encoded"), "an old line is encoded again");
    }
}
