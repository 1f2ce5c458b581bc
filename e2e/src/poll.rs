//! Waiting without sleeps that guess: poll a condition until a deadline.

use std::time::{Duration, Instant};

/// Calls `check` until it returns `Ok` or `timeout` passes; returns the
/// last error (what was observed) on timeout.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}
