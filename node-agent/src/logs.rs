//! The agent's log server: `GET /logs/{namespace}/{placement}` returns what
//! the container wrote — its rotated copies (oldest first), then the
//! current file; `?follow=true` keeps streaming until it exits, across
//! rotations of the file it reads.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::runtime::Runtime;
use crate::{AgentContext, rotate};

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
    // The rotated copies first, oldest first; then the current file.
    let mut older = Vec::new();
    for p in rotate::rotated_oldest_first(&path, ctx.config.log_max_files) {
        if let Ok(f) = tokio::fs::File::open(&p).await {
            older.push(f);
        }
    }
    let key = format!("{namespace}/{name}");
    let state = Reading { older: older.into(), file, path, pos: 0, ctx, key, follow: q.follow };
    let stream = futures::stream::unfold(state, |mut st| async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Some(f) = st.older.front_mut() {
            match f.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    st.older.pop_front();
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Some((Ok::<_, std::io::Error>(buf), st));
                }
            }
        }
        loop {
            match st.file.read(&mut buf).await {
                Ok(0) if st.follow && st.ctx.is_running(&st.key) => {
                    if let Some(missed) = st.rotated_under_us().await {
                        if !missed.is_empty() {
                            return Some((Ok(missed), st));
                        }
                        continue;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Ok(0) => {
                    // One last read: the container may have written just before it exited.
                    let n = st.file.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return None;
                    }
                    buf.truncate(n);
                    st.pos += n as u64;
                    st.follow = false;
                    return Some((Ok(buf), st));
                }
                Ok(n) => {
                    buf.truncate(n);
                    st.pos += n as u64;
                    return Some((Ok(buf), st));
                }
                Err(e) => {
                    st.follow = false;
                    return Some((Err(e), st));
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Where a log reader stands.
struct Reading<R> {
    /// Rotated copies not yet read.
    older: VecDeque<tokio::fs::File>,
    /// The current log, and how far into it this reader is.
    file: tokio::fs::File,
    path: PathBuf,
    pos: u64,
    ctx: Arc<AgentContext<R>>,
    key: String,
    follow: bool,
}

impl<R> Reading<R> {
    /// When the current log was truncated by a rotation since the last read:
    /// what this reader had not yet read of it (now the tail of `.1`), and
    /// the reader moves to the start of the truncated file.
    async fn rotated_under_us(&mut self) -> Option<Vec<u8>> {
        let len = self.file.metadata().await.ok()?.len();
        if len >= self.pos {
            return None;
        }
        let mut missed = Vec::new();
        if let Ok(mut copy) = tokio::fs::File::open(rotate::rotated(&self.path, 1)).await
            && copy.seek(SeekFrom::Start(self.pos)).await.is_ok()
        {
            let _ = copy.read_to_end(&mut missed).await;
        }
        self.file.seek(SeekFrom::Start(0)).await.ok()?;
        self.pos = 0;
        Some(missed)
    }
}
