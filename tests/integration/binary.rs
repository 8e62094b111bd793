//! The real binary: starts on the built-in sample, answers, and exits cleanly on SIGTERM.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::client::{Answer, query_bytes};

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serves_the_built_in_sample_and_stops_on_sigterm() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let q = query_bytes(
        1,
        "kubernetes.default.svc.cluster.local",
        RecordType::A,
        None,
    );
    let started = Instant::now();
    let answer = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the binary never answered"
        );
        sock.send_to(&q, addr).unwrap();
        let mut buf = [0u8; 512];
        if let Ok(n) = sock.recv(&mut buf) {
            break Answer::parse(buf[..n].to_vec());
        }
    };
    assert_eq!(answer.rdata(), ["10.96.0.1"]);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
