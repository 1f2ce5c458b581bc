//! Byte layouts of the embedded store's tables.
//!
//! `kv` values are `create_rev | mod_rev | value`; `log` values are one
//! [`Event`] with its previous value, so a watch can replay history and a
//! read at an older revision can undo newer events.

use bytes::Bytes;

use crate::storage::{Event, KeyValue, StorageError};

const PUT: u8 = 0;
const DELETE: u8 = 1;

/// A `kv` table value.
pub fn encode_kv(create: u64, modified: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create.to_be_bytes());
    out.extend_from_slice(&modified.to_be_bytes());
    out.extend_from_slice(value);
    out
}

pub fn decode_kv(key: &str, raw: &[u8]) -> Result<KeyValue, StorageError> {
    let mut r = Reader { buf: raw, key };
    let create_revision = r.u64()?;
    let mod_revision = r.u64()?;
    Ok(KeyValue { key: key.to_string(), value: Bytes::copy_from_slice(r.buf), create_revision, mod_revision })
}

/// A `log` table value.
pub fn encode_event(ev: &Event) -> Vec<u8> {
    let mut out = Vec::new();
    let (tag, kv, prev) = match ev {
        Event::Put { kv, prev } => (PUT, Some(kv), prev.as_ref()),
        Event::Delete { prev, .. } => (DELETE, None, Some(prev)),
    };
    out.push(tag);
    put_str(&mut out, ev.key().as_bytes());
    for kv in [kv, prev] {
        match kv {
            Some(kv) => {
                out.push(1);
                out.extend_from_slice(&kv.create_revision.to_be_bytes());
                out.extend_from_slice(&kv.mod_revision.to_be_bytes());
                put_str(&mut out, &kv.value);
            }
            None => out.push(0),
        }
    }
    out
}

pub fn decode_event(revision: u64, raw: &[u8]) -> Result<Event, StorageError> {
    let mut r = Reader { buf: raw, key: "log" };
    let tag = r.u8()?;
    let key = String::from_utf8(r.bytes()?.to_vec()).map_err(|_| corrupt("log", "key is not UTF-8"))?;
    let kv = r.opt_kv(&key)?;
    let prev = r.opt_kv(&key)?;
    match (tag, kv, prev) {
        (PUT, Some(kv), prev) => Ok(Event::Put { kv, prev }),
        (DELETE, None, Some(prev)) => Ok(Event::Delete { prev, revision }),
        _ => Err(corrupt(&key, "bad event record")),
    }
}

fn put_str(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_be_bytes());
    out.extend_from_slice(b);
}

fn corrupt(key: &str, what: &str) -> StorageError {
    StorageError::Backend(format!("corrupt record for {key}: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    key: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.buf.len() < n {
            return Err(corrupt(self.key, "truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StorageError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StorageError> {
        let n = usize::try_from(self.u64()?).map_err(|_| corrupt(self.key, "length overflow"))?;
        self.take(n)
    }

    fn opt_kv(&mut self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        if self.u8()? == 0 {
            return Ok(None);
        }
        let create_revision = self.u64()?;
        let mod_revision = self.u64()?;
        let value = Bytes::copy_from_slice(self.bytes()?);
        Ok(Some(KeyValue { key: key.to_string(), value, create_revision, mod_revision }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(v: &str, c: u64, m: u64) -> KeyValue {
        KeyValue { key: "/a".into(), value: Bytes::from(v.to_string()), create_revision: c, mod_revision: m }
    }

    #[test]
    fn events_round_trip() {
        let put = Event::Put { kv: kv("two", 1, 2), prev: Some(kv("one", 1, 1)) };
        assert_eq!(decode_event(2, &encode_event(&put)).unwrap(), put);
        let create = Event::Put { kv: kv("one", 1, 1), prev: None };
        assert_eq!(decode_event(1, &encode_event(&create)).unwrap(), create);
        let del = Event::Delete { prev: kv("two", 1, 2), revision: 3 };
        assert_eq!(decode_event(3, &encode_event(&del)).unwrap(), del);
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let put = encode_event(&Event::Put { kv: kv("two", 1, 2), prev: None });
        for n in 0..put.len() {
            assert!(decode_event(2, &put[..n]).is_err());
        }
        assert!(decode_kv("/a", &[0; 9]).is_err());
    }
}
