//! A test Kubernetes API server: the few endpoints the `runner` binary
//! uses, in the real REST wire format, over plain HTTP on 127.0.0.1, with
//! no authentication. It stands in for a cluster in end-to-end tests of
//! the runner (kube-rs client and watcher), and plays the Job controller
//! and the kubelet too: a created Job gets a pod that really runs the built
//! assessor and relay through [`crate::kubelet`], and the Job's status then
//! reads as the real controller would write it.
//!
//! Endpoints (any namespace):
//! - ConfigMaps `/api/v1/namespaces/{ns}/configmaps[/{name}]`: create
//!   (with `generateName`), get, list, watch, merge-patch, delete,
//!   delete-collection;
//! - Jobs `/apis/batch/v1/namespaces/{ns}/jobs[/{name}]`: the same (but
//!   patching only metadata makes sense), deletion with
//!   `propagationPolicy` (Background/Foreground delete the Job's pods and
//!   every object whose `ownerReferences` name it; absent means Orphan,
//!   the real default for batch/v1);
//! - Pods `/api/v1/namespaces/{ns}/pods[/{name}]`: get, list, watch (the
//!   server makes them; clients do not);
//! - `/version`; anything else is a 404 `Status`.
//!
//! Watches (`?watch=true`) stream one JSON event per line, replay the
//! history after `resourceVersion`, send a BOOKMARK before they close
//! (after `timeoutSeconds`, at most 60 s), and answer a compacted
//! resourceVersion with an ERROR event of 410 Expired, so kube's watcher
//! re-lists.
//!
//! Modules: [`store`] (objects, resourceVersions, history), `objects`
//! (admission and merge patches), `select` (label and field selectors),
//! `status` (`Status` answers), `routes` (the HTTP side), `watch` (watch
//! streams), `controller` (the Job controller and kubelet), `gc` (the
//! garbage collector).

mod controller;
mod gc;
mod objects;
mod routes;
mod select;
mod status;
mod store;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::{AbortHandle, JoinHandle};

use crate::kubelet::Kubelet;
use status::ApiError;
use store::{Kind, Store};

/// Prepares the kubelet of every pod before it runs: the test's judge and
/// notifier URLs (`set_env`), host directories for PVCs (`host_volumes`).
pub type Configure = Arc<dyn Fn(&mut Kubelet) + Send + Sync>;

/// What the cluster holds besides what clients create, and how its pods
/// run.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Objects that exist from the start, as the deployment put them there
    /// (e.g. the Secret, ServiceAccount and NetworkPolicy of
    /// `deploy/rendered/base.yaml`). ConfigMaps among them are served like
    /// created ones (in their `metadata.namespace`, default `shortlist`);
    /// every other object is only handed to the kubelet of every pod (its
    /// Secrets back `secret` volumes and `secretKeyRef`s).
    pub seed: Vec<Value>,
    /// The built assessor binary (what `assessor` images run).
    pub assessor: PathBuf,
    /// The built relay binary (what `relay` images run).
    pub relay: PathBuf,
    /// Applied to every pod's kubelet before it runs.
    pub configure: Configure,
}

impl ClusterOptions {
    /// No seed objects, and pods run as the manifests say.
    pub fn new(assessor: PathBuf, relay: PathBuf) -> ClusterOptions {
        ClusterOptions {
            seed: Vec::new(),
            assessor,
            relay,
            configure: Arc::new(|_| {}),
        }
    }

    pub fn seed(mut self, objects: impl IntoIterator<Item = Value>) -> ClusterOptions {
        self.seed.extend(objects);
        self
    }

    pub fn configure(
        mut self,
        configure: impl Fn(&mut Kubelet) + Send + Sync + 'static,
    ) -> ClusterOptions {
        self.configure = Arc::new(configure);
        self
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub content_type: Option<String>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// One query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// Whether this is a watch (`?watch=true`).
    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch").as_deref(), Some("true" | "1"))
    }
}

/// Failures the test asked for.
#[derive(Default)]
struct Faults {
    /// Answer this many more requests with 503.
    unavailable: usize,
    /// Answer every Job creation with this.
    refuse_jobs: Option<ApiError>,
    /// Answer every ConfigMap patch with this.
    refuse_config_map_patches: Option<ApiError>,
    /// Do this many more creations, then lose their answers (the
    /// connection breaks mid-response).
    lose_creation_answers: usize,
}

/// What the HTTP side, the controllers and the handle share.
struct Shared {
    store: Mutex<Store>,
    /// Seed objects that are not ConfigMaps (for the kubelet).
    seed: Vec<Value>,
    assessor: PathBuf,
    relay: PathBuf,
    configure: Configure,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Job uid → its controller task (aborting it kills the pod).
    runs: Mutex<HashMap<String, AbortHandle>>,
    /// Bumped to close the listener, its connections and every watch.
    stop: tokio::sync::watch::Sender<u64>,
}

/// Locks `mutex`; a panic elsewhere while holding it does not matter here.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }
}

/// A running test API server; dropping it stops it, its watches and every
/// pod it runs.
pub struct ApiServer {
    shared: Arc<Shared>,
    port: u16,
    serving: Mutex<Option<JoinHandle<()>>>,
}

impl ApiServer {
    /// Serves on a port of its own (`127.0.0.1:0`).
    pub async fn start(options: ClusterOptions) -> ApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a bound listener").port();
        let server = ApiServer::down_on(port, options);
        server.serve(listener);
        server
    }

    /// Serves on `port` (from `testkit::unbound_port`, say), retrying the
    /// bind for a few seconds in case the port is in TIME_WAIT.
    pub async fn start_on(port: u16, options: ClusterOptions) -> ApiServer {
        let server = ApiServer::down_on(port, options);
        server.listen().await;
        server
    }

    /// A server for `port` that does not listen yet (connections are
    /// refused) until [`ApiServer::listen`]: an API server that is down
    /// when the client starts.
    pub fn down_on(port: u16, options: ClusterOptions) -> ApiServer {
        let mut store = Store::new();
        let mut seed = Vec::new();
        for object in options.seed {
            if object["kind"] == "ConfigMap" {
                let namespace = object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("shortlist")
                    .to_string();
                match objects::admit(Kind::ConfigMap, &namespace, object) {
                    Ok(admitted) => {
                        store.insert(Kind::ConfigMap, &namespace, admitted);
                    }
                    Err(error) => panic!("a seed ConfigMap is invalid: {}", error.message),
                }
            } else {
                seed.push(object);
            }
        }
        ApiServer {
            shared: Arc::new(Shared {
                store: Mutex::new(store),
                seed,
                assessor: options.assessor,
                relay: options.relay,
                configure: options.configure,
                faults: Mutex::new(Faults::default()),
                requests: Mutex::new(Vec::new()),
                runs: Mutex::new(HashMap::new()),
                stop: tokio::sync::watch::channel(0).0,
            }),
            port,
            serving: Mutex::new(None),
        }
    }

    /// Starts listening on this server's port (again); a no-op while it
    /// listens.
    pub async fn listen(&self) {
        if lock(&self.serving).is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot bind 127.0.0.1:{}: {e}", self.port),
            }
        };
        self.serve(listener);
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let mut stop = self.shared.stop.subscribe();
        let app = routes::router(self.shared.clone());
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.changed().await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        *lock(&self.serving) = Some(task);
    }

    /// Stops listening and closes every connection and watch (the objects
    /// and running pods stay): an API server that went away. Listen again
    /// with [`ApiServer::listen`].
    pub async fn stop_listening(&self) {
        self.shared.stop.send_modify(|epoch| *epoch += 1);
        let task = lock(&self.serving).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes `dir/kubeconfig`: this server, a context whose namespace is
    /// `shortlist`, a user without credentials. Returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    namespace: shortlist\n    user: test\n\
             current-context: test\nusers:\n- name: test\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        );
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("{}: cannot write: {e}", path.display()));
        path
    }

    /// Answers every later Job creation with this `Status` (403 Forbidden
    /// for missing RBAC, 422 Invalid, ...).
    pub fn refuse_job_creation(&self, code: u16, reason: &str, message: &str) {
        lock(&self.shared.faults).refuse_jobs = Some(ApiError::new(code, reason, message));
    }

    /// Answers every later ConfigMap patch with this `Status` (a missing
    /// `patch` verb is 403 Forbidden).
    pub fn refuse_config_map_patches(&self, code: u16, reason: &str, message: &str) {
        lock(&self.shared.faults).refuse_config_map_patches =
            Some(ApiError::new(code, reason, message));
    }

    /// Carries out the next `n` creations (ConfigMaps or Jobs) but breaks
    /// the connection before the answer is complete: the client cannot
    /// tell whether the object was made.
    pub fn lose_creation_answers(&self, n: usize) {
        lock(&self.shared.faults).lose_creation_answers = n;
    }

    /// Accepts Job creations again.
    pub fn accept_job_creation(&self) {
        lock(&self.shared.faults).refuse_jobs = None;
    }

    /// Answers the next `n` requests, whatever they are, with 503
    /// ServiceUnavailable.
    pub fn unavailable_for(&self, n: usize) {
        lock(&self.shared.faults).unavailable = n;
    }

    /// Forgets the watch history, as etcd compaction does: a watch from an
    /// earlier resourceVersion gets 410 Expired.
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// Every request received so far, in order (503-answered ones too).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// The ConfigMaps in `namespace` now, by name.
    pub fn config_maps(&self, namespace: &str) -> Vec<Value> {
        self.shared.store().list(Kind::ConfigMap, namespace)
    }

    /// The Jobs in `namespace` now, by name.
    pub fn jobs(&self, namespace: &str) -> Vec<Value> {
        self.shared.store().list(Kind::Job, namespace)
    }

    /// The pods in `namespace` now, by name.
    pub fn pods(&self, namespace: &str) -> Vec<Value> {
        self.shared.store().list(Kind::Pod, namespace)
    }

    /// Waits up to `within` for Job `name` to finish (a `Complete` or
    /// `Failed` condition); the Job then, or `None` (gone, or still
    /// running).
    pub async fn job_finished(
        &self,
        namespace: &str,
        name: &str,
        within: Duration,
    ) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let job = self
                .shared
                .store()
                .get(Kind::Job, namespace, name)
                .cloned()?;
            if controller::finished(&job) {
                return Some(job);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.stop.send_modify(|epoch| *epoch += 1);
        if let Some(task) = lock(&self.serving).take() {
            task.abort();
        }
        for (_, run) in lock(&self.shared.runs).drain() {
            run.abort();
        }
    }
}
