//! A test upstream on 127.0.0.1 (UDP and TCP, same port) whose behaviour a test sets:
//! answer, delay, drop, truncate, SERVFAIL, NXDOMAIN with SOA, or relay elsewhere. It
//! counts what it receives (loop probes apart).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Mode {
    /// Answer with a record of the asked type, this TTL.
    Answer {
        ttl: u32,
    },
    /// Answer after a delay.
    Delay {
        ttl: u32,
        ms: u64,
    },
    /// Never answer.
    Drop,
    /// Over UDP: TC=1 and no records; over TCP: the answer.
    Truncate {
        ttl: u32,
    },
    ServFail,
    /// NXDOMAIN with an SOA (TTL `soa_ttl`, MINIMUM `minimum`) in authority.
    NxDomain {
        soa_ttl: u32,
        minimum: u32,
    },
    /// Forward to another server and relay its answer (to build loops).
    Relay(SocketAddr),
}

pub struct TestUpstream {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    pub udp: Arc<AtomicUsize>,
    pub tcp: Arc<AtomicUsize>,
    pub probes: Arc<AtomicUsize>,
    names: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

/// A UDP socket and a TCP listener on the same free loopback port. The port the kernel
/// gave UDP may be held for TCP by another process on this shared machine: try again.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..32 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP after 32 tries");
}

impl TestUpstream {
    pub fn start(mode: Mode) -> TestUpstream {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let up = TestUpstream {
            addr,
            mode: Arc::new(Mutex::new(mode)),
            udp: Arc::default(),
            tcp: Arc::default(),
            probes: Arc::default(),
            names: Arc::default(),
            stop: Arc::default(),
        };
        let (mode, count, probes, names, stop) = (
            up.mode.clone(),
            up.udp.clone(),
            up.probes.clone(),
            up.names.clone(),
            up.stop.clone(),
        );
        let udp = Arc::new(udp);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                let q = buf[..n].to_vec();
                let m = mode.lock().unwrap().clone();
                if !note(&q, &count, &probes, &names) {
                    continue;
                }
                let udp = udp.clone();
                // Each query on its own thread, so delays overlap as real ones do.
                std::thread::spawn(move || {
                    if let Some(a) = respond(&q, &m, false) {
                        let _ = udp.send_to(&a, peer);
                    }
                });
            }
        });
        let (mode, count, probes, names, stop) = (
            up.mode.clone(),
            up.tcp.clone(),
            up.probes.clone(),
            up.names.clone(),
            up.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let (mode, count, probes, names) =
                    (mode.clone(), count.clone(), probes.clone(), names.clone());
                std::thread::spawn(move || {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    loop {
                        let mut len = [0u8; 2];
                        if conn.read_exact(&mut len).is_err() {
                            return;
                        }
                        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                        if conn.read_exact(&mut q).is_err() {
                            return;
                        }
                        let m = mode.lock().unwrap().clone();
                        if !note(&q, &count, &probes, &names) {
                            continue;
                        }
                        if let Some(a) = respond(&q, &m, true) {
                            let mut framed = (a.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&a);
                            if conn.write_all(&framed).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        up
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Queries received over UDP and TCP (loop probes and health probes for `.` apart).
    pub fn count(&self) -> usize {
        self.udp.load(Ordering::SeqCst) + self.tcp.load(Ordering::SeqCst)
    }

    pub fn names(&self) -> Vec<String> {
        self.names.lock().unwrap().clone()
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Counts a query; false for a loop probe, which is also counted apart (and answered
/// NXDOMAIN by `respond` unless relayed).
fn note(q: &[u8], count: &AtomicUsize, probes: &AtomicUsize, names: &Mutex<Vec<String>>) -> bool {
    let name = qname(q);
    if name.ends_with("clusterdns-loop-check.") || name == "." {
        probes.fetch_add(1, Ordering::SeqCst);
        return true;
    }
    count.fetch_add(1, Ordering::SeqCst);
    names.lock().unwrap().push(name);
    true
}

pub fn qname(q: &[u8]) -> String {
    let mut pos = 12;
    let mut name = String::new();
    while let Some(&len) = q.get(pos) {
        if len == 0 || len & 0xc0 != 0 {
            break;
        }
        name.push_str(&String::from_utf8_lossy(
            &q[pos + 1..pos + 1 + len as usize],
        ));
        name.push('.');
        pos += 1 + len as usize;
    }
    if name.is_empty() {
        name.push('.');
    }
    name
}

fn question_end(q: &[u8]) -> usize {
    let mut pos = 12;
    while q[pos] != 0 {
        pos += 1 + q[pos] as usize;
    }
    pos + 5
}

fn respond(q: &[u8], mode: &Mode, over_tcp: bool) -> Option<Vec<u8>> {
    let qend = question_end(q);
    let qtype = u16::from_be_bytes([q[qend - 4], q[qend - 3]]);
    let mut a = q[..qend].to_vec();
    a[2] = 0x81; // QR, RD
    a[3] = 0x80; // RA
    a[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
    let probe = qname(q).ends_with("clusterdns-loop-check.");
    let answer = |a: &mut Vec<u8>, ttl: u32| {
        let rdata: Vec<u8> = match qtype {
            1 => vec![192, 0, 2, 1],
            28 => vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            15 => b"\x00\x0a\x04mail\x07example\x00".to_vec(),
            16 => b"\x05hello".to_vec(),
            33 => b"\x00\x00\x00\x64\x00\x50\x03www\x07example\x00".to_vec(),
            _ => return,
        };
        a[7] = 1;
        a.extend_from_slice(&[0xc0, 12]);
        a.extend_from_slice(&qtype.to_be_bytes());
        a.extend_from_slice(&[0, 1]);
        a.extend_from_slice(&ttl.to_be_bytes());
        a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        a.extend_from_slice(&rdata);
    };
    match mode {
        Mode::Relay(to) => {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.send_to(q, to).ok()?;
            let mut buf = [0u8; 4096];
            let n = s.recv(&mut buf).ok()?;
            return Some(buf[..n].to_vec());
        }
        _ if probe => a[3] |= 3,
        Mode::Answer { ttl } => answer(&mut a, *ttl),
        Mode::Delay { ttl, ms } => {
            std::thread::sleep(Duration::from_millis(*ms));
            answer(&mut a, *ttl);
        }
        Mode::Drop => return None,
        Mode::Truncate { ttl } if over_tcp => answer(&mut a, *ttl),
        Mode::Truncate { .. } => a[2] |= 0x02,
        Mode::ServFail => a[3] |= 2,
        Mode::NxDomain { soa_ttl, minimum } => {
            a[3] |= 3;
            a[9] = 1;
            // SOA for the root: `. TTL SOA a. b. 1 2 3 4 MINIMUM`
            a.extend_from_slice(&[0, 0, 6, 0, 1]);
            a.extend_from_slice(&soa_ttl.to_be_bytes());
            let mut rdata = b"\x01a\x00\x01b\x00".to_vec();
            for v in [1u32, 2, 3, 4, *minimum] {
                rdata.extend_from_slice(&v.to_be_bytes());
            }
            a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            a.extend_from_slice(&rdata);
        }
    }
    Some(a)
}
