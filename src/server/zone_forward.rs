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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheSettings;
    use crate::forward::ForwardSettings;
    use crate::wire::parse_query;

    fn route(zone: &str, secs: u64) -> ZoneRoute {
        let settings = ForwardSettings {
            upstreams: Vec::new(),
            ..ForwardSettings::default()
        };
        let metrics = crate::metrics::Metrics::new().forward.clone();
        ZoneRoute {
            zone: ZoneName::parse(zone).unwrap(),
            forwarder: Arc::new(Forwarder::new(settings, metrics)),
            ttl: TtlPolicy {
                success_cap: std::time::Duration::from_secs(secs),
                ..CacheSettings::default().ttl
            },
        }
    }

    fn query(name: &str) -> Vec<u8> {
        let mut p = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        p
    }

    /// The longest zone holding the name wins, whatever the order routes were given in;
    /// the root takes the rest, and without it a name outside every zone passes on.
    #[test]
    fn the_longest_zone_picks_the_route() {
        let stage = ZoneForwardStage::new(vec![
            route(".", 1),
            route("cluster.local", 2),
            route("in-addr.arpa", 3),
            route("svc.cluster.local", 4),
        ]);
        for (name, cap) in [
            ("web.default.svc.cluster.local", 4),
            ("pod.cluster.local", 2),
            ("cluster.local", 2),
            ("10.0.96.10.in-addr.arpa", 3),
            ("example.org", 1),
            ("localcluster.local", 1),
        ] {
            let packet = query(name);
            let q = parse_query(&packet).unwrap();
            let qname = QName::question(&q);
            let r = stage.route(&qname).unwrap();
            assert_eq!(r.ttl.success_cap.as_secs(), cap, "{name}");
        }
        let no_root = ZoneForwardStage::new(vec![route("cluster.local", 2)]);
        let packet = query("example.org");
        let q = parse_query(&packet).unwrap();
        assert!(!no_root.serves(&QName::question(&q)));
    }
}
