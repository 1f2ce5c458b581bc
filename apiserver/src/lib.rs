//! `berth-apiserver`: Berth's versioned API store — a Kubernetes-compatible
//! REST and watch server over a revisioned key-value [`storage::Storage`],
//! serving the kinds of the CRDs it is given (and any created later) plus
//! the Kubernetes kinds Berth needs (`Namespace`, `Event`, `Secret`,
//! `Lease`, `CustomResourceDefinition`). Real `kubectl` and kube-rs work
//! against it unchanged.
//!
//! Start it with [`serve`] on a bound listener:
//!
//! ```no_run
//! # async fn run() -> Result<(), berth_apiserver::Error> {
//! let store = berth_apiserver::storage::Embedded::open(std::path::Path::new("/var/lib/berth/store.redb"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:6443").await?;
//! berth_apiserver::serve(listener, store, vec![], std::future::pending()).await
//! # }
//! ```
//!
//! [`serve`] answers plain HTTP without credentials, for in-process tests;
//! [`serve_with`] and [`Options::tls`] / [`Options::tokens`] serve HTTPS with
//! bearer tokens and per-role authorization (see `auth`), as `berth` does.
//!
//! Layout:
//! - `storage`: the `Storage` trait, its conformance suite, the embedded (redb)
//!   backend with group commit, and the etcd backend.
//! - `server`: routing, the request context and `serve`; one file per verb
//!   (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`), plus
//!   `discovery`, `openapi`, `table`, `admit`, `admit_offer` (a Placement
//!   accepting an Offer is refused at once when it cannot take it),
//!   `admit_placement` (every Placement is stored with the agent finalizer),
//!   `bootstrap`, `compactor`,
//!   `access` (each request's user and authorization), `review` (the
//!   self-reviews behind `kubectl auth whoami` / `can-i`), `apply`
//!   (server-side apply), `managed` (`metadata.managedFields`: field
//!   sets, ownership, conflicts), `versions` (which revision a read is
//!   served at), `meta_update` (what an update may change in metadata),
//!   `cache` (the watch cache: all objects and recent changes in memory,
//!   fed by one storage watch) and `gc` (the garbage collector of
//!   `ownerReferences`) and
//!   `crd_sync` (the registry follows CRDs written by other replicas).
//! - `registry`: the served kinds — built-in ones and those of each CRD.
//! - `validation`: names and labels, and the CRD structural-schema validator.
//! - `selector`: label and field selectors.
//! - `jsonpath`: the JSONPath subset printer columns and selectable fields use.
//! - `auth`: bearer tokens, the authorization decision, and TLS certificates.
//! - `error`: the error type and its one mapping to `metav1.Status`.
//! - `kubeconfig`: a kubeconfig pointing at a server.

pub mod auth;
pub mod error;
pub mod jsonpath;
pub mod kubeconfig;
pub mod registry;
pub mod selector;
pub mod server;
pub mod storage;
pub mod validation;

pub use error::Error;
pub use kubeconfig::{Credentials, kubeconfig, kubeconfig_with};
pub use server::{Options, serve, serve_with};
pub use storage::{Embedded, Etcd, Storage, StorageError};
