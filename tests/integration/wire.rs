//! Wire rules and bad input: EDNS, truncation, opcodes, malformed packets, TCP abuse.
//! After every bad packet a good query must still be answered.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::client::{
    Answer, ask, ask_tcp, query_bytes, tcp_connect, tcp_read, tcp_send, udp_exchange,
};
use crate::harness::{TestServer, sample_cluster, wait_until};
use clusterdns_testkit::synth::{SynthCluster, SynthParams};

fn still_answers(s: &TestServer) {
    let a = ask(s.udp(), "web.shop.svc.cluster.local", RecordType::A);
    assert_eq!(a.rdata(), ["10.96.100.10"]);
    let a = ask_tcp(s.tcp(), "web.shop.svc.cluster.local", RecordType::A);
    assert_eq!(a.rdata(), ["10.96.100.10"]);
}

fn server(dir: &std::path::Path) -> TestServer {
    TestServer::with_cluster(dir, &sample_cluster(), "").0
}

fn rcode_of(raw: &[u8]) -> u8 {
    raw[3] & 0x0f
}

#[test]
fn edns_is_answered_in_kind() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let a = ask(s.udp(), "web.shop.svc.cluster.local", RecordType::A);
    let edns = a.msg.edns.as_ref().expect("OPT in the answer");
    assert_eq!(edns.max_payload(), 1232);
    let raw = udp_exchange(
        s.udp(),
        &query_bytes(1, "web.shop.svc.cluster.local", RecordType::A, None),
    )
    .unwrap();
    assert!(
        Answer::parse(raw).msg.edns.is_none(),
        "no OPT when the client sent none"
    );
    // EDNS version 1 → BADVERS (16): 0 in the header, 1 in the OPT's extended rcode.
    let mut q = query_bytes(2, "web.shop.svc.cluster.local", RecordType::A, Some(1232));
    let n = q.len();
    q[n - 5] = 1; // OPT version
    let raw = udp_exchange(s.udp(), &q).unwrap();
    assert_eq!(rcode_of(&raw), 0);
    let opt = &raw[raw.len() - 11..];
    assert_eq!(&opt[..3], &[0, 0, 41]);
    assert_eq!(opt[5], 1, "extended rcode BADVERS");
    still_answers(&s);
}

#[test]
fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let params = SynthParams {
        services: 3,
        headless: 1,
        endpoints_per_headless: 500,
        pods: 600,
        namespaces: 2,
        ..SynthParams::small()
    };
    let cluster = SynthCluster::generate(&params);
    let hl = cluster.services().iter().find(|s| s.is_headless()).unwrap();
    let ready = hl.endpoints.iter().filter(|e| e.ready).count();
    let name = hl.fqdn("cluster.local");
    let (s, _) = TestServer::with_cluster(dir.path(), &cluster.cluster_yaml(), "");

    let a = ask(s.udp(), &name, RecordType::A);
    assert!(a.tc(), "500 addresses cannot fit in 1232 bytes");
    assert!(a.raw.len() <= 1232);
    assert!(!a.msg.answers.is_empty() && a.msg.answers.len() < ready);
    let raw = udp_exchange(s.udp(), &query_bytes(3, &name, RecordType::A, None)).unwrap();
    assert!(raw.len() <= 512);
    assert!(Answer::parse(raw).tc());

    let a = ask_tcp(s.tcp(), &name, RecordType::A);
    assert!(!a.tc());
    assert_eq!(a.msg.answers.len(), ready);
    let a = ask_tcp(s.tcp(), &name, RecordType::SRV);
    assert_eq!(a.msg.answers.len(), ready);
    assert_eq!(a.msg.additionals.len(), ready);
    // floor(100 / ready) with ready > 100 → the minimum weight, 1.
    assert!(
        a.rdata()[0].starts_with("0 1 7000 "),
        "{:?}",
        &a.rdata()[..1]
    );
}

#[test]
fn the_client_buffer_size_is_honoured_up_to_max_udp_size() {
    let dir = tempfile::tempdir().unwrap();
    let params = SynthParams {
        services: 3,
        headless: 1,
        endpoints_per_headless: 150,
        pods: 200,
        namespaces: 2,
        ..SynthParams::small()
    };
    let cluster = SynthCluster::generate(&params);
    let hl = cluster.services().iter().find(|s| s.is_headless()).unwrap();
    let ready = hl.endpoints.iter().filter(|e| e.ready).count();
    let name = hl.fqdn("cluster.local");
    std::fs::write(dir.path().join("cluster.yaml"), cluster.cluster_yaml()).unwrap();
    let source = "[source]\nfile = \"cluster.yaml\"\n";
    let ask_with = |s: &TestServer, bufsize: u16| {
        let raw = udp_exchange(
            s.udp(),
            &query_bytes(9, &name, RecordType::A, Some(bufsize)),
        );
        Answer::parse(raw.expect("an answer"))
    };

    // The default, 1232, caps what a client asks for.
    let s = TestServer::from_toml(dir.path(), source);
    let a = ask_with(&s, 4096);
    assert!(a.tc() && a.raw.len() <= 1232, "{} bytes", a.raw.len());
    drop(s);

    // Raised: a client's 4096 gets the whole answer; smaller sizes still bound it.
    let s = TestServer::from_toml(
        dir.path(),
        &format!("[server]\nmax_udp_size = 4096\n{source}"),
    );
    let a = ask_with(&s, 4096);
    assert!(!a.tc(), "{} bytes", a.raw.len());
    assert!(a.raw.len() > 1232);
    assert_eq!(a.msg.answers.len(), ready);
    let a = ask_with(&s, 2000);
    assert!(a.tc() && a.raw.len() <= 2000 && a.raw.len() > 1232);
    let a = ask_with(&s, 1232);
    assert!(a.tc() && a.raw.len() <= 1232);
    drop(s);

    let path = dir.path().join("clusterdns.toml");
    std::fs::write(&path, "[server]\nmax_udp_size = 65535\n").unwrap();
    let e = clusterdns::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clusterdns.toml:2:") && e.contains("max_udp_size 65535"),
        "{e}"
    );
}

#[test]
fn bad_packets_get_formerr_notimp_or_silence() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let good = query_bytes(9, "web.shop.svc.cluster.local", RecordType::A, None);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut rng = 0x2545f4914f6cdd1du64;
    // Random garbage of every length: answered with a header or dropped, never fatal.
    for len in 0..600usize {
        let p: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        sock.send_to(&p, s.udp()).unwrap();
    }
    still_answers(&s);

    // Truncated header: dropped.
    assert!(udp_exchange(s.udp(), &good[..7]).is_none());
    // A valid query padded past 4096 bytes (longer than any query over UDP): dropped,
    // and the queries received in the same batch are still answered.
    let mut long = good.clone();
    long.resize(6000, 0);
    let fresh = UdpSocket::bind("127.0.0.1:0").unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    fresh.send_to(&long, s.udp()).unwrap();
    fresh.send_to(&good, s.udp()).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = fresh.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..2], &good[..2]);
    assert_eq!(rcode_of(&buf[..len]), 0);
    assert!(
        fresh.recv_from(&mut buf).is_err(),
        "the long query was answered"
    );
    // qdcount 0 and 2: FORMERR.
    let mut q = good.clone();
    q[5] = 0;
    assert_eq!(rcode_of(&udp_exchange(s.udp(), &q).unwrap()), 1);
    q[5] = 2;
    assert_eq!(rcode_of(&udp_exchange(s.udp(), &q).unwrap()), 1);
    // A compression pointer pointing at itself in the question: FORMERR.
    let mut q = good[..12].to_vec();
    q.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(rcode_of(&udp_exchange(s.udp(), &q).unwrap()), 1);
    // A question cut short: FORMERR.
    assert_eq!(
        rcode_of(&udp_exchange(s.udp(), &good[..good.len() - 2]).unwrap()),
        1
    );
    // Opcode UPDATE (5): NOTIMP.
    let mut q = good.clone();
    q[2] = 5 << 3;
    let raw = udp_exchange(s.udp(), &q).unwrap();
    assert_eq!(rcode_of(&raw), 4);
    assert_eq!(&raw[..2], &good[..2]);
    // A response is never answered (no reflection loops).
    let mut q = good.clone();
    q[2] |= 0x80;
    assert!(udp_exchange(s.udp(), &q).is_none());
    // Zone transfers are refused.
    let raw = udp_exchange(
        s.udp(),
        &query_bytes(5, "cluster.local", RecordType::AXFR, None),
    )
    .unwrap();
    assert_eq!(rcode_of(&raw), 5);
    // Class CHAOS is refused.
    let mut q = good.clone();
    let n = q.len();
    q[n - 1] = 3;
    assert_eq!(rcode_of(&udp_exchange(s.udp(), &q).unwrap()), 5);
    still_answers(&s);
}

#[test]
fn tcp_pipelining_slow_senders_and_idle_floods() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[server]\ntcp_idle_timeout = 2\n[source]\nfile = \"cluster.yaml\"\n";
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let s = TestServer::from_toml(dir.path(), toml);

    // Ten queries written at once on one connection: ten answers, matched by ID.
    let mut c = tcp_connect(s.tcp());
    let mut burst = Vec::new();
    for id in 0..10u16 {
        let q = query_bytes(id, "db.shop.svc.cluster.local", RecordType::A, None);
        burst.extend_from_slice(&(q.len() as u16).to_be_bytes());
        burst.extend_from_slice(&q);
    }
    c.write_all(&burst).unwrap();
    let mut ids: Vec<u16> = (0..10)
        .map(|_| Answer::parse(tcp_read(&mut c).unwrap()).msg.metadata.id)
        .collect();
    ids.sort();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());

    // A length of 65535 then a trickle: the connection is closed after the timeout,
    // and others are served meanwhile.
    let mut slow = tcp_connect(s.tcp());
    slow.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    slow.write_all(&[0xff, 0xff, 0]).unwrap();
    still_answers(&s);
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(6) {
        if slow.write_all(&[0]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        closed || tcp_read(&mut slow).is_none(),
        "slow sender was not cut off"
    );

    // 1,000 idle connections: the server still answers on UDP and on a new TCP connection.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(s.tcp()).unwrap())
        .collect();
    still_answers(&s);
    let mut c = tcp_connect(s.tcp());
    tcp_send(
        &mut c,
        &query_bytes(77, "web.shop.svc.cluster.local", RecordType::A, None),
    );
    assert_eq!(Answer::parse(tcp_read(&mut c).unwrap()).msg.metadata.id, 77);
    drop(idle);
}

#[test]
fn tcp_connection_cap_closes_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let s = TestServer::from_toml(
        dir.path(),
        "[server]\ntcp_max_connections = 2\n[source]\nfile = \"cluster.yaml\"\n",
    );
    let held: Vec<TcpStream> = (0..2).map(|_| tcp_connect(s.tcp())).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = tcp_connect(s.tcp());
    tcp_send(
        &mut extra,
        &query_bytes(1, "web.shop.svc.cluster.local", RecordType::A, None),
    );
    assert!(
        tcp_read(&mut extra).is_none(),
        "a connection over the cap was served"
    );
    // UDP is unaffected; freeing a slot lets TCP in again.
    assert_eq!(
        ask(s.udp(), "web.shop.svc.cluster.local", RecordType::A).rdata(),
        ["10.96.100.10"]
    );
    drop(held);
    // The server sees the closes when it next reads those connections.
    let mut c = None;
    assert!(
        wait_until(Duration::from_secs(3), || {
            let mut conn = tcp_connect(s.tcp());
            let q = query_bytes(2, "web.shop.svc.cluster.local", RecordType::A, None);
            let mut framed = (q.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&q);
            // A connection still over the cap may be closed before the write.
            c = conn
                .write_all(&framed)
                .ok()
                .and_then(|()| tcp_read(&mut conn))
                .map(Answer::parse);
            c.is_some()
        }),
        "a freed slot did not let TCP in again"
    );
    assert_eq!(c.unwrap().rdata(), ["10.96.100.10"]);
}

/// The server's address family and port are those asked for.
#[test]
fn listens_on_ipv6_loopback_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "listen = [\"127.0.0.1:0\", \"[::1]:0\"]\n[source]\nfile = \"cluster.yaml\"\n",
    )
    .unwrap();
    let config = clusterdns::config::Config::load(&path).unwrap();
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        return; // no IPv6 loopback on this machine
    }
    let s = TestServer::start(config);
    let _ = s.udp();
    let v6: SocketAddr = s.udp_addrs()[1];
    assert!(v6.is_ipv6());
    let raw = udp_exchange_v6(v6);
    assert_eq!(Answer::parse(raw).rdata(), ["10.96.100.10"]);
}

fn udp_exchange_v6(addr: SocketAddr) -> Vec<u8> {
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(
        &query_bytes(4, "web.shop.svc.cluster.local", RecordType::A, None),
        addr,
    )
    .unwrap();
    let mut buf = vec![0; 4096];
    let n = sock.recv(&mut buf).unwrap();
    buf.truncate(n);
    buf
}
