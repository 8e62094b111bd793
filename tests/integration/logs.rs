//! What the real binary writes to stderr: no colour codes off a terminal, the query log
//! in CoreDNS's format (or as fields), and, while the API server cannot be reached, only
//! clusterdns's own rate-limited warnings.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::client::{query_bytes, tcp_exchange, udp_exchange};
use crate::harness::{EPHEMERAL_HTTP, free_port};

const SAMPLE_WITH_QUERY_LOG: &str =
    "[source]\nsample = true\n[forward]\nupstreams = []\n[log]\nqueries = true\n";

/// The binary with `config` on a free loopback port, its stderr piped, with neither
/// `RUST_LOG` nor `NO_COLOR` from the test's environment.
fn spawn(config: &Path, extra: &[&str]) -> (Child, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--config")
        .arg(config)
        .args(["--listen", &addr.to_string()])
        .args(EPHEMERAL_HTTP)
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, addr)
}

/// Stderr's lines as they come, read on a thread.
fn lines(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The first line with `needle`, within 10 s.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?}"),
        }
    }
}

/// Asks `addr` over UDP until it answers (it may still be starting).
fn udp_answer(addr: SocketAddr, query: &[u8]) -> Vec<u8> {
    let started = Instant::now();
    loop {
        if let Some(r) = udp_exchange(addr, query) {
            return r;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no answer");
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn text_logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, SAMPLE_WITH_QUERY_LOG).unwrap();
    let (mut child, addr) = spawn(&config, &[]);
    // A query and a warning-free start: the lines a level would colour are there.
    udp_answer(
        addr,
        &query_bytes(3, "web.shop.svc.cluster.local", RecordType::A, None),
    );
    std::thread::sleep(Duration::from_millis(200));
    let mut stderr = child.stderr.take().unwrap();
    stop(child);
    let mut text = Vec::new();
    stderr.read_to_end(&mut text).unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains(" INFO "), "expected log lines:\n{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a redirected log:\n{text:?}"
    );
}

/// Splits a CoreDNS log line into its fields (the quoted question is one field).
fn coredns_fields(line: &str) -> (Vec<String>, Vec<String>) {
    let rest = line
        .strip_prefix("[INFO] ")
        .expect("starts as CoreDNS's lines");
    let (head, rest) = rest.split_once(" \"").unwrap();
    let (question, tail) = rest.split_once("\" ").unwrap();
    let head: Vec<String> = head
        .split(' ')
        .chain(question.split(' '))
        .map(str::to_owned)
        .collect();
    let tail = tail.split(' ').map(str::to_owned).collect();
    (head, tail)
}

#[test]
fn the_query_log_writes_coredns_lines_by_default_and_fields_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, SAMPLE_WITH_QUERY_LOG).unwrap();
    let (mut child, addr) = spawn(&config, &[]);
    let rx = lines(child.stderr.take().unwrap());

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let q = query_bytes(
        4321,
        "Web.Shop.svc.cluster.local",
        RecordType::A,
        Some(4096),
    );
    let response = loop {
        sock.send_to(&q, addr).unwrap();
        let mut buf = [0u8; 4096];
        if let Ok(n) = sock.recv(&mut buf) {
            break buf[..n].to_vec();
        }
    };
    let line = wait_for(&rx, " - 4321 ");
    let (head, tail) = coredns_fields(&line);
    assert_eq!(
        head,
        [
            format!("127.0.0.1:{port}"),
            "-".into(),
            "4321".into(),
            "A".into(),
            "IN".into(),
            "web.shop.svc.cluster.local.".into(),
            "udp".into(),
            q.len().to_string(),
            "false".into(),
            "4096".into(),
        ],
        "{line}"
    );
    assert_eq!(tail[0], "NOERROR", "{line}");
    assert_eq!(tail[1], "qr,aa,rd", "{line}");
    assert_eq!(tail[2], response.len().to_string(), "{line}");
    let seconds = tail[3].strip_suffix('s').expect("a duration in seconds");
    assert!(seconds.parse::<f64>().is_ok_and(|s| s < 10.0), "{line}");
    assert_eq!(tail.len(), 4, "{line}");

    // Over TCP, a name that does not exist and a type without a mnemonic in the query.
    let q = query_bytes(
        77,
        "nope.shop.svc.cluster.local",
        RecordType::Unknown(65280),
        None,
    );
    let response = tcp_exchange(addr, &q).unwrap();
    let line = wait_for(&rx, " - 77 ");
    let (head, tail) = coredns_fields(&line);
    assert_eq!(
        head[3..7],
        ["TYPE65280", "IN", "nope.shop.svc.cluster.local.", "tcp"]
    );
    assert_eq!((head[8].as_str(), head[9].as_str()), ("false", "65535"));
    assert_eq!(
        tail[..3],
        ["NXDOMAIN", "qr,aa,rd", &response.len().to_string()]
    );
    stop(child);

    // `query_format = "fields"`: names for the type and class, not numbers.
    std::fs::write(
        &config,
        format!("{SAMPLE_WITH_QUERY_LOG}query_format = \"fields\"\n"),
    )
    .unwrap();
    let (mut child, addr) = spawn(&config, &[]);
    let rx = lines(child.stderr.take().unwrap());
    udp_answer(
        addr,
        &query_bytes(9, "web.shop.svc.cluster.local", RecordType::AAAA, None),
    );
    let line = wait_for(&rx, "clusterdns::query");
    for field in [
        "id=9",
        "qtype=AAAA",
        "qclass=IN",
        "rcode=NOERROR",
        "proto=\"udp\"",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    stop(child);
}

/// With the API server refusing connections, the log holds clusterdns's own warnings,
/// at most one per watch per 10 s — not a line per attempt from the client libraries.
#[test]
fn an_unreachable_api_server_logs_only_the_throttled_warnings() {
    let dir = tempfile::tempdir().unwrap();
    // A free loopback port with nothing listening: every connection is refused.
    let refused = format!("http://127.0.0.1:{}", free_port());
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, clusterdns_testkit::kubeconfig(&refused)).unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[kubernetes]\nkubeconfig = \"kubeconfig\"\n[forward]\nupstreams = []\n",
    )
    .unwrap();
    let (mut child, _) = spawn(&config, &[]);
    let rx = lines(child.stderr.take().unwrap());
    // The backoff starts at 0.5 s: in 4 s each watch fails about six times.
    let until = Instant::now() + Duration::from_secs(4);
    let mut log = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Ok(line) = rx.recv_timeout(left) {
            log.push(line);
        }
    }
    stop(child);
    let text = log.join("\n");
    // Text lines read `TIMESTAMP LEVEL TARGET: message`.
    let target = |l: &str| l.split_whitespace().nth(2).unwrap_or_default().to_owned();
    let loud: Vec<&String> = log
        .iter()
        .filter(|l| matches!(l.split_whitespace().nth(1), Some("WARN" | "ERROR")))
        .collect();
    let failing = loud
        .iter()
        .filter(|l| target(l) == "clusterdns::source::kube::watch:")
        .filter(|l| l.contains("Kubernetes watch failing"))
        .count();
    assert_eq!(
        failing, 3,
        "one warning per watch (namespaces, services, endpointslices):\n{text}"
    );
    for line in &log {
        assert!(
            target(line).starts_with("clusterdns"),
            "a line not from clusterdns:\n{line}\nin:\n{text}"
        );
    }
}
