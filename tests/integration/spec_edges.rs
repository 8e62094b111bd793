//! Answers at the edges of dns-spec.md, over real UDP sockets: ExternalName loops.

use hickory_proto::rr::RecordType;

use crate::client::ask;
use crate::harness::TestServer;

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
