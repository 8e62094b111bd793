//! `query_chain`: a packet through the driver, as a UDP worker and a TCP connection hand
//! it over, on the sample cluster's zone. Invariants: no panic (the driver catches and
//! counts them: the count must stay 0); every answer decodes; it echoes the ID, and the
//! question when the query had one; over UDP it fits the client's limit (its EDNS size
//! capped by the server's maximum, or 512 without EDNS); a zone-only chain never
//! suspends.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use clusterdns::metrics::Metrics;
use clusterdns::server::chain::ZoneStage;
use clusterdns::server::observe::QueryLog;
use clusterdns::server::{Chain, Driver, Observer, Origin, Replier, Stage, Step, Transport};
use clusterdns::source::ClusterEvent;
use clusterdns::source::file::{Selection, parse};
use clusterdns::wire::parse_query;
use clusterdns::zone::{ClusterIndex, ClusterZone, IndexSettings};
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinDecodable;

/// The largest UDP answer the fixture's driver sends, whatever a client advertises.
pub const MAX_UDP_SIZE: u16 = 1232;

/// A driver answering from the sample cluster, built once per process.
pub struct Fixture {
    _runtime: tokio::runtime::Runtime,
    pub driver: Arc<Driver>,
    pub observer: Arc<Observer>,
    pub metrics: Arc<Metrics>,
    pub replier: Replier,
}

/// The sample cluster (config/sample-cluster.yaml) as a published zone.
pub fn sample_zone() -> Arc<ClusterZone> {
    let objects = parse(
        Path::new("sample-cluster.yaml"),
        clusterdns::app::SAMPLE_CLUSTER,
        &Selection::all(),
    )
    .expect("the sample cluster parses");
    let zone = Arc::new(ClusterZone::new());
    let mut index = ClusterIndex::new(zone.clone(), IndexSettings::default());
    let events = objects.into_iter().map(ClusterEvent::Apply);
    index.apply_all(events.chain([ClusterEvent::InitialSyncDone]));
    zone
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _entered = runtime.enter();
        let chain = Chain {
            stages: vec![Stage::Zone(ZoneStage {
                zone: sample_zone(),
                settings: clusterdns::config::Config::default().zone_settings(),
            })],
        };
        let metrics = Metrics::new();
        let driver =
            Arc::new(Driver::new(chain, metrics.panics.clone()).with_max_udp_size(MAX_UDP_SIZE));
        let observer = Arc::new(Observer::new(
            "dns://fuzz".into(),
            metrics.clone(),
            false,
            Arc::new(QueryLog::new(None)),
        ));
        // Nothing is sent through it: a zone-only chain answers at once.
        let (tx, _) = tokio::sync::mpsc::channel(1);
        Fixture {
            _runtime: runtime,
            driver,
            observer,
            metrics,
            replier: Replier::Tcp(tx),
        }
    })
}

pub fn run(packet: &[u8]) {
    let f = fixture();
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut out = Vec::new();
        let step = f.driver.handle(packet, &origin(f, transport), &mut out);
        assert_eq!(
            f.metrics.panics.get(),
            0,
            "answering panicked ({transport:?}): {packet:02x?}"
        );
        match step {
            Step::Answer(_) => check(packet, transport, &out),
            Step::Drop(_) => {}
            Step::Pending => panic!("a zone-only chain suspended: {packet:02x?}"),
        }
    }
}

fn origin(f: &Fixture, transport: Transport) -> Origin<'_> {
    let peer: SocketAddr = "127.0.0.1:53000".parse().unwrap();
    Origin {
        transport,
        peer,
        reply_to: peer,
        received: Instant::now(),
        observer: &f.observer,
        replier: &f.replier,
    }
}

/// The invariants of an answer to `packet`.
pub fn check(packet: &[u8], transport: Transport, out: &[u8]) {
    let what = format!("query_chain {transport:?}");
    let answer = super::decode(&what, packet, out);
    assert_eq!(
        out[..2],
        packet[..2],
        "{what}: ID not echoed: {packet:02x?}"
    );
    assert!(answer.metadata.message_type == hickory_proto::op::MessageType::Response);
    if let Ok(q) = parse_query(packet) {
        let question = q.question_wire();
        assert_eq!(
            out.get(12..12 + question.len()),
            Some(question),
            "{what}: question not echoed: {packet:02x?} -> {out:02x?}"
        );
    }
    if transport == Transport::Udp {
        let limit = client_limit(packet);
        assert!(
            out.len() <= limit,
            "{what}: {} bytes over UDP, the client takes {limit}: {packet:02x?}",
            out.len()
        );
    }
}

/// The client's UDP limit, read with hickory: its EDNS size (at least 512) capped by
/// the server's maximum, else 512. A query hickory cannot read is held to the maximum.
fn client_limit(packet: &[u8]) -> usize {
    match Message::from_bytes(packet) {
        Ok(m) => match m.edns {
            Some(e) => e.max_payload().clamp(512, MAX_UDP_SIZE) as usize,
            None => 512,
        },
        Err(_) => MAX_UDP_SIZE as usize,
    }
}
