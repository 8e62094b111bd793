//! AXFR over TCP, for the clients `[transfer] to` allows (anyone else gets REFUSED from
//! the driver, as before). Runs on the connection's own task, one message at a time
//! into the connection's bounded writer queue, yielding between messages: a slow
//! secondary slows only its own transfer, and UDP workers and other connections keep
//! their share of the machine.

use std::net::SocketAddr;

use tokio::sync::mpsc;

use super::chain::Plugin;
use super::driver::{Driver, Origin};
use super::observe::{Observation, Response};
use super::tcp::frame;
use crate::wire::writer::ResponseWriter;
use crate::wire::{parse_query, rtype};
use crate::zone::transfer::ZoneTransfer;

/// Serves `message` if it is an AXFR this client may take; returns `false` (nothing
/// sent) otherwise, so the driver answers it as any other query. `Err` when the
/// connection's writer is gone.
pub async fn serve(
    driver: &Driver,
    message: &[u8],
    peer: SocketAddr,
    origin: &Origin<'_>,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Result<bool, ()> {
    let Ok(q) = parse_query(message) else {
        return Ok(false);
    };
    if q.qtype != rtype::AXFR {
        return Ok(false);
    }
    let head = q.head();
    let chain = driver.chain();
    let Some(stage) = chain.zone_stage() else {
        return Ok(false);
    };
    if !stage.settings.may_transfer(peer.ip()) {
        return Ok(false);
    }
    let started = ZoneTransfer::start(stage.zone.clone(), stage.settings.clone(), message);
    drop(chain);
    let mut out = Vec::with_capacity(16 * 1024);
    let observation = Observation::new(origin, message, Some(head));
    let mut transfer = match started {
        Ok(t) => t,
        Err(code) => {
            let mut w = ResponseWriter::new(&mut out, &q, u16::MAX as usize);
            w.set_rcode(code);
            w.finish();
            record(origin, observation, &out, message);
            return tx.send(frame(&out)).await.map(|_| true).map_err(|_| ());
        }
    };
    tracing::info!(%peer, serial = transfer.serial(), "zone transfer");
    let (mut messages, mut first) = (0usize, true);
    loop {
        let more = transfer.next_message(&mut out);
        messages += 1;
        if first {
            record(origin, observation, &out, message);
            first = false;
        }
        tx.send(frame(&out)).await.map_err(|_| ())?;
        if !more {
            break;
        }
        // Building a message takes a while on a large zone: let other tasks run.
        tokio::task::yield_now().await;
    }
    tracing::debug!(%peer, messages, "zone transfer done");
    Ok(true)
}

/// Counts and logs the transfer once, as the query it is, with its first message.
fn record(origin: &Origin<'_>, observation: Observation, out: &[u8], message: &[u8]) {
    let mut o = observation.answered(Response::read(out, Plugin::Kubernetes));
    o.elapsed = origin.received.elapsed();
    origin.observer.record_shared(&o, message);
}
