//! Answers at the edges of dns-spec.md, over real UDP sockets: ExternalName loops, ANY at
//! every kind of owner, the name server's own name, and SRV glue spelled as its target.

use hickory_proto::rr::RecordType;

use crate::client::{Answer, ask, query_bytes, udp_exchange};
use crate::harness::{TestServer, sample_cluster};

/// ExternalNames that loop: to themselves, to each other, and a chain into a loop. No
/// kube-system/kube-dns service either.
const LOOPS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: loops}
---
apiVersion: v1
kind: Service
metadata: {name: self, namespace: loops}
spec: {type: ExternalName, externalName: self.loops.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: ping, namespace: loops}
spec: {type: ExternalName, externalName: pong.loops.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: pong, namespace: loops}
spec: {type: ExternalName, externalName: PING.loops.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: first, namespace: loops}
spec: {type: ExternalName, externalName: ping.loops.svc.cluster.local}
"#;

fn case(s: &TestServer, name: &str, qtype: RecordType) -> Answer {
    let raw = udp_exchange(s.udp(), &query_bytes(3, name, qtype, Some(1232)))
        .unwrap_or_else(|| panic!("no answer for {name} {qtype}"));
    Answer::parse(raw)
}

#[test]
fn external_name_loops_answer_the_chain_once() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = TestServer::with_cluster(dir.path(), LOOPS, "ttl = 30");
    let cname = |from: &str, to: &str| {
        format!("{from}.loops.svc.cluster.local. 30 IN CNAME {to}.loops.svc.cluster.local.")
    };
    let table: [(&str, RecordType, Vec<String>); 6] = [
        ("self", RecordType::A, vec![cname("self", "self")]),
        ("self", RecordType::AAAA, vec![cname("self", "self")]),
        (
            "ping",
            RecordType::A,
            vec![cname("ping", "pong"), cname("pong", "ping")],
        ),
        ("pong", RecordType::CNAME, vec![cname("pong", "ping")]),
        (
            "first",
            RecordType::A,
            vec![
                cname("first", "ping"),
                cname("ping", "pong"),
                cname("pong", "ping"),
            ],
        ),
        (
            "first",
            RecordType::ANY,
            vec![
                cname("first", "ping"),
                cname("ping", "pong"),
                cname("pong", "ping"),
            ],
        ),
    ];
    for (name, qtype, want) in table {
        let a = ask(s.udp(), &format!("{name}.loops.svc.cluster.local"), qtype);
        assert_eq!(a.rcode(), "NOERROR", "{name} {qtype}");
        assert_eq!(a.answers(), want, "{name} {qtype}");
    }
}

#[test]
fn any_answers_whatever_the_owner_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = TestServer::with_cluster(dir.path(), &sample_cluster(), "ttl = 30");
    let table: [(&str, &[&str]); 12] = [
        (
            "_http._tcp.web.shop.svc.cluster.local",
            &["0 100 80 web.shop.svc.cluster.local."],
        ),
        (
            "_postgres._tcp.db.shop.svc.cluster.local",
            &[
                "0 50 5432 db-0.db.shop.svc.cluster.local.",
                "0 50 5432 db-1.db.shop.svc.cluster.local.",
            ],
        ),
        ("web.shop.svc.cluster.local", &["10.96.100.10"]),
        (
            "dual.shop.svc.cluster.local",
            &["10.96.100.20", "fd00:10:96::100:20"],
        ),
        ("db.shop.svc.cluster.local", &["10.244.2.20", "10.244.2.21"]),
        ("db-0.db.shop.svc.cluster.local", &["10.244.2.20"]),
        ("10-244-1-11.shop.pod.cluster.local", &["10.244.1.11"]),
        (
            "10.0.96.10.in-addr.arpa",
            &["kube-dns.kube-system.svc.cluster.local."],
        ),
        ("ns.dns.cluster.local", &["10.96.0.10"]),
        (
            "web-alias.shop.svc.cluster.local",
            &["10.96.100.10", "web.shop.svc.cluster.local."],
        ),
        ("dns-version.cluster.local", &["1.1.0"]),
        ("shop.svc.cluster.local", &[]),
    ];
    for (name, want) in table {
        let a = ask(s.udp(), name, RecordType::ANY);
        assert_eq!(a.rcode(), "NOERROR", "{name}");
        assert_eq!(a.rdata(), want, "{name} ANY: {:?}", a.answers());
    }
    let apex = ask(s.udp(), "cluster.local", RecordType::ANY);
    assert_eq!(apex.answers().len(), 1);
    assert!(
        apex.answers()[0].contains(" IN SOA "),
        "{:?}",
        apex.answers()
    );
}

#[test]
fn the_name_server_has_addresses_and_glue_is_spelled_as_its_target() {
    let dir = tempfile::tempdir().unwrap();
    // With kube-system/kube-dns: its ClusterIP, the question's case kept for the zone.
    let (s, _) = TestServer::with_cluster(dir.path(), &sample_cluster(), "ttl = 30");
    let a = case(&s, "Cluster.LOCAL", RecordType::NS);
    assert_eq!(
        a.answers(),
        ["Cluster.LOCAL. 30 IN NS ns.dns.Cluster.LOCAL."]
    );
    assert_eq!(a.additional(), ["ns.dns.Cluster.LOCAL. 30 IN A 10.96.0.10"]);
    let a = case(&s, "ns.dns.Cluster.LOCAL", RecordType::A);
    assert_eq!(a.answers(), ["ns.dns.Cluster.LOCAL. 30 IN A 10.96.0.10"]);

    // SRV targets and their glue carry one spelling: service labels as the cluster has
    // them, the zone as the question wrote it.
    for (name, targets) in [
        (
            "_HTTP._tcp.WEB.shop.svc.Cluster.LOCAL",
            &["web.shop.svc.Cluster.LOCAL."][..],
        ),
        (
            "WEB.Shop.svc.Cluster.LOCAL",
            &["web.shop.svc.Cluster.LOCAL."],
        ),
        (
            "_postgres._TCP.DB.shop.svc.Cluster.LOCAL",
            &[
                "db-0.db.shop.svc.Cluster.LOCAL.",
                "db-1.db.shop.svc.Cluster.LOCAL.",
            ],
        ),
        (
            "db-0.DB.shop.svc.Cluster.LOCAL",
            &["db-0.db.shop.svc.Cluster.LOCAL."],
        ),
    ] {
        let a = case(&s, name, RecordType::SRV);
        let mut srv: Vec<String> = a
            .rdata()
            .iter()
            .map(|r| r.rsplit(' ').next().unwrap().to_string())
            .collect();
        srv.dedup();
        assert_eq!(srv, targets, "{name}");
        let mut glue: Vec<String> = a
            .msg
            .additionals
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        glue.sort();
        glue.dedup();
        assert_eq!(glue, targets, "{name}: glue owners");
    }
    drop(s);

    // Without kube-dns in the cluster: the addresses we listen on, as CoreDNS does.
    let (s, _) = TestServer::with_cluster(dir.path(), LOOPS, "ttl = 30");
    let a = case(&s, "cluster.local", RecordType::NS);
    assert_eq!(
        a.answers(),
        ["cluster.local. 30 IN NS ns.dns.cluster.local."]
    );
    assert_eq!(a.additional(), ["ns.dns.cluster.local. 30 IN A 127.0.0.1"]);
    let a = case(&s, "ns.dns.cluster.local", RecordType::A);
    assert_eq!(a.answers(), ["ns.dns.cluster.local. 30 IN A 127.0.0.1"]);
    let a = case(&s, "ns.dns.cluster.local", RecordType::AAAA);
    assert_eq!((a.rcode().as_str(), a.answers().len()), ("NOERROR", 0));
}
