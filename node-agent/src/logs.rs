//! The agent's log server: `GET /logs/{namespace}/{placement}` returns what
//! the container wrote; `?follow=true` keeps streaming until it exits.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::AgentContext;
use crate::runtime::Runtime;

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    follow: bool,
}

/// The log server's routes.
pub fn router<R: Runtime>(ctx: Arc<AgentContext<R>>) -> Router {
    Router::new().route("/logs/{namespace}/{name}", get(logs::<R>)).with_state(ctx)
}

async fn logs<R: Runtime>(
    State(ctx): State<Arc<AgentContext<R>>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let path = ctx.config.log_path(&namespace, &name);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => {
            return (StatusCode::NOT_FOUND, format!("no logs for placement {namespace}/{name} on this agent\n"))
                .into_response();
        }
    };
    let key = format!("{namespace}/{name}");
    let stream = futures::stream::unfold((file, ctx, key, q.follow), |(mut file, ctx, key, follow)| async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buf).await {
                Ok(0) if follow && ctx.is_running(&key) => tokio::time::sleep(Duration::from_millis(200)).await,
                Ok(0) => {
                    // One last read: the container may have written just before it exited.
                    let n = file.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return None;
                    }
                    buf.truncate(n);
                    return Some((Ok::<_, std::io::Error>(buf), (file, ctx, key, false)));
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Some((Ok(buf), (file, ctx, key, follow)));
                }
                Err(e) => return Some((Err(e), (file, ctx, key, false))),
            }
        }
    });
    Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
