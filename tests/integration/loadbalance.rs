//! The `loadbalance` stage: answers with several addresses come in every rotation, from
//! the zone, from an upstream and from the cache alike; a CNAME chain stays first; the
//! answers still parse; without the stage the order is stable.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::client::{Answer, ask, ask_tcp};
use crate::harness::{TestServer, sample_cluster};

/// The addresses of the A records, in the order answered.
fn order(a: &Answer) -> Vec<String> {
    a.msg
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| r.data.to_string())
        .collect()
}

/// The record types of the answer section, in order.
fn types(a: &Answer) -> Vec<RecordType> {
    a.msg.answers.iter().map(|r| r.record_type()).collect()
}

/// Asks `n` times; returns each answer's address order.
fn orders(addr: SocketAddr, name: &str, n: usize) -> Vec<Vec<String>> {
    (0..n)
        .map(|_| order(&ask(addr, name, RecordType::A)))
        .collect()
}

/// Every rotation of the addresses was seen, each answer holding all of them.
fn assert_rotations(seen: &[Vec<String>], count: usize, what: &str) {
    let all: BTreeSet<&String> = seen[0].iter().collect();
    assert_eq!(all.len(), count, "{what}: {seen:?}");
    for s in seen {
        assert_eq!(s.iter().collect::<BTreeSet<_>>(), all, "{what}: {seen:?}");
    }
    let firsts: BTreeSet<&String> = seen.iter().map(|s| &s[0]).collect();
    assert_eq!(
        firsts.len(),
        count,
        "{what}: every address comes first in turn: {seen:?}"
    );
    let distinct: BTreeSet<&Vec<String>> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        count,
        "{what}: rotations, not shuffles: {seen:?}"
    );
}

/// The sample cluster, with its in-zone ExternalName pointing at the headless `cache`
/// Service (three addresses) so that the answer is a CNAME and three A records.
fn cluster() -> String {
    let text = sample_cluster();
    let alias = "externalName: web.shop.svc.cluster.local";
    assert!(text.contains(alias));
    text.replace(alias, "externalName: cache.shop.svc.cluster.local")
}

fn server(dir: &std::path::Path, chain: &str, upstream: SocketAddr) -> TestServer {
    std::fs::write(dir.join("cluster.yaml"), cluster()).unwrap();
    // One UDP worker: the rotation turns per worker, and every query here meets the same.
    let toml = format!(
        "{chain}[server]\nudp_workers = 1\n[source]\nfile = \"cluster.yaml\"\n\
         [forward]\nupstreams = [\"{upstream}\"]\n"
    );
    TestServer::from_toml(dir, &toml)
}

#[test]
fn zone_answers_come_in_every_rotation_with_the_cname_first() {
    let up = CnameUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let chain = "chain = [\"loadbalance\", \"kubernetes\", \"loop\", \"cache\", \"forward\"]\n";
    let s = server(dir.path(), chain, up.addr);
    let headless = "cache.shop.svc.cluster.local";
    assert_rotations(&orders(s.udp(), headless, 6), 3, headless);

    // CNAME then the target's addresses, rotated behind it.
    let alias = "web-alias.shop.svc.cluster.local";
    let mut seen = Vec::new();
    for _ in 0..6 {
        let a = ask(s.udp(), alias, RecordType::A);
        assert_eq!(
            types(&a),
            [
                RecordType::CNAME,
                RecordType::A,
                RecordType::A,
                RecordType::A
            ],
            "{:?}",
            a.answers()
        );
        seen.push(order(&a));
    }
    assert_rotations(&seen, 3, alias);

    // Over TCP too (each connection's task counts on the runtime's threads).
    let tcp: BTreeSet<Vec<String>> = (0..12)
        .map(|_| order(&ask_tcp(s.tcp(), headless, RecordType::A)))
        .collect();
    assert!(tcp.len() >= 2, "{tcp:?}");
}

#[test]
fn forwarded_and_cached_answers_are_rotated_too() {
    let up = CnameUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let chain = "chain = [\"loadbalance\", \"kubernetes\", \"loop\", \"cache\", \"forward\"]\n";
    let s = server(dir.path(), chain, up.addr);
    // The first answer comes from the upstream (a resumed query), the rest from the cache.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let a = ask(s.udp(), "www.example.org", RecordType::A);
        assert_eq!(types(&a)[0], RecordType::CNAME, "{:?}", a.answers());
        assert_eq!(a.msg.answers.len(), 4);
        seen.push(order(&a));
    }
    assert_eq!(up.queries(), 1, "answered from the cache after the first");
    assert_rotations(&seen, 3, "forwarded");
}

#[test]
fn without_the_stage_the_order_is_stable() {
    let up = CnameUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "", up.addr);
    for name in ["cache.shop.svc.cluster.local", "www.example.org"] {
        let seen: BTreeSet<Vec<String>> = orders(s.udp(), name, 6).into_iter().collect();
        assert_eq!(seen.len(), 1, "{name}: {seen:?}");
    }
}

/// An upstream answering every A question with `name CNAME target.example.` and three
/// A records for the target, owners compressed as servers write them.
struct CnameUpstream {
    addr: SocketAddr,
    queries: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl CnameUpstream {
    fn start() -> CnameUpstream {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let up = CnameUpstream {
            addr: socket.local_addr().unwrap(),
            queries: Arc::default(),
            stop: Arc::default(),
        };
        let (queries, stop) = (up.queries.clone(), up.stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let q = &buf[..n];
                let name = crate::upstream::qname(q);
                if name.ends_with("clusterdns-loop-check.") || name == "." {
                    let mut a = q.to_vec();
                    a[2] |= 0x80;
                    a[3] = 0x83;
                    let _ = socket.send_to(&a, peer);
                    continue;
                }
                queries.fetch_add(1, Ordering::SeqCst);
                let _ = socket.send_to(&cname_answer(q), peer);
            }
        });
        up
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for CnameUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn cname_answer(q: &[u8]) -> Vec<u8> {
    let mut qend = 12;
    while q[qend] != 0 {
        qend += 1 + q[qend] as usize;
    }
    qend += 5;
    let mut a = q[..qend].to_vec();
    a[2] = 0x81;
    a[3] = 0x80;
    a[6..12].copy_from_slice(&[0, 4, 0, 0, 0, 0]);
    // CNAME: owner → the question; its RDATA is the target.
    a.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 1, 0x2c]);
    let rdata = b"\x06target\x07example\x00";
    a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    let target = a.len() as u16;
    a.extend_from_slice(rdata);
    for last in 1..=3u8 {
        a.extend_from_slice(&(0xc000 | target).to_be_bytes());
        a.extend_from_slice(&[0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, last]);
    }
    a
}
