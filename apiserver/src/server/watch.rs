//! `?watch=true`: a stream of newline-delimited JSON events
//! (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`), served from the
//! watch cache.
//!
//! Without a resourceVersion (or with `0`) the watch starts with an `ADDED`
//! for every current object; `sendInitialEvents=true` does the same and
//! ends the initial state with a BOOKMARK annotated
//! `k8s.io/initial-events-end`. A resourceVersion older than the cache's
//! window gets a 200 stream holding one `ERROR` event with a 410 Status, as
//! does a watcher that falls behind the window. Selectors are applied to
//! both the old and the new object, so an object that stops matching is
//! seen as `DELETED` and one that starts as `ADDED`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::cache::{Change, Subscription};
use super::filter::Filter;
use super::negotiate::Output;
use super::{App, Ctx, object, table, versions};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// How long a watch waits for the cache to reach the revision it asks for.
const CACHE_WAIT: Duration = Duration::from_secs(3);

pub async fn run<S: Storage>(app: Arc<App<S>>, ctx: Ctx) -> Result<Response> {
    let filter = Filter::new(&ctx)?;
    let p = &ctx.params;
    let streaming = p.send_initial_events == Some(true);
    if streaming && (!p.allow_watch_bookmarks || p.resource_version_match.as_deref() != Some("NotOlderThan")) {
        return Err(Error::BadRequest(
            "sendInitialEvents=true needs allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan".into(),
        ));
    }
    if !streaming && p.resource_version_match.is_some() {
        return Err(Error::BadRequest(
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
        ));
    }
    let rev = p.revision()?;
    let current = app.store.current_revision().await?;
    if let Some(r) = rev {
        versions::fresh_enough(r, current)?;
    }
    let initial = p.send_initial_events.unwrap_or(rev.is_none());
    let prefix = ctx.kind.prefix(ctx.namespace.as_deref());
    let (items, start, sub) = if initial {
        // Unset asks for the most recent state, `N` for one at least that new.
        let wanted = if p.resource_version.is_none() { current } else { rev.unwrap_or(0) };
        if !app.cache.wait_for(wanted, CACHE_WAIT).await && rev.is_some() {
            return Err(Error::future(wanted, app.cache.revision()));
        }
        let (entries, revision, sub) = app.cache.snapshot_and_watch(&prefix)?;
        let items = entries.iter().filter(|e| filter.matches(&e.value)).map(|e| e.shown(&ctx.kind, e.revision));
        (items.collect(), revision, Ok(sub))
    } else {
        let start = rev.unwrap_or(current);
        let sub = match app.cache.watch(&prefix, start) {
            Err(e @ Error::Expired(_)) => Err(e),
            other => Ok(other?),
        };
        (Vec::new(), start, sub)
    };
    let (tx, rx) = mpsc::channel(64);
    let timeout = p.timeout_seconds.map(Duration::from_secs).unwrap_or(app.opts.default_watch_timeout);
    let pump = Pump { app: app.clone(), ctx, filter, tx, last: start };
    tokio::spawn(pump.run(items, streaming, sub, timeout));
    let mut resp = (StatusCode::OK, Body::from_stream(ReceiverStream::new(rx))).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

struct Pump<S> {
    app: Arc<App<S>>,
    ctx: Ctx,
    filter: Filter,
    tx: mpsc::Sender<std::result::Result<Bytes, Infallible>>,
    /// Every event up to this revision has been sent.
    last: u64,
}

impl<S: Storage> Pump<S> {
    async fn run(mut self, items: Vec<Value>, streaming: bool, sub: Result<Subscription>, timeout: Duration) {
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                self.send("ERROR", e.status()).await;
                return;
            }
        };
        for obj in items {
            let shown = self.render(&obj);
            if !self.send("ADDED", shown).await {
                return;
            }
        }
        if streaming && !self.send("BOOKMARK", self.bookmark(true)).await {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let period = self.app.opts.bookmark_interval;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let bookmarks = self.ctx.params.allow_watch_bookmarks;
        let mut stopping = self.app.stopping.clone();
        loop {
            tokio::select! {
                change = sub.next() => match change {
                    Some(Ok(change)) => {
                        self.last = sub.revision();
                        if let Some(type_) = self.event_type(&change)
                            && !self.send_line(self.line(&change, type_)).await
                        {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        self.send("ERROR", e.status()).await;
                        return;
                    }
                    None => return,
                },
                _ = ticks.tick(), if bookmarks => {
                    self.last = self.last.max(sub.revision());
                    if !self.send("BOOKMARK", self.bookmark(false)).await {
                        return;
                    }
                }
                _ = &mut deadline => return,
                _ = async { let _ = stopping.wait_for(|s| *s).await.is_ok(); } => return,
                _ = self.tx.closed() => return,
            }
        }
    }

    /// The watch event type a change is for this watcher, after selectors
    /// (`None`: not its business).
    fn event_type(&self, change: &Change) -> Option<&'static str> {
        match change {
            Change::Put { entry, prev } => {
                let now = self.filter.matches(&entry.value);
                let before = prev.as_ref().map(|p| self.filter.matches(&p.value));
                match (before, now) {
                    (Some(true), true) => Some("MODIFIED"),
                    (_, true) => Some("ADDED"),
                    (Some(true), false) => Some("DELETED"),
                    _ => None,
                }
            }
            Change::Delete { prev, .. } => self.filter.matches(&prev.value).then_some("DELETED"),
        }
    }

    /// The encoded event; the plain object form is encoded once for all
    /// watchers of the change.
    fn line(&self, change: &Change, type_: &'static str) -> Bytes {
        let kind = &self.ctx.kind;
        let shown = || match change {
            Change::Put { entry, .. } => entry.shown(kind, entry.revision),
            Change::Delete { prev, revision } => prev.shown(kind, *revision),
        };
        match self.ctx.output {
            Output::Object => self.app.cache.lines.get(change.revision(), type_, &kind.api_version(), || {
                let (entry, revision) = match change {
                    Change::Put { entry, .. } => (entry, entry.revision),
                    Change::Delete { prev, revision } => (prev, *revision),
                };
                encode(type_, &entry.shown_ref(kind, revision))
            }),
            _ => encode(type_, &self.render(&shown())),
        }
    }

    fn render(&self, obj: &Value) -> Value {
        match self.ctx.output {
            Output::Object => obj.clone(),
            Output::Table(v) => {
                let row = table::row(&self.ctx.kind, obj, self.ctx.params.include_object, jiff::Timestamp::now());
                let rv = object::meta_str(obj, "resourceVersion").unwrap_or_default();
                table::table(&self.ctx.kind, v, vec![row], json!({"resourceVersion": rv}))
            }
            Output::Metadata(v) => table::partial_metadata(obj, v),
        }
    }

    fn bookmark(&self, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": self.last.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": self.ctx.kind.kind, "apiVersion": self.ctx.kind.api_version(), "metadata": meta})
    }

    /// Sends one event; false when the client has gone.
    async fn send(&self, kind: &str, obj: Value) -> bool {
        self.send_line(encode(kind, &obj)).await
    }

    async fn send_line(&self, line: Bytes) -> bool {
        self.tx.send(Ok(line)).await.is_ok()
    }
}

/// One watch event as a line of JSON.
/// One watch event as a line of JSON, `{"type":…,"object":…}`, written
/// straight from `obj` (no copy of it).
fn encode(kind: &str, obj: &impl serde::Serialize) -> Bytes {
    #[derive(serde::Serialize)]
    struct Event<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a T,
    }
    let mut line = serde_json::to_vec(&Event { kind, object: obj }).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}
