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
