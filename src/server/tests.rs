//! The chain as a table, in the shape of CoreDNS's plugin handler tests: each row is a
//! question put to the driver, and the answer it must give — its code, its records, and
//! which stage gave it, at once or later through the replier. The zone is the sample
//! cluster held in memory; the upstream is a scripted server on 127.0.0.1.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::BinDecodable;

use super::chain::{CacheStage, ForwardStage, LoopGuard, ZoneStage};
use super::{Chain, Driver, Observer, Origin, Plugin, Replier, Stage, Step, Transport};
use crate::cache::{CacheMetrics, CacheSettings, ResponseCache};
use crate::forward::{ForwardMetrics, ForwardSettings, Forwarder, Nameserver};
use crate::metrics::Metrics;
use crate::source::ClusterEvent;
use crate::zone::{ClusterIndex, ClusterZone, IndexSettings};

/// What the scripted upstream answers for a name.
#[derive(Clone, Copy)]
enum Script {
    /// NOERROR with one A record of this address's last byte, TTL 300.
    A(u8),
    NxDomain,
    ServFail,
}

/// A UDP upstream on 127.0.0.1 answering from its script; unknown names are dropped.
struct ScriptedUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl ScriptedUpstream {
    fn start(script: &[(&str, Script)]) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let script: HashMap<String, Script> =
            script.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut served = 0;
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let query = Message::from_bytes(&buf[..n]).unwrap();
                let name = query.queries[0].name().to_ascii().to_lowercase();
                if let Some(s) = script.get(name.trim_end_matches('.')) {
                    socket.send_to(&respond(&buf[..n], *s), from).unwrap();
                    served += 1;
                }
            }
            served
        });
        ScriptedUpstream {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; returns how many queries it answered.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// The response to `query` (header and question copied; its OPT record left out).
fn respond(query: &[u8], script: Script) -> Vec<u8> {
    let mut end = 12;
    while query[end] != 0 {
        end += 1 + query[end] as usize;
    }
    let mut r = query[..end + 5].to_vec();
    r[2] = 0x81;
    let (rcode, answers) = match script {
        Script::A(_) => (0, 1),
        Script::NxDomain => (3, 0),
        Script::ServFail => (2, 0),
    };
    r[3] = 0x80 | rcode;
    r[4..12].copy_from_slice(&[0, 1, 0, answers, 0, 0, 0, 0]);
    if let Script::A(last) = script {
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, last]);
    }
    r
}

/// The sample cluster, in memory.
fn sample_zone() -> Arc<ClusterZone> {
    let keep_pods = crate::source::file::Selection {
        keep_pods: true,
        labels: Default::default(),
    };
    let objects = crate::source::file::parse(
        Path::new("sample-cluster.yaml"),
        crate::app::SAMPLE_CLUSTER,
        &keep_pods,
    )
    .unwrap();
    let zone = Arc::new(ClusterZone::new());
    let mut index = ClusterIndex::new(zone.clone(), IndexSettings::default());
    let events = objects.into_iter().map(ClusterEvent::Apply);
    index.apply_all(events.chain([ClusterEvent::InitialSyncDone]));
    zone
}

fn chain(upstream: Option<SocketAddr>) -> Chain {
    let mut stages = vec![Stage::Zone(ZoneStage {
        zone: sample_zone(),
        settings: crate::config::Config::default().zone_settings(),
    })];
    if let Some(addr) = upstream {
        let forwarder = Arc::new(Forwarder::new(
            ForwardSettings {
                upstreams: vec![Nameserver::Addr(addr)],
                timeout: Duration::from_millis(500),
                max_fails: 0,
                ..ForwardSettings::default()
            },
            ForwardMetrics::default(),
        ));
        stages.push(Stage::LoopGuard(LoopGuard {
            forwarder: forwarder.clone(),
        }));
        stages.push(Stage::Cache(CacheStage {
            cache: Arc::new(ResponseCache::new(
                CacheSettings::default(),
                CacheMetrics::default(),
            )),
        }));
        stages.push(Stage::Forward(ForwardStage { forwarder }));
    }
    Chain { stages }
}

fn query(name: &str, qtype: RecordType, class: u16) -> Vec<u8> {
    let mut p = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        p.push(l.len() as u8);
        p.extend_from_slice(l.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&u16::from(qtype).to_be_bytes());
    p.extend_from_slice(&class.to_be_bytes());
    p
}

/// How a row is answered: at once by a stage, or later (through the replier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Now(Plugin),
    Later,
}

struct Row {
    name: &'static str,
    qtype: RecordType,
    class: u16,
    when: When,
    rcode: &'static str,
    /// The answer section, as `TYPE RDATA` lines.
    answers: &'static [&'static str],
}

const fn row(
    name: &'static str,
    qtype: RecordType,
    when: When,
    rcode: &'static str,
    answers: &'static [&'static str],
) -> Row {
    Row {
        name,
        qtype,
        class: 1,
        when,
        rcode,
        answers,
    }
}

/// Asks the driver every row, in order, over UDP; checks each answer.
fn run_table(upstream: Option<SocketAddr>, rows: &[Row]) -> Arc<Metrics> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let metrics = Metrics::new();
    let driver = Driver::new(chain(upstream), metrics.panics.clone());
    let observer = Arc::new(Observer::new(
        "dns://table".into(),
        metrics.clone(),
        true,
        Arc::default(),
    ));
    let replier_socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    let replier = Replier::Udp(replier_socket);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut recorder = observer.recorder();
    for r in rows {
        let packet = query(r.name, r.qtype, r.class);
        let origin = Origin {
            transport: Transport::Udp,
            peer: client.local_addr().unwrap(),
            reply_to: client.local_addr().unwrap(),
            received: Instant::now(),
            observer: &observer,
            replier: &replier,
        };
        let mut out = Vec::new();
        let (when, bytes) = match driver.handle(&packet, &origin, &mut out) {
            Step::Answer(o) => {
                observer.record(&mut recorder, &o, &packet);
                (When::Now(o.response.unwrap().plugin), out)
            }
            Step::Drop(_) => panic!("{} {}: dropped", r.name, r.qtype),
            Step::Pending => {
                let mut buf = [0u8; 4096];
                let (n, _) = client.recv_from(&mut buf).expect("the answer comes later");
                (When::Later, buf[..n].to_vec())
            }
        };
        let what = format!("{} {}", r.name, r.qtype);
        assert_eq!(when, r.when, "{what}: answered by");
        let msg = Message::from_bytes(&bytes).unwrap();
        assert_eq!(msg.metadata.id, 0xabcd, "{what}");
        assert_eq!(
            format!("{:?}", msg.metadata.response_code).to_uppercase(),
            r.rcode,
            "{what}"
        );
        let answers: Vec<String> = msg
            .answers
            .iter()
            .map(|a| format!("{} {}", a.record_type(), a.data))
            .collect();
        assert_eq!(answers, r.answers, "{what}");
    }
    recorder.flush();
    metrics
}

/// Reads `coredns_dns_responses_total{plugin, rcode}` of the table's listener.
fn responses(metrics: &Metrics, plugin: &str, rcode: &str) -> u64 {
    let text = metrics.render();
    let want = format!("plugin=\"{plugin}\",rcode=\"{rcode}\",server=\"dns://table\"");
    text.lines()
        .find(|l| l.starts_with("coredns_dns_responses_total{") && l.contains(&want))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_chain_answers_each_question_from_the_right_stage() {
    use When::{Later, Now};
    let up = ScriptedUpstream::start(&[
        ("www.example.org", Script::A(1)),
        ("api.stripe.example.com", Script::A(7)),
        ("gone.example.org", Script::NxDomain),
        ("broken.example.org", Script::ServFail),
    ]);
    let kube = Now(Plugin::Kubernetes);
    let rows = [
        row(
            "web.shop.svc.cluster.local",
            RecordType::A,
            kube,
            "NOERROR",
            &["A 10.96.100.10"],
        ),
        row(
            "nope.shop.svc.cluster.local",
            RecordType::A,
            kube,
            "NXDOMAIN",
            &[],
        ),
        // In-zone ExternalName: answered by the zone alone.
        row(
            "web-alias.shop.svc.cluster.local",
            RecordType::A,
            kube,
            "NOERROR",
            &["CNAME web.shop.svc.cluster.local.", "A 10.96.100.10"],
        ),
        // Outside the zone: the first time from the upstream, then from the cache.
        row(
            "www.example.org",
            RecordType::A,
            Later,
            "NOERROR",
            &["A 192.0.2.1"],
        ),
        row(
            "www.example.org",
            RecordType::A,
            Now(Plugin::Cache),
            "NOERROR",
            &["A 192.0.2.1"],
        ),
        row(
            "WWW.Example.ORG",
            RecordType::A,
            Now(Plugin::Cache),
            "NOERROR",
            &["A 192.0.2.1"],
        ),
        row("gone.example.org", RecordType::A, Later, "NXDOMAIN", &[]),
        row(
            "gone.example.org",
            RecordType::A,
            Now(Plugin::Cache),
            "NXDOMAIN",
            &[],
        ),
        row("broken.example.org", RecordType::A, Later, "SERVFAIL", &[]),
        // An ExternalName leaving the zone: the zone's CNAME, then the upstream's answer.
        row(
            "payments-api.shop.svc.cluster.local",
            RecordType::A,
            Later,
            "NOERROR",
            &["CNAME api.stripe.example.com.", "A 192.0.2.7"],
        ),
        // Wire rules before any stage.
        row(
            "web.shop.svc.cluster.local",
            RecordType::AXFR,
            Now(Plugin::None),
            "REFUSED",
            &[],
        ),
        Row {
            class: 3, // CH
            ..row(
                "version.bind",
                RecordType::TXT,
                Now(Plugin::None),
                "REFUSED",
                &[],
            )
        },
    ];
    let metrics = run_table(Some(up.addr), &rows);
    // Each answer was observed once, under the stage that gave it.
    assert_eq!(responses(&metrics, "kubernetes", "NOERROR"), 3);
    assert_eq!(responses(&metrics, "kubernetes", "NXDOMAIN"), 1);
    assert_eq!(responses(&metrics, "cache", "NOERROR"), 2);
    assert_eq!(responses(&metrics, "cache", "NXDOMAIN"), 1);
    assert_eq!(responses(&metrics, "forward", "NOERROR"), 1);
    assert_eq!(responses(&metrics, "forward", "NXDOMAIN"), 1);
    assert_eq!(responses(&metrics, "forward", "SERVFAIL"), 1);
    assert_eq!(responses(&metrics, "", "REFUSED"), 2);
    // www, gone, broken and api.stripe once each.
    assert_eq!(up.finish(), 4, "cache hits never reach the upstream");
}

#[test]
fn without_upstreams_the_chain_ends_in_refused() {
    use When::Now;
    let rows = [
        row(
            "web.shop.svc.cluster.local",
            RecordType::A,
            Now(Plugin::Kubernetes),
            "NOERROR",
            &["A 10.96.100.10"],
        ),
        row(
            "www.example.org",
            RecordType::A,
            Now(Plugin::None),
            "REFUSED",
            &[],
        ),
        // An ExternalName leaving the zone with nobody to ask: the CNAME alone.
        row(
            "payments-api.shop.svc.cluster.local",
            RecordType::A,
            Now(Plugin::Kubernetes),
            "NOERROR",
            &["CNAME api.stripe.example.com."],
        ),
    ];
    run_table(None, &rows);
}
