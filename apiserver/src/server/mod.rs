//! The HTTP server: routing, the request context, and `serve`.

mod access;
mod admit;
mod admit_job;
mod admit_offer;
mod admit_placement;
mod apply;
mod bootstrap;
mod cache;
mod compactor;
mod crd_sync;
mod create;
mod delete;
mod discovery;
mod filter;
mod gc;
mod get;
mod hooks;
mod list;
mod managed;
mod meta_update;
pub mod negotiate;
pub mod object;
mod openapi;
pub mod params;
mod patch;
mod protobuf;
mod review;
pub mod route;
pub mod table;
mod update;
mod versions;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::auth;
use crate::auth::{Tokens, User};
use crate::error::{Error, Result};
use crate::registry::{Kind, Registry};
use crate::storage::Storage;
use negotiate::Output;
use params::Params;
use route::{ResourcePath, Route};

/// The largest request body accepted.
const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Tunables of a server; `Default` is what `berth apiserver` runs with.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// How often history is compacted.
    pub compact_interval: Duration,
    /// How many revisions of history compaction keeps.
    pub compact_keep: u64,
    /// How long a watch without `timeoutSeconds` lasts.
    pub default_watch_timeout: Duration,
    /// TLS on the listener. `None` serves plain HTTP: only for in-process
    /// tests and `berth apiserver --insecure-http`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The bearer tokens accepted, and who they belong to. `None` checks no
    /// credentials and serves every request as an admin: only for
    /// in-process tests.
    pub tokens: Option<Arc<Tokens>>,
    /// How many recent changes the watch cache keeps for watches to resume from.
    pub watch_cache_events: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bookmark_interval: Duration::from_secs(30),
            compact_interval: Duration::from_secs(300),
            compact_keep: 10_000,
            default_watch_timeout: Duration::from_secs(1800),
            tls: None,
            tokens: None,
            watch_cache_events: 10_000,
        }
    }
}

pub(crate) struct App<S> {
    pub store: S,
    pub registry: Registry,
    pub opts: Options,
    /// Every object in memory, and recent changes: what watches and some lists read.
    pub cache: Arc<cache::Cache>,
    /// Turns true when the server shuts down; open watches end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// One resource request, parsed.
pub(crate) struct Ctx {
    pub kind: Arc<Kind>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The request is on the `/status` subresource.
    pub status: bool,
    pub params: Params,
    pub output: Output,
    pub headers: HeaderMap,
    /// The agent making this request, when it may change nothing of the
    /// object but remove finalizers (an agent's write to a Placement).
    pub finalizers_only: Option<String>,
}

impl Ctx {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> String {
        self.kind.key(self.namespace.as_deref(), self.name())
    }

    /// One object in the representation the client asked for.
    pub fn render_one(&self, code: StatusCode, obj: &Value) -> Response {
        let body = match self.output {
            Output::Object => obj.clone(),
            Output::Table(v) => {
                let row = table::row(&self.kind, obj, self.params.include_object, jiff::Timestamp::now());
                let rv = object::meta_str(obj, "resourceVersion").unwrap_or_default();
                table::table(&self.kind, v, vec![row], serde_json::json!({"resourceVersion": rv}))
            }
            Output::Metadata(v) => table::partial_metadata(obj, v),
        };
        negotiate::json(code, &body, self.params.pretty)
    }
}

/// Serves the API on `listener` until `shutdown` completes. `crds` are
/// registered (created or updated) before the first request is answered.
pub async fn serve<S: Storage>(
    listener: TcpListener,
    store: S,
    crds: Vec<CustomResourceDefinition>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_with(listener, store, crds, Options::default(), shutdown).await
}

/// [`serve`] with explicit [`Options`].
pub async fn serve_with<S: Storage>(
    listener: TcpListener,
    store: S,
    crds: Vec<CustomResourceDefinition>,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let cache = cache::Cache::new(opts.watch_cache_events);
    let from = cache.fill(&store).await?;
    let app = Arc::new(App { store, registry: Registry::with_builtins(), opts, cache, stopping });
    let feeder = {
        let app = app.clone();
        tokio::spawn(async move { app.cache.follow(&app.store, from).await })
    };
    let crds_read_at = bootstrap::run(&app, crds).await?;
    let compactor = tokio::spawn(compactor::run(app.clone()));
    let tls = app.opts.tls.clone();
    let collector = tokio::spawn(gc::run(app.clone()));
    let crd_sync = tokio::spawn(crd_sync::run(app.clone(), crds_read_at));
    let router = Router::new().fallback(dispatch::<S>).with_state(app);
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let served = match tls {
        Some(config) => {
            let listener = crate::auth::listener::TlsListener::new(listener, config)?;
            axum::serve(listener, router).with_graceful_shutdown(signal).await
        }
        None => axum::serve(listener, router).with_graceful_shutdown(signal).await,
    };
    // Background tasks hold the store; wait until they are gone, so that a
    // caller may open the same store again as soon as this returns.
    for task in [compactor, collector, feeder, crd_sync] {
        task.abort();
        let _ = task.await;
    }
    Ok(served?)
}

async fn dispatch<S: Storage>(State(app): State<Arc<App<S>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    tracing::debug!(method = %parts.method, uri = %parts.uri, "request");
    match handle(&app, parts, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn no_route() -> Error {
    Error::NoRoute("the server could not find the requested resource".into())
}

async fn handle<S: Storage>(app: &Arc<App<S>>, parts: Parts, body: Body) -> Result<Response> {
    let route = route::parse(parts.uri.path());
    let user = access::authenticate(app, &parts.headers, matches!(route, Some(Route::Health)))?;
    if !matches!(route, Some(Route::Resource(_))) {
        let attrs = auth::Attributes::NonResource {
            verb: parts.method.as_str().to_lowercase(),
            path: parts.uri.path().to_string(),
        };
        if !matches!(route, Some(Route::Health)) {
            access::authorize(app, &user, attrs).await?;
        }
        if parts.method != Method::GET {
            return Err(Error::MethodNotAllowed(format!("{} is not allowed on {}", parts.method, parts.uri.path())));
        }
    }
    let route = route.ok_or_else(no_route)?;
    match route {
        Route::Root => Ok(discovery::root(app)),
        Route::Version => Ok(discovery::version()),
        Route::Health => Ok((StatusCode::OK, "ok").into_response()),
        Route::Api => Ok(discovery::api()),
        Route::Apis => Ok(discovery::apis(app)),
        Route::Group(g) => discovery::group(app, &g),
        Route::GroupVersion(g, v) => discovery::resources(app, &g, &v),
        Route::OpenApiV3Root => Ok(openapi::root(app)),
        Route::OpenApiV3(p) => openapi::document(app, &p),
        Route::Resource(rp) => resource(app, &user, parts, body, rp).await,
    }
}

/// The request body, refused with 413 past [`BODY_LIMIT`] (before reading
/// it when `Content-Length` says so).
async fn read_body(headers: &HeaderMap, body: Body) -> Result<bytes::Bytes> {
    use futures::StreamExt;
    let too_large = || Error::TooLarge(format!("Request entity too large: limit is {BODY_LIMIT}"));
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::BadRequest(format!("reading the request body: {e}")))?;
        if buf.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

async fn resource<S: Storage>(
    app: &Arc<App<S>>,
    user: &User,
    parts: Parts,
    body: Body,
    rp: ResourcePath,
) -> Result<Response> {
    if review::is_review(&rp) {
        let body = read_body(&parts.headers, body).await?;
        return review::run(app, user, &parts.method, &parts.headers, &rp, &body).await;
    }
    let params = Params::from_uri(&parts.uri)?;
    let body = read_body(&parts.headers, body).await?;
    let name = match parts.method {
        Method::POST => access::body_name(&parts.headers, &body),
        _ => rp.name.clone(),
    };
    let verb = access::verb(&parts.method, rp.name.is_some(), params.watch);
    access::authorize(app, user, access::resource_attributes(verb, &rp, name)).await?;
    let kind = app.registry.lookup(&rp.group, &rp.version, &rp.plural).ok_or_else(no_route)?;
    if rp.namespace.is_some() && !kind.namespaced {
        return Err(no_route());
    }
    let status = match rp.subresource.as_deref() {
        None => false,
        Some("status") if kind.status_subresource => true,
        Some(_) => return Err(no_route()),
    };
    let output = negotiate::output(&parts.headers)?;
    let finalizers_only = admit_placement::finalizers_only(user, &kind, status);
    let ctx = Ctx {
        kind,
        namespace: rp.namespace,
        name: rp.name,
        status,
        params,
        output,
        headers: parts.headers,
        finalizers_only,
    };
    let named = ctx.name.is_some();
    let not_allowed = || Error::MethodNotAllowed(format!("{} is not allowed on {}", parts.method, parts.uri.path()));
    match parts.method {
        Method::GET if ctx.params.watch => watch::run(app.clone(), ctx).await,
        Method::GET if named => get::run(app, &ctx).await,
        Method::GET => list::run(app, &ctx).await,
        Method::POST if !named && (ctx.namespace.is_some() || !ctx.kind.namespaced) => {
            create::run(app, &ctx, &body).await
        }
        Method::PUT if named => update::run(app, &ctx, &body).await,
        Method::PATCH if named => patch::run(app, &ctx, &body).await,
        Method::DELETE if named && !status => delete::run(app, &ctx, &body).await,
        Method::DELETE if !named => delete::collection(app, &ctx, &body).await,
        _ => Err(not_allowed()),
    }
}
