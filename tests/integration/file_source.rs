//! The cluster file changes under a running server.

use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::client::ask;
use crate::harness::{TestServer, sample_cluster, wait_until};

/// Polls until `f` holds, for at most a second: the file source must apply a change
/// within that.
fn within_a_second(f: impl FnMut() -> bool) -> bool {
    wait_until(Duration::from_secs(1), f)
}

#[test]
fn edits_show_up_and_broken_edits_keep_the_last_good_state() {
    let dir = tempfile::tempdir().unwrap();
    let (s, file) = TestServer::with_cluster(dir.path(), &sample_cluster(), "");
    let web = "web.shop.svc.cluster.local";
    assert_eq!(ask(s.udp(), web, RecordType::A).rdata(), ["10.96.100.10"]);

    // Change web's ClusterIP and delete the prometheus service.
    let edited = sample_cluster()
        .replace("10.96.100.10", "10.96.100.99")
        .replace("name: prometheus\n", "name: prometheus-renamed\n");
    assert_ne!(edited, sample_cluster());
    std::fs::write(&file, &edited).unwrap();
    assert!(
        within_a_second(|| ask(s.udp(), web, RecordType::A).rdata() == ["10.96.100.99"]),
        "the edit was not applied"
    );
    let gone = ask(
        s.udp(),
        "prometheus.monitoring.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(gone.rcode(), "NXDOMAIN");
    let renamed = ask(
        s.udp(),
        "prometheus-renamed.monitoring.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(renamed.rdata(), ["10.96.200.5"]);
    // The reverse name followed the ClusterIP.
    let ptr = ask(s.udp(), "99.100.96.10.in-addr.arpa", RecordType::PTR);
    assert_eq!(ptr.rdata(), ["web.shop.svc.cluster.local."]);
    assert_eq!(
        ask(s.udp(), "10.100.96.10.in-addr.arpa", RecordType::PTR).rcode(),
        "NXDOMAIN"
    );

    // A broken edit: YAML that does not parse. The old answers stay.
    std::fs::write(&file, format!("{edited}\n  - this: [is: broken\n")).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(ask(s.udp(), web, RecordType::A).rdata(), ["10.96.100.99"]);
    // An object that parses but is wrong (a bad IP) is refused the same way.
    std::fs::write(&file, edited.replace("10.96.100.99", "10.96.100.999")).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(ask(s.udp(), web, RecordType::A).rdata(), ["10.96.100.99"]);
    // Deleting the file: still serving.
    std::fs::remove_file(&file).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ask(s.udp(), web, RecordType::A).rdata(), ["10.96.100.99"]);
    // Fixed again: applied.
    std::fs::write(&file, sample_cluster()).unwrap();
    assert!(within_a_second(
        || ask(s.udp(), web, RecordType::A).rdata() == ["10.96.100.10"]
    ));
    assert_eq!(
        ask(
            s.udp(),
            "prometheus.monitoring.svc.cluster.local",
            RecordType::A
        )
        .rdata(),
        ["10.96.200.5"]
    );
}

#[test]
fn readiness_flips_and_slices_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let (s, file) = TestServer::with_cluster(dir.path(), &sample_cluster(), "");
    let db = "db.shop.svc.cluster.local";
    assert_eq!(
        ask(s.udp(), db, RecordType::A).rdata(),
        ["10.244.2.20", "10.244.2.21"]
    );
    // db-2 becomes ready: its only `ready: false` in the file is the one to flip.
    let text = sample_cluster();
    let at = text.find("hostname: db-2").unwrap();
    let start = text[..at].rfind("- addresses:").unwrap();
    let flipped = format!(
        "{}{}",
        &text[..start],
        text[start..].replacen("ready: false", "ready: true", 1)
    );
    std::fs::write(&file, &flipped).unwrap();
    assert!(within_a_second(|| ask(s.udp(), db, RecordType::A)
        .rdata()
        .len()
        == 3));
    assert_eq!(
        ask(s.udp(), "db-2.db.shop.svc.cluster.local", RecordType::A).rdata(),
        ["10.244.2.22"]
    );
}
