//! containerd's content store: streaming a blob in (verified by its digest
//! and size), reading one back, and the lease that keeps a pull's blobs and
//! snapshots from the garbage collector until the image record holds them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{
    CreateRequest, DeleteRequest, InfoRequest, ReadContentRequest, WriteAction, WriteContentRequest,
};
use futures::stream::{BoxStream, StreamExt};
use tonic::metadata::{Ascii, MetadataValue};

use super::Containerd;
use super::connect::{grpc, is_not_found};
use super::image::Desc;
use crate::runtime::RuntimeError;

/// How long a write waits for another writer of the same blob (containerd
/// locks a write by its ref) before giving up.
const LOCKED_WAIT: Duration = Duration::from_secs(300);

/// A lease named for one pull; containerd drops it by itself after an hour
/// should the agent die before [`Lease::end`].
pub(super) struct Lease {
    id: String,
    pub header: MetadataValue<Ascii>,
}

impl Lease {
    pub async fn begin(c: &Containerd) -> Result<Lease, RuntimeError> {
        let id = format!("berth-pull-{}", uuid_like());
        let header = id.parse().map_err(|_| RuntimeError::Other(format!("lease id {id} is not a header value")))?;
        let expire = berth_api::format_time(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1));
        let labels = HashMap::from([("containerd.io/gc.expire".to_string(), expire)]);
        LeasesClient::new(c.channel.clone())
            .create(c.request(CreateRequest { id: id.clone(), labels }))
            .await
            .map_err(grpc("creating a lease"))?;
        Ok(Lease { id, header })
    }

    pub async fn end(self, c: &Containerd) {
        let req = c.request(DeleteRequest { id: self.id.clone(), sync: false });
        if let Err(s) = LeasesClient::new(c.channel.clone()).delete(req).await {
            tracing::warn!(lease = %self.id, error = %s.message(), "ending a pull's lease");
        }
    }
}

/// Streams `data` into the content store as `desc`, with `labels`; a blob
/// already present is left as it is.
pub(super) async fn write(
    c: &Containerd,
    lease: &Lease,
    desc: &Desc,
    mut data: BoxStream<'static, Result<Bytes, std::io::Error>>,
    labels: HashMap<String, String>,
) -> Result<(), RuntimeError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
    // The same ref for the same blob: two writers of it meet at containerd's lock.
    let reference = format!("berth-{}", desc.digest);
    let (digest, total) = (desc.digest.clone(), desc.size);
    let producer = tokio::spawn(async move {
        let message = |action: WriteAction, offset: i64, data: Vec<u8>, labels| WriteContentRequest {
            action: action as i32,
            r#ref: reference.clone(),
            total,
            expected: digest.clone(),
            offset,
            data,
            labels,
        };
        let mut offset = 0i64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| format!("downloading {digest}: {e}"))?;
            let len = i64::try_from(chunk.len()).map_err(|e| e.to_string())?;
            if tx.send(message(WriteAction::Write, offset, chunk.to_vec(), HashMap::new())).await.is_err() {
                return Ok(()); // containerd ended the write; its answer says why.
            }
            offset += len;
        }
        let _ = tx.send(message(WriteAction::Commit, offset, Vec::new(), labels)).await;
        Ok::<(), String>(())
    });
    let answer = ContentClient::new(c.channel.clone())
        .write(c.leased(tokio_stream::wrappers::ReceiverStream::new(rx), &lease.header))
        .await;
    let outcome = match answer {
        Ok(resp) => {
            let mut responses = resp.into_inner();
            loop {
                match responses.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => break Ok(()),
                    Err(s) => break Err(s),
                }
            }
        }
        Err(s) => Err(s),
    };
    producer.abort();
    let produced = producer.await.unwrap_or(Ok(()));
    match outcome {
        Ok(()) => produced.map_err(RuntimeError::Other),
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
        // Someone else is writing this blob right now: wait for it to land.
        Err(s) if s.code() == tonic::Code::Unavailable && s.message().contains("locked") => {
            wait_until_present(c, &desc.digest).await
        }
        Err(s) => Err(grpc(format!("writing {} to the content store", desc.digest))(s)),
    }
}

async fn wait_until_present(c: &Containerd, digest: &str) -> Result<(), RuntimeError> {
    let deadline = Instant::now() + LOCKED_WAIT;
    let mut pause = Duration::from_millis(50);
    while Instant::now() < deadline {
        if exists(c, digest).await? {
            return Ok(());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
    Err(RuntimeError::Other(format!("{digest} was being written by another pull that did not finish")))
}

/// True when the blob is in the content store.
pub(super) async fn exists(c: &Containerd, digest: &str) -> Result<bool, RuntimeError> {
    match ContentClient::new(c.channel.clone()).info(c.request(InfoRequest { digest: digest.to_string() })).await {
        Ok(_) => Ok(true),
        Err(s) if is_not_found(&s) => Ok(false),
        Err(s) => Err(grpc(format!("looking up {digest}"))(s)),
    }
}

/// Reads a whole blob from the content store.
pub(super) async fn read_content(c: &Containerd, digest: &str) -> Result<Vec<u8>, RuntimeError> {
    let mut stream = ContentClient::new(c.channel.clone())
        .read(c.request(ReadContentRequest { digest: digest.to_string(), offset: 0, size: 0 }))
        .await
        .map_err(grpc(format!("reading {digest}")))?
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(grpc(format!("reading {digest}")))? {
        out.extend_from_slice(&chunk.data);
    }
    Ok(out)
}

/// A random hex string for names that must not collide (leases, keys).
pub(super) fn uuid_like() -> String {
    use sha2::{Digest as _, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = format!("{:?} {} {n}", std::time::SystemTime::now(), std::process::id());
    hex::encode(&Sha256::digest(seed)[..8])
}
