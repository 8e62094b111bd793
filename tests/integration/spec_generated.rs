//! The spec rules on generated clusters (`clusterdns_testkit::synth`): every service, endpoint,
//! port and address of a few small synthetic clusters, asked over real UDP (and TCP)
//! sockets. Expected answers come from the generator's model, never from the server.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use clusterdns_testkit::synth::{SynthCluster, SynthEndpoint, SynthParams, SynthService};
use hickory_proto::rr::RecordType;

use crate::client::{Answer, ask, ask_tcp};
use crate::harness::TestServer;

const Z: &str = "cluster.local";
const NOERROR: &str = "NOERROR";
const NXDOMAIN: &str = "NXDOMAIN";

/// Small clusters, each exercising something the others do not.
fn param_sets() -> Vec<SynthParams> {
    vec![
        // Three namespaces; http+grpc on every third service; 6 × 7 headless endpoints,
        // every 10th not ready (so some headless services have 6 ready of 7); standalone pods.
        SynthParams {
            seed: 1,
            namespaces: 3,
            services: 40,
            endpoints_per_service: 2,
            headless: 6,
            endpoints_per_headless: 7,
            pods: 150,
            zone: Z.to_owned(),
        },
        // ClusterIP services without endpoints (empty slices); one endpoint per headless
        // service, so hl-0009's only endpoint is not ready: a headless service with no ready
        // endpoint at all.
        SynthParams {
            seed: 7,
            namespaces: 2,
            services: 12,
            endpoints_per_service: 0,
            headless: 12,
            endpoints_per_headless: 1,
            pods: 0,
            zone: Z.to_owned(),
        },
        // No application namespace: everything lands in `default`.
        SynthParams {
            seed: 42,
            namespaces: 0,
            services: 10,
            endpoints_per_service: 3,
            headless: 3,
            endpoints_per_headless: 10,
            pods: 60,
            zone: Z.to_owned(),
        },
    ]
}

/// A generated cluster served by clusterdns (`ttl = 30`, default options).
struct Generated {
    server: TestServer,
    cluster: SynthCluster,
    _dir: tempfile::TempDir,
}

impl Generated {
    fn start(p: &SynthParams) -> Generated {
        let dir = tempfile::tempdir().unwrap();
        let cluster = SynthCluster::generate(p);
        let (server, _) = TestServer::with_cluster(dir.path(), &cluster.cluster_yaml(), "ttl = 30");
        Generated {
            server,
            cluster,
            _dir: dir,
        }
    }

    fn seed(&self) -> u64 {
        self.cluster.params().seed
    }

    /// Checks rcode, AA, the answer RDATA as a set and, for empty answers, the zone SOA in
    /// the authority section.
    fn check(
        &self,
        name: &str,
        qtype: RecordType,
        rcode: &str,
        want: impl IntoIterator<Item = String>,
    ) -> Answer {
        let a = ask(self.server.udp(), name, qtype);
        let want: Vec<String> = want
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ctx = format!(
            "seed {}: {name} {qtype}: {} {:?}, authority {:?}",
            self.seed(),
            a.rcode(),
            a.answers(),
            a.authority()
        );
        assert_eq!(a.rcode(), rcode, "{ctx}");
        assert!(a.aa(), "{ctx}: AA not set");
        assert_eq!(a.rdata(), want, "{ctx}");
        if want.is_empty() {
            let soa = a.authority();
            assert_eq!(soa.len(), 1, "{ctx}: negative answer without SOA");
            assert!(soa[0].contains(" IN SOA ns.dns."), "{ctx}");
            assert!(soa[0].ends_with(" 7200 1800 86400 30"), "{ctx}");
        } else {
            assert!(a.authority().is_empty(), "{ctx}");
        }
        a
    }
}

fn none() -> Vec<String> {
    Vec::new()
}

fn ready(svc: &SynthService) -> Vec<&SynthEndpoint> {
    svc.endpoints.iter().filter(|ep| ep.ready).collect()
}

/// The addresses `svc.ns.svc.Z` A answers: the ClusterIP, or the ready endpoint addresses.
fn service_addresses(svc: &SynthService) -> BTreeSet<String> {
    match svc.cluster_ip {
        Some(ip) => [ip.to_string()].into(),
        None => ready(svc).iter().map(|ep| ep.ip.to_string()).collect(),
    }
}

/// The SRV targets of a service with the address each resolves to: the service itself
/// (ClusterIP), or each ready endpoint (headless).
fn srv_targets(svc: &SynthService) -> Vec<(String, Ipv4Addr)> {
    let fqdn = svc.fqdn(Z);
    match svc.cluster_ip {
        Some(ip) => vec![(fqdn, ip)],
        None => ready(svc)
            .iter()
            .map(|ep| (format!("{}.{fqdn}", ep.name()), ep.ip))
            .collect(),
    }
}

/// `floor(100 / n)`, at least 1.
fn weight(n: usize) -> usize {
    (100 / n.max(1)).max(1)
}

/// `10.11.12.13` → `10-11-12-13`.
fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

fn reverse(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{d}.{c}.{b}.{a}.in-addr.arpa")
}

#[test]
fn services_endpoints_and_namespaces_of_generated_clusters() {
    for p in param_sets() {
        let g = Generated::start(&p);
        let mut headless_without_ready = 0;
        for svc in g.cluster.services() {
            let fqdn = svc.fqdn(Z);
            let addrs = service_addresses(svc);
            if addrs.is_empty() {
                // Headless with no ready endpoint: the name does not exist.
                assert!(svc.is_headless());
                headless_without_ready += 1;
                g.check(&fqdn, RecordType::A, NXDOMAIN, none());
                g.check(&fqdn, RecordType::AAAA, NXDOMAIN, none());
            } else {
                g.check(&fqdn, RecordType::A, NOERROR, addrs);
                g.check(&fqdn, RecordType::AAAA, NOERROR, none());
                g.check(&fqdn, RecordType::TXT, NOERROR, none());
            }
            let ready = ready(svc);
            for ep in &svc.endpoints {
                let name = format!("{}.{fqdn}", ep.name());
                let want: Vec<String> = ready
                    .iter()
                    .filter(|r| r.name() == ep.name())
                    .map(|r| r.ip.to_string())
                    .collect();
                if want.is_empty() {
                    g.check(&name, RecordType::A, NXDOMAIN, none());
                } else {
                    g.check(&name, RecordType::A, NOERROR, want);
                    g.check(&name, RecordType::AAAA, NOERROR, none());
                }
            }
            assert!(svc.endpoints.iter().all(|ep| ep.name() != "no-such-ep"));
            g.check(
                &format!("no-such-ep.{fqdn}"),
                RecordType::A,
                NXDOMAIN,
                none(),
            );
        }
        if p.seed == 7 {
            assert_eq!(headless_without_ready, 1, "hl-0009 has no ready endpoint");
        }

        let namespaces = g.cluster.namespaces();
        for ns in namespaces {
            g.check(&format!("{ns}.svc.{Z}"), RecordType::A, NOERROR, none());
            g.check(&format!("{ns}.pod.{Z}"), RecordType::A, NOERROR, none());
            assert!(!g.cluster.services().iter().any(|s| s.name == "no-such-svc"));
            g.check(
                &format!("no-such-svc.{ns}.svc.{Z}"),
                RecordType::A,
                NXDOMAIN,
                none(),
            );
        }
        assert!(!namespaces.iter().any(|ns| ns == "ns-999"));
        g.check(&format!("ns-999.svc.{Z}"), RecordType::A, NXDOMAIN, none());
        // A real service name in a namespace that does not exist.
        let first = &g.cluster.services()[2];
        g.check(
            &format!("{}.ns-999.svc.{Z}", first.name),
            RecordType::A,
            NXDOMAIN,
            none(),
        );
    }
}

#[test]
fn srv_records_of_every_port_of_generated_clusters() {
    for p in param_sets() {
        let g = Generated::start(&p);
        for svc in g.cluster.services() {
            let fqdn = svc.fqdn(Z);
            let targets = srv_targets(svc);

            // The bare name: one SRV per (target, distinct port); N counts every
            // (port, address) tuple.
            if targets.is_empty() {
                g.check(&fqdn, RecordType::SRV, NXDOMAIN, none());
            } else {
                let w = weight(targets.len() * svc.ports.len());
                let want = targets.iter().flat_map(|(target, _)| {
                    svc.ports
                        .iter()
                        .map(move |(_, port, _)| format!("0 {w} {port} {target}."))
                });
                g.check(&fqdn, RecordType::SRV, NOERROR, want);
            }

            // `_port._proto` for every named port.
            for (name, _, proto) in svc.ports.iter().filter(|(n, _, _)| !n.is_empty()) {
                let qname = format!("_{name}._{}.{fqdn}", proto.to_ascii_lowercase());
                if targets.is_empty() {
                    g.check(&qname, RecordType::SRV, NXDOMAIN, none());
                    continue;
                }
                let matching: Vec<u16> = svc
                    .ports
                    .iter()
                    .filter(|(n, _, pr)| n.eq_ignore_ascii_case(name) && pr == proto)
                    .map(|(_, port, _)| *port)
                    .collect();
                let w = weight(targets.len() * matching.len());
                let want = targets.iter().flat_map(|(target, _)| {
                    matching
                        .iter()
                        .map(move |port| format!("0 {w} {port} {target}."))
                });
                let a = g.check(&qname, RecordType::SRV, NOERROR, want);
                let mut glue = a.additional();
                glue.sort();
                let want_glue: Vec<String> = targets
                    .iter()
                    .map(|(target, ip)| format!("{target}. 30 IN A {ip}"))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                assert_eq!(glue, want_glue, "seed {}: {qname} SRV additional", p.seed);
            }

            // A port name the service does not have, and a known name with the other protocol.
            assert!(!svc.ports.iter().any(|(n, _, _)| n == "nope"));
            g.check(
                &format!("_nope._tcp.{fqdn}"),
                RecordType::SRV,
                NXDOMAIN,
                none(),
            );
            if let Some((name, _, "TCP")) = svc.ports.first()
                && !svc.ports.iter().any(|(n, _, pr)| n == name && *pr == "UDP")
            {
                g.check(
                    &format!("_{name}._udp.{fqdn}"),
                    RecordType::SRV,
                    NXDOMAIN,
                    none(),
                );
            }
        }
    }
}

#[test]
fn reverse_names_and_pods_of_generated_clusters() {
    for p in param_sets() {
        let g = Generated::start(&p);
        let services = g.cluster.services();
        // A ClusterIP names its service; any other address names each ready endpoint using it.
        let mut by_cluster_ip: HashMap<Ipv4Addr, BTreeSet<String>> = HashMap::new();
        let mut by_endpoint: HashMap<Ipv4Addr, BTreeSet<String>> = HashMap::new();
        for svc in services {
            let fqdn = svc.fqdn(Z);
            if let Some(ip) = svc.cluster_ip {
                by_cluster_ip
                    .entry(ip)
                    .or_default()
                    .insert(format!("{fqdn}."));
            }
            for ep in ready(svc) {
                by_endpoint
                    .entry(ep.ip)
                    .or_default()
                    .insert(format!("{}.{fqdn}.", ep.name()));
            }
        }
        let mut addresses: BTreeSet<Ipv4Addr> = by_cluster_ip.keys().copied().collect();
        addresses.extend(
            services
                .iter()
                .flat_map(|s| s.endpoints.iter().map(|ep| ep.ip)),
        );
        addresses.extend(g.cluster.pods().iter().map(|pod| pod.ip));
        addresses.insert(Ipv4Addr::new(10, 99, 99, 99));
        let mut negative = 0;
        for ip in addresses {
            let want = by_cluster_ip
                .get(&ip)
                .or_else(|| by_endpoint.get(&ip))
                .cloned()
                .unwrap_or_default();
            if want.is_empty() {
                negative += 1;
                g.check(&reverse(ip), RecordType::PTR, NXDOMAIN, none());
            } else {
                g.check(&reverse(ip), RecordType::PTR, NOERROR, want);
            }
        }
        // Not-ready endpoints and 10.99.99.99 at least (plus standalone pods).
        let not_ready = services
            .iter()
            .flat_map(|s| &s.endpoints)
            .filter(|ep| !ep.ready)
            .count();
        assert!(negative > not_ready, "seed {}", p.seed);

        // Pod names (insecure mode by default): the address, when the namespace exists.
        let namespaces: HashSet<&str> = g.cluster.namespaces().iter().map(|s| s.as_str()).collect();
        assert!(!namespaces.contains("ns-999"));
        for pod in g.cluster.pods().iter().step_by(3) {
            let name = format!("{}.{}.pod.{Z}", dashed(pod.ip), pod.namespace);
            g.check(&name, RecordType::A, NOERROR, [pod.ip.to_string()]);
            g.check(&name, RecordType::AAAA, NOERROR, none());
            g.check(
                &format!("{}.ns-999.pod.{Z}", dashed(pod.ip)),
                RecordType::A,
                NXDOMAIN,
                none(),
            );
        }
    }
}

/// `(owner, type)` → RDATA set of every record of a synth master file.
fn zone_records(
    master: &str,
    origin: &str,
    into: &mut HashMap<(String, String), BTreeSet<String>>,
) {
    for line in master
        .lines()
        .filter(|l| !l.starts_with(';') && !l.starts_with('$'))
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 5, "zone line {line:?}");
        let owner = if f[0] == "@" {
            origin.to_owned()
        } else {
            format!("{}.{origin}", f[0])
        };
        into.entry((owner.to_ascii_lowercase(), f[3].to_owned()))
            .or_default()
            .insert(f[4].to_owned());
    }
}

#[test]
fn generated_query_files_are_answered_like_the_synth_zones() {
    for p in param_sets() {
        let g = Generated::start(&p);
        let mut records = HashMap::new();
        zone_records(&g.cluster.nsd_zone(), Z, &mut records);
        let (rev_name, rev) = g.cluster.reverse_zone();
        zone_records(&rev, &rev_name, &mut records);
        // Names that exist: every owner and every name between it and its zone's apex.
        let mut existing: HashSet<String> = HashSet::new();
        for (owner, _) in records.keys() {
            let apex = if owner.ends_with(&rev_name) {
                rev_name.as_str()
            } else {
                Z
            };
            let mut name = owner.as_str();
            while name.len() > apex.len() {
                existing.insert(name.to_owned());
                name = name.split_once('.').map_or(apex, |(_, rest)| rest);
            }
            existing.insert(apex.to_owned());
        }

        let queries = g.cluster.queries(500);
        assert_eq!(queries.lines().count(), 500);
        let distinct: BTreeSet<&str> = queries.lines().collect();
        let (mut positive, mut nodata, mut nx) = (0, 0, 0);
        for line in distinct {
            let (name, qtype) = line.split_once(' ').expect("name TYPE");
            let rtype: RecordType = qtype.parse().unwrap();
            let key = (name.to_ascii_lowercase(), qtype.to_owned());
            if let Some(want) = records.get(&key) {
                positive += 1;
                g.check(name, rtype, NOERROR, want.iter().cloned());
            } else if existing.contains(&key.0) {
                nodata += 1;
                g.check(name, rtype, NOERROR, none());
            } else {
                nx += 1;
                g.check(name, rtype, NXDOMAIN, none());
            }
        }
        assert!(
            positive > 0 && nx > 0,
            "seed {}: {positive} positive, {nodata} NODATA, {nx} NXDOMAIN",
            p.seed
        );
    }
}

#[test]
fn any_is_minimal_and_tcp_answers_like_udp_on_generated_clusters() {
    for p in param_sets() {
        let g = Generated::start(&p);
        for svc in g.cluster.services() {
            let fqdn = svc.fqdn(Z);
            let addrs = service_addresses(svc);
            let rcode = if addrs.is_empty() { NXDOMAIN } else { NOERROR };
            // RFC 8482: one RRset, here the A records.
            let a = g.check(&fqdn, RecordType::ANY, rcode, addrs.iter().cloned());
            assert!(
                a.msg
                    .answers
                    .iter()
                    .all(|r| r.record_type() == RecordType::A),
                "seed {}: {fqdn} ANY: {:?}",
                p.seed,
                a.answers()
            );
            if !svc.is_headless() {
                continue;
            }
            for (qname, qtype) in [
                (fqdn.clone(), RecordType::A),
                (format!("_tcp-peer._tcp.{fqdn}"), RecordType::SRV),
            ] {
                let udp = ask(g.server.udp(), &qname, qtype);
                let tcp = ask_tcp(g.server.tcp(), &qname, qtype);
                let ctx = format!("seed {}: {qname} {qtype}", p.seed);
                assert_eq!(tcp.rcode(), rcode, "{ctx} over TCP");
                assert!(tcp.aa(), "{ctx} over TCP: AA not set");
                assert!(!tcp.tc(), "{ctx} over TCP: TC set");
                assert_eq!(tcp.rdata(), udp.rdata(), "{ctx}: TCP and UDP differ");
                if qtype == RecordType::A {
                    let want: Vec<String> = addrs.iter().cloned().collect();
                    assert_eq!(tcp.rdata(), want, "{ctx} over TCP");
                }
            }
        }
    }
}
