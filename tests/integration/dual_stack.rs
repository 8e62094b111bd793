//! Both address families on one port: `0.0.0.0:P` with `[::]:P` in either order, `[::]:P`
//! alone, and the shipped deployment's config started by the real binary.
//!
//! Wildcard addresses are what these behaviours are about, and a test must not listen
//! beyond loopback: each test runs itself again inside a new user and network namespace
//! (`unshare`), where loopback is the only interface, and does its work there.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clusterdns::config::Config;
use hickory_proto::rr::RecordType;

use crate::client::{Answer, query_bytes, tcp_exchange, udp_exchange};
use crate::harness::{EPHEMERAL_HTTP, TestServer, free_port, sample_cluster};
use crate::upstream::{Mode, TestUpstream};

/// The config the deploy kit ships in its ConfigMap, which must start and answer.
const DEPLOY_CONFIG: &str = "deploy/cluster/clusterdns.toml";

/// Set in the copy of the test binary that runs inside the namespace.
const INSIDE: &str = "CLUSTERDNS_TEST_IN_NETNS";

/// The user + network namespace wrapper, with loopback brought up inside.
const UNSHARE: [&str; 7] = [
    "--user",
    "--map-root-user",
    "--net",
    "sh",
    "-c",
    "ip link set lo up && exec \"$0\" \"$@\"",
    "",
];

/// Runs `test` (its full path in this binary) again inside a namespace of its own and
/// checks that it passed there. Returns true when the caller is that copy and should
/// do the work itself. Where namespaces cannot be made (no `unshare`, user namespaces
/// off), says so and skips.
fn isolated(test: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let mut probe = UNSHARE.map(String::from).to_vec();
    probe[6] = "true".into();
    let works = Command::new("unshare")
        .args(&probe)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must allow user namespaces (unshare -rn) for the dual-stack tests"
        );
        eprintln!("no user/network namespaces here; skipping {test}");
        return false;
    }
    let mut args = UNSHARE.map(String::from).to_vec();
    args[6] = std::env::current_exe().unwrap().display().to_string();
    let out = Command::new("unshare")
        .args(&args)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{test} inside its namespace:\n{text}");
    assert!(text.contains("1 passed"), "{test} did not run:\n{text}");
    false
}

fn udp_ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    let raw = udp_exchange(addr, &query_bytes(0x5151, name, qtype, Some(1232)))
        .unwrap_or_else(|| panic!("no UDP answer from {addr} for {name}"));
    Answer::parse(raw)
}

fn tcp_ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    let raw = tcp_exchange(addr, &query_bytes(0x5252, name, qtype, None))
        .unwrap_or_else(|| panic!("no TCP answer from {addr} for {name}"));
    Answer::parse(raw)
}

/// Asks `kubernetes.default` over UDP and TCP, from IPv4 and IPv6 loopback (the
/// families given), and checks the answers.
fn answers_on(port: u16, v4: bool, v6: bool) {
    let name = "kubernetes.default.svc.cluster.local";
    let mut targets = Vec::new();
    if v4 {
        targets.push(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if v6 {
        targets.push(SocketAddr::new("::1".parse().unwrap(), port));
    }
    for addr in targets {
        for a in [
            udp_ask(addr, name, RecordType::A),
            tcp_ask(addr, name, RecordType::A),
        ] {
            assert_eq!(a.rcode(), "NOERROR", "{addr}");
            assert_eq!(a.rdata(), ["10.96.0.1"], "{addr}");
        }
    }
}

fn serve(dir: &Path, listen: &[String], upstream: Option<SocketAddr>) -> TestServer {
    std::fs::write(dir.join("cluster.yaml"), sample_cluster()).unwrap();
    let upstreams = upstream.map_or(String::new(), |u| format!("\"{u}\""));
    let toml = format!("[source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = [{upstreams}]\n");
    let path = dir.join("clusterdns.toml");
    std::fs::write(&path, toml).unwrap();
    let mut config = Config::load(&path).unwrap();
    config.listen = listen.iter().map(|a| a.parse().unwrap()).collect();
    // Two UDP sockets per address: the SO_REUSEPORT group must be alike in both families.
    config.server.udp_workers = 2;
    TestServer::start(config)
}

#[test]
fn ipv4_and_ipv6_wildcards_share_a_port_in_either_order() {
    if !isolated("dual_stack::ipv4_and_ipv6_wildcards_share_a_port_in_either_order") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for order in [["0.0.0.0", "[::]"], ["[::]", "0.0.0.0"]] {
        let port = free_port();
        let listen = order.map(|ip| format!("{ip}:{port}"));
        let s = serve(dir.path(), &listen, None);
        answers_on(port, true, true);
        drop(s);
    }
}

#[test]
fn ipv6_wildcard_alone_serves_both_families() {
    if !isolated("dual_stack::ipv6_wildcard_alone_serves_both_families") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let upstream = TestUpstream::start(Mode::Answer { ttl: 60 });
    let port = free_port();
    let _s = serve(dir.path(), &[format!("[::]:{port}")], Some(upstream.addr));
    answers_on(port, true, true);
    // A query that waits for the upstream is answered from the runtime, not the batch:
    // it too goes back to an IPv4 client.
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    let a = udp_ask(v4, "example.org", RecordType::A);
    assert_eq!(a.rcode(), "NOERROR");
    assert_eq!(a.answers().len(), 1, "{:?}", a.answers());
    // IPv4 alone stays IPv4 alone.
    let port = free_port();
    let _s4 = serve(dir.path(), &[format!("0.0.0.0:{port}")], None);
    answers_on(port, true, false);
    let v6 = SocketAddr::new("::1".parse().unwrap(), port);
    assert!(udp_exchange(v6, &query_bytes(1, "x", RecordType::A, None)).is_none());
}

/// The `clusterdns.toml` that the deploy kit's ConfigMap is generated from.
fn deployed_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEPLOY_CONFIG);
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn the_deployed_config_starts_and_answers_both_families() {
    if !isolated("dual_stack::the_deployed_config_starts_and_answers_both_families") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("clusterdns.toml");
    std::fs::write(&config_path, deployed_config()).unwrap();
    let config = Config::load(&config_path).unwrap();
    // The config itself, untouched; the command line moves what a test must move: DNS
    // to a free unprivileged port (same addresses), HTTP endpoints to loopback.
    let port = free_port();
    let mut args: Vec<String> = vec!["--config".into(), config_path.display().to_string()];
    for a in &config.listen {
        args.extend(["--listen".into(), SocketAddr::new(a.ip(), port).to_string()]);
    }
    args.extend(EPHEMERAL_HTTP.map(String::from));
    if config.uses_kubernetes() {
        // The deployment watches the Kubernetes API, which a test has not got: the sample
        // cluster stands in for it (only the source of objects changes).
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sample-cluster.yaml");
        args.extend(["--cluster-file".into(), sample.display().to_string()]);
    }
    let log = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let q = query_bytes(
        1,
        "kubernetes.default.svc.cluster.local",
        RecordType::A,
        None,
    );
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let up = loop {
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(10) {
            break false;
        }
        probe
            .send_to(&q, SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap();
        if probe.recv(&mut buf).is_ok() {
            break true;
        }
    };
    if !up {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("the deployed config did not start:\n{log}");
    }
    answers_on(port, true, true);
    let _ = child.kill();
    let _ = child.wait();
}
