//! `/explain?name=…&type=…` on the health listener (`[explain] http`), which
//! `clusterdns explain --server` asks ([`crate::explain`]). The reasoning is the zone's ([`crate::zone::explain`]); what only a running
//! server knows is added here: where a name outside the zones is forwarded, and what the
//! cache holds for it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cache;
use crate::server::{Chain, Driver};
use crate::wire::{QName, parse_query};
use crate::zone::explain::{
    self, CacheState, ExplainError, Explanation, Forwarding, Shape, parse_type,
};

/// The explanation a running chain gives: the zone's, plus, for a name outside the
/// zones, the upstream group that takes it and what the cache holds.
pub fn explain_running(chain: &Chain, name: &str, qtype: u16) -> Result<Explanation, ExplainError> {
    let Some(z) = chain.zone_stage() else {
        return Err(ExplainError::NoZone);
    };
    let mut e = explain::explain(&z.zone, &z.settings, None, name, qtype)?;
    if e.shape == Shape::Outside {
        e.forward = forwarding(chain, name, qtype);
        if e.forward.is_none() {
            e.reason.push_str(" — no upstream takes it here: REFUSED");
        }
    }
    Ok(e)
}

fn forwarding(chain: &Chain, name: &str, qtype: u16) -> Option<Forwarding> {
    let packet = explain::query_packet(name, qtype)?;
    let q = parse_query(&packet).ok()?;
    let qname = QName::question(&q);
    let forwarder = chain.forwarder()?;
    let (group, upstreams) = forwarder.route(&qname)?;
    let cache = chain.cache().map(|c| {
        let mut key = [0u8; cache::MAX_KEY_LEN];
        let len = cache::key_of(&q, &mut key);
        let now = tokio::time::Instant::now();
        match c.peek(&key[..len]) {
            None => CacheState {
                state: "miss".into(),
                age_secs: None,
                ttl_left_secs: None,
                rcode: None,
            },
            Some(entry) => {
                let a = &entry.answer;
                let state = if a.is_fresh(now) {
                    "hit"
                } else if now < a.stored + a.ttl() + c.settings().serve_stale {
                    "stale (served only if every upstream fails)"
                } else {
                    "expired"
                };
                CacheState {
                    state: state.into(),
                    age_secs: Some(now.saturating_duration_since(a.stored).as_secs()),
                    ttl_left_secs: Some(a.remaining(now).as_secs()),
                    rcode: Some(a.rcode().name().into()),
                }
            }
        }
    });
    Some(Forwarding {
        group,
        policy: format!("{:?}", forwarder.settings().policy).to_lowercase(),
        upstreams: upstreams
            .into_iter()
            .map(|(a, up)| (a.to_string(), up))
            .collect(),
        cache,
    })
}

/// The query string of `/explain`.
#[derive(Debug, serde::Deserialize)]
pub struct Params {
    name: String,
    #[serde(rename = "type")]
    qtype: Option<String>,
    /// `text` for the plain-words form; JSON otherwise.
    format: Option<String>,
}

/// `GET /explain`.
pub async fn handler(State(driver): State<Arc<Driver>>, Query(p): Query<Params>) -> Response {
    let type_text = p.qtype.as_deref().unwrap_or("A");
    let Some(qtype) = parse_type(type_text) else {
        let why = format!("{type_text:?} is not a record type (A, AAAA, SRV, PTR, TXT, …)");
        return (StatusCode::BAD_REQUEST, why).into_response();
    };
    match explain_running(&driver.chain(), &p.name, qtype) {
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        Ok(e) if p.format.as_deref() == Some("text") => {
            let mut text = e.lines().join("\n");
            text.push('\n');
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Ok(e) => axum::Json(e).into_response(),
    }
}
