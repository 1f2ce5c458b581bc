//! A recording runtime with no containers, for tests of the agent's and the
//! controllers' decisions only. A container "exits" with the code in its
//! `FAKE_EXIT` environment variable (default 0) once released, or when
//! killed (128 + the signal; one with `FAKE_IGNORE_TERM=1` ignores SIGTERM
//! as a process trapping it would); a command exec'd in a container exits
//! with the code in its `FAKE_EXEC_EXIT` (default 0) unless a test scripts
//! the outcome with [`Fake::script_exec`]; images whose reference contains
//! `missing` fail to pull, those containing `flaky` fail their first two
//! pulls, and pulls of those containing `slow` wait until
//! [`Fake::open_pulls`]. A pulled image counts 1000 bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::runtime::{
    ContainerInfo, ContainerSpec, ExecOutcome, ExitStatus, ImageInfo, RegistryAuth, Runtime, RuntimeError,
};

/// What the fake was asked to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Pull(String),
    Start(String),
    Kill(String, i32),
    /// A command exec'd in a container: its id and argv.
    Exec(String, Vec<String>),
    Remove(String),
    RemoveImage(String),
}

struct Container {
    image: String,
    labels: BTreeMap<String, String>,
    exit: watch::Sender<Option<i32>>,
    ignore_term: bool,
    /// What a command exec'd in it ends with.
    exec: ExecOutcome,
}

/// The fake runtime. With `hold`, containers run until [`Fake::release`].
#[derive(Default)]
pub struct Fake {
    pub hold: bool,
    calls: Mutex<Vec<Call>>,
    containers: Mutex<HashMap<String, Container>>,
    /// Pulled images and when.
    images: Mutex<BTreeMap<String, i64>>,
    /// Container id → the environment it was started with.
    envs: Mutex<HashMap<String, Vec<(String, String)>>>,
    pulls_open: std::sync::atomic::AtomicBool,
    pulls: tokio::sync::Notify,
}

impl Fake {
    /// A fake whose containers exit at once (`hold = false`) or wait for [`Fake::release`].
    pub fn new(hold: bool) -> Self {
        Fake { hold, ..Default::default() }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lets a held container exit with `code`.
    pub fn release(&self, id: &str, code: i32) {
        if let Some(c) = self.containers.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            c.exit.send_replace(Some(code));
        }
    }

    /// Lets every pull of a `slow` image, waiting or to come, finish.
    pub fn open_pulls(&self) {
        self.pulls_open.store(true, std::sync::atomic::Ordering::SeqCst);
        self.pulls.notify_waiters();
    }

    /// Makes every later command exec'd in container `id` end with `outcome`.
    pub fn script_exec(&self, id: &str, outcome: ExecOutcome) {
        if let Some(c) = self.containers.lock().unwrap_or_else(|e| e.into_inner()).get_mut(id) {
            c.exec = outcome;
        }
    }

    /// The environment container `id` was started with, if it was.
    pub fn env_of(&self, id: &str) -> Option<Vec<(String, String)>> {
        self.envs.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }
}

impl Runtime for Fake {
    async fn pull(&self, image: &str, _auth: Option<&RegistryAuth>) -> Result<(), RuntimeError> {
        self.record(Call::Pull(image.to_string()));
        while image.contains("slow") {
            let opened = self.pulls.notified();
            if self.pulls_open.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            opened.await;
        }
        if image.contains("missing") {
            return Err(RuntimeError::ImagePull { image: image.into(), message: "manifest unknown".into() });
        }
        let tries = self.calls().iter().filter(|c| **c == Call::Pull(image.to_string())).count();
        if image.contains("flaky") && tries <= 2 {
            return Err(RuntimeError::ImagePull { image: image.into(), message: format!("try {tries} failed") });
        }
        let now = jiff::Timestamp::now().as_second();
        self.images.lock().unwrap_or_else(|e| e.into_inner()).insert(image.to_string(), now);
        Ok(())
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        self.record(Call::Start(spec.id.clone()));
        self.envs.lock().unwrap_or_else(|e| e.into_inner()).insert(spec.id.clone(), spec.env.clone());
        let code = spec.env.iter().find(|(k, _)| k == "FAKE_EXIT").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let (exit, _) = watch::channel(if self.hold { None } else { Some(code) });
        let (labels, image) = (spec.labels.clone(), spec.image.clone());
        let ignore_term = spec.env.iter().any(|(k, v)| k == "FAKE_IGNORE_TERM" && v == "1");
        let exec_code = spec.env.iter().find(|(k, _)| k == "FAKE_EXEC_EXIT").and_then(|(_, v)| v.parse().ok());
        let exec = ExecOutcome::Exited { code: exec_code.unwrap_or(0), output: String::new() };
        let container = Container { image, labels, exit, ignore_term, exec };
        self.containers.lock().unwrap_or_else(|e| e.into_inner()).insert(spec.id.clone(), container);
        Ok(())
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        let mut rx = match self.containers.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            Some(c) => c.exit.subscribe(),
            None => return Err(RuntimeError::NotFound(id.into())),
        };
        let code = rx.wait_for(Option::is_some).await.map_err(|_| RuntimeError::NotFound(id.into()))?.unwrap_or(0);
        Ok(ExitStatus { code, oom_killed: false, finished_at: berth_api::now_rfc3339() })
    }

    async fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        self.record(Call::Kill(id.into(), signal));
        let ignored = signal == libc::SIGTERM
            && self.containers.lock().unwrap_or_else(|e| e.into_inner()).get(id).is_some_and(|c| c.ignore_term);
        if !ignored {
            self.release(id, 128 + signal);
        }
        Ok(())
    }

    async fn exec(
        &self,
        id: &str,
        argv: &[String],
        _timeout: std::time::Duration,
    ) -> Result<ExecOutcome, RuntimeError> {
        self.record(Call::Exec(id.into(), argv.to_vec()));
        let containers = self.containers.lock().unwrap_or_else(|e| e.into_inner());
        match containers.get(id) {
            Some(c) if c.exit.borrow().is_none() => Ok(c.exec.clone()),
            _ => Err(RuntimeError::NotFound(id.into())),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(Call::Remove(id.into()));
        self.containers.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let containers = self.containers.lock().unwrap_or_else(|e| e.into_inner());
        Ok(containers
            .iter()
            .map(|(id, c)| ContainerInfo {
                id: id.clone(),
                labels: c.labels.clone(),
                running: c.exit.borrow().is_none(),
            })
            .collect())
    }

    async fn images(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        let containers = self.containers.lock().unwrap_or_else(|e| e.into_inner());
        let images = self.images.lock().unwrap_or_else(|e| e.into_inner());
        Ok(images
            .iter()
            .map(|(name, at)| ImageInfo {
                name: name.clone(),
                blobs: vec![(format!("sha256:{name}"), 1000)],
                updated_at: *at,
                in_use: containers.values().any(|c| c.image == *name),
            })
            .collect())
    }

    async fn remove_image(&self, name: &str) -> Result<(), RuntimeError> {
        let containers = self.containers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, _)) = containers.iter().find(|(_, c)| c.image == name) {
            return Err(RuntimeError::ImageInUse { image: name.into(), container: id.clone() });
        }
        self.record(Call::RemoveImage(name.into()));
        self.images.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        Ok(())
    }

    async fn version(&self) -> Result<String, RuntimeError> {
        Ok("fake 0".into())
    }
}
