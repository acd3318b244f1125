//! Pod-level tests of the assessor and relay pair live in `tests/`. This
//! library holds the pod-specific harness they share:
//! - [`manifests`]: the rendered Kubernetes manifests of `deploy/`;
//! - [`kubelet`]: a kubelet in miniature that runs a Job's pod from them;
//! - [`wiring`]: how a test points a pod at its own judge and notifier;
//! - [`apiserver`]: a test Kubernetes API server that creates and runs
//!   Jobs' pods with the kubelet, for end-to-end tests of the runner.
//!
//! The binaries, the judge and the notifier come from the workspace's test
//! kit (`testkit`, a dev-dependency).

pub mod apiserver;
pub mod kubelet;
pub mod manifests;
pub mod wiring;

pub use wiring::webhook_secret;
