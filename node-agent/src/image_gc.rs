//! Image garbage collection: when the images' total size passes
//! [`ImageSettings::gc_high_bytes`](crate::config::ImageSettings), images no
//! container uses are removed, least recently used first, until the total is
//! at most `gc_low_bytes` (kubelet's policy, in bytes); and, with
//! `gc_disk`, when the filesystem holding the images is fuller than its
//! `high_percent`, until it is at most `low_percent` full ([`disk_marks`]).
//! The check runs every `gc_interval` and after a container is removed.
//!
//! An image is in use while a container of this agent's namespace uses it,
//! and from the moment a placement starts pulling it until its container is
//! created: the placement holds it ([`ImageUse::hold`]), and the collector
//! removes only images it holds exclusively, so it never deletes an image
//! between its pull and its container.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::runtime::{ImageInfo, Runtime, RuntimeError};

/// The images placements use, and when each was last used.
#[derive(Default)]
pub struct ImageUse {
    locks: Mutex<HashMap<String, Arc<RwLock<()>>>>,
    /// Image name → Unix seconds it was last used.
    last_used: Mutex<HashMap<String, i64>>,
    wake: Notify,
}

/// Keeps an image from the collector while it lives.
pub struct ImageHold {
    _guard: OwnedRwLockReadGuard<()>,
}

impl ImageUse {
    /// Holds `image` until the returned guard drops; waits while the
    /// collector removes it (the pull that follows fetches it again).
    pub async fn hold(&self, image: &str) -> ImageHold {
        let name = image_name(image);
        let guard = self.lock(&name).read_owned().await;
        self.used(&name);
        ImageHold { _guard: guard }
    }

    /// Records that a container of `image` was removed, and runs a collection.
    pub fn container_removed(&self, image: &str) {
        self.used(&image_name(image));
        self.wake.notify_one();
    }

    fn used(&self, name: &str) {
        let now = jiff::Timestamp::now().as_second();
        self.last_used.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), now);
    }

    fn lock(&self, name: &str) -> Arc<RwLock<()>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default().clone()
    }

    /// `image` to remove, if nobody holds it.
    fn try_exclusive(&self, name: &str) -> Option<OwnedRwLockWriteGuard<()>> {
        self.lock(name).try_write_owned().ok()
    }
}

/// The name an image record has for `image`: its full reference
/// (`docker.io/library/busybox:latest` for `busybox`).
pub fn image_name(image: &str) -> String {
    image.parse::<oci_client::Reference>().map(|r| r.whole()).unwrap_or_else(|_| image.to_string())
}

/// The bytes `images` take, each blob counted once however many images share it.
pub fn usage<'a>(images: impl IntoIterator<Item = &'a ImageInfo>) -> u64 {
    let mut seen = BTreeSet::new();
    images.into_iter().flat_map(|i| &i.blobs).filter(|(d, _)| seen.insert(d.as_str())).map(|(_, s)| s).sum()
}

/// Which images to remove: none while usage is at most `high`; otherwise
/// unused ones, least recently used first (the later of the agent's record
/// in `last_used` and the image's own update time), until usage is at most
/// `low` or no unused image is left.
pub fn plan(images: &[ImageInfo], last_used: &HashMap<String, i64>, high: u64, low: u64) -> Vec<String> {
    if usage(images) <= high {
        return Vec::new();
    }
    let used_at = |i: &ImageInfo| last_used.get(&i.name).copied().unwrap_or(i64::MIN).max(i.updated_at);
    let mut unused: Vec<&ImageInfo> = images.iter().filter(|i| !i.in_use).collect();
    unused.sort_by(|a, b| used_at(a).cmp(&used_at(b)).then_with(|| a.name.cmp(&b.name)));
    let mut kept: Vec<&ImageInfo> = images.iter().collect();
    let mut out = Vec::new();
    for victim in unused {
        if usage(kept.iter().copied()) <= low {
            break;
        }
        kept.retain(|i| i.name != victim.name);
        out.push(victim.name.clone());
    }
    out
}

/// One collection: removes what [`plan`] says and nobody holds; returns
/// the images removed.
pub async fn collect_once<R: Runtime>(
    runtime: &R,
    uses: &ImageUse,
    high: u64,
    low: u64,
) -> Result<Vec<String>, RuntimeError> {
    let images = runtime.images().await?;
    for i in images.iter().filter(|i| i.in_use) {
        uses.used(&i.name);
    }
    let last_used = uses.last_used.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let before = usage(&images);
    let mut removed = Vec::new();
    for name in plan(&images, &last_used, high, low) {
        let Some(_exclusive) = uses.try_exclusive(&name) else { continue };
        match runtime.remove_image(&name).await {
            Ok(()) => removed.push(name),
            Err(RuntimeError::ImageInUse { .. }) => {}
            Err(e) => tracing::warn!(image = %name, error = %e, "removing an unused image failed"),
        }
    }
    if !removed.is_empty() {
        let after = usage(images.iter().filter(|i| !removed.contains(&i.name)));
        tracing::info!(?removed, before, after, high, low, "removed unused images");
    }
    Ok(removed)
}

/// The byte marks that make [`plan`] free what a disk threshold asks:
/// `None` while the filesystem (`total` bytes, `available` to use) is at
/// most `high_percent` full; otherwise marks just below the images' own
/// `usage` and that usage less the bytes to free to reach `low_percent`.
pub fn disk_marks(total: u64, available: u64, usage: u64, high_percent: u8, low_percent: u8) -> Option<(u64, u64)> {
    let used = u128::from(total.saturating_sub(available));
    let total = u128::from(total);
    if total == 0 || used * 100 <= total * u128::from(high_percent) {
        return None;
    }
    let goal = total * u128::from(low_percent.min(high_percent)) / 100;
    let to_free = u64::try_from(used.saturating_sub(goal)).unwrap_or(u64::MAX);
    Some((usage.saturating_sub(1), usage.saturating_sub(to_free)))
}

/// Bytes in the filesystem holding `path`, and bytes available to use (as `df` counts them).
pub fn filesystem(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    let st = rustix::fs::statvfs(path)?;
    Ok((st.f_blocks.saturating_mul(st.f_frsize), st.f_bavail.saturating_mul(st.f_frsize)))
}

/// One check by every threshold configured: the images' own size, then how full their disk is.
async fn check<R: Runtime>(ctx: &crate::AgentContext<R>) -> Result<(), RuntimeError> {
    let settings = &ctx.config.images;
    if let Some(high) = settings.gc_high_bytes {
        let low = settings.gc_low_bytes.unwrap_or(high).min(high);
        collect_once(&ctx.runtime, &ctx.images, high, low).await?;
    }
    if let Some(disk) = &settings.gc_disk {
        let (total, available) = filesystem(&disk.path)
            .map_err(|e| RuntimeError::Other(format!("reading the filesystem of {}: {e}", disk.path.display())))?;
        let usage = usage(&ctx.runtime.images().await?);
        if let Some((high, low)) = disk_marks(total, available, usage, disk.high_percent, disk.low_percent) {
            collect_once(&ctx.runtime, &ctx.images, high, low).await?;
        }
    }
    Ok(())
}

/// Checks every `gc_interval` and after each container removal until
/// `stop` resolves; returns at once when no threshold is set.
pub async fn run<R: Runtime>(ctx: Arc<crate::AgentContext<R>>, stop: impl Future<Output = ()>) {
    let settings = &ctx.config.images;
    if settings.gc_high_bytes.is_none() && settings.gc_disk.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(settings.gc_interval);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
            _ = ctx.images.wake.notified() => {}
        }
        if let Err(e) = check(&ctx).await {
            tracing::warn!(error = %e, "image garbage collection failed");
        }
    }
}

#[cfg(test)]
mod tests;
