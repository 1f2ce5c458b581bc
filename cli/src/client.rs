//! A Kubernetes client from a kubeconfig file, or from the usual defaults.

use std::path::Path;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A client for `kubeconfig`, else `$KUBECONFIG` / `~/.kube/config` / in-cluster.
pub async fn connect(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await.context("no kubeconfig found: pass --kubeconfig or set KUBECONFIG")?,
    };
    kube::Client::try_from(config).context("building the API client")
}
