//! Where the cluster comes from. A source turns what it reads (a cluster file, or the
//! Kubernetes API) into [`ClusterEvent`]s of slim objects; the zone index applies
//! them and knows nothing of where they came from.

pub mod api;
pub mod file;
pub mod kube;
pub mod objects;
pub mod selector;

use objects::{ClusterObject, ObjectKey};

/// One change to the cluster, in a form every source can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// The object was created or changed: this is its whole new state.
    Apply(ClusterObject),
    /// The object is gone.
    Delete(ObjectKey),
    /// Everything that existed when the source started has been applied: the zone is
    /// complete, and names it does not know are truly unknown (NXDOMAIN, not SERVFAIL).
    InitialSyncDone,
}
