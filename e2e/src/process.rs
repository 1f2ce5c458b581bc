//! Child processes of a test: run with input, describe output, stop by PID.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::poll::poll;

/// Runs `cmd` with `stdin` as its input and collects its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starting command");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("writing stdin");
    child.wait_with_output().expect("waiting for command")
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}; stdout: {}; stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// Stops a child we started: SIGTERM, then SIGKILL if it is still there after `grace`.
pub fn terminate(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let exited = poll(grace, || match child.try_wait() {
        Ok(Some(_)) => Ok(()),
        _ => Err("still running".to_string()),
    });
    if exited.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Fields of `/proc/PID/status` counted in kB (`VmRSS`, `VmHWM`, `RssAnon`,
/// …), in the order asked; 0 for a field (or process) not there.
pub fn status_kib<const N: usize>(pid: u32, fields: [&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    fields.map(|name| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_fields_are_read_by_exact_name() {
        let [rss, peak, none] = super::status_kib(std::process::id(), ["VmRSS", "VmHWM", "NoSuchField"]);
        assert!(rss > 0 && peak >= rss, "VmRSS {rss}, VmHWM {peak}");
        assert_eq!(none, 0);
        assert_eq!(super::status_kib(u32::MAX, ["VmRSS"]), [0]);
    }
}
