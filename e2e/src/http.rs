//! A minimal blocking HTTP/1.1 client for tests that talk to an API server
//! directly: one request per connection, JSON bodies, and a streaming read
//! of watch responses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// An answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends one request to `addr` (`127.0.0.1:PORT`) and reads the whole answer.
pub fn request(addr: &str, method: &str, path: &str, body: Option<&serde_json::Value>) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    send(&mut stream, addr, method, path, body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn send(
    stream: &mut TcpStream,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<()> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn parse(raw: &[u8]) -> std::io::Result<Answer> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Ok(Answer { status, body })
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// An open watch: reads events (one JSON object per line) as they come.
pub struct Watch {
    reader: BufReader<TcpStream>,
}

impl Watch {
    /// Starts `GET path` (a `?watch=true` URL) and reads past the headers.
    pub fn start(addr: &str, path: &str) -> std::io::Result<Watch> {
        let mut stream = TcpStream::connect(addr)?;
        send(&mut stream, addr, "GET", path, None)?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if !line.contains(" 200 ") {
            return Err(std::io::Error::other(format!("watch answered {}", line.trim())));
        }
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        Ok(Watch { reader })
    }

    /// Reads events until `wanted` matches one or `timeout` passes; returns
    /// the match, or everything seen.
    pub fn until(
        &mut self,
        timeout: Duration,
        mut wanted: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, Vec<serde_json::Value>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut line = String::new();
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
            let _ = self.reader.get_ref().set_read_timeout(Some(left));
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => break,
            }
            // Chunk-size lines are not JSON; skip them.
            let Ok(ev) = serde_json::from_str::<serde_json::Value>(line.trim()) else { continue };
            if wanted(&ev) {
                return Ok(ev);
            }
            seen.push(ev);
        }
        Err(seen)
    }
}
