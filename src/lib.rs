//! clusterdns: the DNS server of a Kubernetes cluster.
//!
//! ```text
//!   cluster file ─┐
//!   API watches ──┴─> source ──events──> zone index ──views──┐
//!                                                           v
//!   UDP/TCP ──packets──> driver ──> chain: zone → loop guard → cache → forward ──> upstreams
//!                          └──> observe (metrics, query log)
//! ```
//! Layers: [`wire`] is the floor and imports nothing of the crate; the rooms ([`zone`],
//! [`source`], [`cache`], [`forward`], [`hosts`]) stand on it and never on each other's
//! internals (the source feeds the zone's index); the roof ([`server`], [`app`],
//! [`config`], [`admin`]) knows every room. The write side ([`source`] → [`zone::index`]) never reads
//! the query path; the query path sees only the published [`zone::ClusterZone`].

// Denied everywhere but in `server::udp_batch`, which wraps recvmmsg/sendmmsg.
#![deny(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cache;
pub mod config;
pub mod corefile;
pub mod explain;
pub mod forward;
pub mod hosts;
pub mod logging;
pub mod metrics;
pub mod nodelocal;
pub mod reload;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod version;
pub mod wire;
pub mod zone;
