//! A network namespace of a test's own, to partition one part of Berth from
//! the rest: a veth pair joins it to the root namespace, and a server
//! address on `lo` (`10.231.N.1`, created by the test) is reachable from
//! both sides. [`Netns::cut`] takes the root end of the veth down — packets
//! are dropped, connections hang, nothing is reset, as on a real partition —
//! and [`Netns::heal`] brings it back. Everything (namespace, veth, address)
//! has a name unique to this test process and is removed on drop.

use std::process::Command;

/// A network namespace joined to the root namespace by a veth pair.
pub struct Netns {
    name: String,
    host_veth: String,
    server_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Netns {
    /// Creates namespace `berth-<pid>-<tag>` (`tag`: a letter or two) and
    /// its link; the test's server address is [`Netns::server_ip`].
    pub fn create(tag: &str) -> Netns {
        crate::require("ip", "iproute2");
        let pid = std::process::id();
        // Up to four namespaces per test process, each with its own addresses.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nth = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4;
        let net = (pid % 62) * 4 + nth;
        let ns = Netns {
            name: format!("berth-{pid}-{tag}"),
            host_veth: format!("bh{pid}{tag}"),
            server_ip: format!("10.231.{net}.1"),
        };
        let peer = format!("bn{pid}{tag}");
        let (host, inner) = (format!("10.231.{net}.5/30"), format!("10.231.{net}.6/30"));
        let server = format!("{}/32", ns.server_ip);
        let (name, veth) = (ns.name.clone(), ns.host_veth.clone());
        let gateway = format!("10.231.{net}.5");
        let inside = |args: &[&str]| {
            let mut v = vec!["netns", "exec", name.as_str(), "ip"];
            v.extend_from_slice(args);
            v.into_iter().map(String::from).collect::<Vec<String>>()
        };
        let outside = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let steps = [
            outside(&["netns", "add", &name]),
            outside(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]),
            outside(&["link", "set", &peer, "netns", &name]),
            outside(&["addr", "add", &server, "dev", "lo"]),
            outside(&["addr", "add", &host, "dev", &veth]),
            outside(&["link", "set", &veth, "up"]),
            inside(&["link", "set", "lo", "up"]),
            inside(&["addr", "add", &inner, "dev", &peer]),
            inside(&["link", "set", &peer, "up"]),
            inside(&["route", "add", "default", "via", &gateway]),
        ];
        for step in &steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            if let Err(e) = ip(&args) {
                drop(ns);
                panic!("setting up the network namespace: {e}");
            }
        }
        ns
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An address on the root namespace's `lo` that processes inside the
    /// namespace reach through the veth; servers they use listen on it.
    pub fn server_ip(&self) -> &str {
        &self.server_ip
    }

    /// Cuts the namespace off: the root end of its veth goes down.
    pub fn cut(&self) {
        ip(&["link", "set", &self.host_veth, "down"]).expect("cutting the link");
    }

    /// Joins it again.
    pub fn heal(&self) {
        ip(&["link", "set", &self.host_veth, "up"]).expect("healing the link");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_veth]);
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["addr", "del", &format!("{}/32", self.server_ip), "dev", "lo"]);
    }
}
