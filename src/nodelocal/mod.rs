//! The network half of the NodeLocal mode: the link holding the node-local addresses and
//! the fail-open steering rules, set up by the process itself and kept by reconciles.
//!
//! ```text
//!   NetworkSettings ──> NetworkSetup::reconcile ──> link (rtnetlink)
//!                                               └─> rules: nft | iptables-nft | iptables-legacy
//! ```
//! The rules never black-hole the node: the request-direction NOTRACK only matches
//! while a socket is bound to the address (see [`steering`]), so with no process left
//! pods' queries to the ClusterIP reach the cluster DNS through kube-proxy.

pub mod cli;
pub mod detect;
pub mod error;
pub mod iptables;
pub mod kube_dns;
pub mod link;
pub mod nft;
pub mod settings;
pub mod setup;
pub mod steering;
mod tool;

pub use detect::Backend;
pub use error::{ErrorType, SetupError};
pub use link::LinkChanges;
pub use settings::{BackendSetting, LinkKind, NetworkSettings};
pub use setup::{Change, Cleaned, LinkOutcome, NetworkSetup, Reconciled, RulesOutcome, cleanup};
pub use steering::Family;
