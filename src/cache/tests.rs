//! The cache's time rules with the clock in the test's hand: every lookup and insert is
//! given `now`, so TTL countdown, the floors and caps, negative caching, the prefetch
//! trigger and the serve-stale window are checked second by second without sleeping.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::wire::parse_query;

const A: u16 = 1;
const SOA: u16 = 6;

fn name_wire(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for l in name.split('.') {
        w.push(l.len() as u8);
        w.extend_from_slice(l.as_bytes());
    }
    w.push(0);
    w
}

/// A query for `name` A, with EDNS when `edns`.
fn query(name: &str, edns: bool) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    p.extend_from_slice(&name_wire(name));
    p.extend_from_slice(&[0, A as u8, 0, 1]);
    if edns {
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    p
}

/// An upstream response to `name` A: `answers` A records with these TTLs, `rcode`, and an
/// SOA in authority when `soa` is `Some((ttl, minimum))`.
fn response(name: &str, rcode: u8, answers: &[u32], soa: Option<(u32, u32)>) -> Vec<u8> {
    let mut r = query(name, false);
    r[2] = 0x81;
    r[3] = 0x80 | rcode;
    r[7] = answers.len() as u8;
    r[9] = u8::from(soa.is_some());
    for (i, ttl) in answers.iter().enumerate() {
        r.extend_from_slice(&[0xc0, 12, 0, A as u8, 0, 1]);
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&[0, 4, 192, 0, 2, i as u8 + 1]);
    }
    if let Some((ttl, minimum)) = soa {
        r.extend_from_slice(&[0xc0, 12, 0, SOA as u8, 0, 1]);
        r.extend_from_slice(&ttl.to_be_bytes());
        let mut rdata = name_wire("ns.example");
        rdata.extend_from_slice(&name_wire("admin.example"));
        for t in [1u32, 7200, 1800, 86400, minimum] {
            rdata.extend_from_slice(&t.to_be_bytes());
        }
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(&rdata);
    }
    r
}

fn settings() -> CacheSettings {
    CacheSettings {
        serve_stale: Duration::from_secs(60),
        ..CacheSettings::default()
    }
}

struct Fixture {
    cache: ResponseCache,
    t0: Instant,
}

impl Fixture {
    fn new(settings: CacheSettings) -> Self {
        Fixture {
            cache: ResponseCache::new(settings, CacheMetrics::default()),
            t0: Instant::now(),
        }
    }

    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    fn key(name: &str) -> Vec<u8> {
        let p = query(name, false);
        let q = parse_query(&p).unwrap();
        let mut key = [0u8; MAX_KEY_LEN];
        let len = key_of(&q, &mut key);
        key[..len].to_vec()
    }

    /// Reads `response` as the upstream's answer at `t0` and offers it to the cache.
    fn insert(&self, name: &str, response: &[u8]) -> Arc<Entry> {
        let answer = CachedAnswer::from_response(response, &self.cache.settings().ttl, self.t0)
            .expect("a well-formed response");
        let p = query(name, false);
        let q = parse_query(&p).unwrap();
        self.cache
            .insert(&Self::key(name), &QName::question(&q), answer)
    }

    fn get(&self, name: &str, secs: u64) -> Lookup {
        self.cache.get(&Self::key(name), self.at(secs))
    }

    /// The TTLs of the answer records served to a client at `secs`, read back from the
    /// bytes it would get (A records of 16 bytes each follow the question).
    fn served_ttls(&self, name: &str, secs: u64, stale: bool) -> Vec<u32> {
        let entry = match self.get(name, secs) {
            Lookup::Fresh { entry, .. } | Lookup::Stale(entry) => entry,
            Lookup::Miss => panic!("{name} is not cached at {secs} s"),
        };
        let p = query(name, false);
        let q = parse_query(&p).unwrap();
        let mut out = Vec::new();
        entry.answer.serve(&q, self.at(secs), stale, 512, &mut out);
        let count = u16::from_be_bytes([out[6], out[7]]) as usize;
        (0..count)
            .map(|i| {
                let at = p.len() + 16 * i + 6;
                u32::from_be_bytes(out[at..at + 4].try_into().unwrap())
            })
            .collect()
    }
}

fn fresh(l: &Lookup) -> bool {
    matches!(l, Lookup::Fresh { .. })
}

#[test]
fn ttls_count_down_with_the_clock_and_the_entry_expires_at_the_smallest() {
    let f = Fixture::new(settings());
    f.insert(
        "web.example.org",
        &response("web.example.org", 0, &[300, 120], None),
    );
    // No record is served with more than the entry lives: both start at 120.
    assert_eq!(f.served_ttls("web.example.org", 0, false), [120, 120]);
    assert_eq!(f.served_ttls("web.example.org", 100, false), [20, 20]);
    f.insert(
        "two.example.org",
        &response("two.example.org", 0, &[60, 90], None),
    );
    assert_eq!(f.served_ttls("two.example.org", 45, false), [15, 15]);
    assert!(fresh(&f.get("web.example.org", 119)));
    assert!(
        !fresh(&f.get("web.example.org", 120)),
        "the smallest TTL decides how long the answer is fresh"
    );
}

#[test]
fn a_served_ttl_never_exceeds_what_the_cache_keeps() {
    let f = Fixture::new(CacheSettings {
        ttl: TtlPolicy {
            success_cap: Duration::from_secs(60),
            ..settings().ttl
        },
        ..settings()
    });
    let entry = f.insert(
        "big.example.org",
        &response("big.example.org", 0, &[86400], None),
    );
    assert_eq!(entry.answer.ttl(), Duration::from_secs(60));
    assert_eq!(f.served_ttls("big.example.org", 10, false), [50]);
    assert!(!fresh(&f.get("big.example.org", 60)));
}

#[test]
fn the_floor_and_the_caps_bound_how_long_answers_live() {
    let f = Fixture::new(settings());
    let ttl = |name: &str, r: Vec<u8>| f.insert(name, &r).answer.ttl().as_secs();
    assert_eq!(
        ttl("a.example", response("a.example", 0, &[1], None)),
        5,
        "min_ttl"
    );
    assert_eq!(
        ttl("b.example", response("b.example", 0, &[999_999], None)),
        3600,
        "success_cap"
    );
    assert_eq!(
        ttl(
            "c.example",
            response("c.example", 3, &[], Some((86400, 86400)))
        ),
        1800,
        "denial_cap"
    );
    assert_eq!(
        ttl("d.example", response("d.example", 2, &[], None)),
        5,
        "servfail_ttl"
    );
}

#[test]
fn denials_live_for_the_soa_minimum_or_its_ttl_whichever_is_smaller() {
    let f = Fixture::new(settings());
    // NXDOMAIN: MINIMUM 60 under an SOA TTL of 600 → 60 s (RFC 2308 §5).
    let e = f.insert(
        "gone.example",
        &response("gone.example", 3, &[], Some((600, 60))),
    );
    assert_eq!(e.answer.kind, AnswerKind::Denial);
    assert!(fresh(&f.get("gone.example", 59)));
    assert!(!fresh(&f.get("gone.example", 60)));
    // NODATA (NOERROR, no answers): SOA TTL 30 under MINIMUM 300 → 30 s.
    let e = f.insert(
        "empty.example",
        &response("empty.example", 0, &[], Some((30, 300))),
    );
    assert_eq!(e.answer.kind, AnswerKind::Denial);
    assert_eq!(e.answer.ttl(), Duration::from_secs(30));
    // A denial without an SOA: the floor.
    let e = f.insert("bare.example", &response("bare.example", 3, &[], None));
    assert_eq!(e.answer.ttl(), Duration::from_secs(5));
}

#[test]
fn prefetch_starts_once_on_a_popular_entry_near_its_end() {
    let f = Fixture::new(CacheSettings {
        prefetch_hits: 2,
        prefetch_percent: 10,
        ..settings()
    });
    f.insert("hot.example", &response("hot.example", 0, &[100], None));
    let prefetch = |secs| match f.get("hot.example", secs) {
        Lookup::Fresh { prefetch, .. } => prefetch,
        _ => panic!("not fresh at {secs} s"),
    };
    assert!(!prefetch(50), "first hit: not popular yet");
    assert!(!prefetch(60), "second hit, but 40% of the TTL is left");
    assert!(prefetch(91), "popular, 9% left: refresh now");
    assert!(!prefetch(95), "a refresh is already under way");
}

#[test]
fn prefetch_off_never_triggers() {
    let f = Fixture::new(CacheSettings {
        prefetch_hits: 0,
        ..settings()
    });
    f.insert("hot.example", &response("hot.example", 0, &[100], None));
    for secs in [90, 95, 99] {
        assert!(matches!(
            f.get("hot.example", secs),
            Lookup::Fresh {
                prefetch: false,
                ..
            }
        ));
    }
}

#[test]
fn expired_answers_stay_usable_within_the_serve_stale_window_only() {
    let f = Fixture::new(settings()); // serve_stale 60 s
    f.insert("old.example", &response("old.example", 0, &[30], None));
    assert!(fresh(&f.get("old.example", 29)));
    assert!(matches!(f.get("old.example", 30), Lookup::Stale(_)));
    assert_eq!(
        f.served_ttls("old.example", 80, true),
        [crate::wire::answer::STALE_TTL]
    );
    assert!(matches!(f.get("old.example", 89), Lookup::Stale(_)));
    assert!(matches!(f.get("old.example", 90), Lookup::Miss));
    assert!(
        matches!(f.get("old.example", 31), Lookup::Miss),
        "an entry past any use is dropped when it is asked for"
    );
}

#[test]
fn serve_stale_off_means_expired_is_gone() {
    let f = Fixture::new(CacheSettings {
        serve_stale: Duration::ZERO,
        ..settings()
    });
    f.insert("old.example", &response("old.example", 0, &[30], None));
    assert!(matches!(f.get("old.example", 30), Lookup::Miss));
}

#[test]
fn zones_listed_in_no_success_and_no_denial_are_served_but_not_kept() {
    let zone = |z: &str| crate::wire::ZoneName::parse(z).unwrap();
    let f = Fixture::new(CacheSettings {
        no_success: vec![zone("cluster.local")],
        no_denial: vec![zone("example.net")],
        ..settings()
    });
    let e = f.insert(
        "a.cluster.local",
        &response("a.cluster.local", 0, &[60], None),
    );
    assert_eq!(
        e.answer.kind,
        AnswerKind::Success,
        "still served to the asker"
    );
    assert!(matches!(f.get("a.cluster.local", 1), Lookup::Miss));
    f.insert(
        "b.cluster.local",
        &response("b.cluster.local", 3, &[], Some((60, 60))),
    );
    assert!(
        fresh(&f.get("b.cluster.local", 1)),
        "denials there are kept"
    );
    f.insert(
        "c.example.net",
        &response("c.example.net", 3, &[], Some((60, 60))),
    );
    assert!(matches!(f.get("c.example.net", 1), Lookup::Miss));
    f.insert("d.example.net", &response("d.example.net", 0, &[60], None));
    assert!(fresh(&f.get("d.example.net", 1)));
}

#[test]
fn truncated_and_refused_answers_are_relayed_but_never_kept() {
    let f = Fixture::new(settings());
    let mut tc = response("tc.example", 0, &[60], None);
    tc[2] |= 0x02;
    assert_eq!(
        f.insert("tc.example", &tc).answer.kind,
        AnswerKind::Uncacheable
    );
    assert!(matches!(f.get("tc.example", 0), Lookup::Miss));
    let refused = response("no.example", 5, &[], None);
    assert_eq!(
        f.insert("no.example", &refused).answer.kind,
        AnswerKind::Uncacheable
    );
    assert!(matches!(f.get("no.example", 0), Lookup::Miss));
}

#[test]
fn a_hit_answers_the_same_question_in_any_case_and_nothing_else() {
    let f = Fixture::new(settings());
    f.insert("Mixed.Example", &response("Mixed.Example", 0, &[60], None));
    assert!(fresh(&f.get("mixed.example", 1)));
    assert!(fresh(&f.get("MIXED.EXAMPLE", 1)));
    assert!(matches!(f.get("other.example", 1), Lookup::Miss));
}
