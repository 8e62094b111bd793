//! The `hosts` stage: inline entries and a hosts file answer A, AAAA and PTR as CoreDNS's
//! `hosts` does (NODATA for a name it holds without the type, SERVFAIL or fallthrough
//! for one it lacks), and the file is read again when it changes, the last good one kept
//! while it is broken.

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::client::{Answer, ask, ask_tcp};
use crate::harness::{TestServer, sample_cluster};
use crate::upstream::{Mode, TestUpstream};

fn start(dir: &Path, hosts: &str, upstream: Option<&TestUpstream>) -> TestServer {
    std::fs::write(dir.join("cluster.yaml"), sample_cluster()).unwrap();
    let upstreams = upstream.map_or(String::new(), |u| format!("\"{}\"", u.addr));
    let toml = format!(
        "chain = [\"hosts\", \"kubernetes\", \"loop\", \"cache\", \"forward\"]\n\
         [source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = [{upstreams}]\n\
         [hosts]\n{hosts}"
    );
    TestServer::from_toml(dir, &toml)
}

/// Asks until `check` holds, for at most 10 s (the file is polled every 50 ms).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces the file whole (a new file renamed over it), so the server never reads it
/// half written.
fn replace(file: &Path, text: &str) {
    let new = file.with_extension("new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, file).unwrap();
}

fn ttls(a: &Answer) -> Vec<u32> {
    a.msg.answers.iter().map(|r| r.ttl).collect()
}

#[test]
fn inline_entries_and_the_file_answer_as_coredns_hosts_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts"),
        "# the file\n10.0.0.1 db.example db\nfd00::1 db.example\n10.0.0.2 db.example\n",
    )
    .unwrap();
    let s = start(
        dir.path(),
        "file = \"hosts\"\nentries = [\"10.0.0.9 cache.example\"]\nzones = [\"example\", \"db\"]\nttl = 60\n",
        None,
    );
    let a = ask(s.udp(), "DB.example", RecordType::A);
    assert_eq!(a.rcode(), "NOERROR");
    assert!(a.aa());
    assert_eq!(a.rdata(), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(ttls(&a), [60, 60]);
    assert_eq!(
        ask_tcp(s.tcp(), "db.example", RecordType::AAAA).rdata(),
        ["fd00::1"]
    );
    assert_eq!(ask(s.udp(), "db", RecordType::A).rdata(), ["10.0.0.1"]);
    assert_eq!(
        ask(s.udp(), "cache.example", RecordType::A).rdata(),
        ["10.0.0.9"]
    );
    // Held, but no record of the type: NODATA.
    for (name, qtype) in [
        ("cache.example", RecordType::AAAA),
        ("db.example", RecordType::MX),
    ] {
        let a = ask(s.udp(), name, qtype);
        assert_eq!((a.rcode().as_str(), a.msg.answers.len()), ("NOERROR", 0));
        assert!(a.aa(), "{name} {qtype}");
    }
    // A name of its zones it lacks, without fallthrough: SERVFAIL, as CoreDNS.
    assert_eq!(
        ask(s.udp(), "nope.example", RecordType::A).rcode(),
        "SERVFAIL"
    );
    // PTR for every name of an address, from the file and the entries.
    let ptr = ask(s.udp(), "1.0.0.10.in-addr.arpa", RecordType::PTR);
    assert_eq!(ptr.rdata(), ["db.", "db.example."]);
    assert!(ptr.aa());
    let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
    assert_eq!(ask(s.udp(), v6, RecordType::PTR).rdata(), ["db.example."]);
    // Names outside its zones and addresses it lacks go on: here to the cluster zone.
    let web = ask(s.udp(), "web.shop.svc.cluster.local", RecordType::A);
    assert_eq!(web.rdata(), ["10.96.100.10"]);
    let kube_dns = ask(s.udp(), "10.0.96.10.in-addr.arpa", RecordType::PTR);
    assert_eq!(
        kube_dns.rdata(),
        ["kube-dns.kube-system.svc.cluster.local."]
    );
}

#[test]
fn fallthrough_and_no_reverse_pass_names_on() {
    let up = TestUpstream::start(Mode::Answer { ttl: 30 });
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        "entries = [\"10.0.0.1 db.example\"]\nfallthrough = [\"example\"]\nno_reverse = true\n",
        Some(&up),
    );
    assert_eq!(
        ask(s.udp(), "db.example", RecordType::A).rdata(),
        ["10.0.0.1"]
    );
    // Lacked and covered by fallthrough: the upstream answers.
    assert_eq!(
        ask(s.udp(), "web.example", RecordType::A).rdata(),
        ["192.0.2.1"]
    );
    // Held without the type: NODATA still (only a name it lacks falls through).
    let a = ask(s.udp(), "db.example", RecordType::AAAA);
    assert_eq!((a.rcode().as_str(), a.msg.answers.len()), ("NOERROR", 0));
    // Lacked and not covered: SERVFAIL.
    assert_eq!(ask(s.udp(), "www.other", RecordType::A).rcode(), "SERVFAIL");
    // no_reverse: no PTR from the table; the question goes on to the reverse zone,
    // which does not know the address.
    let ptr = ask(s.udp(), "1.0.0.10.in-addr.arpa", RecordType::PTR);
    assert_eq!(
        (ptr.rcode().as_str(), ptr.msg.answers.len()),
        ("NXDOMAIN", 0)
    );
}

#[test]
fn a_changed_file_is_read_again_and_a_broken_one_keeps_the_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    std::fs::write(&file, "10.0.0.1 db.example\n").unwrap();
    let s = start(dir.path(), "file = \"hosts\"\nreload_ms = 50\n", None);
    let db = || ask(s.udp(), "db.example", RecordType::A).rdata();
    assert_eq!(db(), ["10.0.0.1"]);

    replace(&file, "10.0.0.2 db.example\n10.0.0.3 new.example\n");
    eventually("the changed file is read", || db() == ["10.0.0.2"]);
    assert_eq!(
        ask(s.udp(), "new.example", RecordType::A).rdata(),
        ["10.0.0.3"]
    );

    // A broken line: the whole file is refused and the last good table stays, through
    // as many polls as a good change needs above.
    replace(&file, "10.0.0.4 db.example\nnot-an-address db.example\n");
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        assert_eq!(db(), ["10.0.0.2"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Gone: the last good table stays too.
    std::fs::remove_file(&file).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(db(), ["10.0.0.2"]);
    // Fixed: read again.
    replace(&file, "10.0.0.5 db.example\n");
    eventually("the fixed file is read", || db() == ["10.0.0.5"]);
}

#[test]
fn the_hosts_table_is_checked_like_the_rest_of_the_config() {
    let parse = |text: &str| {
        clusterdns::config::Config::parse(Path::new("c.toml"), text)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let base = "[source]\nsample = true\n";
    let err = parse(&format!(
        "chain = [\"hosts\", \"kubernetes\"]\n{base}[hosts]\nentries = [\"10.0.0.1 a.example\", \"a.example 10.0.0.1\"]\n"
    ));
    assert!(err.starts_with("c.toml:5:"), "{err}");
    assert!(err.contains("\"a.example\" is not an IP address"), "{err}");
    let err = parse(&format!("chain = [\"hosts\", \"kubernetes\"]\n{base}"));
    assert!(
        err.starts_with("c.toml:1:") && err.contains("[hosts]"),
        "{err}"
    );
    let err = parse(&format!("{base}[hosts]\nentries = [\"10.0.0.1 a\"]\n"));
    assert!(
        err.starts_with("c.toml:3:") && err.contains("not in the chain"),
        "{err}"
    );
    let err = parse(&format!("chain = [\"hosts\"]\n{base}[hosts]\nttl = 5\n"));
    assert!(err.contains("no file and no entries"), "{err}");
    let err = parse(&format!(
        "chain = [\"hosts\"]\n{base}[hosts]\nfile = \"h\"\nbogus = 1\n"
    ));
    assert!(
        err.starts_with("c.toml:6:") && err.contains("bogus"),
        "{err}"
    );
    // A block's own table.
    let ok = clusterdns::config::Config::parse(
        Path::new("c.toml"),
        &format!(
            "{base}[[blocks]]\nname = \"edge\"\nlisten = [\"127.0.0.1:5400\"]\nchain = [\"hosts\", \"loadbalance\"]\n[blocks.hosts]\nentries = [\"10.0.0.1 a\"]\n"
        ),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

/// The default block's chain follows a reload: a hosts stage put in answers at once, and
/// taken out again, the names go on to the zone.
#[test]
fn a_reload_puts_the_hosts_stage_in_and_takes_it_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let base = "[source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = []\n";
    let mut s = TestServer::from_toml(dir.path(), base);
    let web = "web.shop.svc.cluster.local";
    assert_eq!(ask(s.udp(), web, RecordType::A).rdata(), ["10.96.100.10"]);
    let path = dir.path().join("clusterdns.toml");
    std::fs::write(
        &path,
        format!(
            "chain = [\"hosts\", \"kubernetes\"]\n{base}[hosts]\nentries = [\"10.1.1.1 {web}\"]\nzones = [\"shop.svc.cluster.local\"]\n"
        ),
    )
    .unwrap();
    s.reload_from(&path).unwrap();
    assert_eq!(ask(s.udp(), web, RecordType::A).rdata(), ["10.1.1.1"]);
    // Lacked in its zone, no fallthrough: SERVFAIL; other zones go on.
    let db = "db.shop.svc.cluster.local";
    assert_eq!(ask(s.udp(), db, RecordType::A).rcode(), "SERVFAIL");
    let kube = "kubernetes.default.svc.cluster.local";
    assert_eq!(ask(s.udp(), kube, RecordType::A).rdata(), ["10.96.0.1"]);
    std::fs::write(&path, base).unwrap();
    s.reload_from(&path).unwrap();
    assert_eq!(ask(s.udp(), web, RecordType::A).rdata(), ["10.96.100.10"]);
}
