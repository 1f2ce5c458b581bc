//! GET of a collection: `{Kind}List` (or a Table), with selectors and
//! `limit`/`continue` paging. Later pages are read at the revision of the
//! first, so a paged list is one consistent snapshot. Lists at
//! `resourceVersion=0` or `NotOlderThan`, and consistent lists (no
//! resourceVersion) once the cache has reached storage's current revision,
//! are served from the watch cache (their later pages from storage at the
//! first page's revision); `Exact` lists and `continue` pages from storage.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::filter::Filter;
use super::negotiate::{self, Output};
use super::versions::{self, ListAt};
use super::{App, Ctx, object, table};
use crate::error::{Error, Result};
use crate::storage::{Storage, StorageError};

pub async fn run<S: Storage>(app: &App<S>, ctx: &Ctx) -> Result<Response> {
    let filter = Filter::new(ctx)?;
    let page = read_page(app, ctx, &filter).await?;
    let mut meta = json!({"resourceVersion": page.revision.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = Value::String(c.clone());
    }
    let body = match ctx.output {
        Output::Object => json!({
            "kind": ctx.kind.list_kind,
            "apiVersion": ctx.kind.api_version(),
            "metadata": meta,
            "items": page.items,
        }),
        Output::Table(v) => {
            let now = jiff::Timestamp::now();
            let rows = page.items.iter().map(|o| table::row(&ctx.kind, o, ctx.params.include_object, now)).collect();
            table::table(&ctx.kind, v, rows, meta)
        }
        Output::Metadata(v) => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": format!("meta.k8s.io/{v}"),
            "metadata": meta,
            "items": page.items.iter().map(|o| table::partial_metadata(o, v)).collect::<Vec<_>>(),
        }),
    };
    Ok(negotiate::json(StatusCode::OK, &body, ctx.params.pretty))
}

/// How long a list waits for the cache to reach the revision it asks for
/// before reading storage instead.
const CACHE_WAIT: Duration = Duration::from_secs(3);
/// The same for a consistent list, which storage can always serve.
const CONSISTENT_CACHE_WAIT: Duration = Duration::from_millis(100);

pub struct Page {
    pub items: Vec<Value>,
    pub revision: u64,
    pub continue_token: Option<String>,
}

/// One page of matching objects.
pub async fn read_page<S: Storage>(app: &App<S>, ctx: &Ctx, filter: &Filter) -> Result<Page> {
    let prefix = ctx.kind.prefix(ctx.namespace.as_deref());
    let at = versions::list_at(&ctx.params, decode_token)?;
    let (mut revision, mut start, not_older_than) = match at {
        ListAt::Continue { revision, after } => {
            if !after.starts_with(&prefix) {
                return Err(Error::BadRequest("continue: the token belongs to another list".into()));
            }
            (revision, Some(after), 0)
        }
        ListAt::Exact(rev) => {
            let current = app.store.current_revision().await?;
            versions::fresh_enough(rev, current)?;
            (rev, None, 0)
        }
        ListAt::Latest { not_older_than } => {
            // `0` and `NotOlderThan` may be served from memory once the cache is new enough;
            // a consistent list (no resourceVersion) too, once the cache has caught up with
            // the revision storage is at now (Kubernetes' consistent reads from cache).
            // A consistent list waits only briefly: on a store shared with other writers
            // (etcd keys outside Berth's prefix) the cache may never see the newest
            // revision, and storage answers as well.
            let (wanted, wait) = match ctx.params.resource_version {
                Some(_) => (not_older_than, CACHE_WAIT),
                None => (app.store.current_revision().await?, CONSISTENT_CACHE_WAIT),
            };
            if app.cache.wait_for(wanted, wait).await {
                let listed = app.cache.list(&prefix, None, ctx.params.limit, &|v| filter.matches(v));
                return Ok(Page {
                    items: listed.entries.iter().map(|e| e.shown(&ctx.kind, e.revision)).collect(),
                    revision: listed.revision,
                    continue_token: listed.more_after.map(|k| encode_token(listed.revision, &k)),
                });
            }
            (0, None, not_older_than)
        }
    };
    let limit = ctx.params.limit;
    let mut items = Vec::new();
    loop {
        let want = if limit == 0 { 0 } else { limit - items.len() };
        let range = match app.store.range(&prefix, start.as_deref(), revision, want).await {
            Ok(r) => r,
            Err(StorageError::Compacted { .. }) if ctx.params.continue_token.is_some() => {
                // Revision 0 in a token continues at the latest revision.
                let after = start.as_deref().unwrap_or(&prefix);
                return Err(Error::ExpiredContinue(encode_token(0, after)));
            }
            Err(StorageError::Compacted { .. }) => {
                return Err(Error::Expired("The resourceVersion for the provided list is too old.".into()));
            }
            Err(e) => return Err(e.into()),
        };
        if revision == 0 {
            versions::fresh_enough(not_older_than, range.revision)?;
        }
        revision = range.revision;
        for kv in &range.kvs {
            start = Some(kv.key.clone());
            let obj = object::decode(&ctx.kind, kv)?;
            if filter.matches(&obj) {
                items.push(obj);
            }
        }
        if !range.more {
            return Ok(Page { items, revision, continue_token: None });
        }
        if limit > 0 && items.len() >= limit {
            let token = start.map(|k| encode_token(revision, &k));
            return Ok(Page { items, revision, continue_token: token });
        }
    }
}

fn encode_token(revision: u64, key: &str) -> String {
    format!("{revision}/{key}").bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(t: &str) -> Result<(u64, String)> {
    let bad = || Error::BadRequest(format!("continue: invalid continue token {t:?}"));
    if !t.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..t.len())
        .step_by(2)
        .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (rev, key) = text.split_once('/').ok_or_else(bad)?;
    Ok((rev.parse().map_err(|_| bad())?, key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_token(42, "/registry/berth.dev/jobs/default/a");
        assert_eq!(decode_token(&t).expect("decode"), (42, "/registry/berth.dev/jobs/default/a".to_string()));
        assert!(decode_token("zz").is_err());
        assert!(decode_token("abc").is_err());
    }
}
