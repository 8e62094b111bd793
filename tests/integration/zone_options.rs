//! `[kubernetes]` options that shape what is served, asked over DNS: reverse zones given
//! as CIDRs, and the `labels` selector on a cluster file.

use hickory_proto::rr::RecordType;

use crate::client::ask;
use crate::harness::{TestServer, sample_cluster};

/// `10.96.96.0/20` is not octet-aligned: it stands for the sixteen zones
/// `96.96.10.in-addr.arpa` to `111.96.10.in-addr.arpa`, as with CoreDNS. Addresses in them
/// are answered; others are not this server's (no upstream here: REFUSED).
#[test]
fn cidr_zones_answer_the_reverse_names_inside_them() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = TestServer::with_cluster(
        dir.path(),
        &sample_cluster(),
        "zones = [\"cluster.local\", \"10.96.96.0/20\", \"fd00:10:96::/64\"]",
    );
    // shop/web 10.96.100.10 lies in 100.96.10.in-addr.arpa, one of the sixteen.
    let web = ask(s.udp(), "10.100.96.10.in-addr.arpa", RecordType::PTR);
    assert_eq!(
        (web.rcode().as_str(), web.aa()),
        ("NOERROR", true),
        "{web:?}"
    );
    assert_eq!(web.rdata(), ["web.shop.svc.cluster.local."]);
    // An address of a zone of the range with no service: NXDOMAIN from this server.
    let none = ask(s.udp(), "9.9.111.96.10.in-addr.arpa", RecordType::PTR);
    assert_eq!((none.rcode().as_str(), none.aa()), ("NXDOMAIN", true));
    // The IPv6 CIDR: shop/dual's fd00:10:96::100:20.
    let dual = ask(
        s.udp(),
        "0.2.0.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
        RecordType::PTR,
    );
    assert_eq!(dual.rdata(), ["dual.shop.svc.cluster.local."]);
    // kube-dns 10.96.0.10 and prometheus 10.96.200.5 are outside the range.
    for outside in ["10.0.96.10.in-addr.arpa", "5.200.96.10.in-addr.arpa"] {
        let a = ask(s.udp(), outside, RecordType::PTR);
        assert_eq!(
            (a.rcode().as_str(), a.aa()),
            ("REFUSED", false),
            "{outside}"
        );
    }
}

/// `labels` with a cluster file (and with the built-in sample) keeps what the API server
/// would send the Kubernetes source for the same selector: Services, EndpointSlices and
/// Pods whose own labels match.
#[test]
fn labels_select_what_a_cluster_file_serves() {
    let selector = "labels = \"app in (web,db)\"";
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = TestServer::with_cluster(dir.path(), &sample_cluster(), selector);
    let sample_dir = tempfile::tempdir().unwrap();
    let sample = TestServer::from_toml(
        sample_dir.path(),
        &format!("[source]\nsample = true\n[kubernetes]\n{selector}\n"),
    );
    for s in [&file, &sample] {
        let web = ask(s.udp(), "web.shop.svc.cluster.local", RecordType::A);
        assert_eq!(web.rdata(), ["10.96.100.10"]);
        // Headless: its addresses come from its EndpointSlice, labelled app=db too.
        let db = ask(s.udp(), "db.shop.svc.cluster.local", RecordType::A);
        assert_eq!(db.rcode(), "NOERROR");
        assert!(!db.rdata().is_empty(), "{db:?}");
        for outside in [
            "cache.shop.svc.cluster.local",
            "kubernetes.default.svc.cluster.local",
            "prometheus.monitoring.svc.cluster.local",
        ] {
            assert_eq!(ask(s.udp(), outside, RecordType::A).rcode(), "NXDOMAIN");
        }
        // Namespaces are not filtered: a namespace with no selected service still exists.
        let ns = ask(s.udp(), "monitoring.svc.cluster.local", RecordType::A);
        assert_eq!(ns.rcode(), "NOERROR");
    }
}
