//! A placement's image pull, retried with exponential backoff as Kubernetes
//! does: after a failed attempt the placement stays `Staging` with reason
//! `ImagePullBackOff` and the registry's answer as its message, and the
//! next attempt follows after 1 s, 2 s, 4 s… (capped). Errors that cannot
//! succeed as things stand (an unknown manifest, unauthorized) are retried
//! too, because a registry or a Secret may be fixed meanwhile; but never
//! more than [`ImageSettings::pull_attempts`] times in all, after which the
//! placement ends `Failed`/`ImagePullFailed` with the last message. Each
//! attempt reads the placement's `imagePullSecret` afresh.

use std::time::Duration;

use berth_api::Placement;
use kube::ResourceExt;

use crate::config::ImageSettings;
use crate::credentials::registry_auth;
use crate::image_gc::ImageHold;
use crate::runtime::{Runtime, RuntimeError};
use crate::{AgentContext, Error};

/// The reason a placement shows while its pull waits to be retried.
pub const REASON_BACK_OFF: &str = "ImagePullBackOff";
/// The reason a placement whose pull failed for good ends with.
pub const REASON_FAILED: &str = "ImagePullFailed";

/// How a pull ended.
pub enum Pulled {
    /// The image is present; the hold keeps it from the image collector
    /// until the container that uses it exists.
    Ready(ImageHold),
    /// It could not be pulled: the placement ends with this reason and message.
    Failed { reason: &'static str, message: String },
}

/// The wait after the `failed`-th failed attempt (1-based): `initial`
/// doubled for each earlier failure, at most `max`.
pub fn backoff(settings: &ImageSettings, failed: u32) -> Duration {
    let doublings = failed.saturating_sub(1).min(31);
    settings.pull_backoff_initial.saturating_mul(1 << doublings).min(settings.pull_backoff_max)
}

/// Where a pull reports that it waits to be retried, and why.
pub trait BackOffReport: Send {
    fn backing_off(&mut self, message: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Pulls `p`'s image with its credentials, retrying with backoff and
/// reporting each wait to `report`. An error is one of reporting.
pub async fn pull<R: Runtime>(
    ctx: &AgentContext<R>,
    p: &Placement,
    report: &mut impl BackOffReport,
) -> Result<Pulled, Error> {
    let settings = &ctx.config.images;
    let image = &p.spec.container.image;
    let hold = ctx.images.hold(image).await;
    let attempts = settings.pull_attempts.max(1);
    let mut failed = 0;
    loop {
        let message = match attempt(ctx, p).await {
            Ok(()) => return Ok(Pulled::Ready(hold)),
            Err(Attempt::Runtime(e)) => return Ok(Pulled::Failed { reason: "Error", message: e.to_string() }),
            Err(Attempt::Pull(message)) => message,
        };
        failed += 1;
        if failed >= attempts {
            let message = format!("{message} (after {failed} attempts)");
            return Ok(Pulled::Failed { reason: REASON_FAILED, message });
        }
        let wait = backoff(settings, failed);
        tracing::info!(placement = %p.name_any(), %image, attempt = failed, ?wait, %message, "pull failed; backing off");
        report
            .backing_off(&format!("{message} (attempt {failed} of {attempts}; next in {}s)", wait.as_secs_f32()))
            .await?;
        tokio::time::sleep(wait).await;
    }
}

/// Why one attempt failed: the registry or the credentials (worth a retry),
/// or the runtime.
enum Attempt {
    Pull(String),
    Runtime(RuntimeError),
}

async fn attempt<R: Runtime>(ctx: &AgentContext<R>, p: &Placement) -> Result<(), Attempt> {
    let image = &p.spec.container.image;
    let auth = match &p.spec.image_pull_secret {
        Some(secret) => {
            let ns = p.namespace().unwrap_or_default();
            let auth = registry_auth(&ctx.client, &ns, secret, image).await;
            Some(auth.map_err(|e| Attempt::Pull(format!("pulling {image}: {e}")))?)
        }
        None => None,
    };
    match ctx.runtime.pull(image, auth.as_ref()).await {
        Ok(()) => Ok(()),
        Err(e @ RuntimeError::ImagePull { .. }) => Err(Attempt::Pull(e.to_string())),
        Err(e) => Err(Attempt::Runtime(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_one_second_and_is_capped() {
        let s = ImageSettings { pull_backoff_max: Duration::from_secs(10), ..ImageSettings::default() };
        let waits: Vec<u64> = (1..=6).map(|n| backoff(&s, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff(&s, 1000), Duration::from_secs(10), "no overflow");
    }

    #[test]
    fn the_default_attempts_wait_about_seven_seconds_in_all() {
        let s = ImageSettings::default();
        let total: Duration = (1..s.pull_attempts).map(|n| backoff(&s, n)).sum();
        assert_eq!(total, Duration::from_secs(7));
    }
}
