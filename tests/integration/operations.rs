//! Running it like CoreDNS: metrics counted exactly, health and readiness, lameduck on
//! SIGTERM, reload without a dropped query, the query log, --version.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clusterdns::admin::Endpoint;
use hickory_proto::rr::RecordType;

use crate::client::{Answer, ask, ask_tcp, query_bytes, udp_exchange};
use crate::harness::{TestServer, free_port, sample_cluster, wait_until};
use crate::http::{get, sample};
use crate::upstream::{Mode, TestUpstream};

/// Polls /metrics until `check` holds (workers flush their counters within ~100 ms).
fn metrics_until(s: &TestServer, check: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    wait_until(Duration::from_secs(3), || {
        let (status, body) = get(s.http(Endpoint::Metrics), "/metrics").expect("metrics answer");
        assert_eq!(status, 200);
        text = body;
        check(&text)
    });
    text
}

#[test]
fn metrics_count_a_known_set_of_queries_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = TestServer::with_cluster(dir.path(), &sample_cluster(), "");
    let web = "web.shop.svc.cluster.local";
    for _ in 0..3 {
        assert_eq!(ask(s.udp(), web, RecordType::A).rcode(), "NOERROR");
    }
    assert_eq!(
        ask(s.udp(), "nope.shop.svc.cluster.local", RecordType::A).rcode(),
        "NXDOMAIN"
    );
    assert_eq!(
        ask(
            s.udp(),
            "_http._tcp.web.shop.svc.cluster.local",
            RecordType::SRV
        )
        .rcode(),
        "NOERROR"
    );
    assert_eq!(
        ask(s.udp(), "example.org", RecordType::A).rcode(),
        "REFUSED"
    );
    for _ in 0..2 {
        assert_eq!(ask_tcp(s.tcp(), web, RecordType::A).rcode(), "NOERROR");
    }
    let server = format!("dns://{}", s.udp());
    let server = server.as_str();
    let base = [("server", server), ("zone", "."), ("view", "")];
    let with = |extra: &[(&'static str, &'static str)]| [&base[..], extra].concat();
    let text = metrics_until(&s, |t| {
        sample(
            t,
            "coredns_dns_requests_total",
            &with(&[("proto", "udp"), ("type", "A")]),
        ) == Some(5.0)
    });
    let n = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    assert_eq!(
        n(
            "coredns_dns_requests_total",
            &with(&[("proto", "udp"), ("family", "1"), ("type", "A")])
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        n(
            "coredns_dns_requests_total",
            &with(&[("proto", "udp"), ("family", "1"), ("type", "SRV")])
        ),
        Some(1.0)
    );
    assert_eq!(
        n(
            "coredns_dns_requests_total",
            &with(&[("proto", "tcp"), ("family", "1"), ("type", "A")])
        ),
        Some(2.0)
    );
    assert_eq!(
        n(
            "coredns_dns_responses_total",
            &with(&[("rcode", "NOERROR"), ("plugin", "kubernetes")])
        ),
        Some(6.0)
    );
    assert_eq!(
        n(
            "coredns_dns_responses_total",
            &with(&[("rcode", "NXDOMAIN"), ("plugin", "kubernetes")])
        ),
        Some(1.0)
    );
    assert_eq!(
        n(
            "coredns_dns_responses_total",
            &with(&[("rcode", "REFUSED"), ("plugin", "")])
        ),
        Some(1.0)
    );
    assert_eq!(
        n(
            "coredns_dns_request_duration_seconds_count",
            &with(&[("type", "A")])
        ),
        Some(7.0)
    );
    assert_eq!(
        n(
            "coredns_dns_request_duration_seconds_count",
            &with(&[("type", "SRV")])
        ),
        Some(1.0)
    );
    assert_eq!(
        n(
            "coredns_dns_request_size_bytes_count",
            &with(&[("proto", "udp")])
        ),
        Some(6.0)
    );
    assert_eq!(
        n(
            "coredns_dns_request_size_bytes_count",
            &with(&[("proto", "tcp")])
        ),
        Some(2.0)
    );
    assert_eq!(
        n(
            "coredns_dns_response_size_bytes_count",
            &with(&[("proto", "tcp")])
        ),
        Some(2.0)
    );
    // Every A answered in far less than the first bucket's 0.25 ms… or at least in 1 s.
    assert_eq!(
        n(
            "coredns_dns_request_duration_seconds_bucket",
            &with(&[("type", "A"), ("le", "1.024")])
        ),
        Some(7.0)
    );
    assert!(
        n(
            "coredns_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ) == Some(1.0)
    );
    assert!(
        n("process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0),
        "process metrics"
    );
    assert_eq!(n("coredns_panics_total", &[]), Some(0.0));
    assert_eq!(n("coredns_reload_failed_total", &[]), Some(0.0));
}

#[test]
fn cache_and_forward_metrics() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let toml = format!(
        "[source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = [\"{}\"]\n",
        up.addr
    );
    let s = TestServer::from_toml(dir.path(), &toml);
    for _ in 0..3 {
        assert_eq!(
            ask(s.udp(), "www.example.org", RecordType::A).rdata(),
            ["192.0.2.1"]
        );
    }
    let server = format!("dns://{}", s.udp());
    let text = metrics_until(&s, |t| {
        sample(
            t,
            "coredns_dns_responses_total",
            &[("server", &server), ("plugin", "cache")],
        ) == Some(2.0)
    });
    let n = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    assert_eq!(
        n(
            "coredns_dns_responses_total",
            &[("plugin", "forward"), ("rcode", "NOERROR")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        n(
            "coredns_dns_responses_total",
            &[("plugin", "cache"), ("rcode", "NOERROR")]
        ),
        Some(2.0)
    );
    assert_eq!(
        n("coredns_cache_hits_total", &[("type", "success")]),
        Some(2.0)
    );
    assert_eq!(n("coredns_cache_requests_total", &[]), Some(3.0));
    assert_eq!(n("coredns_cache_misses_total", &[]), Some(1.0));
    assert_eq!(
        n("coredns_cache_entries", &[("type", "success")]),
        Some(1.0)
    );
    let to = up.addr.to_string();
    let proxy = [
        ("proxy_name", "forward"),
        ("to", to.as_str()),
        ("rcode", "NOERROR"),
    ];
    assert_eq!(
        n("coredns_proxy_request_duration_seconds_count", &proxy),
        Some(1.0)
    );
    assert_eq!(
        n("coredns_forward_max_concurrent_rejects_total", &[]),
        Some(0.0)
    );
}

#[test]
fn health_and_ready_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = TestServer::with_cluster(dir.path(), &sample_cluster(), "");
    assert_eq!(
        get(s.http(Endpoint::Health), "/health"),
        Some((200, "OK".into()))
    );
    assert_eq!(
        get(s.http(Endpoint::Ready), "/ready"),
        Some((200, "OK".into()))
    );
    assert_eq!(
        get(s.http(Endpoint::Ready), "/nope").map(|r| r.0),
        Some(404)
    );
}

#[test]
fn reload_changes_the_ttl_without_failing_a_query_and_refuses_a_broken_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let path = dir.path().join("clusterdns.toml");
    let config = |ttl: u32| {
        format!(
            "[source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = []\n[kubernetes]\nttl = {ttl}\n"
        )
    };
    let mut s = TestServer::from_toml(dir.path(), &config(30));
    let addr = s.udp();
    let (stop, failures, queries) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let client = {
        let (stop, failures, queries) = (stop.clone(), failures.clone(), queries.clone());
        std::thread::spawn(move || {
            let mut ttls = Vec::new();
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
                let raw = udp_exchange(
                    addr,
                    &query_bytes(9, "web.shop.svc.cluster.local", RecordType::A, None),
                );
                queries.fetch_add(1, Ordering::Relaxed);
                match raw.map(Answer::parse) {
                    Some(a) if a.rdata() == ["10.96.100.10"] => ttls.push(a.msg.answers[0].ttl),
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            ttls
        })
    };
    // The client keeps asking before, between and after the reloads.
    let asked_more = |n: usize| {
        let seen = queries.load(Ordering::Relaxed);
        assert!(
            wait_until(Duration::from_secs(5), || queries.load(Ordering::Relaxed)
                >= seen + n),
            "the client stopped asking"
        );
    };
    asked_more(10);
    std::fs::write(&path, config(60)).unwrap();
    s.reload_from(&path).unwrap();
    asked_more(10);
    // A broken config is refused; the running one keeps answering.
    std::fs::write(&path, "[kubernetes]\nttl = \"sixty\"\n").unwrap();
    assert!(s.reload_from(&path).is_err());
    asked_more(10);
    stop.store(true, Ordering::Relaxed);
    let ttls = client.join().unwrap();
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "queries failed during reload"
    );
    assert!(queries.load(Ordering::Relaxed) > 20);
    assert_eq!(ttls.first(), Some(&30));
    assert_eq!(ttls.last(), Some(&60));
    assert!(
        ttls.windows(2).all(|w| w[0] <= w[1]),
        "TTL went back: {ttls:?}"
    );
    let text = metrics_until(&s, |t| {
        sample(t, "coredns_reload_failed_total", &[]) == Some(1.0)
    });
    assert_eq!(sample(&text, "coredns_reload_failed_total", &[]), Some(1.0));
}

/// Starts the binary with a config; returns it and its DNS, ready and health addresses.
fn binary(
    dir: &std::path::Path,
    extra: &str,
) -> (std::process::Child, SocketAddr, SocketAddr, SocketAddr) {
    std::fs::write(dir.join("cluster.yaml"), sample_cluster()).unwrap();
    let [dns, ready, health, metrics] = [0; 4].map(|_| free_port());
    let config = dir.join("clusterdns.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"127.0.0.1:{dns}\"]\n[source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = []\n[ready]\nlisten = \"127.0.0.1:{ready}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n{extra}\n[health]\nlisten = \"127.0.0.1:{health}\"\nlameduck = 1\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--config", config.to_str().unwrap(), "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let (dns, ready, health) = (at(dns), at(ready), at(health));
    if !wait_until(Duration::from_secs(10), || {
        get(ready, "/ready").map(|r| r.0) == Some(200)
    }) {
        let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        panic!("never ready:\n{log}");
    }
    (child, dns, ready, health)
}

#[test]
fn sigterm_goes_lameduck_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, dns, ready, health) = binary(dir.path(), "");
    let term = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    // Lameduck: not ready, alive, and still answering.
    assert!(
        wait_until(Duration::from_millis(900), || get(ready, "/ready")
            .map(|r| r.0)
            == Some(503)),
        "still ready after SIGTERM"
    );
    assert_eq!(get(health, "/health").map(|r| r.0), Some(200));
    assert_eq!(
        ask(dns, "web.shop.svc.cluster.local", RecordType::A).rdata(),
        ["10.96.100.10"]
    );
    let mut exit = None;
    assert!(
        wait_until(
            Duration::from_secs(3).saturating_sub(term.elapsed()),
            || {
                exit = child.try_wait().unwrap();
                exit.is_some()
            }
        ),
        "not gone within lameduck + 2 s"
    );
    let status = exit.unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        term.elapsed() >= Duration::from_millis(900),
        "lameduck was skipped"
    );
}

#[test]
fn the_binary_reloads_a_changed_config_and_logs_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, dns, _, _) = binary(dir.path(), "[log]\nqueries = true\n");
    let web = "web.shop.svc.cluster.local";
    assert_eq!(ask(dns, web, RecordType::A).msg.answers[0].ttl, 5);
    let config = dir.path().join("clusterdns.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}[kubernetes]\nttl = 45\n")).unwrap();
    assert!(
        wait_until(Duration::from_secs(6), || ask(dns, web, RecordType::A)
            .msg
            .answers[0]
            .ttl
            == 45),
        "the config change was not applied"
    );
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("clusterdns::query") && l.contains(web))
        .unwrap_or_else(|| panic!("no query log line in {log}"));
    // In JSON, the message is the line CoreDNS's `log` plugin prints.
    assert!(
        line.contains(&format!(r#"\"A IN {web}. udp "#))
            && line.contains(r#"\" NOERROR qr,aa,rd "#),
        "{line}"
    );
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[test]
fn version_names_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "clusterdns {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--config",
        "--listen",
        "--cluster-file",
        "--validate",
        "--log-format",
        "--metrics-listen",
        "--health-listen",
        "--ready-listen",
    ] {
        assert!(help.contains(flag), "--help does not document {flag}");
    }
}

#[test]
fn dns_programming_latency_is_measured_from_the_slice_trigger_time() {
    let dir = tempfile::tempdir().unwrap();
    let (s, file) = TestServer::with_cluster(dir.path(), &sample_cluster(), "");
    // web's EndpointSlice changes now, triggered (as the controller says) 2 s ago.
    let out = Command::new("date")
        .args(["-u", "-d", "2 seconds ago", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    let trigger = String::from_utf8(out.stdout).unwrap();
    let edited = sample_cluster().replace(
        "\"2025-03-12T16:20:03Z\"",
        &format!("\"{}\"", trigger.trim()),
    );
    assert_ne!(
        edited,
        sample_cluster(),
        "the sample's web slice carries a trigger time"
    );
    std::fs::write(&file, edited).unwrap();
    let text = metrics_until(&s, |t| {
        sample(
            t,
            "coredns_kubernetes_dns_programming_duration_seconds_count",
            &[("service_kind", "cluster_ip")],
        ) == Some(1.0)
    });
    let kind = [("service_kind", "cluster_ip")];
    assert_eq!(
        sample(
            &text,
            "coredns_kubernetes_dns_programming_duration_seconds_count",
            &kind
        ),
        Some(1.0),
        "{text}"
    );
    let sum = sample(
        &text,
        "coredns_kubernetes_dns_programming_duration_seconds_sum",
        &kind,
    )
    .unwrap();
    assert!((1.5..30.0).contains(&sum), "programming took {sum} s");
}
