//! The Kubernetes source at scale, end to end: the fake API server of
//! `clusterdns_testkit` served over loopback HTTP (paged lists of 500) holding 10,000
//! Services in 100 namespaces, 100,000 endpoints in 1,000 EndpointSlices of 100 (200 of
//! those services headless) and 150,000 Pods, and the release `clusterdns` binary with
//! `pods = "verified"` pointed at it through a generated kubeconfig.
//!
//! Measures, one run each (a benchmark, not a timed test):
//! - start → `/ready` 200 (every watch listed once), and → first answer;
//! - resident memory once synced (VmRSS), and the peak (VmHWM, reset through
//!   `/proc/PID/clear_refs`) during a forced full relist of every watch (history
//!   compacted while the watches are cut: each gets 410 Gone and lists everything again);
//! - propagation: an API change → the changed DNS answer, while 500 changes per second
//!   flow (half Service ClusterIP changes, half endpoint readiness flips in a 100-endpoint
//!   slice) and another thread keeps asking about 2,000 questions per second.
//!
//! Run: `cargo bench --bench kube_sync` (about a minute; needs two free cores to mean much).

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clusterdns_testkit::{
    Ep, FakeApi, FakeApiServer, endpoint_slice, kubeconfig, namespace, pod, service,
};
use hickory_proto::op::Message;
use serde_json::Value;

const NAMESPACES: usize = 100;
const SERVICES: usize = 10_000;
const SLICES: usize = 1_000;
const PER_SLICE: usize = 100;
const PODS: usize = 150_000;

fn ns(i: usize) -> String {
    format!("ns-{:03}", i % NAMESPACES)
}
fn cluster_ip(i: usize) -> String {
    format!("10.96.{}.{}", i / 250, i % 250 + 1)
}
fn pod_ip(i: usize) -> String {
    format!("10.{}.{}.{}", 128 + i / 62_500, i / 250 % 250, i % 250 + 1)
}
/// Services below SLICES have a slice of PER_SLICE endpoints; every fifth is headless.
fn headless(i: usize) -> bool {
    i < SLICES && i.is_multiple_of(5)
}
fn slice_endpoints(s: usize, not_ready: Option<usize>) -> Vec<Ep> {
    (0..PER_SLICE)
        .map(|e| {
            let ep = clusterdns_testkit::ep(&pod_ip(s * PER_SLICE + e));
            if not_ready == Some(e) {
                ep.not_ready()
            } else {
                ep
            }
        })
        .collect()
}
fn svc(i: usize, ip: &str) -> Value {
    service(&ns(i), &format!("svc-{i:05}"), ip, &[("http", 80)])
}

fn objects() -> Vec<Value> {
    let mut out = Vec::with_capacity(NAMESPACES + SERVICES + SLICES + PODS);
    out.extend((0..NAMESPACES).map(|i| namespace(&ns(i))));
    for i in 0..SERVICES {
        let ip = if headless(i) {
            "None".to_owned()
        } else {
            cluster_ip(i)
        };
        out.push(svc(i, &ip));
    }
    for s in 0..SLICES {
        let name = format!("svc-{s:05}");
        out.push(endpoint_slice(
            &ns(s),
            &format!("{name}-abcde"),
            &name,
            &slice_endpoints(s, None),
            &[("http", 8080)],
        ));
    }
    for p in 0..PODS {
        // Endpoint pods live in their service's namespace.
        let n = if p < SLICES * PER_SLICE {
            ns(p / PER_SLICE)
        } else {
            ns(p)
        };
        out.push(pod(&n, &format!("pod-{p:06}"), &pod_ip(p), "Running"));
    }
    out
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        p.push(l.len() as u8);
        p.extend_from_slice(l.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    p
}

/// `(rcode, first A address)` or None on timeout.
fn ask(sock: &UdpSocket, dns: SocketAddr, name: &str) -> Option<(u16, Option<String>)> {
    sock.send_to(&query(7, name), dns).ok()?;
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).ok()?;
    let m = Message::from_vec(&buf[..n]).ok()?;
    let a = m.answers.first().map(|r| r.data.to_string());
    Some((u16::from(m.metadata.response_code), a))
}

fn status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
        / 1024
}

fn http_status(addr: SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let api = FakeApi::new();
    api.apply_all(objects());
    api.compact(); // the creations need no history
    let server = rt.block_on(FakeApiServer::start(api.clone())).unwrap();
    println!(
        "fake API server: {} objects ready in {:?} at {}",
        NAMESPACES + SERVICES + SLICES + PODS,
        t.elapsed(),
        server.url()
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kubeconfig"), kubeconfig(&server.url())).unwrap();
    let config = dir.path().join("clusterdns.toml");
    std::fs::write(&config, "[kubernetes]\npods = \"verified\"\nkubeconfig = \"kubeconfig\"\n[forward]\nupstreams = []\n").unwrap();
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let ready: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let start = Instant::now();
    let child = Killed(
        Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .arg("--config")
            .arg(&config)
            .args([
                "--listen",
                &dns.to_string(),
                "--ready-listen",
                &ready.to_string(),
            ])
            .args([
                "--health-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run `cargo bench --bench kube_sync`, which builds the binary"),
    );
    let pid = child.0.id();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let last = format!(
        "svc-{:05}.{}.svc.cluster.local",
        SERVICES - 1,
        ns(SERVICES - 1)
    );
    let mut first_answer = None;
    let to_ready = wait(Duration::from_secs(60), || {
        if first_answer.is_none() && ask(&sock, dns, &last).is_some_and(|(rc, _)| rc == 0) {
            first_answer = Some(start.elapsed());
        }
        http_status(ready, "/ready") == 200
    })
    .map(|_| start.elapsed());
    println!("start → /ready 200: {to_ready:?}; → first answer for {last}: {first_answer:?}");
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "resident once synced: VmRSS {} MB (peak while syncing: VmHWM {} MB)",
        status(pid, "VmRSS"),
        status(pid, "VmHWM")
    );

    // A forced full relist: every watch is cut and held while the history is compacted,
    // with one change per kind that only the relist can show.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let plurals = ["namespaces", "services", "endpointslices", "pods"];
    for p in plurals {
        api.hold("watch", p);
    }
    api.drop_watches();
    api.apply(svc(SERVICES - 1, "10.96.250.250"));
    // Lists go by namespace, then name: the last page holds this one.
    api.apply(pod(
        &ns(NAMESPACES - 1),
        "zz-relisted",
        "10.200.0.1",
        "Running",
    ));
    api.compact();
    let lists = api.served("list", "pods");
    let t = Instant::now();
    api.release();
    let pages = (PODS / 500) as u64;
    let relisted = wait(Duration::from_secs(60), || {
        api.served("list", "pods") - lists >= pages
            && ask(&sock, dns, &last).is_some_and(|(_, a)| a.as_deref() == Some("10.96.250.250"))
            && ask(
                &sock,
                dns,
                &format!("10-200-0-1.{}.pod.cluster.local", ns(NAMESPACES - 1)),
            )
            .is_some_and(|(rc, _)| rc == 0)
    });
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "forced full relist ({} pod pages): done in {:?}; peak during it VmHWM {} MB, VmRSS after {} MB",
        api.served("list", "pods") - lists,
        relisted.map(|_| t.elapsed()),
        status(pid, "VmHWM"),
        status(pid, "VmRSS")
    );

    // Propagation under 500 changes per second and a steady query load.
    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, asked) = (stop.clone(), asked.clone());
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!(
                    "svc-{:05}.{}.svc.cluster.local",
                    i % SERVICES,
                    ns(i % SERVICES)
                );
                let _ = ask(&sock, dns, &name);
                asked.fetch_add(1, Ordering::Relaxed);
                i += 7919;
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };
    let (rate, seconds) = (500u32, 5u32);
    let every = Duration::from_secs(1) / rate;
    let mut latencies = Vec::new();
    let mut slice_latencies = Vec::new();
    let mut pending: Vec<(String, Option<String>, Instant)> = Vec::new();
    let begin = Instant::now();
    let mut sent = 0u32;
    let mut missed = 0;
    while sent < rate * seconds || !pending.is_empty() {
        if sent < rate * seconds && begin.elapsed() >= every * sent {
            let k = sent as usize;
            let (name, want) = if k.is_multiple_of(2) {
                // A ClusterIP service without endpoints gets a new address.
                let i = SLICES + (k * 31) % (SERVICES - SLICES);
                let ip = format!("10.97.{}.{}", k / 250 % 250, k % 250 + 1);
                api.apply(svc(i, &ip));
                (format!("svc-{i:05}.{}.svc.cluster.local", ns(i)), Some(ip))
            } else {
                // One endpoint of a 100-endpoint slice turns not ready: its name goes.
                let s = (k * 17) % SLICES;
                let e = (k / 2) % PER_SLICE;
                let name = format!("svc-{s:05}");
                api.apply(endpoint_slice(
                    &ns(s),
                    &format!("{name}-abcde"),
                    &name,
                    &slice_endpoints(s, Some(e)),
                    &[("http", 8080)],
                ));
                let ep = pod_ip(s * PER_SLICE + e).replace('.', "-");
                (format!("{ep}.{name}.{}.svc.cluster.local", ns(s)), None)
            };
            pending.push((name, want, Instant::now()));
            sent += 1;
        }
        pending.retain(|(name, want, at)| {
            let seen = match ask(&sock, dns, name) {
                Some((rc, a)) => match want {
                    Some(ip) => rc == 0 && a.as_deref() == Some(ip.as_str()),
                    None => rc == 3,
                },
                None => false,
            };
            if seen {
                latencies.push(at.elapsed());
                if want.is_none() {
                    slice_latencies.push(at.elapsed());
                }
            } else if at.elapsed() > Duration::from_secs(5) {
                missed += 1;
                return false;
            }
            !seen
        });
    }
    let took = begin.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = load.join();
    latencies.sort();
    slice_latencies.sort();
    let at = |l: &[Duration], p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let pct = |p: f64| at(&latencies, p);
    println!(
        "propagation of {} changes in {:?} ({:.0}/s, {} missed), with {} other questions: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        took,
        f64::from(sent) / took.as_secs_f64(),
        missed,
        asked.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!(
        "  of which readiness flips in 100-endpoint slices: p50 {:?}, p99 {:?}",
        at(&slice_latencies, 0.5),
        at(&slice_latencies, 0.99)
    );
    println!("resident at the end: VmRSS {} MB", status(pid, "VmRSS"));
    drop(child);
    rt.block_on(async move {
        let mut server = server;
        server.go_away().await;
    });
}
