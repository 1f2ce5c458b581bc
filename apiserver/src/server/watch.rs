//! `?watch=true`: a stream of newline-delimited JSON events
//! (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`).
//!
//! Without a resourceVersion (or with `0`) the watch starts with an `ADDED`
//! for every current object; `sendInitialEvents=true` does the same and
//! ends the initial state with a BOOKMARK annotated
//! `k8s.io/initial-events-end`. A resourceVersion older than the kept
//! history gets a 200 stream holding one `ERROR` event with a 410 Status.
//! Selectors are applied to both the old and the new object, so an object
//! that stops matching is seen as `DELETED` and one that starts as `ADDED`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::filter::Filter;
use super::negotiate::Output;
use super::{App, Ctx, object, table, versions};
use crate::error::{Error, Result};
use crate::storage::{Event, Storage, StorageError};

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
    let initial = p.send_initial_events.unwrap_or(rev.is_none());
    let prefix = ctx.kind.prefix(ctx.namespace.as_deref());
    let (items, start) = if initial {
        let range = app.store.range(&prefix, None, 0, 0).await?;
        versions::fresh_enough(rev.unwrap_or(0), range.revision)?;
        let mut items = Vec::new();
        for kv in &range.kvs {
            let obj = object::decode(&ctx.kind, kv)?;
            if filter.matches(&obj) {
                items.push(obj);
            }
        }
        (items, range.revision)
    } else {
        let current = app.store.current_revision().await?;
        let start = match rev {
            Some(r) => {
                versions::fresh_enough(r, current)?;
                r
            }
            None => current,
        };
        (Vec::new(), start)
    };
    let events = match app.store.watch(&prefix, start).await {
        Ok(s) => Ok(s),
        Err(e @ StorageError::Compacted { .. }) => Err(Error::from(e)),
        Err(e) => return Err(e.into()),
    };
    let (tx, rx) = mpsc::channel(64);
    let timeout = p.timeout_seconds.map(Duration::from_secs).unwrap_or(app.opts.default_watch_timeout);
    let pump = Pump { app: app.clone(), ctx, filter, tx, last: start };
    tokio::spawn(pump.run(items, streaming, events, timeout));
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
    async fn run(
        mut self,
        items: Vec<Value>,
        streaming: bool,
        events: Result<BoxStream<'static, crate::storage::Result<Event>>>,
        timeout: Duration,
    ) {
        let mut events = match events {
            Ok(e) => e,
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
                ev = events.next() => match ev {
                    Some(Ok(ev)) => {
                        self.last = ev.revision();
                        if let Some((kind, obj)) = self.convert(ev) {
                            let shown = self.render(&obj);
                            if !self.send(kind, shown).await {
                                return;
                            }
                        }
                    }
                    Some(Err(e)) => {
                        self.send("ERROR", Error::from(e).status()).await;
                        return;
                    }
                    None => return,
                },
                _ = ticks.tick(), if bookmarks => {
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

    /// The watch event for a storage event, after selectors.
    fn convert(&self, ev: Event) -> Option<(&'static str, Value)> {
        let kind = &self.ctx.kind;
        match ev {
            Event::Put { kv, prev } => {
                let obj = object::decode(kind, &kv).ok()?;
                let now = self.filter.matches(&obj);
                let before = prev.and_then(|p| object::decode(kind, &p).ok()).map(|o| self.filter.matches(&o));
                match (before, now) {
                    (Some(true), true) => Some(("MODIFIED", obj)),
                    (_, true) => Some(("ADDED", obj)),
                    (Some(true), false) => Some(("DELETED", obj)),
                    _ => None,
                }
            }
            Event::Delete { prev, revision } => {
                let mut obj = object::decode(kind, &prev).ok()?;
                object::set_revision(&mut obj, revision);
                self.filter.matches(&obj).then_some(("DELETED", obj))
            }
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
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap_or_default();
        line.push(b'\n');
        self.tx.send(Ok(Bytes::from(line))).await.is_ok()
    }
}
