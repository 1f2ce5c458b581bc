//! One run of one check, bounded by its timeout: an HTTP GET or a TCP
//! connect to one of the container's host ports on 127.0.0.1 (containers
//! share the host's network), or a command run inside the container. `Ok`
//! is a pass; `Err` says what the check saw, as a user reads it in
//! `status.health.message`.

use std::time::Duration;

use berth_api::health::Probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::runtime::{ExecOutcome, Runtime};

/// How much of a command's output goes into the message (its tail).
const MESSAGE_OUTPUT_MAX: usize = 256;

/// How much of an HTTP answer is read looking for its status line.
const STATUS_LINE_MAX: usize = 4096;

/// Runs `probe` against container `id`, whose host ports are `ports`.
pub async fn run<R: Runtime>(
    runtime: &R,
    id: &str,
    probe: &Probe<'_>,
    ports: &[u16],
    timeout: Duration,
) -> Result<(), String> {
    let timed_out = || format!("timed out after {}s", timeout.as_secs());
    match probe {
        Probe::Http { path, port_index } => {
            let port = host_port(ports, *port_index)?;
            match tokio::time::timeout(timeout, http_get(port, path)).await {
                Ok(r) => r.map_err(|e| format!("GET {path}: {e}")),
                Err(_) => Err(format!("GET {path}: {}", timed_out())),
            }
        }
        Probe::Tcp { port_index } => {
            let port = host_port(ports, *port_index)?;
            match tokio::time::timeout(timeout, connect(port)).await {
                Ok(r) => r.map(drop),
                Err(_) => Err(format!("connect 127.0.0.1:{port}: {}", timed_out())),
            }
        }
        Probe::Command(argv) => match runtime.exec(id, argv, timeout).await {
            Ok(ExecOutcome::Exited { code: 0, .. }) => Ok(()),
            Ok(ExecOutcome::Exited { code, output }) => Err(exited(code, &output)),
            Ok(ExecOutcome::TimedOut) => Err(format!("command {}", timed_out())),
            Err(e) => Err(format!("command: {e}")),
        },
    }
}

/// The host port at `index` of the container's ports.
fn host_port(ports: &[u16], index: u32) -> Result<u16, String> {
    ports
        .get(index as usize)
        .copied()
        .ok_or_else(|| format!("port index {index} has no host port (the placement was given {} ports)", ports.len()))
}

/// A connection to `127.0.0.1:port`, or what refused it.
async fn connect(port: u16) -> Result<TcpStream, String> {
    TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("connect 127.0.0.1:{port}: {}", io_text(&e)))
}

/// GET `path` on `127.0.0.1:port`: passes on a status of 200–399.
async fn http_get(port: u16, path: &str) -> Result<(), String> {
    let mut stream = connect(port).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: berth-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("sending the request: {}", io_text(&e)))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.contains(&b'\n') && answer.len() < STATUS_LINE_MAX {
        let n = stream.read(&mut buf).await.map_err(|e| format!("reading the answer: {}", io_text(&e)))?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let code = status_code(&answer)?;
    if (200..400).contains(&code) { Ok(()) } else { Err(format!("status {code}")) }
}

/// The status code of an HTTP/1.x answer's status line.
fn status_code(answer: &[u8]) -> Result<u16, String> {
    if answer.is_empty() {
        return Err("the connection closed without an answer".into());
    }
    let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    match (words.next(), words.next().and_then(|c| c.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(format!("not an HTTP answer: {:?}", line.trim_end())),
    }
}

/// `command exited N: <the tail of its output>`.
fn exited(code: i32, output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        return format!("command exited {code}");
    }
    let mut start = output.len().saturating_sub(MESSAGE_OUTPUT_MAX);
    while !output.is_char_boundary(start) {
        start += 1;
    }
    format!("command exited {code}: {}", &output[start..])
}

/// An I/O error as a user reads it: `connection refused`, not `Connection
/// refused (os error 111)`.
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("{:?}", e.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_gives_the_code() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Ok(204));
        assert_eq!(status_code(b"HTTP/1.0 500 Internal Server Error\r\nServer: x\r\n"), Ok(500));
        assert!(status_code(b"SSH-2.0-OpenSSH\r\n").unwrap_err().contains("not an HTTP answer"));
        assert!(status_code(b"").unwrap_err().contains("closed"));
    }

    #[test]
    fn a_failed_command_says_its_code_and_the_tail_of_its_output() {
        assert_eq!(exited(1, ""), "command exited 1");
        assert_eq!(exited(2, "no such file\n"), "command exited 2: no such file");
        let long = format!("{}end", "x".repeat(1000));
        assert!(exited(1, &long).ends_with("xend") && exited(1, &long).len() < 300);
    }

    #[test]
    fn a_port_index_beyond_the_given_ports_is_a_failure_that_says_so() {
        assert_eq!(host_port(&[31000], 0), Ok(31000));
        assert!(host_port(&[], 0).unwrap_err().contains("0 ports"));
    }

    #[test]
    fn io_errors_read_as_a_user_would_say_them() {
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_text(&refused), "connection refused");
    }
}
