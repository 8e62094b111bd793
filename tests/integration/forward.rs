//! Forwarding and caching, against test upstreams on 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::client::{Answer, ask, ask_tcp, query_bytes, udp_exchange};
use crate::harness::{TestServer, sample_cluster, wait_until};
use crate::upstream::{Mode, TestUpstream};

/// A server on the sample cluster forwarding to `upstreams`, with extra config lines.
fn server(dir: &std::path::Path, upstreams: &[SocketAddr], extra: &str) -> TestServer {
    std::fs::write(dir.join("cluster.yaml"), sample_cluster()).unwrap();
    let list: Vec<String> = upstreams.iter().map(|a| format!("\"{a}\"")).collect();
    let toml = format!(
        "[source]\nfile = \"cluster.yaml\"\n[kubernetes]\nttl = 30\n[forward]\nupstreams = [{}]\ntimeout_ms = 300\ndeadline_ms = 1500\nhealth_check_ms = 100\n{extra}\n",
        list.join(", ")
    );
    TestServer::from_toml(dir, &toml)
}

fn ttl_of(a: &Answer) -> u32 {
    a.msg.answers[0].ttl
}

#[test]
fn forwards_every_record_type_and_echoes_the_client() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "");
    for (qtype, rdata) in [
        (RecordType::A, "192.0.2.1"),
        (RecordType::AAAA, "2001:db8::1"),
        (RecordType::MX, "10 mail.example."),
        (RecordType::TXT, "hello"),
        (RecordType::SRV, "0 100 80 www.example."),
    ] {
        let a = ask(s.udp(), "www.example.org", qtype);
        assert_eq!(a.rcode(), "NOERROR", "{qtype}");
        assert_eq!(a.rdata(), [rdata], "{qtype}");
        assert!(!a.aa(), "forwarded answers are not authoritative");
        assert!(a.msg.metadata.recursion_available);
    }
    // The client's ID and question case come back; no OPT for a client without EDNS.
    let raw = udp_exchange(
        s.udp(),
        &query_bytes(0xbeef, "WWW.Example.ORG", RecordType::A, None),
    )
    .unwrap();
    let a = Answer::parse(raw);
    assert_eq!(a.msg.metadata.id, 0xbeef);
    assert_eq!(a.answers(), ["WWW.Example.ORG. 300 IN A 192.0.2.1"]);
    assert!(a.msg.edns.is_none());
    // Over TCP too.
    assert_eq!(
        ask_tcp(s.tcp(), "tcp.example.org", RecordType::A).rdata(),
        ["192.0.2.1"]
    );
}

#[test]
fn cluster_names_are_never_forwarded() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "");
    assert_eq!(
        ask(s.udp(), "nope.shop.svc.cluster.local", RecordType::A).rcode(),
        "NXDOMAIN"
    );
    assert_eq!(
        ask(s.udp(), "web.shop.svc.cluster.local", RecordType::A).rdata(),
        ["10.96.100.10"]
    );
    assert_eq!(
        ask(s.udp(), "1.2.3.4.in-addr.arpa", RecordType::PTR).rcode(),
        "NXDOMAIN"
    );
    assert_eq!(up.count(), 0, "{:?}", up.names());
}

#[test]
fn truncated_answers_are_retried_over_tcp() {
    let up = TestUpstream::start(Mode::Truncate { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "");
    let a = ask(s.udp(), "big.example.org", RecordType::A);
    assert_eq!(a.rdata(), ["192.0.2.1"]);
    assert!(!a.tc());
    assert_eq!(up.udp.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(up.tcp.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_silent_upstream_is_skipped_marked_down_and_probed_back() {
    let dead = TestUpstream::start(Mode::Drop);
    let live = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &[dead.addr, live.addr],
        "policy = \"sequential\"\nmax_fails = 1",
    );
    let a = ask(s.udp(), "one.example.org", RecordType::A);
    assert_eq!(
        a.rdata(),
        ["192.0.2.1"],
        "the next upstream answers after the timeout"
    );
    assert_eq!((dead.count(), live.count()), (1, 1));
    // Marked down: the next question goes straight to the live one.
    let started = Instant::now();
    assert_eq!(
        ask(s.udp(), "two.example.org", RecordType::A).rdata(),
        ["192.0.2.1"]
    );
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "a down upstream was tried"
    );
    assert_eq!(dead.count(), 1);
    // It is probed in the background; once it answers it is used again (sequential
    // policy: first in the list). Until the probe's answer is in, the live one answers.
    dead.set(Mode::Answer { ttl: 300 });
    let mut n = 0;
    let back = wait_until(Duration::from_secs(3), || {
        n += 1;
        let name = format!("three-{n}.example.org");
        assert_eq!(ask(s.udp(), &name, RecordType::A).rdata(), ["192.0.2.1"]);
        dead.count() > 1
    });
    assert!(back, "the first upstream was never used again");
    assert!(dead.probes.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert_eq!(dead.count(), 2);
}

#[test]
fn when_every_upstream_fails_expired_answers_are_served_stale() {
    let up = TestUpstream::start(Mode::Answer { ttl: 1 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "[cache]\nmin_ttl = 1\nprefetch = 0");
    assert_eq!(ttl_of(&ask(s.udp(), "stale.example.org", RecordType::A)), 1);
    up.set(Mode::Drop);
    std::thread::sleep(Duration::from_millis(1200));
    let a = ask(s.udp(), "stale.example.org", RecordType::A);
    assert_eq!(a.rdata(), ["192.0.2.1"]);
    assert_eq!(ttl_of(&a), 30, "stale answers carry TTL 30 (RFC 8767)");
    assert_eq!(up.count(), 2, "the upstream was asked first");
    // A name never seen: SERVFAIL.
    assert_eq!(
        ask(s.udp(), "never.example.org", RecordType::A).rcode(),
        "SERVFAIL"
    );
}

#[test]
fn identical_questions_in_flight_share_one_upstream_query() {
    let up = TestUpstream::start(Mode::Delay { ttl: 300, ms: 250 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "");
    let addr = s.udp();
    let clients: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                udp_exchange(
                    addr,
                    &query_bytes(i, "same.example.org", RecordType::A, None),
                )
            })
        })
        .collect();
    for c in clients {
        let raw = c.join().unwrap().expect("every client is answered");
        assert_eq!(Answer::parse(raw).rdata(), ["192.0.2.1"]);
    }
    assert_eq!(up.count(), 1);
}

#[test]
fn beyond_max_concurrent_queries_are_refused() {
    let up = TestUpstream::start(Mode::Delay { ttl: 300, ms: 250 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "max_concurrent = 2");
    let addr = s.udp();
    let clients: Vec<_> = (0..6u16)
        .map(|i| {
            std::thread::spawn(move || {
                let raw = udp_exchange(
                    addr,
                    &query_bytes(i, &format!("n{i}.example.org"), RecordType::A, None),
                );
                Answer::parse(raw.unwrap()).rcode()
            })
        })
        .collect();
    let codes: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "NOERROR").count(),
        2,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| *c == "REFUSED").count(),
        4,
        "{codes:?}"
    );
}

#[test]
fn ttls_count_down_and_are_capped() {
    let up = TestUpstream::start(Mode::Answer { ttl: 100 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &[up.addr],
        "[cache]\nmin_ttl = 1\nsuccess_cap = 3\nprefetch = 0",
    );
    let first = ask(s.udp(), "count.example.org", RecordType::A);
    assert_eq!(ttl_of(&first), 3, "served TTL is capped at success_cap");
    std::thread::sleep(Duration::from_millis(2100));
    let later = ask(s.udp(), "count.example.org", RecordType::A);
    assert!(
        ttl_of(&later) <= 1,
        "TTL did not count down: {}",
        ttl_of(&later)
    );
    assert_eq!(up.count(), 1, "answered from the cache");
    std::thread::sleep(Duration::from_millis(1200));
    ask(s.udp(), "count.example.org", RecordType::A);
    assert_eq!(up.count(), 2, "expired after success_cap");
}

#[test]
fn negative_answers_live_for_the_soa_minimum() {
    let up = TestUpstream::start(Mode::NxDomain {
        soa_ttl: 300,
        minimum: 2,
    });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "[cache]\nmin_ttl = 1\nprefetch = 0");
    let a = ask(s.udp(), "gone.example.org", RecordType::A);
    assert_eq!(a.rcode(), "NXDOMAIN");
    assert_eq!(a.authority().len(), 1);
    assert_eq!(
        ask(s.udp(), "gone.example.org", RecordType::A).rcode(),
        "NXDOMAIN"
    );
    assert_eq!(up.count(), 1);
    std::thread::sleep(Duration::from_millis(2200));
    ask(s.udp(), "gone.example.org", RecordType::A);
    assert_eq!(
        up.count(),
        2,
        "negative entry outlived min(SOA TTL, MINIMUM)"
    );
    // SERVFAIL is kept at most servfail_ttl.
    up.set(Mode::ServFail);
    assert_eq!(
        ask(s.udp(), "broken.example.org", RecordType::A).rcode(),
        "SERVFAIL"
    );
    assert_eq!(
        ask(s.udp(), "broken.example.org", RecordType::A).rcode(),
        "SERVFAIL"
    );
    assert_eq!(up.count(), 3);
}

#[test]
fn caching_can_be_turned_off_per_zone() {
    let up = TestUpstream::start(Mode::NxDomain {
        soa_ttl: 300,
        minimum: 300,
    });
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &[up.addr],
        "[cache]\nno_denial = [\"example.org\"]\nno_success = [\"example.net\"]",
    );
    for _ in 0..2 {
        assert_eq!(
            ask(s.udp(), "gone.example.org", RecordType::A).rcode(),
            "NXDOMAIN"
        );
        assert_eq!(
            ask(s.udp(), "gone.example.com", RecordType::A).rcode(),
            "NXDOMAIN"
        );
    }
    assert_eq!(
        up.names()
            .iter()
            .filter(|n| *n == "gone.example.org.")
            .count(),
        2,
        "denial was cached"
    );
    assert_eq!(
        up.names()
            .iter()
            .filter(|n| *n == "gone.example.com.")
            .count(),
        1,
        "denial was not cached"
    );
    up.set(Mode::Answer { ttl: 300 });
    for _ in 0..2 {
        assert_eq!(
            ask(s.udp(), "www.example.net", RecordType::A).rdata(),
            ["192.0.2.1"]
        );
    }
    assert_eq!(
        up.names()
            .iter()
            .filter(|n| *n == "www.example.net.")
            .count(),
        2,
        "success was cached"
    );
}

#[test]
fn round_robin_spreads_and_force_tcp_uses_tcp() {
    let a = TestUpstream::start(Mode::Answer { ttl: 300 });
    let b = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &[a.addr, b.addr],
        "policy = \"round_robin\"\nforce_tcp = true",
    );
    for i in 0..6 {
        ask(s.udp(), &format!("rr{i}.example.org"), RecordType::A);
    }
    assert_eq!((a.count(), b.count()), (3, 3));
    assert_eq!(
        a.udp.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "force_tcp sent UDP"
    );
}

#[test]
fn prefer_udp_keeps_a_truncated_answer() {
    let up = TestUpstream::start(Mode::Truncate { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "prefer_udp = true");
    let a = ask(s.udp(), "big.example.org", RecordType::A);
    assert!(a.tc(), "the client is told to retry over TCP");
    assert_eq!(up.tcp.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The client's own TCP retry reaches the upstream over TCP.
    let a = ask_tcp(s.tcp(), "big.example.org", RecordType::A);
    assert_eq!(a.rdata(), ["192.0.2.1"]);
}

#[test]
fn popular_entries_are_prefetched_before_they_expire() {
    let up = TestUpstream::start(Mode::Answer { ttl: 4 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &[up.addr],
        "[cache]\nmin_ttl = 1\nprefetch = 2\nprefetch_percent = 50",
    );
    ask(s.udp(), "hot.example.org", RecordType::A);
    std::thread::sleep(Duration::from_millis(2300));
    ask(s.udp(), "hot.example.org", RecordType::A);
    ask(s.udp(), "hot.example.org", RecordType::A);
    assert!(
        wait_until(Duration::from_secs(1), || up.count() == 2),
        "the second hit in the last half of the TTL prefetches"
    );
    std::thread::sleep(Duration::from_millis(2000));
    let a = ask(s.udp(), "hot.example.org", RecordType::A);
    assert_eq!(a.rdata(), ["192.0.2.1"]);
    assert_eq!(
        up.count(),
        2,
        "after the old entry's expiry the prefetched one answers"
    );
}

#[test]
fn stub_domains_take_their_zone() {
    let default = TestUpstream::start(Mode::Answer { ttl: 300 });
    let consul = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[forward.stub_domains]\n\"consul.local\" = [\"{}\"]\n",
        consul.addr
    );
    let s = server(dir.path(), &[default.addr], &extra);
    ask(s.udp(), "web.service.consul.local", RecordType::A);
    ask(s.udp(), "www.example.org", RecordType::A);
    assert_eq!(consul.names(), ["web.service.consul.local."]);
    assert_eq!(default.names(), ["www.example.org."]);
}

#[test]
fn external_names_outside_the_zone_are_chased_upstream() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[up.addr], "");
    let a = ask(
        s.udp(),
        "payments-api.shop.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(
        a.answers(),
        [
            "payments-api.shop.svc.cluster.local. 30 IN CNAME api.stripe.example.com.",
            "api.stripe.example.com. 300 IN A 192.0.2.1",
        ]
    );
    assert!(a.aa());
    assert_eq!(up.names(), ["api.stripe.example.com."]);
}

#[test]
fn a_forwarding_loop_is_detected_and_refused() {
    // The upstream relays everything to a port we fill in once the server is up.
    let relay = TestUpstream::start(Mode::Drop);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let toml = format!(
        "[source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = [\"{}\"]\ntimeout_ms = 300\ndeadline_ms = 1500\n",
        relay.addr
    );
    // Start once to learn nothing; the loop needs our address before our start-up probe.
    let path = dir.path().join("clusterdns.toml");
    std::fs::write(&path, &toml).unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let our: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    relay.set(Mode::Relay(our));
    let mut config = clusterdns::config::Config::load(&path).unwrap();
    config.listen = vec![our];
    let s = TestServer::start(config);
    // The start-up probe went relay → us: the upstream is now known to loop.
    assert!(
        wait_until(Duration::from_secs(3), || relay
            .probes
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0),
        "the start-up probe never reached the relay"
    );
    // The relay counts the probe before passing it back to us; nothing outside tells
    // when we have read it and marked the upstream (but the error log), so a margin.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let a = ask(s.udp(), "www.example.org", RecordType::A);
    assert_eq!(a.rcode(), "SERVFAIL");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "the looping upstream was tried"
    );
    assert_eq!(
        relay.count(),
        0,
        "no query was sent into the loop: {:?}",
        relay.names()
    );
}

#[test]
fn without_upstreams_other_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[], "");
    assert_eq!(
        ask(s.udp(), "www.example.org", RecordType::A).rcode(),
        "REFUSED"
    );
}
