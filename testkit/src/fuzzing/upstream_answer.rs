//! `upstream_answer`: arbitrary bytes as an upstream's response, read and kept as the
//! chain keeps them (`Chain::resolve`), then served every way the server serves them:
//! straight to the client who asked (the driver, over UDP and TCP), as a cache hit, stale,
//! and copied record by record behind a chased CNAME. Invariants: no panic, and every
//! served answer decodes, echoes the client's ID and fits its limit.
//!
//! Input: one control byte (bit 0: the client sent EDNS, bit 1: DO, bit 2: CD), the
//! client's EDNS size (two bytes), then the response. The question put to the upstream is
//! the response's own, so that the response passes the check an upstream's answer must
//! pass to be heard (`matches_query`): the fuzzer need not guess an ID.

use clusterdns::cache::{self, CacheMetrics, CacheSettings, CachedAnswer, Lookup, ResponseCache};
use clusterdns::forward::Question;
use clusterdns::forward::upstream::matches_query;
use clusterdns::wire::answer::skip_name;
use clusterdns::wire::writer::{ResponseWriter, Section};
use clusterdns::wire::{QName, Query, parse_query};
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinDecodable;
use tokio::time::Instant;

use super::query_chain::MAX_UDP_SIZE;

pub fn run(input: &[u8]) {
    let Some((&[control, size_hi, size_lo], response)) = input.split_first_chunk::<3>() else {
        return;
    };
    let Some(question) = asked(response, control) else {
        return;
    };
    let sent = question.to_wire(u16::from_be_bytes([response[0], response[1]]));
    if !matches_query(&sent, response) {
        return;
    }
    let edns = (control & 1 != 0).then_some(u16::from_be_bytes([size_hi, size_lo]));
    let client = client_query(&question, edns);
    // A name the server would not have taken from a client is never asked.
    let Ok(q) = parse_query(&client) else {
        return;
    };
    let mut key = [0u8; cache::MAX_KEY_LEN];
    let len = cache::key_of(&q, &mut key);
    assert_eq!(
        &key[..len],
        &*question.key(),
        "the client's key and the upstream's differ"
    );

    let cache = ResponseCache::new(CacheSettings::default(), CacheMetrics::default());
    let now = Instant::now();
    let Some(answer) = CachedAnswer::from_response(response, &cache.settings().ttl, now) else {
        return;
    };
    let name = QName::written(&question.name, 0).expect("a name the question was built from");
    let entry = cache.insert(&question.key(), &name, answer);

    let udp = match q.edns {
        Some(e) => e.udp_size.clamp(512, MAX_UDP_SIZE) as usize,
        None => 512,
    };
    let mut out = Vec::new();
    for (how, limit) in [("forwarded UDP", udp), ("forwarded TCP", u16::MAX as usize)] {
        entry
            .answer
            .serve_head(&q.head(), &client, now, false, limit, &mut out);
        check(how, input, &client, &out, limit);
    }
    match cache.get(&question.key(), now) {
        Lookup::Fresh { entry, .. } => {
            entry.answer.serve(&q, now, false, udp, &mut out);
            check("cache hit", input, &client, &out, udp);
        }
        Lookup::Stale(_) => panic!("an entry stored now is stale: {input:02x?}"),
        Lookup::Miss => {}
    }
    entry.answer.serve(&q, now, true, udp, &mut out);
    check("served stale", input, &client, &out, udp);

    // A chase: the zone wrote a CNAME to an outside name; the upstream's answer records
    // for that name are copied after it, into a response to another question.
    let alias = client_query(&chased_from(&question), edns);
    let q = parse_query(&alias).expect("a name of ours");
    let mut w = ResponseWriter::new(&mut out, &q, udp);
    entry
        .answer
        .for_each_answer(now, false, |owner, rtype, ttl, rdata| {
            w.raw_record(Section::Answer, owner, rtype, ttl, rdata);
        });
    if entry.answer.truncated() {
        w.set_truncated();
    }
    w.set_rcode(entry.answer.rcode());
    w.set_recursion_available();
    w.finish();
    check("chased", input, &alias, &out, udp);
}

/// The question a client asked of an alias in the zone, whose target is `question`.
fn chased_from(question: &Question) -> Question {
    let mut name = vec![5];
    name.extend_from_slice(b"alias\x04shop\x03svc\x07cluster\x05local\0");
    Question {
        name: name.into(),
        ..question.clone()
    }
}

/// The question of `response` as the forwarder would have asked it, if it could have.
fn asked(response: &[u8], control: u8) -> Option<Question> {
    let end = skip_name(response, 12)?;
    let name = response.get(12..end)?;
    // The forwarder asks with the client's name: uncompressed and well formed.
    let parsed = QName::written(name, 0)?;
    if parsed.suffix_wire(0) != name {
        return None;
    }
    let fixed = response.get(end..end + 4)?;
    Some(Question {
        name: name.into(),
        qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
        // DO travels in EDNS: a client without it cannot set it.
        dnssec_ok: control & 3 == 3,
        checking_disabled: control & 4 != 0,
        client_tcp: false,
    })
}

/// The client's query for `question`, with EDNS of this size when `edns` is set.
fn client_query(question: &Question, edns: Option<u16>) -> Vec<u8> {
    let mut p = question.to_wire(0x5ca1);
    if let Some(size) = edns {
        let opt = p.len() - 11;
        p[opt + 3..opt + 5].copy_from_slice(&size.to_be_bytes());
    } else {
        p.truncate(p.len() - 11);
        p[11] = 0; // no additional record
    }
    p
}

fn check(how: &str, input: &[u8], client: &[u8], out: &[u8], limit: usize) {
    let what = format!("upstream_answer, {how}");
    let answer = super::decode(&what, input, out);
    // What hickory reads in the upstream's answer section, the client reads too (a
    // prefix of it when the answer was cut to fit), TTLs aside.
    if let Ok(upstream) = Message::from_bytes(&input[3..]) {
        let records = |m: &Message| -> Vec<String> {
            m.answers
                .iter()
                // Names compare in any case: the question's is the client's.
                .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data).to_lowercase())
                .collect()
        };
        let (sent, got) = (records(&upstream), records(&answer));
        assert!(
            got.len() <= sent.len() && sent[..got.len()] == got[..],
            "{what}: the upstream answered {sent:?}, the client reads {got:?}\ninput: {input:02x?}"
        );
        if !answer.metadata.truncation {
            assert_eq!(
                got.len(),
                sent.len(),
                "{what}: records lost without TC: {input:02x?}"
            );
        }
    }
    assert_eq!(answer.metadata.id, 0x5ca1, "{what}: ID not echoed");
    let q: Query<'_> = parse_query(client).expect("well formed");
    assert_eq!(
        out.get(12..12 + q.question_wire().len()),
        Some(q.question_wire()),
        "{what}: question not echoed: {input:02x?}"
    );
    assert!(
        out.len() <= limit,
        "{what}: {} bytes, the client takes {limit}: {input:02x?}",
        out.len()
    );
}
