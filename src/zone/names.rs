//! The grammar of names inside a cluster zone: which part is the namespace, the service,
//! the endpoint, the port — as `dns-spec.md` reads them, right to left after the zone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::QName;

/// What a name inside a forward (cluster) zone refers to. Labels are lower-case.
#[derive(Debug, PartialEq, Eq)]
pub enum ClusterName<'a> {
    Apex,
    /// `dns-version.Z`
    DnsVersion,
    /// `ns.dns.Z`, the name server's own name.
    NameServer,
    /// `svc.Z`, `pod.Z`, `dns.Z`: names that exist only because names below them do.
    EmptyNonTerminal,
    /// `ns.svc.Z` or `ns.pod.Z`.
    Namespace(&'a [u8]),
    Service(ServiceName<'a>),
    /// `ep.svc.ns.svc.Z`
    Endpoint(ServiceName<'a>, &'a [u8]),
    /// `_port._proto.svc.ns.svc.Z`, underscores stripped.
    Port(ServiceName<'a>, &'a [u8], &'a [u8]),
    /// `<topology-zone>.pin|prefer._zone.svc.ns.svc.Z`
    Zonal(ServiceName<'a>, &'a [u8], ZonalMode),
    /// `a-b-c-d.ns.pod.Z`
    Pod {
        namespace: &'a [u8],
        ip: &'a [u8],
    },
    /// Anything else: NXDOMAIN.
    Invalid,
}

/// A service, and the label index in the name where `svc.ns.svc.Z` starts (for pointers).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct ServiceName<'a> {
    pub namespace: &'a [u8],
    pub service: &'a [u8],
    pub at: usize,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ZonalMode {
    Pin,
    Prefer,
}

/// Reads `name` (whose zone starts at label `zone_start`) by the rules of `dns-spec.md`.
pub fn classify<'a>(name: &QName<'a>, zone_start: usize, zonal: bool) -> ClusterName<'a> {
    let l = &name.labels()[..zone_start];
    let Some((&kind, rest)) = l.split_last() else {
        return ClusterName::Apex;
    };
    match kind {
        b"svc" => {}
        b"pod" => {
            return match rest {
                [] => ClusterName::EmptyNonTerminal,
                [ns] => ClusterName::Namespace(ns),
                [ip, ns] => ClusterName::Pod { namespace: ns, ip },
                _ => ClusterName::Invalid,
            };
        }
        b"dns-version" if rest.is_empty() => return ClusterName::DnsVersion,
        b"dns" => {
            return match rest {
                [] => ClusterName::EmptyNonTerminal,
                [b"ns"] => ClusterName::NameServer,
                _ => ClusterName::Invalid,
            };
        }
        _ => return ClusterName::Invalid,
    }
    let Some((&namespace, rest)) = rest.split_last() else {
        return ClusterName::EmptyNonTerminal;
    };
    let Some((&service, rest)) = rest.split_last() else {
        return ClusterName::Namespace(namespace);
    };
    let svc = ServiceName {
        namespace,
        service,
        at: rest.len(),
    };
    match rest {
        [] => ClusterName::Service(svc),
        [ep] => ClusterName::Endpoint(svc, ep),
        [port, proto] => ClusterName::Port(svc, strip_underscore(port), strip_underscore(proto)),
        [topology, mode, b"_zone"] if zonal => {
            let mode = match *mode {
                b"pin" => ZonalMode::Pin,
                b"prefer" => ZonalMode::Prefer,
                _ => return ClusterName::Invalid,
            };
            ClusterName::Zonal(svc, topology, mode)
        }
        _ => ClusterName::Invalid,
    }
}

fn strip_underscore(l: &[u8]) -> &[u8] {
    l.strip_prefix(b"_").unwrap_or(l)
}

/// The address a pod name's first label spells: `10-244-1-5` or `fd00-10--5`.
pub fn pod_ip(label: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(label).ok()?;
    if text.bytes().filter(|&b| b == b'-').count() == 3 && !text.contains("--") {
        let mut buf = [0u8; 15];
        let b = buf.get_mut(..text.len())?;
        b.copy_from_slice(text.as_bytes());
        b.iter_mut().filter(|c| **c == b'-').for_each(|c| *c = b'.');
        return std::str::from_utf8(b)
            .ok()?
            .parse::<Ipv4Addr>()
            .ok()
            .map(IpAddr::V4);
    }
    let mut buf = [0u8; 45];
    let b = buf.get_mut(..text.len())?;
    b.copy_from_slice(text.as_bytes());
    b.iter_mut().filter(|c| **c == b'-').for_each(|c| *c = b':');
    std::str::from_utf8(b)
        .ok()?
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// What a name inside a reverse zone spells.
#[derive(Debug, PartialEq, Eq)]
pub enum ReverseName {
    /// A complete address.
    Address(IpAddr),
    /// A valid prefix of addresses (the apex of the reverse tree or a branch of it).
    Branch,
    Invalid,
}

/// Reads a name under `in-addr.arpa` or `ip6.arpa` (the labels before those two).
pub fn reverse_name(name: &QName<'_>) -> ReverseName {
    let l = name.labels();
    let Some(&[a, b]) = l.len().checked_sub(2).map(|s| &l[s..]) else {
        return ReverseName::Invalid;
    };
    let parts = &l[..l.len() - 2];
    match (a, b) {
        (b"in-addr", b"arpa") => {
            let mut octets = [0u8; 4];
            if parts.len() > 4 {
                return ReverseName::Invalid;
            }
            for (i, p) in parts.iter().rev().enumerate() {
                let Some(v) = std::str::from_utf8(p)
                    .ok()
                    .filter(|s| !s.is_empty() && (s.len() == 1 || !s.starts_with('0')))
                    .and_then(|s| s.parse::<u8>().ok())
                else {
                    return ReverseName::Invalid;
                };
                octets[i] = v;
            }
            if parts.len() == 4 {
                ReverseName::Address(IpAddr::V4(octets.into()))
            } else {
                ReverseName::Branch
            }
        }
        (b"ip6", b"arpa") => {
            if parts.len() > 32 {
                return ReverseName::Invalid;
            }
            let mut v: u128 = 0;
            for p in parts.iter().rev() {
                let nibble = match p {
                    [c @ b'0'..=b'9'] => c - b'0',
                    [c @ b'a'..=b'f'] => c - b'a' + 10,
                    _ => return ReverseName::Invalid,
                };
                v = (v << 4) | nibble as u128;
            }
            if parts.len() == 32 {
                ReverseName::Address(IpAddr::V6(Ipv6Addr::from(v)))
            } else {
                ReverseName::Branch
            }
        }
        _ => ReverseName::Invalid,
    }
}

/// `10.11.12.13` → `10-11-12-13`; `2001:db8::` → `2001-db8--0` (a label cannot end in `-`).
pub fn dashed_ip(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string().replace('.', "-"),
        IpAddr::V6(a) => {
            let mut s = a.to_string().replace(':', "-");
            if s.ends_with('-') {
                s.push('0');
            }
            if s.starts_with('-') {
                s.insert(0, '0');
            }
            s
        }
    }
}

/// The wire form of an ExternalName target, or `None` when it cannot be a CNAME target
/// (an IP literal, an empty or over-long name, an empty label).
pub fn external_name_wire(target: &str) -> Option<Box<[u8]>> {
    if target.is_empty() || target.parse::<IpAddr>().is_ok() || target.len() > 253 {
        return None;
    }
    let mut wire = Vec::with_capacity(target.len() + 2);
    for label in target.split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    Some(wire.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Vec<u8> {
        let mut w = Vec::new();
        for l in s.split('.').filter(|l| !l.is_empty()) {
            w.push(l.len() as u8);
            w.extend_from_slice(l.as_bytes());
        }
        w.push(0);
        w
    }

    fn with<R>(s: &str, f: impl FnOnce(&QName<'_>) -> R) -> R {
        let w = name(s);
        f(&QName::written(&w, 12).unwrap())
    }

    #[test]
    fn reads_cluster_names() {
        let zone: Vec<Box<[u8]>> = vec![b"cluster".to_vec().into(), b"local".to_vec().into()];
        let c = |s: &str| {
            with(s, |n| {
                let z = n.zone_start(&zone).unwrap();
                format!("{:?}", classify(n, z, true))
            })
        };
        assert_eq!(c("cluster.local"), "Apex");
        assert_eq!(c("svc.cluster.local"), "EmptyNonTerminal");
        assert!(c("web.shop.svc.cluster.local").starts_with("Service"));
        assert!(c("db-0.db.shop.svc.cluster.local").starts_with("Endpoint"));
        assert!(c("_http._tcp.web.shop.svc.cluster.local").contains("[104, 116, 116, 112]"));
        assert!(c("a.pin._zone.db.shop.svc.cluster.local").starts_with("Zonal"));
        assert_eq!(c("a.b.c.web.shop.svc.cluster.local"), "Invalid");
        assert_eq!(c("web.shop.foo.cluster.local"), "Invalid");
        assert!(c("10-0-0-1.shop.pod.cluster.local").starts_with("Pod"));
        assert_eq!(c("dns-version.cluster.local"), "DnsVersion");
        assert_eq!(c("ns.dns.cluster.local"), "NameServer");
    }

    #[test]
    fn suffix_offsets_follow_labels() {
        with("web.shop.svc", |n| {
            assert_eq!(n.suffix_offset(0), 12);
            assert_eq!(n.suffix_offset(1), 16);
            assert_eq!(n.suffix_wire(2), b"\x03svc\x00");
        });
    }

    #[test]
    fn reads_pod_ips() {
        assert_eq!(pod_ip(b"10-244-1-5"), Some("10.244.1.5".parse().unwrap()));
        assert_eq!(pod_ip(b"fd00-10--5"), Some("fd00:10::5".parse().unwrap()));
        assert_eq!(pod_ip(b"10-244-1"), None);
        assert_eq!(pod_ip(b"web"), None);
    }

    #[test]
    fn reads_reverse_names() {
        let r = |s: &str| with(s, reverse_name);
        assert_eq!(
            r("10.0.96.10.in-addr.arpa"),
            ReverseName::Address("10.96.0.10".parse().unwrap())
        );
        assert_eq!(r("96.10.in-addr.arpa"), ReverseName::Branch);
        assert_eq!(r("01.0.96.10.in-addr.arpa"), ReverseName::Invalid);
        assert_eq!(r("256.0.96.10.in-addr.arpa"), ReverseName::Invalid);
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
        assert_eq!(r(v6), ReverseName::Address("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn dashes_addresses_like_the_spec() {
        let d = |s: &str| dashed_ip(&s.parse().unwrap());
        assert_eq!(d("10.11.12.13"), "10-11-12-13");
        assert_eq!(
            d("2001:db8:3333:4444:5555:6666::"),
            "2001-db8-3333-4444-5555-6666--0"
        );
        assert_eq!(d("5678:abcd::1"), "5678-abcd--1");
    }

    #[test]
    fn external_names() {
        assert!(external_name_wire("10.0.0.1").is_none());
        assert!(external_name_wire("a..b").is_none());
        assert_eq!(&*external_name_wire("a.bc").unwrap(), b"\x01a\x02bc\x00");
    }
}
