//! Retrying requests that never reached etcd.
//!
//! The client balances requests over every endpoint it was given; a member
//! that is down keeps being picked for a while, and its requests fail to
//! connect. Such a request was never sent, so sending it again (to another
//! member, as the balancer picks) cannot apply it twice — unlike a request
//! that failed after it was sent, which is returned as it failed.

use std::future::Future;
use std::time::Duration;

/// How many times a request that could not connect is tried.
const ATTEMPTS: usize = 8;

/// Runs `call` until it succeeds, fails after sending, or has failed to
/// connect [`ATTEMPTS`] times.
pub async fn unsent<T, F, Fut>(mut call: F) -> Result<T, etcd_client::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let mut pause = Duration::from_millis(10);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if attempt < ATTEMPTS && never_sent(&e) => {
                tracing::debug!(error = %e, attempt, "an etcd member could not be reached; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// True when the request failed while connecting, before anything was sent.
fn never_sent(e: &etcd_client::Error) -> bool {
    let text = format!("{e:?}");
    text.contains("ConnectError") || text.contains("tcp connect error")
}
