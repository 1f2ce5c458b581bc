//! Ports: Marathon's `portDefinitions` (or legacy `ports`) as Berth port
//! requests. Berth, like Marathon without `requirePorts`, gives each task
//! host ports of its own choosing in `$PORT0…`; a fixed port number can only
//! be a Marathon service port (for a load balancer) and is noted, and
//! `requirePorts` with a fixed number is refused.

use berth_api::ports::PortRequest;

use super::app::App;
use super::error::Problem;
use super::names;

/// The port requests of `app`; problems go to `out`.
pub fn map(app: &App, out: &mut Vec<Problem>) -> Vec<PortRequest> {
    let require = app.require_ports.unwrap_or(false);
    let defs = app.port_definitions.as_deref().unwrap_or_default();
    let legacy = app.ports.as_deref().unwrap_or_default();
    if !defs.is_empty() && !legacy.is_empty() {
        out.push(Problem::invalid("ports", "give portDefinitions or ports, not both (Marathon refuses both too)"));
    }
    if app.port_definitions.is_none() && app.ports.is_none() {
        // Marathon gives an app on the host network one port unless told otherwise.
        out.push(Problem::note("portDefinitions", "absent: one port is assigned ($PORT0), as Marathon does"));
        return vec![PortRequest::default()];
    }
    let numbered: Vec<(String, Option<u32>, Option<&str>)> = if defs.is_empty() {
        legacy.iter().enumerate().map(|(i, p)| (format!("ports[{i}]"), Some(*p), None)).collect()
    } else {
        defs.iter().enumerate().map(|(i, d)| (format!("portDefinitions[{i}]"), d.port, d.name.as_deref())).collect()
    };
    let mut requests = Vec::new();
    for (path, port, name) in numbered {
        let port_path = if path.starts_with("ports[") { path.clone() } else { format!("{path}.port") };
        match port {
            Some(p) if p > 65535 => out.push(Problem::invalid(port_path, format!("{p} is not a port number"))),
            Some(p) if p != 0 && require => out.push(Problem::unsupported(
                port_path,
                format!("requirePorts asks for host port {p}; Berth assigns host ports itself (read $PORTn)"),
            )),
            Some(p) if p != 0 => out.push(Problem::note(
                port_path,
                format!("{p} is a Marathon service port; Berth assigns the host port (read $PORTn)"),
            )),
            _ => {}
        }
        let name = name.filter(|n| !n.is_empty()).map(str::to_string);
        if let Some(n) = &name
            && let Err(why) = names::port_name(n)
        {
            out.push(Problem::invalid(format!("{path}.name"), why));
        }
        requests.push(PortRequest { name });
    }
    if requests.len() > 64 {
        out.push(Problem::invalid("portDefinitions", "Berth gives a task at most 64 ports"));
    }
    requests
}
