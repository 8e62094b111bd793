//! Every rule of dns-spec.md, asked over real UDP sockets of the sample cluster.

use hickory_proto::rr::RecordType;

use crate::client::{Answer, ask, ask_tcp, query_bytes, udp_exchange};
use crate::harness::{TestServer, sample_cluster};

fn rt(t: &str) -> RecordType {
    t.parse().unwrap()
}

/// Checks rcode, AA, the answer RDATA (as a sorted set) and, for negative answers, the
/// SOA in the authority section.
fn check(s: &TestServer, name: &str, qtype: &str, rcode: &str, rdata: &[&str]) -> Answer {
    let a = ask(s.udp(), name, rt(qtype));
    let ctx = format!("{name} {qtype}: {:?}", a.answers());
    assert_eq!(a.rcode(), rcode, "{ctx}");
    assert!(a.aa(), "{ctx}: AA not set");
    let mut want: Vec<String> = rdata.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(a.rdata(), want, "{ctx}");
    if rdata.is_empty() {
        let soa = a.authority();
        assert_eq!(soa.len(), 1, "{ctx}: negative answer without SOA");
        assert!(soa[0].contains(" SOA ns.dns."), "{ctx}: {soa:?}");
    } else {
        assert!(a.authority().is_empty(), "{ctx}");
    }
    a
}

const NOERROR: &str = "NOERROR";
const NXDOMAIN: &str = "NXDOMAIN";

fn sample(dir: &std::path::Path, options: &str) -> TestServer {
    TestServer::with_cluster(dir, &sample_cluster(), &format!("ttl = 30\n{options}")).0
}

#[test]
fn addresses_of_services_endpoints_and_pods() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample(dir.path(), "");
    let z = "svc.cluster.local";
    for (name, qtype, rcode, rdata) in [
        ("kubernetes.default", "A", NOERROR, &["10.96.0.1"][..]),
        ("kube-dns.kube-system", "A", NOERROR, &["10.96.0.10"]),
        ("web.shop", "A", NOERROR, &["10.96.100.10"]),
        ("web.shop", "AAAA", NOERROR, &[]),
        ("web.shop", "TXT", NOERROR, &[]),
        ("web.shop", "SOA", NOERROR, &[]),
        ("web.shop", "PTR", NOERROR, &[]),
        ("dual.shop", "A", NOERROR, &["10.96.100.20"]),
        ("dual.shop", "AAAA", NOERROR, &["fd00:10:96::100:20"]),
        ("no-endpoints.monitoring", "A", NOERROR, &["10.96.200.7"]),
        // Headless: ready endpoints only, deduplicated over slices.
        ("db.shop", "A", NOERROR, &["10.244.2.20", "10.244.2.21"]),
        ("db.shop", "AAAA", NOERROR, &[]),
        (
            "cache.shop",
            "A",
            NOERROR,
            &["10.244.3.30", "10.244.3.31", "10.244.3.32"],
        ),
        ("headless-empty.monitoring", "A", NXDOMAIN, &[]),
        // Endpoint names: hostnames, else dashed addresses; any service with endpoints.
        ("db-0.db.shop", "A", NOERROR, &["10.244.2.20"]),
        ("db-2.db.shop", "A", NXDOMAIN, &[]),
        ("10-244-3-31.cache.shop", "A", NOERROR, &["10.244.3.31"]),
        ("10-244-1-10.web.shop", "A", NOERROR, &["10.244.1.10"]),
        ("10-244-1-12.web.shop", "A", NXDOMAIN, &[]),
        (
            "fd00-10-244-4--40.dual.shop",
            "AAAA",
            NOERROR,
            &["fd00:10:244:4::40"],
        ),
        // Unknown things and malformed names.
        ("nope.shop", "A", NXDOMAIN, &[]),
        ("web.nope", "A", NXDOMAIN, &[]),
        ("x.empty-ns", "A", NXDOMAIN, &[]),
        ("a.b.c.web.shop", "A", NXDOMAIN, &[]),
        ("x.payments-api.shop", "A", NXDOMAIN, &[]),
        // Names that exist without records.
        ("shop", "A", NOERROR, &[]),
        ("empty-ns", "A", NOERROR, &[]),
        ("kube-public", "TXT", NOERROR, &[]),
    ] {
        check(&s, &format!("{name}.{z}"), qtype, rcode, rdata);
    }
    for (name, qtype, rcode, rdata) in [
        ("svc.cluster.local", "A", NOERROR, &[][..]),
        ("pod.cluster.local", "A", NOERROR, &[]),
        ("cluster.local", "A", NOERROR, &[]),
        ("cluster.local", "TXT", NOERROR, &[]),
        ("web.shop.nope.cluster.local", "A", NXDOMAIN, &[]),
        ("nope.cluster.local", "A", NXDOMAIN, &[]),
        ("shop.pod.cluster.local", "A", NOERROR, &[]),
        ("nope.pod.cluster.local", "A", NXDOMAIN, &[]),
        (
            "10-244-1-10.shop.pod.cluster.local",
            "A",
            NOERROR,
            &["10.244.1.10"],
        ),
        ("10-244-1-10.shop.pod.cluster.local", "AAAA", NOERROR, &[]),
        (
            "fd00-10-244-4--40.shop.pod.cluster.local",
            "AAAA",
            NOERROR,
            &["fd00:10:244:4::40"],
        ),
        ("10-244-1-10.nope.pod.cluster.local", "A", NXDOMAIN, &[]),
        ("not-an-ip.shop.pod.cluster.local", "A", NXDOMAIN, &[]),
        ("ns.dns.cluster.local", "A", NOERROR, &["10.96.0.10"]),
        ("dns-version.cluster.local", "A", NOERROR, &[]),
    ] {
        check(&s, name, qtype, rcode, rdata);
    }
}

#[test]
fn srv_records_weights_and_glue() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample(dir.path(), "");
    let a = check(
        &s,
        "_http._tcp.web.shop.svc.cluster.local",
        "SRV",
        NOERROR,
        &["0 100 80 web.shop.svc.cluster.local."],
    );
    assert_eq!(
        a.additional(),
        ["web.shop.svc.cluster.local. 30 IN A 10.96.100.10"]
    );
    check(
        &s,
        "web.shop.svc.cluster.local",
        "SRV",
        NOERROR,
        &[
            "0 50 443 web.shop.svc.cluster.local.",
            "0 50 80 web.shop.svc.cluster.local.",
        ],
    );
    // Three (service, port) tuples, two distinct ports: weight 33, two records.
    check(
        &s,
        "kube-dns.kube-system.svc.cluster.local",
        "SRV",
        NOERROR,
        &[
            "0 33 53 kube-dns.kube-system.svc.cluster.local.",
            "0 33 9153 kube-dns.kube-system.svc.cluster.local.",
        ],
    );
    check(
        &s,
        "_dns._udp.kube-dns.kube-system.svc.cluster.local",
        "SRV",
        NOERROR,
        &["0 100 53 kube-dns.kube-system.svc.cluster.local."],
    );
    let a = check(
        &s,
        "_postgres._tcp.db.shop.svc.cluster.local",
        "SRV",
        NOERROR,
        &[
            "0 50 5432 db-0.db.shop.svc.cluster.local.",
            "0 50 5432 db-1.db.shop.svc.cluster.local.",
        ],
    );
    let mut glue = a.additional();
    glue.sort();
    assert_eq!(
        glue,
        [
            "db-0.db.shop.svc.cluster.local. 30 IN A 10.244.2.20",
            "db-1.db.shop.svc.cluster.local. 30 IN A 10.244.2.21",
        ]
    );
    // Four tuples (one address in two slices): weight 25, deduplicated to three records.
    let a = check(
        &s,
        "cache.shop.svc.cluster.local",
        "SRV",
        NOERROR,
        &[
            "0 25 6379 10-244-3-30.cache.shop.svc.cluster.local.",
            "0 25 6379 10-244-3-31.cache.shop.svc.cluster.local.",
            "0 25 6379 10-244-3-32.cache.shop.svc.cluster.local.",
        ],
    );
    assert_eq!(a.additional().len(), 3, "{:?}", a.additional());
    // An unnamed port: in the bare SRV, but no _port._proto name.
    check(
        &s,
        "pushgateway.monitoring.svc.cluster.local",
        "SRV",
        NOERROR,
        &["0 100 9091 pushgateway.monitoring.svc.cluster.local."],
    );
    check(
        &s,
        "_http._udp.web.shop.svc.cluster.local",
        "SRV",
        NXDOMAIN,
        &[],
    );
    check(
        &s,
        "_nope._tcp.db.shop.svc.cluster.local",
        "SRV",
        NXDOMAIN,
        &[],
    );
    check(
        &s,
        "_http._tcp.web.shop.svc.cluster.local",
        "A",
        NOERROR,
        &[],
    );
    // Without underscores the labels still read as port and protocol.
    check(
        &s,
        "http.tcp.web.shop.svc.cluster.local",
        "SRV",
        NOERROR,
        &["0 100 80 web.shop.svc.cluster.local."],
    );
}

#[test]
fn external_names_reverse_names_and_apex() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample(dir.path(), "");
    let a = ask(
        s.udp(),
        "payments-api.shop.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(
        a.answers(),
        ["payments-api.shop.svc.cluster.local. 30 IN CNAME api.stripe.example.com."]
    );
    // Inside the zone the CNAME is chased: CNAME first, then the target's records.
    let a = ask(s.udp(), "web-alias.shop.svc.cluster.local", RecordType::A);
    assert_eq!(
        a.answers(),
        [
            "web-alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.",
            "web.shop.svc.cluster.local. 30 IN A 10.96.100.10",
        ]
    );
    let a = ask(
        s.udp(),
        "web-alias.shop.svc.cluster.local",
        RecordType::CNAME,
    );
    assert_eq!(a.answers().len(), 1);

    for (name, rdata) in [
        (
            "10.0.96.10.in-addr.arpa",
            &["kube-dns.kube-system.svc.cluster.local."][..],
        ),
        (
            "20.2.244.10.in-addr.arpa",
            &["db-0.db.shop.svc.cluster.local."],
        ),
        (
            "31.3.244.10.in-addr.arpa",
            &["10-244-3-31.cache.shop.svc.cluster.local."],
        ),
        ("12.1.244.10.in-addr.arpa", &[]),
        ("99.99.99.10.in-addr.arpa", &[]),
        (
            "0.2.0.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
            &["dual.shop.svc.cluster.local."],
        ),
        (
            "0.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.0.0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa",
            &["fd00-10-244-4--40.dual.shop.svc.cluster.local."],
        ),
    ] {
        check(
            &s,
            name,
            "PTR",
            if rdata.is_empty() { NXDOMAIN } else { NOERROR },
            rdata,
        );
    }
    check(&s, "10.0.96.10.in-addr.arpa", "A", NOERROR, &[]);

    let a = ask(s.udp(), "cluster.local", RecordType::SOA);
    assert_eq!(a.answers().len(), 1);
    assert!(
        a.answers()[0].starts_with(
            "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. "
        ),
        "{:?}",
        a.answers()
    );
    assert!(
        a.answers()[0].ends_with(" 7200 1800 86400 30"),
        "{:?}",
        a.answers()
    );
    let a = ask(s.udp(), "cluster.local", RecordType::NS);
    assert_eq!(
        a.answers(),
        ["cluster.local. 30 IN NS ns.dns.cluster.local."]
    );
    assert_eq!(a.additional(), ["ns.dns.cluster.local. 30 IN A 10.96.0.10"]);
    let a = ask(s.udp(), "dns-version.cluster.local", RecordType::TXT);
    assert_eq!(a.answers().len(), 1);
    assert!(
        a.answers()[0].starts_with("dns-version.cluster.local. 28800 IN TXT"),
        "{:?}",
        a.answers()
    );
    assert!(a.answers()[0].contains("1.1.0"));
    // Outside every zone: REFUSED (forwarding comes later), not authoritative.
    let a = ask(s.udp(), "example.org", RecordType::A);
    assert_eq!(a.rcode(), "REFUSED");
    assert!(!a.aa());
}

#[test]
fn question_case_is_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample(dir.path(), "");
    let raw = udp_exchange(
        s.udp(),
        &query_bytes(7, "Web.SHOP.svc.Cluster.LOCAL", RecordType::A, None),
    )
    .unwrap();
    let a = Answer::parse(raw);
    assert_eq!(
        a.answers(),
        ["Web.SHOP.svc.Cluster.LOCAL. 30 IN A 10.96.100.10"]
    );
    assert_eq!(
        a.msg.queries[0].name().to_string(),
        "Web.SHOP.svc.Cluster.LOCAL."
    );
    let a = ask(s.udp(), "Nope.SHOP.svc.Cluster.LOCAL", RecordType::A);
    assert!(
        a.authority()[0].starts_with("Cluster.LOCAL. "),
        "{:?}",
        a.authority()
    );
    let a = ask(
        s.udp(),
        "_HTTP._TCP.web.shop.svc.Cluster.LOCAL",
        RecordType::SRV,
    );
    assert_eq!(a.rdata(), ["0 100 80 web.shop.svc.Cluster.LOCAL."]);
}

#[test]
fn pod_modes() {
    let dir = tempfile::tempdir().unwrap();
    let disabled = sample(dir.path(), "pods = \"disabled\"");
    check(
        &disabled,
        "10-244-1-10.shop.pod.cluster.local",
        "A",
        NXDOMAIN,
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let verified = sample(dir.path(), "pods = \"verified\"");
    check(
        &verified,
        "10-244-1-10.shop.pod.cluster.local",
        "A",
        NOERROR,
        &["10.244.1.10"],
    );
    check(
        &verified,
        "10-244-1-10.default.pod.cluster.local",
        "A",
        NXDOMAIN,
        &[],
    );
    check(
        &verified,
        "10-1-2-3.shop.pod.cluster.local",
        "A",
        NXDOMAIN,
        &[],
    );
    // A Succeeded pod holds no address any more.
    check(
        &verified,
        "10-244-1-99.default.pod.cluster.local",
        "A",
        NXDOMAIN,
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let insecure = sample(dir.path(), "pods = \"insecure\"");
    check(
        &insecure,
        "10-1-2-3.shop.pod.cluster.local",
        "A",
        NOERROR,
        &["10.1.2.3"],
    );
}

#[test]
fn options_namespaces_ignore_empty_zonal_and_pod_names() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample(
        dir.path(),
        "namespaces = [\"shop\"]\nignore_empty_service = true\nzonal = true\nendpoint_pod_names = true",
    );
    check(
        &s,
        "web.shop.svc.cluster.local",
        "A",
        NOERROR,
        &["10.96.100.10"],
    );
    check(
        &s,
        "kubernetes.default.svc.cluster.local",
        "A",
        NXDOMAIN,
        &[],
    );
    check(&s, "default.svc.cluster.local", "A", NXDOMAIN, &[]);
    // endpoint_pod_names: endpoints without a hostname are named after their pod.
    check(
        &s,
        "web-7c9f8d-aaaaa.web.shop.svc.cluster.local",
        "A",
        NOERROR,
        &["10.244.1.10"],
    );
    check(
        &s,
        "db-0.db.shop.svc.cluster.local",
        "A",
        NOERROR,
        &["10.244.2.20"],
    );
    // zonal: pin answers only the zone's endpoints, prefer falls back to all of them.
    check(
        &s,
        "zone-a.pin._zone.db.shop.svc.cluster.local",
        "A",
        NOERROR,
        &["10.244.2.20"],
    );
    check(
        &s,
        "zone-b.pin._zone.db.shop.svc.cluster.local",
        "A",
        NOERROR,
        &["10.244.2.21"],
    );
    check(
        &s,
        "zone-c.pin._zone.db.shop.svc.cluster.local",
        "A",
        NOERROR,
        &[],
    );
    check(
        &s,
        "zone-c.prefer._zone.db.shop.svc.cluster.local",
        "A",
        NOERROR,
        &["10.244.2.20", "10.244.2.21"],
    );
    check(
        &s,
        "zone-a.pin._zone.db.shop.svc.cluster.local",
        "SRV",
        NOERROR,
        &["0 100 5432 db-0.db.shop.svc.cluster.local."],
    );
    check(
        &s,
        "zone-a.pin._zone.web.shop.svc.cluster.local",
        "A",
        NXDOMAIN,
        &[],
    );
    check(
        &s,
        "zone-a.sideways._zone.db.shop.svc.cluster.local",
        "A",
        NXDOMAIN,
        &[],
    );

    let dir = tempfile::tempdir().unwrap();
    let cluster = sample_cluster();
    let (s, _) = TestServer::with_cluster(dir.path(), &cluster, "ignore_empty_service = true");
    check(
        &s,
        "no-endpoints.monitoring.svc.cluster.local",
        "A",
        NXDOMAIN,
        &[],
    );
    check(
        &s,
        "web.shop.svc.cluster.local",
        "A",
        NOERROR,
        &["10.96.100.10"],
    );
}

#[test]
fn narrow_reverse_zones_and_fallthrough() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample(
        dir.path(),
        "zones = [\"cluster.local\", \"96.10.in-addr.arpa\"]\nfallthrough = [\"in-addr.arpa\"]",
    );
    check(
        &s,
        "10.0.96.10.in-addr.arpa",
        "PTR",
        NOERROR,
        &["kube-dns.kube-system.svc.cluster.local."],
    );
    // Outside the narrow zone: not ours.
    assert_eq!(
        ask(s.udp(), "20.2.244.10.in-addr.arpa", RecordType::PTR).rcode(),
        "REFUSED"
    );
    // In it but unknown: falls through, and nothing follows yet.
    assert_eq!(
        ask(s.udp(), "9.9.96.10.in-addr.arpa", RecordType::PTR).rcode(),
        "REFUSED"
    );
    let a = ask(s.udp(), "96.10.in-addr.arpa", RecordType::SOA);
    assert!(
        a.answers()[0].starts_with("96.10.in-addr.arpa. 30 IN SOA ns.dns.96.10.in-addr.arpa."),
        "{:?}",
        a.answers()
    );
}

#[test]
fn tcp_answers_like_udp() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample(dir.path(), "");
    let a = ask_tcp(s.tcp(), "db.shop.svc.cluster.local", RecordType::A);
    assert_eq!(a.rdata(), ["10.244.2.20", "10.244.2.21"]);
    assert!(
        a.msg.edns.is_none(),
        "no OPT in the answer when the query had none"
    );
}
