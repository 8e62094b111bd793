//! Zone transfer (AXFR) over TCP: every record the zone answers, SOA first and last, in
//! messages of at most 64 KiB, only to the clients `[transfer] to` lists. Each message
//! is decoded by hickory-proto, record by record, and every record set is compared with
//! what the server answers for that name over UDP (and the synthetic cluster's own
//! model of its zone).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clusterdns_testkit::synth::{SynthCluster, SynthParams};
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};

use crate::client::{ask, ask_tcp, query_bytes, tcp_connect, tcp_read, tcp_send};
use crate::harness::{TestServer, sample_cluster};

/// `(owner, type)` → RDATA set, as hickory-proto prints them.
type Records = HashMap<(String, RecordType), BTreeSet<String>>;

/// A transfer as received: every message, decoded.
struct Transfer {
    messages: Vec<Message>,
}

impl Transfer {
    fn records(&self) -> Vec<&hickory_proto::rr::Record> {
        self.messages
            .iter()
            .flat_map(|m| m.answers.iter())
            .collect()
    }

    fn serial(&self) -> u32 {
        match &self.records()[0].data {
            RData::SOA(soa) => soa.serial,
            other => panic!("first record is not the SOA: {other:?}"),
        }
    }

    /// Every record but the closing SOA, grouped by name and type.
    fn by_name(&self) -> Records {
        let records = self.records();
        let mut out = Records::new();
        for r in &records[..records.len() - 1] {
            out.entry((r.name.to_string().to_ascii_lowercase(), r.record_type()))
                .or_default()
                .insert(r.data.to_string());
        }
        out
    }
}

/// Asks for `zone` by AXFR and reads messages until the closing SOA.
fn axfr(addr: SocketAddr, zone: &str) -> Transfer {
    let mut s = tcp_connect(addr);
    tcp_send(&mut s, &query_bytes(0x5a5a, zone, RecordType::AXFR, None));
    let mut messages = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let raw = tcp_read(&mut s).expect("transfer ended before the closing SOA");
        assert!(raw.len() <= 64 * 1024, "a message of {} bytes", raw.len());
        let m = Message::from_vec(&raw).unwrap_or_else(|e| panic!("undecodable message: {e}"));
        assert_eq!(m.metadata.id, 0x5a5a);
        assert_eq!(
            format!("{:?}", m.metadata.response_code),
            "NoError",
            "{:?}",
            m.metadata
        );
        assert!(m.metadata.authoritative && !m.metadata.truncation);
        soas += m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        messages.push(m);
    }
    let t = Transfer { messages };
    let records = t.records();
    assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
    assert_eq!(
        records.first().unwrap().to_string(),
        records.last().unwrap().to_string()
    );
    t
}

/// Every record set of the transfer is what the server answers for that name and type.
fn answers_agree(server: &TestServer, records: &Records) {
    for ((name, rtype), rdata) in records {
        let mut a = ask(server.udp(), name, *rtype);
        if a.tc() {
            a = ask_tcp(server.tcp(), name, *rtype);
        }
        let live: BTreeSet<String> = a
            .msg
            .answers
            .iter()
            .filter(|r| r.record_type() == *rtype && r.name.to_string().eq_ignore_ascii_case(name))
            .map(|r| r.data.to_string())
            .collect();
        assert_eq!(&live, rdata, "{name} {rtype}");
    }
}

fn transfer_to(to: &str) -> String {
    format!("[transfer]\nto = [{to}]\n")
}

#[test]
fn sample_cluster_transfers_every_answered_record() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[source]\nfile = \"cluster.yaml\"\n[kubernetes]\nttl = 30\nzonal = true\n{}",
        transfer_to("\"127.0.0.0/8\"")
    );
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let s = TestServer::from_toml(dir.path(), &toml);
    let t = axfr(s.tcp(), "Cluster.Local");
    let records = t.by_name();
    let has = |name: &str, rtype: RecordType, rdata: &[&str]| {
        let key = (format!("{name}."), rtype);
        let want: BTreeSet<String> = rdata.iter().map(|r| r.to_string()).collect();
        assert_eq!(records.get(&key), Some(&want), "{name} {rtype}");
    };
    // Names the spec tests answer (tests/integration/spec_sample.rs).
    let z = "svc.cluster.local";
    has("cluster.local", RecordType::NS, &["ns.dns.cluster.local."]);
    has("ns.dns.cluster.local", RecordType::A, &["10.96.0.10"]);
    has("dns-version.cluster.local", RecordType::TXT, &["1.1.0"]);
    has(
        &format!("kubernetes.default.{z}"),
        RecordType::A,
        &["10.96.0.1"],
    );
    has(&format!("web.shop.{z}"), RecordType::A, &["10.96.100.10"]);
    has(
        &format!("dual.shop.{z}"),
        RecordType::AAAA,
        &["fd00:10:96::100:20"],
    );
    has(
        &format!("db.shop.{z}"),
        RecordType::A,
        &["10.244.2.20", "10.244.2.21"],
    );
    has(
        &format!("db-0.db.shop.{z}"),
        RecordType::A,
        &["10.244.2.20"],
    );
    has(
        &format!("10-244-3-31.cache.shop.{z}"),
        RecordType::A,
        &["10.244.3.31"],
    );
    has(
        &format!("payments-api.shop.{z}"),
        RecordType::CNAME,
        &["api.stripe.example.com."],
    );
    has(
        &format!("web-alias.shop.{z}"),
        RecordType::CNAME,
        &[&format!("web.shop.{z}.")],
    );
    for name in [
        format!("_http._tcp.web.shop.{z}"),
        format!("_postgres._tcp.db.shop.{z}"),
        format!("_dns._udp.kube-dns.kube-system.{z}"),
        format!("zone-a.pin._zone.db.shop.{z}"),
    ] {
        assert!(
            records.keys().any(|(n, _)| *n == format!("{name}.")),
            "{name} missing"
        );
    }
    // What must not be there: a headless service without ready endpoints, a not-ready
    // endpoint.
    for absent in [
        format!("headless-empty.monitoring.{z}."),
        format!("db-2.db.shop.{z}."),
    ] {
        assert!(!records.keys().any(|(n, _)| *n == absent), "{absent}");
    }
    answers_agree(&s, &records);

    // The reverse zones transfer their PTR records the same way.
    let rev = axfr(s.tcp(), "in-addr.arpa").by_name();
    assert_eq!(
        rev.get(&("10.0.96.10.in-addr.arpa.".to_owned(), RecordType::PTR)),
        Some(&BTreeSet::from([
            "kube-dns.kube-system.svc.cluster.local.".to_owned()
        ]))
    );
    let types: BTreeSet<RecordType> = rev.keys().map(|(_, t)| *t).collect();
    assert_eq!(
        types,
        BTreeSet::from([RecordType::SOA, RecordType::NS, RecordType::PTR])
    );
    answers_agree(&s, &rev);
}

#[test]
fn generated_cluster_transfer_holds_the_synth_zone() {
    let p = SynthParams {
        seed: 3,
        namespaces: 3,
        services: 300,
        endpoints_per_service: 2,
        headless: 20,
        endpoints_per_headless: 8,
        pods: 50,
        zone: "cluster.local".to_owned(),
    };
    let cluster = SynthCluster::generate(&p);
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = TestServer::with_cluster(
        dir.path(),
        &cluster.cluster_yaml(),
        &format!("ttl = 30\n{}", transfer_to("\"127.0.0.1\"")),
    );
    let t = axfr(s.tcp(), "cluster.local");
    assert!(
        t.messages.len() > 1,
        "a zone this size takes several messages"
    );
    let records = t.by_name();
    // The generator's own master file: every record set in it is in the transfer.
    for line in cluster
        .nsd_zone()
        .lines()
        .filter(|l| !l.starts_with([';', '$']))
    {
        let f: Vec<&str> = line.split('\t').collect();
        let owner = match f[0] {
            "@" => "cluster.local.".to_owned(),
            o => format!("{o}.cluster.local."),
        };
        let rtype: RecordType = f[3].parse().unwrap();
        if rtype == RecordType::SOA {
            continue; // the serial is the server's
        }
        let got = records
            .get(&(owner.to_ascii_lowercase(), rtype))
            .unwrap_or_else(|| panic!("{owner} {rtype} missing from the transfer"));
        let want = f[4].trim_matches('"');
        assert!(got.contains(want), "{owner} {rtype}: {got:?} lacks {want}");
    }
    answers_agree(&s, &records);
}

#[test]
fn transfers_are_refused_to_clients_not_listed_and_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[source]\nsample = true\n{}",
        transfer_to("\"10.0.0.0/8\", \"::1\"")
    );
    let s = TestServer::from_toml(dir.path(), &toml);
    let a = ask_tcp(s.tcp(), "cluster.local", RecordType::AXFR);
    assert_eq!(a.rcode(), "REFUSED");
    assert!(a.msg.answers.is_empty());
    // Off by default.
    let s = TestServer::from_toml(dir.path(), "[source]\nsample = true\n");
    assert_eq!(
        ask_tcp(s.tcp(), "cluster.local", RecordType::AXFR).rcode(),
        "REFUSED"
    );
    // Allowed, but over UDP, or for a name that is not a zone's apex.
    let s = TestServer::from_toml(
        dir.path(),
        &format!("[source]\nsample = true\n{}", transfer_to("\"127.0.0.1\"")),
    );
    assert_eq!(
        ask(s.udp(), "cluster.local", RecordType::AXFR).rcode(),
        "REFUSED"
    );
    let a = ask_tcp(s.tcp(), "svc.cluster.local", RecordType::AXFR);
    assert_eq!(a.rcode(), "NOTAUTH");
}

#[test]
fn serial_moves_when_the_cluster_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = sample_cluster();
    let (s, file) = TestServer::with_cluster(dir.path(), &yaml, &transfer_to("\"127.0.0.1\""));
    let before = axfr(s.tcp(), "cluster.local");
    let web = ("web.shop.svc.cluster.local.".to_owned(), RecordType::A);
    let moved = BTreeSet::from(["10.96.100.99".to_owned()]);
    assert_ne!(before.by_name().get(&web), Some(&moved));
    std::fs::write(&file, yaml.replace("10.96.100.10", "10.96.100.99")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = axfr(s.tcp(), "cluster.local");
        if after.by_name().get(&web) == Some(&moved) {
            assert_ne!(
                after.serial(),
                before.serial(),
                "the zone changed, its serial did not"
            );
            assert!(after.serial() > before.serial());
            break;
        }
        assert!(Instant::now() < deadline, "the new address never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}
