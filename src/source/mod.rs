//! Where the cluster comes from. A source turns what it reads (a cluster file, or the
//! Kubernetes API) into [`ClusterEvent`]s of slim objects; the zone index applies
//! them and knows nothing of where they came from.

pub mod api;
pub mod file;
pub mod kube;
pub mod selector;

// The slim objects and events are the zone's input vocabulary (the zone never imports
// the source); re-exported here, where they are made.
pub use crate::zone::objects::{self, ClusterEvent};
