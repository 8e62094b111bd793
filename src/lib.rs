//! clusterdns: the DNS server of a Kubernetes cluster.
//!
//! ```text
//!   cluster file ──> source ──events──> zone index ──views──> dns handler ──> wire (UDP/TCP)
//! ```
//! The write side ([`source`] → [`zone::index`]) never reads the query path; the read
//! side ([`dns`], [`zone::records`]) sees only the published [`zone::ClusterZone`].

// Denied everywhere but in `dns::udp_batch`, which wraps recvmmsg/sendmmsg.
#![deny(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cache;
pub mod config;
pub mod corefile;
pub mod dns;
pub mod forward;
pub mod logging;
pub mod metrics;
pub mod nodelocal;
pub mod reload;
pub mod shutdown;
pub mod source;
pub mod synth;
/// Test support (a fake Kubernetes API server, object builders): used by the
/// integration tests and benchmarks, never by the server itself.
pub mod testing;
pub mod version;
pub mod zone;
