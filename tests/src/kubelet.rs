//! A kubelet in miniature: runs one pod of a rendered Job with the built
//! binaries, the way the kubelet would on a node.
//!
//! - Volumes: `emptyDir` → a temp dir; `configMap` / `secret` → laid out like
//!   the kubelet's AtomicWriter (a timestamped hidden dir, a `..data` symlink
//!   to it, one `key -> ..data/key` symlink per key); any other volume (a
//!   PVC) → a host directory the test names.
//! - Containers: the image picks the binary; `command`/`args` are kept;
//!   `env` / `envFrom` are resolved (values, `$(VAR)` references, ConfigMap
//!   and Secret keys, the downward API), paths under a `mountPath` are
//!   rewritten into the volume's temp dir, Indexed Jobs get
//!   `JOB_COMPLETION_INDEX`, then the test's substitutions apply. Each runs
//!   in an empty "root filesystem" dir that must stay empty
//!   (`readOnlyRootFilesystem`).
//! - Lifecycle: native sidecars (`initContainers` with `restartPolicy:
//!   Always`) start first, in order; then the regular containers. When every
//!   regular container has exited, the sidecars get SIGTERM in reverse order
//!   and the pod's `terminationGracePeriodSeconds` (default 30 s) before
//!   SIGKILL.
//! - Outcome: the pod phase (Succeeded when every regular container exited
//!   0) and the Job controller's reading of it through `podFailurePolicy`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::manifests::Manifests;

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit code as Kubernetes reports it (128 + signal when killed).
    pub code: i32,
    /// Killed by a signal (SIGKILL = 9).
    pub signal: Option<i32>,
}

/// One container's run.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    pub name: String,
    pub sidecar: bool,
    pub exit: Exit,
    /// Stopped by the kubelet (SIGTERM at pod shutdown), not on its own.
    pub stopped_by_kubelet: bool,
    pub started_at: Duration,
    pub ended_at: Duration,
    pub stdout: String,
    pub stderr: String,
    pub env: BTreeMap<String, String>,
    /// What the kubelet reports as the container's termination message: its
    /// `terminationMessagePath` file (at most 4096 bytes), or with
    /// `FallbackToLogsOnError` and a failed, silent container, the end of
    /// its log.
    pub termination_message: String,
}

/// The pod phase after all containers ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Succeeded,
    Failed,
}

/// What the Job controller does with a finished pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// The pod succeeded: one completion.
    Complete,
    /// A `podFailurePolicy` rule said `FailJob`.
    FailJob,
    /// A rule said `FailIndex` (Indexed Jobs with `backoffLimitPerIndex`).
    FailIndex,
    /// A rule said `Ignore`: retried without counting.
    Ignore,
    /// No rule matched (or `Count`): counts towards `backoffLimit`, so the
    /// pod is retried while failures stay within it.
    Count,
}

/// The pod after it ended.
#[derive(Debug)]
pub struct PodRun {
    pub root: tempfile::TempDir,
    /// Volume name → its directory on this machine.
    pub volumes: BTreeMap<String, PathBuf>,
    pub containers: Vec<ContainerRun>,
    pub phase: Phase,
    /// Files written outside the volumes (must be none).
    pub rootfs_writes: Vec<PathBuf>,
    pub elapsed: Duration,
}

impl PodRun {
    pub fn container(&self, name: &str) -> &ContainerRun {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name} in the pod: {:?}", self.names()))
    }

    fn names(&self) -> Vec<&str> {
        self.containers.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn volume(&self, name: &str) -> &Path {
        self.volumes
            .get(name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    }

    /// Every container's logs, for assertion messages.
    pub fn describe(&self) -> String {
        let mut out = format!("pod phase {:?} after {:?}\n", self.phase, self.elapsed);
        for c in &self.containers {
            out.push_str(&format!(
                "--- {} (sidecar: {}) exit {:?} stopped by kubelet: {} at {:?}..{:?}\nstdout:\n{}\nstderr:\n{}\n",
                c.name, c.sidecar, c.exit, c.stopped_by_kubelet, c.started_at, c.ended_at,
                clip(&c.stdout), clip(&c.stderr)
            ));
        }
        out
    }

    /// The Job controller's reading of this pod, through the Job's
    /// `podFailurePolicy` (rules in order, first match wins).
    pub fn job_action(&self, job: &Value) -> JobAction {
        if self.phase == Phase::Succeeded {
            return JobAction::Complete;
        }
        self.failure_rule(job)
            .map_or(JobAction::Count, |matched| matched.action)
    }

    /// The first `podFailurePolicy` rule of `job` this pod's failure
    /// matches, with the container whose exit code matched it (what the
    /// real controller names in the Job's `Failed` condition).
    pub fn failure_rule(&self, job: &Value) -> Option<RuleMatch<'_>> {
        let rules = job["spec"]["podFailurePolicy"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (index, rule) in rules.iter().enumerate() {
            // onPodConditions: this kubelet never sets DisruptionTarget.
            let Some(on) = rule.get("onExitCodes") else {
                continue;
            };
            let values: Vec<i64> = on["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect();
            let operator = on["operator"].as_str().unwrap_or("In");
            let matched = self.containers.iter().find(|c| {
                // Sidecars stopped at pod shutdown are not failures.
                !(c.sidecar && c.stopped_by_kubelet)
                    && c.exit.code != 0
                    && on["containerName"].as_str().is_none_or(|n| n == c.name)
                    && match operator {
                        "In" => values.contains(&(c.exit.code as i64)),
                        "NotIn" => !values.contains(&(c.exit.code as i64)),
                        other => panic!("unknown podFailurePolicy operator {other}"),
                    }
            });
            if let Some(container) = matched {
                let action = match rule["action"].as_str() {
                    Some("FailJob") => JobAction::FailJob,
                    Some("FailIndex") => JobAction::FailIndex,
                    Some("Ignore") => JobAction::Ignore,
                    Some("Count") => JobAction::Count,
                    other => panic!("unknown podFailurePolicy action {other:?}"),
                };
                return Some(RuleMatch {
                    index,
                    action,
                    container,
                });
            }
        }
        None
    }
}

/// A `podFailurePolicy` rule a failed pod matched.
#[derive(Debug, Clone, Copy)]
pub struct RuleMatch<'a> {
    /// The rule's index in `podFailurePolicy.rules`.
    pub index: usize,
    pub action: JobAction,
    /// The container whose exit code matched.
    pub container: &'a ContainerRun,
}

fn clip(text: &str) -> String {
    if text.len() <= 6000 {
        return text.to_string();
    }
    format!("{}\n…\n{}", &text[..2000], &text[text.len() - 4000..])
}

/// Runs pods of a Job from its rendered manifests.
pub struct Kubelet {
    pub manifests: Manifests,
    /// Image name substring → binary (`assessor` → the built assessor).
    pub binaries: Vec<(String, PathBuf)>,
    /// Per container: variables set or replaced after resolution (the test's
    /// notifier URL, LLM server, ...).
    pub substitutions: BTreeMap<String, Vec<(String, String)>>,
    /// Volumes that are neither emptyDir nor ConfigMap/Secret (PVCs) → a
    /// host directory.
    pub host_volumes: BTreeMap<String, PathBuf>,
    /// For an Indexed Job: this pod's index.
    pub completion_index: Option<u32>,
    /// SIGKILL this container this long after it started (an OOM kill).
    pub kill_after: Option<(String, Duration)>,
    /// Fails the test if the pod takes longer than this.
    pub guard: Duration,
}

impl Kubelet {
    /// A kubelet for `manifests` whose `assessor` and `relay` images run the
    /// given built binaries.
    pub fn new(manifests: Manifests, assessor: PathBuf, relay: PathBuf) -> Kubelet {
        Kubelet {
            manifests,
            binaries: vec![("assessor".into(), assessor), ("relay".into(), relay)],
            substitutions: BTreeMap::new(),
            host_volumes: BTreeMap::new(),
            completion_index: None,
            kill_after: None,
            guard: Duration::from_secs(120),
        }
    }

    /// Sets `variable` in `container` after resolution.
    pub fn set_env(
        &mut self,
        container: &str,
        variable: &str,
        value: impl Into<String>,
    ) -> &mut Self {
        self.substitutions
            .entry(container.to_string())
            .or_default()
            .push((variable.to_string(), value.into()));
        self
    }

    /// Runs one pod to its end.
    pub async fn run_pod(&self) -> PodRun {
        let started = Instant::now();
        let job = self.manifests.job().clone();
        let pod = &job["spec"]["template"]["spec"];
        let pod_name = format!(
            "{}-{}",
            job["metadata"]["name"].as_str().unwrap_or("job"),
            self.completion_index
                .map(|i| i.to_string())
                .unwrap_or_else(|| "x7k2p".into())
        );
        let root = tempfile::tempdir().expect("temp dir");
        let volumes = self.lay_out_volumes(pod, root.path());
        let rootfs = root.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let logs = root.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();

        let grace =
            Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30));
        let mut sidecars: Vec<Running> = Vec::new();
        let mut finished: Vec<ContainerRun> = Vec::new();

        // Init containers in order: sidecars start and keep running; plain
        // init containers run to completion first.
        for spec in pod["initContainers"].as_array().into_iter().flatten() {
            let sidecar = spec["restartPolicy"] == "Always";
            let running = self.start(
                spec, pod, &volumes, &rootfs, &logs, &pod_name, sidecar, started,
            );
            if sidecar {
                sidecars.push(running);
            } else {
                let run = running.wait(started).await;
                let failed = run.exit.code != 0;
                finished.push(run);
                if failed {
                    return self.finish(root, volumes, finished, Phase::Failed, &rootfs, started);
                }
            }
        }
        let mut mains: Vec<Running> = pod["containers"]
            .as_array()
            .expect("a pod has containers")
            .iter()
            .map(|spec| {
                self.start(
                    spec, pod, &volumes, &rootfs, &logs, &pod_name, false, started,
                )
            })
            .collect();

        let deadline = started + self.guard;
        let kill_at = self
            .kill_after
            .as_ref()
            .map(|(name, after)| (name.clone(), started + *after));
        let mut killed = false;
        // Wait for every regular container.
        loop {
            let mut all_done = true;
            for main in &mut mains {
                if main.exit.is_none() {
                    main.poll(started);
                }
                all_done &= main.exit.is_some();
            }
            if all_done {
                break;
            }
            if let Some((name, at)) = &kill_at {
                if !killed && Instant::now() >= *at {
                    for main in mains.iter_mut().chain(sidecars.iter_mut()) {
                        if &main.name == name && main.exit.is_none() {
                            main.signal("KILL");
                        }
                    }
                    killed = true;
                }
            }
            // A sidecar that exits on its own is restarted by the kubelet;
            // here that is recorded as it is (the relay should not).
            for sidecar in &mut sidecars {
                if sidecar.exit.is_none() {
                    sidecar.poll(started);
                }
            }
            assert!(
                Instant::now() < deadline,
                "the pod did not finish within {:?}; kill the test",
                self.guard
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let phase = if mains
            .iter()
            .all(|m| m.exit.as_ref().is_some_and(|e| e.code == 0))
        {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        for main in mains {
            finished.push(main.wait(started).await);
        }
        // Pod shutdown: SIGTERM to sidecars in reverse order, one grace budget.
        let shutdown = Instant::now();
        for sidecar in sidecars.iter_mut().rev() {
            if sidecar.exit.is_none() {
                sidecar.signal("TERM");
                sidecar.stopped_by_kubelet = true;
                while sidecar.exit.is_none() && shutdown.elapsed() < grace {
                    sidecar.poll(started);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if sidecar.exit.is_none() {
                    sidecar.signal("KILL");
                }
            }
        }
        for sidecar in sidecars {
            finished.push(sidecar.wait(started).await);
        }
        self.finish(root, volumes, finished, phase, &rootfs, started)
    }

    fn finish(
        &self,
        root: tempfile::TempDir,
        volumes: BTreeMap<String, PathBuf>,
        containers: Vec<ContainerRun>,
        phase: Phase,
        rootfs: &Path,
        started: Instant,
    ) -> PodRun {
        let rootfs_writes = walk(rootfs);
        PodRun {
            root,
            volumes,
            containers,
            phase,
            rootfs_writes,
            elapsed: started.elapsed(),
        }
    }

    fn lay_out_volumes(&self, pod: &Value, root: &Path) -> BTreeMap<String, PathBuf> {
        let mut dirs = BTreeMap::new();
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            let name = volume["name"]
                .as_str()
                .expect("a volume has a name")
                .to_string();
            let dir = root.join("volumes").join(&name);
            if volume.get("emptyDir").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
            } else if let Some(source) = volume.get("configMap") {
                let data = self.manifests.config_map(source["name"].as_str().unwrap());
                atomic_writer(&dir, &project(&data, source), mode(source));
            } else if let Some(source) = volume.get("secret") {
                let data = self
                    .manifests
                    .secret(source["secretName"].as_str().unwrap());
                atomic_writer(&dir, &project(&data, source), mode(source));
            } else if let Some(host) = self.host_volumes.get(&name) {
                dirs.insert(name, host.clone());
                continue;
            } else {
                panic!(
                    "volume {name}: not emptyDir/configMap/secret and no host directory given: {volume}"
                );
            }
            dirs.insert(name, dir);
        }
        dirs
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        spec: &Value,
        pod: &Value,
        volumes: &BTreeMap<String, PathBuf>,
        rootfs: &Path,
        logs: &Path,
        pod_name: &str,
        sidecar: bool,
        started: Instant,
    ) -> Running {
        let name = spec["name"]
            .as_str()
            .expect("a container has a name")
            .to_string();
        let image = spec["image"].as_str().unwrap_or_default();
        let binary = self
            .binaries
            .iter()
            .find(|(needle, _)| image.contains(needle.as_str()))
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("container {name}: no binary for image {image}"));
        // Mounts, longest path first so /results/x beats /results.
        let mut mounts: Vec<(String, PathBuf)> = spec["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let volume = m["name"].as_str().unwrap();
                let mut host = volumes
                    .get(volume)
                    .unwrap_or_else(|| panic!("container {name} mounts unknown volume {volume}"))
                    .clone();
                if let Some(sub) = m["subPath"].as_str() {
                    host = host.join(sub);
                }
                (
                    m["mountPath"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches('/')
                        .to_string(),
                    host,
                )
            })
            .collect();
        // The kubelet mounts the termination message file into every
        // container (default /dev/termination-log).
        let termination_path = logs.join(format!("{name}.termination-log"));
        std::fs::write(&termination_path, b"").unwrap();
        mounts.push((
            spec["terminationMessagePath"]
                .as_str()
                .unwrap_or("/dev/termination-log")
                .to_string(),
            termination_path.clone(),
        ));
        let fallback_to_logs = spec["terminationMessagePolicy"] == "FallbackToLogsOnError";
        mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        let env = self.resolve_env(spec, pod, &name, pod_name, &mounts);
        let mut args: Vec<String> = Vec::new();
        if let Some(command) = spec["command"].as_array() {
            args.extend(
                command
                    .iter()
                    .skip(1)
                    .filter_map(|v| v.as_str().map(str::to_string)),
            );
        }
        args.extend(
            spec["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(|s| expand(s, &env))),
        );
        let stdout = std::fs::File::create(logs.join(format!("{name}.out"))).unwrap();
        let stderr = std::fs::File::create(logs.join(format!("{name}.err"))).unwrap();
        let child = Command::new(&binary)
            .args(&args)
            .env_clear()
            .envs(&env)
            .current_dir(rootfs)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("container {name}: cannot start {}: {e}", binary.display()));
        Running {
            pid: child.id().expect("a running child has a pid"),
            child,
            name,
            sidecar,
            logs: logs.to_path_buf(),
            env,
            termination: (termination_path, fallback_to_logs),
            exit: None,
            stopped_by_kubelet: false,
            started_at: started.elapsed(),
            ended_at: None,
        }
    }

    fn resolve_env(
        &self,
        spec: &Value,
        pod: &Value,
        container: &str,
        pod_name: &str,
        mounts: &[(String, PathBuf)],
    ) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("HOSTNAME".to_string(), pod_name.to_string());
        if let Some(index) = self.completion_index {
            env.insert("JOB_COMPLETION_INDEX".to_string(), index.to_string());
        }
        for source in spec["envFrom"].as_array().into_iter().flatten() {
            let prefix = source["prefix"].as_str().unwrap_or_default();
            let data = if let Some(r) = source.get("configMapRef") {
                self.manifests.config_map(r["name"].as_str().unwrap())
            } else if let Some(r) = source.get("secretRef") {
                self.manifests.secret(r["name"].as_str().unwrap())
            } else {
                panic!("container {container}: unknown envFrom {source}");
            };
            for (key, value) in data {
                env.insert(
                    format!("{prefix}{key}"),
                    String::from_utf8_lossy(&value).into_owned(),
                );
            }
        }
        for var in spec["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().unwrap().to_string();
            let value = if let Some(value) = var.get("value") {
                expand(value.as_str().unwrap_or_default(), &env)
            } else if let Some(from) = var.get("valueFrom") {
                if let Some(field) = from.get("fieldRef") {
                    let path = field["fieldPath"].as_str().unwrap();
                    match path {
                        "metadata.name" => pod_name.to_string(),
                        "metadata.namespace" => self.manifests.job()["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or("default")
                            .to_string(),
                        "metadata.annotations['batch.kubernetes.io/job-completion-index']" => self
                            .completion_index
                            .expect("a completion index for an Indexed Job")
                            .to_string(),
                        "spec.nodeName" => "kind-worker".to_string(),
                        "metadata.uid" => "5b1c9f0e-0000-4000-8000-000000000001".to_string(),
                        other => panic!("container {container}: fieldRef {other} not simulated"),
                    }
                } else if let Some(key) = from.get("secretKeyRef") {
                    let data = self.manifests.secret(key["name"].as_str().unwrap());
                    String::from_utf8_lossy(&data[key["key"].as_str().unwrap()]).into_owned()
                } else if let Some(key) = from.get("configMapKeyRef") {
                    let data = self.manifests.config_map(key["name"].as_str().unwrap());
                    String::from_utf8_lossy(&data[key["key"].as_str().unwrap()]).into_owned()
                } else if let Some(resource) = from.get("resourceFieldRef") {
                    resource_value(spec, resource)
                } else {
                    panic!("container {container}: valueFrom {from} not simulated");
                }
            } else {
                String::new()
            };
            env.insert(name, value);
        }
        for value in env.values_mut() {
            *value = rewrite_paths(value, mounts);
        }
        let _ = pod;
        for (variable, value) in self.substitutions.get(container).into_iter().flatten() {
            env.insert(variable.clone(), value.clone());
        }
        env
    }
}

/// A started container.
struct Running {
    pid: u32,
    child: Child,
    name: String,
    sidecar: bool,
    logs: PathBuf,
    env: BTreeMap<String, String>,
    /// The termination message file, and whether a failed container with
    /// an empty one reports the end of its log instead.
    termination: (PathBuf, bool),
    exit: Option<Exit>,
    stopped_by_kubelet: bool,
    started_at: Duration,
    ended_at: Option<Duration>,
}

impl Running {
    fn poll(&mut self, started: Instant) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exit = Some(to_exit(status));
            self.ended_at = Some(started.elapsed());
        }
    }

    fn signal(&self, name: &str) {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status();
    }

    async fn wait(mut self, started: Instant) -> ContainerRun {
        if self.exit.is_none() {
            let status = self.child.wait().await.expect("wait for a container");
            self.exit = Some(to_exit(status));
            self.ended_at = Some(started.elapsed());
        }
        let read = |ext: &str| {
            std::fs::read_to_string(self.logs.join(format!("{}.{ext}", self.name)))
                .unwrap_or_default()
        };
        let exit = self.exit.clone().expect("exited");
        let (path, fallback_to_logs) = &self.termination;
        let mut termination_message = std::fs::read(path).unwrap_or_default();
        termination_message.truncate(4096);
        let mut termination_message = String::from_utf8_lossy(&termination_message).into_owned();
        if termination_message.is_empty() && *fallback_to_logs && exit.code != 0 {
            let log = read("err");
            let start = log.len().saturating_sub(2048);
            let start = (start..log.len())
                .find(|i| log.is_char_boundary(*i))
                .unwrap_or(log.len());
            termination_message = log[start..].to_string();
        }
        ContainerRun {
            termination_message,
            stdout: read("out"),
            stderr: read("err"),
            name: self.name,
            sidecar: self.sidecar,
            exit,
            stopped_by_kubelet: self.stopped_by_kubelet,
            started_at: self.started_at,
            ended_at: self.ended_at.unwrap_or_default(),
            env: self.env,
        }
    }
}

fn to_exit(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit { code, signal: None },
        (None, Some(signal)) => Exit {
            code: 128 + signal,
            signal: Some(signal),
        },
        _ => Exit {
            code: 255,
            signal: None,
        },
    }
}

/// `$(VAR)` references to earlier variables, as Kubernetes expands them
/// (`$$(VAR)` escapes).
fn expand(value: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(stripped) = tail.strip_prefix("$$") {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = tail.strip_prefix("$(") {
            match inner.find(')') {
                Some(end) if env.contains_key(&inner[..end]) => {
                    out.push_str(&env[&inner[..end]]);
                    rest = &inner[end + 1..];
                }
                _ => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Rewrites a container path (`/results/x.json`, `file:///results/n.jsonl`,
/// comma-separated lists of them) into the volume's directory here.
fn rewrite_paths(value: &str, mounts: &[(String, PathBuf)]) -> String {
    value
        .split(',')
        .map(|part| {
            let (prefix, path) = match part.strip_prefix("file://") {
                Some(path) => ("file://", path),
                None => ("", part),
            };
            for (mount, host) in mounts {
                if path == mount {
                    return format!("{prefix}{}", host.display());
                }
                if let Some(rest) = path.strip_prefix(mount.as_str()) {
                    if rest.starts_with('/') {
                        return format!("{prefix}{}{rest}", host.display());
                    }
                }
            }
            part.to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn resource_value(spec: &Value, resource: &Value) -> String {
    let field = resource["resource"].as_str().unwrap_or_default();
    let (section, name) = field.split_once('.').unwrap_or(("limits", field));
    spec["resources"][section][name]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            spec["resources"][section][name]
                .as_u64()
                .map(|n| n.to_string())
        })
        .unwrap_or_else(|| "0".into())
}

/// The keys a ConfigMap/Secret volume shows: all, or `items` (key → path).
fn project(data: &BTreeMap<String, Vec<u8>>, source: &Value) -> BTreeMap<String, Vec<u8>> {
    match source["items"].as_array() {
        None => data.clone(),
        Some(items) => items
            .iter()
            .map(|item| {
                let key = item["key"].as_str().unwrap();
                let bytes = data
                    .get(key)
                    .unwrap_or_else(|| panic!("items names a missing key {key}"))
                    .clone();
                (item["path"].as_str().unwrap_or(key).to_string(), bytes)
            })
            .collect(),
    }
}

fn mode(source: &Value) -> u32 {
    source["defaultMode"]
        .as_u64()
        .map(|m| m as u32)
        .unwrap_or(0o644)
}

/// The kubelet's AtomicWriter layout: files in `..<timestamp>/`, `..data`
/// pointing at it, one `key -> ..data/key` link per top-level key.
fn atomic_writer(dir: &Path, files: &BTreeMap<String, Vec<u8>>, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let stamp = "..2026_11_22_10_00_00.123456789";
    let data_dir = dir.join(stamp);
    std::fs::create_dir_all(&data_dir).unwrap();
    for (path, bytes) in files {
        let file = data_dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&file, bytes).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode | 0o200)).unwrap();
    }
    std::os::unix::fs::symlink(stamp, dir.join("..data")).unwrap();
    let mut tops: Vec<String> = files
        .keys()
        .map(|p| p.split('/').next().unwrap().to_string())
        .collect();
    tops.dedup();
    for top in tops {
        std::os::unix::fs::symlink(format!("..data/{top}"), dir.join(&top)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_expand_like_kubernetes() {
        let mut env = BTreeMap::new();
        env.insert("A".to_string(), "x".to_string());
        assert_eq!(expand("$(A)/y", &env), "x/y");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("$(B)", &env), "$(B)");
    }

    #[test]
    fn container_paths_map_into_volumes() {
        let mounts = vec![
            ("/results/deep".to_string(), PathBuf::from("/tmp/v2")),
            ("/results".to_string(), PathBuf::from("/tmp/v1")),
        ];
        assert_eq!(rewrite_paths("/results/r.json", &mounts), "/tmp/v1/r.json");
        assert_eq!(rewrite_paths("/results/deep/a", &mounts), "/tmp/v2/a");
        assert_eq!(rewrite_paths("/resultsx", &mounts), "/resultsx");
        assert_eq!(
            rewrite_paths("https://h/x,file:///results/n.jsonl", &mounts),
            "https://h/x,file:///tmp/v1/n.jsonl"
        );
    }

    #[test]
    fn config_map_volumes_look_like_the_kubelets() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = BTreeMap::new();
        files.insert("profile.json".to_string(), b"{}".to_vec());
        atomic_writer(dir.path(), &files, 0o644);
        let link = std::fs::read_link(dir.path().join("profile.json")).unwrap();
        assert_eq!(link, PathBuf::from("..data/profile.json"));
        assert_eq!(
            std::fs::read(dir.path().join("profile.json")).unwrap(),
            b"{}"
        );
        assert!(
            std::fs::symlink_metadata(dir.path().join("..data"))
                .unwrap()
                .is_symlink()
        );
    }
}
