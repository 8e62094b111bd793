//! Test support for clusterdns, kept out of the server: the integration tests and the
//! benchmarks depend on it, the `clusterdns` binary does not link it.
//!
//! - [`fake_api`]: a fake Kubernetes API server (lists, watches, 410 Gone, selectors);
//! - [`objects`]: builders for the objects it serves, and a kubeconfig pointing at it;
//! - [`synth`]: deterministic synthetic clusters (also the `clusterdns-synth` binary);
//! - [`fuzzing`]: the bodies of the fuzz targets, and the replay of their corpora.

pub mod fake_api;
pub mod fuzzing;
pub mod objects;
pub mod synth;

pub use fake_api::{FakeApi, FakeApiServer};
pub use objects::{
    Ep, endpoint_slice, ep, kubeconfig, kubeconfig_with_token_file, namespace, pod, service,
};
