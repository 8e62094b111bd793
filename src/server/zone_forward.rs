//! Forwarders chosen by zone (the NodeLocal mode's server blocks folded into one stage):
//! the longest zone that holds the name picks the forwarder, and with it the TTL caps
//! its answers are cached under. The cluster zone goes to the cluster DNS, `.` to the
//! node's nameservers, each stub domain to its own.
//!
//! Routes are a short list scanned in order, longest zone first: a handful of label
//! comparisons, no allocation, so a cache hit in front of this stage stays free of them.

use std::sync::Arc;

use crate::cache::TtlPolicy;
use crate::forward::{Forwarder, Question};
use crate::wire::{QName, ZoneName};

use super::chain::{Flow, Pass, Pending};
use super::driver::Transport;

/// One zone's forwarder and cache caps.
pub struct ZoneRoute {
    pub zone: ZoneName,
    pub forwarder: Arc<Forwarder>,
    pub ttl: TtlPolicy,
}

pub struct ZoneForwardStage {
    /// Longest zone first, so the first match is the most specific.
    routes: Vec<ZoneRoute>,
}

impl ZoneForwardStage {
    pub fn new(mut routes: Vec<ZoneRoute>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.zone.labels.len()));
        ZoneForwardStage { routes }
    }

    pub fn routes(&self) -> &[ZoneRoute] {
        &self.routes
    }

    /// The route of the longest zone holding `name`.
    pub fn route(&self, name: &QName<'_>) -> Option<&ZoneRoute> {
        self.routes
            .iter()
            .find(|r| name.zone_start(&r.zone.labels).is_some())
    }

    pub fn serves(&self, name: &QName<'_>) -> bool {
        self.route(name).is_some()
    }

    /// Suspends every name some zone holds (the answer comes from the network).
    pub(super) fn suspend(&self, at: usize, pass: &mut Pass<'_, '_>) -> Flow {
        if !self.serves(pass.name) {
            return Flow::Next;
        }
        let question = Question {
            client_tcp: pass.transport == Transport::Tcp,
            ..Question::of(pass.query)
        };
        Flow::Suspend(Pending::Forward { at, question })
    }
}
