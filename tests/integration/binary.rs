//! The real binary: starts on the built-in sample, answers, and exits cleanly on SIGTERM.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::client::{Answer, query_bytes};
use crate::harness::{EPHEMERAL_HTTP, free_port, wait_until};
use crate::http::get;

#[test]
fn serves_the_built_in_sample_and_stops_on_sigterm() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--listen", &addr.to_string()])
        .args(EPHEMERAL_HTTP)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let answer = first_answer(addr, "kubernetes.default.svc.cluster.local", RecordType::A);
    assert_eq!(answer.rdata(), ["10.96.0.1"]);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The default lameduck is 5 s; then at most 2 s to finish.
    let mut exit = None;
    assert!(
        wait_until(Duration::from_secs(7), || {
            exit = child.try_wait().unwrap();
            exit.is_some()
        }),
        "did not exit after SIGTERM"
    );
    let status = exit.unwrap();
    assert!(status.success(), "exit status {status}");
}

/// The README's own `dig` line, against the README's own config (on another port).
#[test]
fn the_readme_dig_line_answers() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dig_line = readme
        .lines()
        .find(|l| l.starts_with("dig @127.0.0.1 -p 5353 "))
        .expect("README has a dig line");
    if !crate::harness::dig_available() {
        return;
    }
    let port = free_port();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/clusterdns.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--config", config, "--listen", &format!("127.0.0.1:{port}")])
        .args(EPHEMERAL_HTTP)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let args: Vec<String> = dig_line
        .split_whitespace()
        .skip(1)
        .map(|a| {
            if a == "5353" {
                port.to_string()
            } else {
                a.to_string()
            }
        })
        .chain(["+time=1".to_string(), "+tries=1".to_string()])
        .collect();
    let mut out = String::new();
    wait_until(Duration::from_secs(10), || {
        let dig = Command::new("dig").args(&args).output().unwrap();
        out = String::from_utf8_lossy(&dig.stdout).to_string();
        out.contains("ANSWER SECTION")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("flags: qr aa"), "{out}");
    let answer = out
        .lines()
        .skip_while(|l| !l.contains("ANSWER SECTION"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        answer.starts_with("kubernetes.default.svc.cluster.local. 30")
            && answer.ends_with("10.96.0.1"),
        "{out}"
    );
}

/// The real binary, killed when dropped (a failing test leaves no process behind).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary answering DNS on a free loopback port, with `args`.
fn start(args: &[&str]) -> (Running, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--listen", &addr.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Running(child), addr)
}

/// Asks over UDP until the server answers (it is starting), for at most 10 s.
fn first_answer(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let q = query_bytes(7, name, qtype, None);
    let mut answer = None;
    let answered = wait_until(Duration::from_secs(10), || {
        sock.send_to(&q, addr).unwrap();
        let mut buf = [0u8; 512];
        answer = sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec());
        answer.is_some()
    });
    assert!(answered, "the binary never answered");
    Answer::parse(answer.unwrap())
}

/// An empty cluster file is an empty cluster, as an empty folder is: both validate with
/// no objects, and both serve the zone with nothing in it (NXDOMAIN with the SOA).
#[test]
fn an_empty_cluster_file_serves_an_empty_zone_as_an_empty_folder_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.yaml");
    std::fs::write(&file, "").unwrap();
    let folder = dir.path().join("empty-folder");
    std::fs::create_dir(&folder).unwrap();
    for source in [&file, &folder] {
        let source = source.to_str().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .args(["--cluster-file", source, "--validate"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("{source}: 0 objects")), "{said}");

        let mut args = vec!["--cluster-file", source];
        args.extend(EPHEMERAL_HTTP);
        let (_server, addr) = start(&args);
        let a = first_answer(addr, "kubernetes.default.svc.cluster.local", RecordType::A);
        assert_eq!((a.rcode().as_str(), a.aa()), ("NXDOMAIN", true), "{source}");
        assert_eq!(a.authority().len(), 1, "{source}: the SOA");
    }
}

fn loopback_free() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Polls `GET path` at `addr` until it answers 200, for at most 10 s.
fn eventually_ok(addr: &str, path: &str) -> bool {
    let addr: SocketAddr = addr.parse().unwrap();
    wait_until(Duration::from_secs(10), || {
        matches!(get(addr, path), Some((200, _)))
    })
}

/// Every port moves from the command line (DNS 5353, /health 8080, /ready 8181,
/// /metrics 9153 are often taken), and `""` turns an endpoint off as in the config.
#[test]
fn every_port_moves_from_the_command_line_and_empty_turns_an_endpoint_off() {
    let (health, ready, metrics) = (loopback_free(), loopback_free(), loopback_free());
    let (_server, dns) = start(&[
        "--health-listen",
        &health,
        "--ready-listen",
        &ready,
        "--metrics-listen",
        &metrics,
    ]);
    let a = first_answer(dns, "kubernetes.default.svc.cluster.local", RecordType::A);
    assert_eq!(a.rdata(), ["10.96.0.1"]);
    assert!(eventually_ok(&health, "/health"));
    assert!(eventually_ok(&ready, "/ready"));
    assert!(eventually_ok(&metrics, "/metrics"));

    // The config puts the endpoints on ports; "" on the command line turns them off.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let (health, ready, metrics) = (loopback_free(), loopback_free(), loopback_free());
    std::fs::write(
        &config,
        format!(
            "[source]\nsample = true\n[health]\nlisten = \"{health}\"\n[ready]\nlisten = \"{ready}\"\n[metrics]\nlisten = \"{metrics}\"\n"
        ),
    )
    .unwrap();
    let (_server, dns) = start(&[
        "--config",
        config.to_str().unwrap(),
        "--health-listen",
        "",
        "--ready-listen",
        "",
        "--metrics-listen",
        "",
    ]);
    let a = first_answer(dns, "kubernetes.default.svc.cluster.local", RecordType::A);
    assert_eq!(a.rdata(), ["10.96.0.1"]);
    for addr in [&health, &ready, &metrics] {
        assert_eq!(get(addr.parse().unwrap(), "/"), None, "{addr} is listening");
    }
}

/// A bad address on the command line is refused, and the error repeats it.
#[test]
fn a_bad_address_on_the_command_line_is_echoed() {
    for flag in [
        "--listen",
        "--health-listen",
        "--ready-listen",
        "--metrics-listen",
    ] {
        for bad in ["localhost:80", "10.0.0.1", "[::1]"] {
            let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
                .args([flag, bad, "--validate"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {bad}: {err}");
            assert!(
                err.contains(&format!("\"{bad}\" is not an address")),
                "{flag} {bad}: {err}"
            );
        }
    }
}

/// The README's quick start says how to move every port, with flags that exist.
#[test]
fn the_readme_says_how_to_move_every_port() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let quick_start = &readme[..readme.find("\n## What it answers").unwrap()];
    let help = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (flag, port) in [
        ("--listen", "5353"),
        ("--health-listen", "8080"),
        ("--ready-listen", "8181"),
        ("--metrics-listen", "9153"),
    ] {
        assert!(quick_start.contains(flag), "the quick start lacks {flag}");
        assert!(quick_start.contains(port), "the quick start lacks {port}");
        assert!(help.contains(&format!("{flag} <")), "--help lacks {flag}");
    }
}
