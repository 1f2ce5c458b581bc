//! `etcd://host:port[,host:port...][/prefix]`: where the etcd backend
//! connects and under which key prefix it keeps Berth's keys.

use crate::storage::StorageError;

/// A parsed `etcd://` store address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `http://host:port`, one per member.
    pub endpoints: Vec<String>,
    /// Prepended to every key (`""` or `/name`, never ending in `/`).
    pub prefix: String,
}

impl EtcdConfig {
    /// Parses `etcd://host:port[,host:port...][/prefix]`.
    pub fn parse(url: &str) -> Result<EtcdConfig, StorageError> {
        let bad = |why: &str| {
            StorageError::Backend(format!("store {url:?}: {why} (expected etcd://host:port[,host:port...][/prefix])"))
        };
        let rest = url.strip_prefix("etcd://").ok_or_else(|| bad("not an etcd:// address"))?;
        let (hosts, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h, p.trim_end_matches('/')),
            None => (rest, ""),
        };
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            let (name, port) = host.rsplit_once(':').ok_or_else(|| bad(&format!("{host:?} has no port")))?;
            if name.is_empty() || name.contains(['@', '?', '#', ' ']) {
                return Err(bad(&format!("{host:?} is not host:port")));
            }
            port.parse::<u16>().map_err(|_| bad(&format!("{host:?} has no valid port")))?;
            endpoints.push(format!("http://{host}"));
        }
        if prefix.contains(['?', '#', ' ']) || prefix.contains("//") {
            return Err(bad(&format!("prefix {prefix:?} is not a key path")));
        }
        let prefix = if prefix.is_empty() { String::new() } else { format!("/{prefix}") };
        Ok(EtcdConfig { endpoints, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_without_a_prefix() {
        let c = EtcdConfig::parse("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(c, EtcdConfig { endpoints: vec!["http://127.0.0.1:2379".into()], prefix: String::new() });
    }

    #[test]
    fn several_members_and_a_prefix() {
        let c = EtcdConfig::parse("etcd://10.0.0.1:2379,etcd-2:2379/berth/prod/").unwrap();
        assert_eq!(c.endpoints, ["http://10.0.0.1:2379", "http://etcd-2:2379"]);
        assert_eq!(c.prefix, "/berth/prod");
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        for (url, says) in [
            ("http://127.0.0.1:2379", "not an etcd:// address"),
            ("etcd://127.0.0.1", "has no port"),
            ("etcd://127.0.0.1:notaport", "no valid port"),
            ("etcd://:2379", "not host:port"),
            ("etcd://a:1,", "has no port"),
        ] {
            let e = EtcdConfig::parse(url).expect_err(url).to_string();
            assert!(e.contains(says) && e.contains(url), "{url}: {e}");
        }
    }
}
