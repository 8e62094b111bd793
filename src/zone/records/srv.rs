//! SRV answers: one record per matching port of a ClusterIP service, or per endpoint
//! and port of a headless one, with the spec's weights and the targets' addresses as
//! additional records.

use super::*;

impl Answerer<'_, '_, '_> {
    /// SRV for a ClusterIP service: one per matching port, all targeting the service name;
    /// its addresses go in the additional section, under the target as written.
    pub(super) fn cluster_ip_srv(
        &mut self,
        owner: NameRef<'_>,
        target: NameRef<'_>,
        view: &ServiceView,
        filter: PortFilter<'_>,
    ) -> Found {
        let ttl = self.ttl();
        let matching = || view.ports.iter().filter(|p| filter.matches(p));
        // N counts (service, port, address) tuples: a dual-stack service counts each port twice.
        let addresses = match &view.kind {
            ServiceKind::ClusterIp { v4, v6 } => (v4.len() + v6.len()).max(1),
            _ => 1,
        };
        let weight = srv_weight(matching().count() * addresses);
        let (mut any, mut target_at) = (false, None);
        for (i, p) in matching().enumerate() {
            if matching().take(i).any(|q| q.port == p.port) {
                continue; // deduplicated on (target, port)
            }
            any = true;
            let at = self
                .w
                .srv(Section::Answer, owner, ttl, (0, weight, p.port), target);
            target_at = target_at.or(at);
        }
        if !any {
            return Found::NoData;
        }
        if let (ServiceKind::ClusterIp { v4, v6 }, Some(at)) = (&view.kind, target_at) {
            // The glue's owner is the target itself, so both are spelled alike.
            let glue = NameRef::Ptr(at);
            for a in v4.iter() {
                self.w.a(Section::Additional, glue, ttl, *a);
            }
            for a in v6.iter() {
                self.w.aaaa(Section::Additional, glue, ttl, *a);
            }
        }
        Found::Records
    }

    /// SRV over endpoints (headless services, endpoint names, zonal selections): one per
    /// (endpoint name, port), weights over every matching (endpoint, port) before
    /// duplicates are removed, and each target's addresses as glue.
    pub(super) fn endpoint_srv(
        &mut self,
        owner: NameRef<'_>,
        svc_labels: &[&[u8]; 3],
        zone_wire: &[u8],
        endpoints: &[EndpointView],
        filter: PortFilter<'_>,
    ) -> Found {
        let ttl = self.ttl();
        let tuples = endpoints
            .iter()
            .map(|e| e.ports.iter().filter(|p| filter.matches(p)).count())
            .sum();
        if tuples == 0 {
            return Found::NoData;
        }
        let weight = srv_weight(tuples);
        // Where `svc.ns.svc.Z` stands inside the first target written: glue owners point
        // there, so each is spelled as its target is.
        let mut svc_at = None;
        for (i, e) in endpoints.iter().enumerate() {
            // Endpoints with this name come before `i` in a contiguous run.
            let group = &endpoints[..i];
            let earlier = group.iter().rev().take_while(|g| g.name == e.name);
            let ports = e.ports.iter().filter(|p| filter.matches(p));
            for (j, p) in ports.clone().enumerate() {
                let dup = earlier.clone().any(|g| {
                    g.ports
                        .iter()
                        .any(|q| filter.matches(q) && q.port == p.port)
                }) || ports.clone().take(j).any(|q| q.port == p.port);
                if dup {
                    continue;
                }
                let labels = [
                    e.name.as_bytes(),
                    svc_labels[0],
                    svc_labels[1],
                    svc_labels[2],
                ];
                let at = self.w.srv(
                    Section::Answer,
                    owner,
                    ttl,
                    (0, weight, p.port),
                    NameRef::LabelsWire(&labels, zone_wire),
                );
                svc_at = svc_at.or(at.map(|at| at + 1 + e.name.len() as u16));
            }
        }
        let Some(svc_at) = svc_at else {
            return Found::Records; // not one target fitted: TC is set, glue is moot
        };
        for (i, e) in endpoints.iter().enumerate() {
            if i > 0 && endpoints[i - 1].name == e.name && endpoints[i - 1].addr == e.addr {
                continue;
            }
            if !e.ports.iter().any(|p| filter.matches(p)) {
                continue;
            }
            let label = [e.name.as_bytes()];
            let glue = NameRef::LabelsPtr(&label, svc_at);
            match e.addr {
                IpAddr::V4(a) => self.w.a(Section::Additional, glue, ttl, a),
                IpAddr::V6(a) => self.w.aaaa(Section::Additional, glue, ttl, a),
            };
        }
        Found::Records
    }
}

/// `floor(100 / n)`, at least 1.
fn srv_weight(n: usize) -> u16 {
    (100 / n.max(1)).max(1) as u16
}

#[cfg(test)]
mod tests {
    use super::srv_weight;

    #[test]
    fn srv_weights_follow_the_spec() {
        assert_eq!(srv_weight(1), 100);
        assert_eq!(srv_weight(2), 50);
        assert_eq!(srv_weight(6), 16);
        assert_eq!(srv_weight(500), 1);
    }
}
