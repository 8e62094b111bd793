//! Answers for names in the cluster zones, written straight into the response: the
//! record rules of `dns-spec.md` (A/AAAA, SRV with weights and glue, PTR, CNAME chasing,
//! pod names, SOA/NS, dns-version) and the NXDOMAIN/NODATA split with SOA in authority.

use std::net::IpAddr;

mod autopath;
mod srv;

use super::explain;
use super::objects::Port;
use crate::wire::writer::{NameRef, ResponseWriter, Section};
use crate::wire::{MAX_NAME_LEN, QName, Rcode, rtype};

use super::names::{
    ClusterName, ReverseName, ServiceName, ZonalMode, classify, pod_ip, reverse_name,
};
use super::settings::{PodMode, ZoneSettings};
use super::view::{ClusterZone, EndpointView, ServiceKind, ServiceView, ptr_answer};

/// TTL of `dns-version` (spec).
const DNS_VERSION_TTL: u32 = 28800;
const DNS_VERSION: &[u8] = b"1.1.0";
/// How many ExternalName → in-zone CNAME steps are followed.
const MAX_CHASE: usize = 8;

/// What the zone did with a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneOutcome {
    /// A response was written (positive or negative).
    Answered,
    /// The name is in none of our zones.
    NotOurs,
    /// NXDOMAIN in a zone listed under `fallthrough`: the next handler should try.
    FallThrough,
    /// The answer ends in a CNAME to a name outside our zones, written at this offset:
    /// the forwarder may chase it.
    ExternalTarget(u16),
}

/// The result of looking one name up. (It lives on the stack for one query; boxing the
/// CNAME target would allocate on the query path.)
#[allow(clippy::large_enum_variant)]
enum Found {
    /// Records written; the name exists.
    Records,
    /// Records written, ending in a CNAME (at this offset) to a name outside our zones.
    Outside(u16),
    NoData,
    NxDomain,
    /// An ExternalName whose target is in one of our zones: chase it. Holds the
    /// target's wire form and where its copy sits in the message.
    Chase([u8; MAX_NAME_LEN], u16),
}

/// Which ports a SRV question asks for.
#[derive(Clone, Copy)]
enum PortFilter<'a> {
    Any,
    Named(&'a [u8], &'a [u8]),
}

impl PortFilter<'_> {
    fn matches(self, p: &Port) -> bool {
        match self {
            PortFilter::Any => true,
            PortFilter::Named(name, proto) => {
                !p.name.is_empty()
                    && p.name.as_bytes() == name
                    && p.protocol.as_str().as_bytes() == proto
            }
        }
    }
}

/// Answers `name` if it lies in one of the configured zones.
pub fn answer(
    zone: &ClusterZone,
    settings: &ZoneSettings,
    name: &QName<'_>,
    qtype: u16,
    w: &mut ResponseWriter<'_>,
) -> ZoneOutcome {
    let Some((zone_start, reverse)) = settings.find_zone(name) else {
        return ZoneOutcome::NotOurs;
    };
    w.set_authoritative();
    let mut a = Answerer {
        zone,
        s: settings,
        qtype,
        w,
    };
    // `[explain] dns`: `<name>.explain.<zone>` TXT tells why `<name>` answers as it does.
    if settings.explain_dns
        && !reverse
        && let Some(inner) = explain::dns_form(name, zone_start)
    {
        let owner = NameRef::Ptr(name.suffix_offset(0));
        let wants = qtype == rtype::TXT || qtype == rtype::ANY;
        if !(wants && explain::write_txt(zone, settings, inner, a.w, owner)) {
            a.soa(Section::Authority, name.suffix_offset(zone_start)); // NODATA
        }
        return ZoneOutcome::Answered;
    }
    let (found, apex, chased) = a.resolve(name, zone_start, reverse, None);
    match found {
        Found::Records | Found::Chase(..) => ZoneOutcome::Answered,
        Found::Outside(at) => ZoneOutcome::ExternalTarget(at),
        Found::NoData => {
            a.soa(Section::Authority, apex);
            ZoneOutcome::Answered
        }
        Found::NxDomain => {
            if !zone.synced() {
                // Until the first full sync an unknown name may just not have arrived yet.
                a.w.set_rcode(Rcode::SERVFAIL);
                return ZoneOutcome::Answered;
            }
            if !chased && settings.falls_through(name) {
                return ZoneOutcome::FallThrough;
            }
            a.w.set_rcode(Rcode::NXDOMAIN);
            a.soa(Section::Authority, apex);
            ZoneOutcome::Answered
        }
    }
}

struct Answerer<'z, 'w, 'b> {
    zone: &'z ClusterZone,
    s: &'z ZoneSettings,
    qtype: u16,
    w: &'w mut ResponseWriter<'b>,
}

impl Answerer<'_, '_, '_> {
    fn ttl(&self) -> u32 {
        self.s.ttl
    }

    fn wants(&self, t: u16) -> bool {
        self.qtype == t || (self.qtype == rtype::ANY && (t == rtype::A || t == rtype::AAAA))
    }

    /// Looks `name` up and follows in-zone CNAMEs; returns the final result, the offset of
    /// the apex of the zone it ended in (for the SOA), and whether a CNAME was followed.
    /// `chain` holds the names already answered for, so a loop ends at its first repeat.
    fn resolve(
        &mut self,
        name: &QName<'_>,
        zone_start: usize,
        reverse: bool,
        chain: Option<&Chased<'_>>,
    ) -> (Found, u16, bool) {
        let found = self.lookup(name, zone_start, reverse);
        let Found::Chase(wire, at) = found else {
            return (found, name.suffix_offset(zone_start), chain.is_some());
        };
        let Some(target) = QName::written(&wire, at) else {
            return (Found::Records, 0, true);
        };
        let here = Chased {
            labels: name.labels(),
            depth: chain.map_or(0, |c| c.depth + 1),
            before: chain,
        };
        if here.holds(target.labels()) {
            // A loop: the chain is answered once, up to the repeated name.
            return (Found::Records, 0, true);
        }
        let depth = here.depth;
        let outside = (Found::Outside(at), 0, true);
        match self.s.find_zone(&target) {
            Some((start, false)) if depth < MAX_CHASE && self.qtype != rtype::CNAME => {
                self.resolve(&target, start, false, Some(&here))
            }
            Some((_, true)) => (Found::Records, 0, true),
            _ if self.qtype == rtype::CNAME || depth >= MAX_CHASE => (Found::Records, 0, true),
            // Outside our zones: the CNAME is the answer unless a forwarder chases it.
            _ => outside,
        }
    }

    fn lookup(&mut self, name: &QName<'_>, zone_start: usize, reverse: bool) -> Found {
        if zone_start == 0 {
            return self.apex(name);
        }
        if reverse {
            return self.reverse(name);
        }
        if let Some(found) = self.autopath(name, zone_start) {
            return found;
        }
        match classify(name, zone_start, self.s.zonal) {
            ClusterName::Apex => self.apex(name),
            ClusterName::DnsVersion => {
                if self.qtype == rtype::TXT || self.qtype == rtype::ANY {
                    let owner = NameRef::Ptr(name.suffix_offset(0));
                    self.w
                        .txt(Section::Answer, owner, DNS_VERSION_TTL, DNS_VERSION);
                    Found::Records
                } else {
                    Found::NoData
                }
            }
            ClusterName::NameServer => {
                let owner = NameRef::Ptr(name.suffix_offset(0));
                self.name_server_addresses(
                    Section::Answer,
                    owner,
                    self.wants(rtype::A),
                    self.wants(rtype::AAAA),
                );
                if self.w.count(Section::Answer) > 0 {
                    Found::Records
                } else {
                    Found::NoData
                }
            }
            ClusterName::EmptyNonTerminal => Found::NoData,
            ClusterName::Namespace(ns) => {
                if self.zone.namespace_exists(ns) {
                    Found::NoData
                } else {
                    Found::NxDomain
                }
            }
            ClusterName::Pod { namespace, ip } => self.pod(name, namespace, ip),
            ClusterName::Service(svc) => self.service(name, zone_start, svc, None),
            ClusterName::Endpoint(svc, ep) => {
                self.service(name, zone_start, svc, Some(Below::Endpoint(ep)))
            }
            ClusterName::Port(svc, port, proto) => {
                self.service(name, zone_start, svc, Some(Below::Port(port, proto)))
            }
            ClusterName::Zonal(svc, topology, mode) => {
                self.service(name, zone_start, svc, Some(Below::Zonal(topology, mode)))
            }
            ClusterName::Invalid => Found::NxDomain,
        }
    }

    fn apex(&mut self, name: &QName<'_>) -> Found {
        let apex = name.suffix_offset(0);
        match self.qtype {
            rtype::SOA | rtype::ANY => {
                self.soa(Section::Answer, apex);
                Found::Records
            }
            rtype::NS => {
                let target = NameRef::LabelsPtr(&[b"ns", b"dns"], apex);
                if let Some(at) = self.w.name_record(
                    Section::Answer,
                    NameRef::Ptr(apex),
                    rtype::NS,
                    self.ttl(),
                    target,
                ) {
                    self.name_server_addresses(Section::Additional, NameRef::Ptr(at), true, true);
                }
                Found::Records
            }
            _ => Found::NoData,
        }
    }

    /// The name server's addresses, as CoreDNS gives them: the ClusterIPs of
    /// kube-system/kube-dns, which is how clients reach us in a cluster; without that
    /// service, the addresses we listen on.
    fn name_server_addresses(&mut self, section: Section, owner: NameRef<'_>, v4: bool, v6: bool) {
        let ttl = self.ttl();
        let w = &mut *self.w;
        let listen = &self.s.listen_ips;
        self.zone.with_service(b"kube-system", b"kube-dns", |view| {
            if let Some(ServiceKind::ClusterIp { v4: a4, v6: a6 }) = view.map(|v| &v.kind) {
                for ip in a4.iter().filter(|_| v4) {
                    w.a(section, owner, ttl, *ip);
                }
                for ip in a6.iter().filter(|_| v6) {
                    w.aaaa(section, owner, ttl, *ip);
                }
                return;
            }
            for ip in listen.iter() {
                match ip {
                    IpAddr::V4(a) if v4 => w.a(section, owner, ttl, *a),
                    IpAddr::V6(a) if v6 => w.aaaa(section, owner, ttl, *a),
                    _ => false,
                };
            }
        });
    }

    fn soa(&mut self, section: Section, apex: u16) {
        let ttl = self.ttl();
        self.w.soa(
            section,
            NameRef::Ptr(apex),
            ttl.min(300),
            NameRef::LabelsPtr(&[b"ns", b"dns"], apex),
            NameRef::LabelsPtr(&[b"hostmaster"], apex),
            [self.zone.serial(), 7200, 1800, 86400, ttl],
        );
    }

    fn reverse(&mut self, name: &QName<'_>) -> Found {
        match reverse_name(name) {
            ReverseName::Invalid => Found::NxDomain,
            ReverseName::Branch => Found::NoData,
            ReverseName::Address(ip) => {
                let (ttl, zone_wire, want) = (
                    self.ttl(),
                    &*self.s.ptr_zone_wire,
                    self.qtype == rtype::PTR || self.qtype == rtype::ANY,
                );
                let owner = NameRef::Ptr(name.suffix_offset(0));
                let w = &mut *self.w;
                self.zone.with_ptr_targets(&ip, |targets| match targets {
                    None => Found::NxDomain,
                    Some(_) if !want => Found::NoData,
                    Some(targets) => {
                        for t in ptr_answer(targets) {
                            w.name_record(
                                Section::Answer,
                                owner,
                                rtype::PTR,
                                ttl,
                                NameRef::DottedWire(t, zone_wire),
                            );
                        }
                        Found::Records
                    }
                })
            }
        }
    }

    fn pod(&mut self, name: &QName<'_>, namespace: &[u8], label: &[u8]) -> Found {
        if self.s.pods == PodMode::Disabled || !self.zone.namespace_exists(namespace) {
            return Found::NxDomain;
        }
        let Some(ip) = pod_ip(label) else {
            return Found::NxDomain;
        };
        if self.s.pods == PodMode::Verified && !self.zone.pod_in_namespace(&ip, namespace) {
            return Found::NxDomain;
        }
        let owner = NameRef::Ptr(name.suffix_offset(0));
        let ttl = self.ttl();
        match ip {
            IpAddr::V4(a) if self.wants(rtype::A) => self.w.a(Section::Answer, owner, ttl, a),
            IpAddr::V6(a) if self.wants(rtype::AAAA) => self.w.aaaa(Section::Answer, owner, ttl, a),
            _ => return Found::NoData,
        };
        Found::Records
    }

    fn service(
        &mut self,
        name: &QName<'_>,
        zone_start: usize,
        svc: ServiceName<'_>,
        below: Option<Below<'_>>,
    ) -> Found {
        let zone = self.zone;
        zone.with_service(svc.namespace, svc.service, |view| match view {
            None => Found::NxDomain,
            Some(view) => self.service_view(name, zone_start, svc, view, below),
        })
    }

    fn service_view(
        &mut self,
        name: &QName<'_>,
        zone_start: usize,
        svc: ServiceName<'_>,
        view: &ServiceView,
        below: Option<Below<'_>>,
    ) -> Found {
        let owner = NameRef::Ptr(name.suffix_offset(0));
        let ttl = self.ttl();
        let zone_wire = name.suffix_wire(zone_start);
        let target_svc: [&[u8]; 3] = [svc.service, svc.namespace, b"svc"];
        match (&view.kind, below) {
            (ServiceKind::ExternalNameInvalid, _) | (ServiceKind::ExternalName(_), Some(_)) => {
                Found::NxDomain
            }
            (ServiceKind::ExternalName(target), None) => {
                let Some(at) = self.w.name_record(
                    Section::Answer,
                    owner,
                    rtype::CNAME,
                    ttl,
                    NameRef::LabelsWire(&[], target),
                ) else {
                    return Found::Records;
                };
                let mut wire = [0u8; MAX_NAME_LEN];
                wire[..target.len()].copy_from_slice(target);
                Found::Chase(wire, at)
            }
            (ServiceKind::ClusterIp { v4, v6 }, None) => {
                if self.s.ignore_empty_service && view.endpoints.is_empty() {
                    return Found::NxDomain;
                }
                if self.qtype == rtype::SRV {
                    let target = NameRef::LabelsWire(&target_svc, zone_wire);
                    self.cluster_ip_srv(owner, target, view, PortFilter::Any)
                } else {
                    self.addresses(owner, v4.iter().copied(), v6.iter().copied())
                }
            }
            (ServiceKind::ClusterIp { .. }, Some(Below::Port(port, proto))) => {
                let target = NameRef::LabelsWire(&target_svc, zone_wire);
                match self.qtype {
                    _ if !view
                        .ports
                        .iter()
                        .any(|p| PortFilter::Named(port, proto).matches(p)) =>
                    {
                        Found::NxDomain
                    }
                    // RFC 8482 lets ANY get a subset, not nothing: SRV is all there is.
                    rtype::SRV | rtype::ANY => {
                        self.cluster_ip_srv(owner, target, view, PortFilter::Named(port, proto))
                    }
                    _ => Found::NoData,
                }
            }
            (ServiceKind::ClusterIp { .. }, Some(Below::Zonal(..))) => Found::NxDomain,
            (ServiceKind::Headless, None) => {
                if view.endpoints.is_empty() {
                    return Found::NxDomain;
                }
                if self.qtype == rtype::SRV {
                    self.endpoint_srv(
                        owner,
                        &target_svc,
                        zone_wire,
                        &view.endpoints,
                        PortFilter::Any,
                    )
                } else {
                    self.addresses(owner, view.v4.iter().copied(), view.v6.iter().copied())
                }
            }
            (ServiceKind::Headless, Some(Below::Port(port, proto))) => {
                let filter = PortFilter::Named(port, proto);
                if !view
                    .endpoints
                    .iter()
                    .any(|e| e.ports.iter().any(|p| filter.matches(p)))
                {
                    return Found::NxDomain;
                }
                match self.qtype {
                    rtype::SRV | rtype::ANY => {
                        self.endpoint_srv(owner, &target_svc, zone_wire, &view.endpoints, filter)
                    }
                    _ => Found::NoData,
                }
            }
            (ServiceKind::Headless, Some(Below::Zonal(topology, mode))) => {
                if view.endpoints.is_empty() {
                    return Found::NxDomain;
                }
                let in_zone =
                    |e: &EndpointView| e.zone.as_deref().is_some_and(|z| z.as_bytes() == topology);
                let pinned = view.endpoints.iter().any(in_zone);
                if !pinned && mode == ZonalMode::Pin {
                    return Found::NoData;
                }
                let selected = |e: &&EndpointView| !pinned || in_zone(e);
                if self.qtype == rtype::SRV {
                    let chosen: Vec<EndpointView> =
                        view.endpoints.iter().filter(selected).cloned().collect();
                    return self.endpoint_srv(
                        owner,
                        &target_svc,
                        zone_wire,
                        &chosen,
                        PortFilter::Any,
                    );
                }
                let mut seen: Vec<IpAddr> = Vec::new();
                for e in view.endpoints.iter().filter(selected) {
                    if !seen.contains(&e.addr) {
                        seen.push(e.addr);
                    }
                }
                seen.sort();
                let (v4, v6) = split(&seen);
                self.addresses(owner, v4, v6)
            }
            (_, Some(Below::Endpoint(ep))) => {
                let named = view.endpoints_named(ep);
                if named.is_empty() {
                    return Found::NxDomain;
                }
                if self.qtype == rtype::SRV {
                    return self.endpoint_srv(
                        owner,
                        &target_svc,
                        zone_wire,
                        named,
                        PortFilter::Any,
                    );
                }
                // Sorted by address within a name: skip repeats.
                let distinct = named
                    .iter()
                    .enumerate()
                    .filter(|(i, e)| *i == 0 || named[i - 1].addr != e.addr)
                    .map(|(_, e)| e.addr);
                let v4 = distinct.clone().filter_map(|a| match a {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                });
                let v6 = distinct.filter_map(|a| match a {
                    IpAddr::V6(a) => Some(a),
                    IpAddr::V4(_) => None,
                });
                self.addresses(owner, v4, v6)
            }
        }
    }

    fn addresses(
        &mut self,
        owner: NameRef<'_>,
        v4: impl Iterator<Item = std::net::Ipv4Addr>,
        v6: impl Iterator<Item = std::net::Ipv6Addr>,
    ) -> Found {
        let ttl = self.ttl();
        let mut any = false;
        if self.wants(rtype::A) {
            for a in v4 {
                any = true;
                self.w.a(Section::Answer, owner, ttl, a);
            }
        }
        if self.wants(rtype::AAAA) {
            for a in v6 {
                any = true;
                self.w.aaaa(Section::Answer, owner, ttl, a);
            }
        }
        if any { Found::Records } else { Found::NoData }
    }
}

/// The names of a CNAME chain answered so far, newest first: a list on the stack, since
/// chains are a few names long and the query path does not allocate.
struct Chased<'a> {
    labels: &'a [&'a [u8]],
    depth: usize,
    before: Option<&'a Chased<'a>>,
}

impl Chased<'_> {
    /// Whether `labels` (lower-case) is one of the chain's names.
    fn holds(&self, labels: &[&[u8]]) -> bool {
        let mut link = Some(self);
        while let Some(c) = link {
            if c.labels == labels {
                return true;
            }
            link = c.before;
        }
        false
    }
}

/// A name below a service.
#[derive(Clone, Copy)]
enum Below<'a> {
    Endpoint(&'a [u8]),
    Port(&'a [u8], &'a [u8]),
    Zonal(&'a [u8], ZonalMode),
}

fn split(
    addrs: &[IpAddr],
) -> (
    impl Iterator<Item = std::net::Ipv4Addr> + '_,
    impl Iterator<Item = std::net::Ipv6Addr> + '_,
) {
    (
        addrs.iter().filter_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        }),
        addrs.iter().filter_map(|a| match a {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        }),
    )
}
