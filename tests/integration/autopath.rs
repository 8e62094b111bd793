//! `[search_path] autopath`: the first search-path expansion of a name answered with a
//! CNAME to what the pod's resolver would end up with. Names that must not be rewritten,
//! and the saving, measured with a stub that follows resolv.conf's rules (ndots:5, the
//! three cluster search domains).

use hickory_proto::rr::RecordType;

use crate::client::ask;
use crate::harness::TestServer;
use crate::upstream::{Mode, TestUpstream};

fn server(dir: &std::path::Path, up: &TestUpstream, search_path: &str) -> TestServer {
    let toml = format!(
        "[source]\nsample = true\n[forward]\nupstreams = [\"{}\"]\n[search_path]\n{search_path}\n",
        up.addr
    );
    TestServer::from_toml(dir, &toml)
}

#[test]
fn first_expansions_are_answered_with_the_final_name() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &up, "autopath = true");
    // An external name from a pod in shop: CNAME to it, then the upstream's answer.
    let a = ask(s.udp(), "google.com.shop.svc.cluster.local", RecordType::A);
    assert_eq!(a.rcode(), "NOERROR", "{:?}", a.answers());
    let answers = a.answers();
    assert!(
        answers[0].starts_with("google.com.shop.svc.cluster.local. ")
            && answers[0].ends_with(" IN CNAME google.com."),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .skip(1)
            .all(|r| r.starts_with("google.com. ")),
        "{answers:?}"
    );
    assert!(answers.len() >= 2, "{answers:?}");
    assert!(
        up.names()
            .iter()
            .any(|n| n.eq_ignore_ascii_case("google.com.")),
        "{:?}",
        up.names()
    );
    // A service's short form from another namespace: found in the zone.
    let a = ask(s.udp(), "web.shop.default.svc.cluster.local", RecordType::A);
    assert_eq!(
        a.answers(),
        [
            "web.shop.default.svc.cluster.local. 5 IN CNAME web.shop.svc.cluster.local.",
            "web.shop.svc.cluster.local. 5 IN A 10.96.100.10",
        ]
    );
    // `X.svc` typed: `X.<zone>` names the service.
    let a = ask(
        s.udp(),
        "web.shop.svc.default.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(a.rdata(), ["10.96.100.10", "web.shop.svc.cluster.local."]);
}

#[test]
fn names_that_must_not_be_rewritten() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &up, "autopath = true");
    let not_rewritten = [
        // Real names, found or not, and everything below a service.
        ("web.shop.svc.cluster.local", RecordType::A, "NOERROR"),
        ("db-2.db.shop.svc.cluster.local", RecordType::A, "NXDOMAIN"),
        ("nope.web.shop.svc.cluster.local", RecordType::A, "NXDOMAIN"),
        (
            "headless-empty.monitoring.svc.cluster.local",
            RecordType::A,
            "NXDOMAIN",
        ),
        // Not a first expansion: no such namespace, or the later search domains.
        (
            "google.com.nope.svc.cluster.local",
            RecordType::A,
            "NXDOMAIN",
        ),
        ("google.com.svc.cluster.local", RecordType::A, "NXDOMAIN"),
        ("google.com.cluster.local", RecordType::A, "NXDOMAIN"),
        // Types other than A and AAAA, SRV-style names, a namespace typed alone.
        (
            "google.com.shop.svc.cluster.local",
            RecordType::TXT,
            "NXDOMAIN",
        ),
        (
            "google.com.shop.svc.cluster.local",
            RecordType::SRV,
            "NXDOMAIN",
        ),
        (
            "_http._tcp.nope.shop.svc.cluster.local",
            RecordType::A,
            "NXDOMAIN",
        ),
        (
            "monitoring.shop.svc.cluster.local",
            RecordType::A,
            "NXDOMAIN",
        ),
        // Pod and reverse names.
        ("10-1-2-3.shop.pod.cluster.local", RecordType::A, "NOERROR"),
        ("99.99.99.10.in-addr.arpa", RecordType::PTR, "NXDOMAIN"),
    ];
    for (name, qtype, rcode) in not_rewritten {
        let a = ask(s.udp(), name, qtype);
        assert_eq!(a.rcode(), rcode, "{name} {qtype}: {:?}", a.answers());
        assert!(
            a.msg
                .answers
                .iter()
                .all(|r| r.record_type() != RecordType::CNAME),
            "{name} {qtype} rewritten: {:?}",
            a.answers()
        );
    }
    assert!(
        up.names().iter().all(|n| !n.starts_with("google.com")),
        "{:?}",
        up.names()
    );

    // With host search domains of its own the node's resolver would try them first:
    // only names of the cluster zone are rewritten then.
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &up,
        "autopath = true\nhost_search = [\"corp.example\"]",
    );
    let a = ask(s.udp(), "google.com.shop.svc.cluster.local", RecordType::A);
    assert_eq!(a.rcode(), "NXDOMAIN", "{:?}", a.answers());
    let a = ask(s.udp(), "web.shop.default.svc.cluster.local", RecordType::A);
    assert_eq!(a.rdata(), ["10.96.100.10", "web.shop.svc.cluster.local."]);
}

/// Queries a glibc-style stub sends for `name` from a pod in `namespace`: with fewer
/// than five dots, each search domain in turn until an answer that is not NXDOMAIN,
/// then the name itself.
fn stub_queries(s: &TestServer, name: &str, namespace: &str) -> usize {
    let search = [
        format!("{namespace}.svc.cluster.local"),
        "svc.cluster.local".to_owned(),
        "cluster.local".to_owned(),
    ];
    let mut sent = 0;
    for domain in &search {
        sent += 1;
        if ask(s.udp(), &format!("{name}.{domain}"), RecordType::A).rcode() != "NXDOMAIN" {
            return sent;
        }
    }
    sent + 1
}

#[test]
fn autopath_turns_four_queries_into_one() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let off = server(dir.path(), &up, "");
    assert_eq!(stub_queries(&off, "google.com", "shop"), 4);
    let dir = tempfile::tempdir().unwrap();
    let on = server(dir.path(), &up, "autopath = true");
    assert_eq!(stub_queries(&on, "google.com", "shop"), 1);
    // A service of the zone by its short form costs the same one query either way.
    assert_eq!(stub_queries(&off, "web", "shop"), 1);
    assert_eq!(stub_queries(&on, "web", "shop"), 1);
}
