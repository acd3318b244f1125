//! Pod-level tests of the assessor and relay pair live in `tests/`. This
//! library holds the pod-specific harness they share:
//! - [`manifests`]: the rendered Kubernetes manifests of `deploy/`;
//! - [`kubelet`]: a kubelet in miniature that runs a Job's pod from them.
//!
//! The binaries, the judge and the notifier come from the workspace's test
//! kit (`testkit`, a dev-dependency).

pub mod kubelet;
pub mod manifests;
