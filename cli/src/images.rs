//! The agent's image flags: pull retries and image garbage collection.

use std::time::Duration;

use anyhow::bail;
use berth_agent::config::{DEFAULT_PULL_ATTEMPTS, DiskThreshold, ImageSettings};
use clap::Args;

#[derive(Args, Clone)]
pub struct ImageArgs {
    /// Pull attempts before a placement ends Failed/ImagePullFailed; between
    /// them it stays Staging/ImagePullBackOff for 1 s, 2 s, 4 s…
    #[arg(long, default_value_t = DEFAULT_PULL_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    image_pull_attempts: u32,
    /// The longest wait between two pull attempts, in seconds
    #[arg(long, default_value_t = 60)]
    image_pull_backoff_max_seconds: u64,
    /// When the images' total size passes this (e.g. `20Gi`), unused images are
    /// removed, least recently used first (default: never)
    #[arg(long, value_parser = bytes)]
    image_gc_high_bytes: Option<u64>,
    /// ... until their total is at most this (default: the high mark)
    #[arg(long, value_parser = bytes, requires = "image_gc_high_bytes")]
    image_gc_low_bytes: Option<u64>,
    /// When the filesystem holding the images (`--image-filesystem`) is more than this
    /// percent full, unused images are removed, least recently used first, as kubelet's
    /// `imageGCHighThresholdPercent` (e.g. 85; default: never)
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    image_gc_high_percent: Option<u8>,
    /// ... until it is at most this percent full (default: 5 below the high mark)
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100), requires = "image_gc_high_percent")]
    image_gc_low_percent: Option<u8>,
    /// A path on the filesystem containerd keeps images on: its `--root`
    #[arg(long, default_value = "/var/lib/containerd")]
    image_filesystem: std::path::PathBuf,
    /// Seconds between checks of the images' size (also checked after a container is removed)
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    image_gc_interval_seconds: u64,
}

impl ImageArgs {
    pub fn settings(&self) -> anyhow::Result<ImageSettings> {
        if let (Some(high), Some(low)) = (self.image_gc_high_bytes, self.image_gc_low_bytes)
            && low > high
        {
            bail!("--image-gc-low-bytes ({low}) must not exceed --image-gc-high-bytes ({high})");
        }
        let gc_disk = match (self.image_gc_high_percent, self.image_gc_low_percent) {
            (None, _) => None,
            (Some(high), Some(low)) if low > high => {
                bail!("--image-gc-low-percent ({low}) must not exceed --image-gc-high-percent ({high})")
            }
            (Some(high), low) => Some(DiskThreshold {
                path: self.image_filesystem.clone(),
                high_percent: high,
                low_percent: low.unwrap_or(high.saturating_sub(5)),
            }),
        };
        Ok(ImageSettings {
            pull_attempts: self.image_pull_attempts,
            pull_backoff_max: Duration::from_secs(self.image_pull_backoff_max_seconds),
            gc_high_bytes: self.image_gc_high_bytes,
            gc_low_bytes: self.image_gc_low_bytes,
            gc_disk,
            gc_interval: Duration::from_secs(self.image_gc_interval_seconds),
            ..ImageSettings::default()
        })
    }
}

/// A byte quantity: `1048576`, `500Mi`, `20Gi`.
fn bytes(s: &str) -> Result<u64, String> {
    berth_api::Quantity::new(s).bytes().map_err(|e| e.to_string())
}
