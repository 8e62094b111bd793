//! The chain of a server block: its stages in order, each of which answers a query,
//! passes it on, or suspends it until an upstream answers. Stages are an enum, matched
//! in place: a zone answer or a cache hit calls no trait object and allocates nothing.
//!
//! Adding a stage (rewrite, NodeLocal's per-zone forwarders …) means a variant here and
//! a name in the config's chain list; the driver and the transports stay as they are.

use std::cell::Cell;
use std::sync::Arc;

use tokio::time::Instant;

use crate::cache::{self, CacheSettings, Entry, Lookup, ResponseCache};
use crate::forward::{ForwardError, Forwarder, Question};
use crate::hosts::{Hosts, HostsOutcome};
use crate::wire::answer::CachedAnswer;
use crate::wire::rotate::rotate_addresses;
use crate::wire::writer::{ResponseWriter, WriterState};
use crate::wire::{QName, Query, Rcode};
use crate::zone::records::{self, ZoneOutcome};
use crate::zone::{ClusterZone, ZoneSettings};

use super::driver::Transport;
use super::zone_forward::ZoneForwardStage;

/// Which kind of stage wrote a response: the `plugin` label of the metrics, named as
/// CoreDNS names its plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// The wire checks and the end of the chain (FORMERR, NOTIMP, BADVERS, REFUSED …).
    None,
    Kubernetes,
    Cache,
    Forward,
    Hosts,
}

impl Plugin {
    pub fn label(self) -> &'static str {
        match self {
            Plugin::None => "",
            Plugin::Kubernetes => "kubernetes",
            Plugin::Cache => "cache",
            Plugin::Forward => "forward",
            Plugin::Hosts => "hosts",
        }
    }
}

/// The cluster zones (CoreDNS's `kubernetes` plugin).
pub struct ZoneStage {
    pub zone: Arc<ClusterZone>,
    pub settings: ZoneSettings,
}

/// Answers our own loop probes (see [`Forwarder::probe_loops`]) so that a loop ends here.
pub struct LoopGuard {
    pub forwarder: Arc<Forwarder>,
}

/// The response cache: hits are answered here, misses go on.
pub struct CacheStage {
    pub cache: Arc<ResponseCache>,
}

/// The upstreams: always suspends (the answer comes from the network).
pub struct ForwardStage {
    pub forwarder: Arc<Forwarder>,
}

/// Rotates the A/AAAA records of every answer written by the stages after it (CoreDNS's
/// `loadbalance`, round robin). It answers nothing itself.
pub struct LoadBalance;

/// A hosts table (CoreDNS's `hosts`): inline entries and a hosts file.
pub struct HostsStage {
    pub hosts: Arc<Hosts>,
}

pub enum Stage {
    Zone(ZoneStage),
    LoopGuard(LoopGuard),
    Cache(CacheStage),
    Forward(ForwardStage),
    /// Forwarders by zone, each with its TTL caps (the NodeLocal mode).
    ZoneForward(ZoneForwardStage),
    LoadBalance(LoadBalance),
    Hosts(HostsStage),
}

/// What the chain made of a query in the synchronous pass.
pub enum Outcome {
    /// `out` holds the response.
    Answered(Plugin),
    /// Answered, and the answer is to be refreshed in the background (prefetch).
    AnsweredRefresh(Plugin, Pending),
    /// The answer needs an upstream: the driver resumes the chain with this.
    Suspend(Pending),
}

/// What a stage made of a query in the synchronous pass.
pub enum Flow {
    /// `out` holds the response.
    Answered(Plugin),
    /// Answered, and the answer is to be refreshed in the background (prefetch).
    AnsweredRefresh(Plugin, Pending),
    /// Not for this stage: the next one.
    Next,
    /// The answer needs an upstream: the driver resumes the chain with this.
    Suspend(Pending),
}

/// Where a suspended query resumes: at a forward stage, with what it needs from the
/// synchronous pass (nothing is parsed or looked up again).
pub enum Pending {
    /// Ask the forward stage `at` for `question`; the cache stages before it keep the
    /// answer on the way back.
    Forward { at: usize, question: Question },
    /// An ExternalName target outside the zone: the response written so far (`out` of the
    /// synchronous pass, and the writer's state) gets the upstream's answer for `target`.
    Chase {
        at: usize,
        target: Question,
        writer: WriterState,
    },
}

/// What one query sees during the synchronous pass.
pub struct Pass<'a, 'p> {
    pub query: &'a Query<'p>,
    pub name: &'a QName<'a>,
    pub transport: Transport,
    /// The largest response the client takes.
    pub limit: usize,
    pub out: &'a mut Vec<u8>,
}

/// The stages of one server block, swapped whole on reload so a query sees one
/// consistent configuration.
pub struct Chain {
    pub stages: Vec<Stage>,
}

impl Chain {
    /// Runs the stages in order until one answers or suspends; past the last, REFUSED.
    pub fn run(&self, pass: &mut Pass<'_, '_>) -> Outcome {
        let mut balance = false;
        for (i, stage) in self.stages.iter().enumerate() {
            let flow = match stage {
                Stage::Zone(z) => self.zone(z, i, pass),
                Stage::LoopGuard(g) => g.check(pass),
                Stage::Cache(c) => self.cache_lookup(c, i, pass),
                Stage::Forward(f) => f.suspend(i, pass),
                Stage::ZoneForward(z) => z.suspend(i, pass),
                Stage::LoadBalance(_) => {
                    balance = true;
                    Flow::Next
                }
                Stage::Hosts(h) => h.answer(pass),
            };
            match flow {
                Flow::Next => continue,
                Flow::Answered(p) => {
                    if balance {
                        LoadBalance::apply(pass.out);
                    }
                    return Outcome::Answered(p);
                }
                Flow::AnsweredRefresh(p, pending) => {
                    if balance {
                        LoadBalance::apply(pass.out);
                    }
                    return Outcome::AnsweredRefresh(p, pending);
                }
                Flow::Suspend(pending) => return Outcome::Suspend(pending),
            }
        }
        answer_rcode(pass.out, pass.query, pass.limit, Rcode::REFUSED);
        Outcome::Answered(Plugin::None)
    }

    /// Rotates the address records of `out`, an answer written at stage `at` after the
    /// query was suspended, if a `loadbalance` stage comes before it.
    pub fn balance(&self, at: usize, out: &mut [u8]) {
        if self.stages[..at.min(self.stages.len())]
            .iter()
            .any(|s| matches!(s, Stage::LoadBalance(_)))
        {
            LoadBalance::apply(out);
        }
    }

    /// The first forward stage after `i` that takes `name`.
    fn forward_after(&self, i: usize, name: &QName<'_>) -> Option<usize> {
        self.stages
            .iter()
            .enumerate()
            .skip(i + 1)
            .find_map(|(at, s)| match s {
                Stage::Forward(f) if f.forwarder.serves(name) => Some(at),
                Stage::ZoneForward(z) if z.serves(name) => Some(at),
                _ => None,
            })
    }

    fn zone(&self, z: &ZoneStage, i: usize, pass: &mut Pass<'_, '_>) -> Flow {
        let q = pass.query;
        let mut w = ResponseWriter::new(pass.out, q, pass.limit);
        match records::answer(&z.zone, &z.settings, pass.name, q.qtype, &mut w) {
            ZoneOutcome::Answered => {
                // Only the zone can tell a search-path expansion from a name of its own.
                if z.settings.search_path_top > 0
                    && let Some(counter) = z.zone.search_path_counter()
                    && let Some((start, false)) = z.settings.find_zone(pass.name)
                {
                    counter.observe(
                        &z.zone,
                        pass.name,
                        start,
                        w.rcode(),
                        z.settings.search_path_top,
                    );
                }
                w.finish();
                Flow::Answered(Plugin::Kubernetes)
            }
            ZoneOutcome::ExternalTarget(at) => {
                let target_wire = &w.bytes()[at as usize..];
                let target = QName::written(target_wire, at)
                    .and_then(|t| Some((self.forward_after(i, &t)?, Question::with_name(&t, q))));
                match target {
                    Some((at, target)) => Flow::Suspend(Pending::Chase {
                        at,
                        target,
                        writer: w.suspend(),
                    }),
                    None => {
                        w.finish();
                        Flow::Answered(Plugin::Kubernetes)
                    }
                }
            }
            ZoneOutcome::NotOurs | ZoneOutcome::FallThrough => Flow::Next,
        }
    }

    fn cache_lookup(&self, c: &CacheStage, i: usize, pass: &mut Pass<'_, '_>) -> Flow {
        let q = pass.query;
        if self.forward_after(i, pass.name).is_none() {
            return Flow::Next; // nothing behind this cache could have filled it
        }
        let mut key = [0u8; cache::MAX_KEY_LEN];
        let len = cache::key_of(q, &mut key);
        // One clock read decides freshness and counts the TTLs down alike.
        let now = Instant::now();
        match c.cache.get(&key[..len], now) {
            Lookup::Fresh { entry, prefetch } => {
                entry.answer.serve(q, now, false, pass.limit, pass.out);
                match prefetch.then(|| self.forward_after(i, pass.name)).flatten() {
                    Some(at) => Flow::AnsweredRefresh(
                        Plugin::Cache,
                        Pending::Forward {
                            at,
                            question: Question::of(q),
                        },
                    ),
                    None => Flow::Answered(Plugin::Cache),
                }
            }
            Lookup::Stale(_) | Lookup::Miss => Flow::Next,
        }
    }

    /// Asks the forward stage `at` for `question`, and walks the answer back through the
    /// cache stages before it: the first one keeps it (or, when every upstream failed,
    /// offers an expired answer within its serve-stale window). Returns the answer and
    /// whether it is stale.
    pub async fn resolve(
        &self,
        at: usize,
        question: Question,
    ) -> Result<(Arc<Entry>, bool), ForwardError> {
        // A zone's route brings its own TTL caps; a plain forwarder uses the cache's.
        let (forwarder, route_ttl) = match self.stages.get(at) {
            Some(Stage::Forward(f)) => (&f.forwarder, None),
            Some(Stage::ZoneForward(z)) => {
                let name = QName::written(&question.name, 0).ok_or(ForwardError::NoAnswer)?;
                let route = z.route(&name).ok_or(ForwardError::NoAnswer)?;
                (&route.forwarder, Some(route.ttl))
            }
            _ => return Err(ForwardError::NoAnswer),
        };
        let key = question.key();
        let result = forwarder.forward(question.clone()).await;
        let now = Instant::now();
        let cache = self.stages[..at].iter().rev().find_map(|s| match s {
            Stage::Cache(c) => Some(&c.cache),
            _ => None,
        });
        let policy = route_ttl.unwrap_or_else(|| {
            cache.map_or_else(|| CacheSettings::default().ttl, |c| c.settings().ttl)
        });
        let fresh = result
            .as_ref()
            .ok()
            .and_then(|resp| CachedAnswer::from_response(resp, &policy, now));
        let stale = || match cache?.get(&key, now) {
            Lookup::Stale(e) | Lookup::Fresh { entry: e, .. } => Some(e),
            Lookup::Miss => None,
        };
        let name = QName::written(&question.name, 0).ok_or(ForwardError::NoAnswer)?;
        let keep = |answer: CachedAnswer| match cache {
            Some(c) => c.insert(&key, &name, answer),
            None => Entry::uncached(answer),
        };
        let served_stale = |entry: Arc<Entry>| {
            if let Some(c) = cache {
                c.served_stale();
            }
            Ok((entry, true))
        };
        match (fresh, result) {
            (Some(a), _) if a.rcode() != Rcode::SERVFAIL => Ok((keep(a), false)),
            (Some(a), _) => match stale() {
                Some(e) => served_stale(e),
                None => Ok((keep(a), false)),
            },
            (None, Err(ForwardError::Overloaded)) => Err(ForwardError::Overloaded),
            (None, Err(e)) => match stale() {
                Some(e) => served_stale(e),
                None => Err(e),
            },
            (None, Ok(_)) => Err(ForwardError::NoAnswer),
        }
    }

    /// The zone of the block's `kubernetes` stage, if it has one.
    pub fn zone_stage(&self) -> Option<&ZoneStage> {
        self.stages.iter().find_map(|s| match s {
            Stage::Zone(z) => Some(z),
            _ => None,
        })
    }

    pub fn cache(&self) -> Option<&Arc<ResponseCache>> {
        self.stages.iter().find_map(|s| match s {
            Stage::Cache(c) => Some(&c.cache),
            _ => None,
        })
    }

    pub fn forwarder(&self) -> Option<&Arc<Forwarder>> {
        self.stages.iter().find_map(|s| match s {
            Stage::Forward(f) => Some(&f.forwarder),
            _ => None,
        })
    }

    /// Ready to answer: the zone (if any) has been listed once.
    pub fn is_ready(&self) -> bool {
        self.zone_stage().is_none_or(|z| z.zone.listed())
    }
}

impl LoadBalance {
    /// Rotates `out` by this thread's turn. Each worker counts its own answers, so no
    /// counter is shared between cores, and the answers one worker sends for a name go
    /// through every rotation in turn.
    fn apply(out: &mut [u8]) {
        thread_local! {
            static TURN: Cell<usize> = const { Cell::new(0) };
        }
        let turn = TURN.with(|t| {
            let turn = t.get();
            t.set(turn.wrapping_add(1));
            turn
        });
        rotate_addresses(out, turn);
    }
}

impl HostsStage {
    fn answer(&self, pass: &mut Pass<'_, '_>) -> Flow {
        let mut w = ResponseWriter::new(pass.out, pass.query, pass.limit);
        match self.hosts.answer(pass.name, pass.query.qtype, &mut w) {
            HostsOutcome::Answered => {
                w.finish();
                Flow::Answered(Plugin::Hosts)
            }
            HostsOutcome::Next => Flow::Next,
        }
    }
}

impl LoopGuard {
    fn check(&self, pass: &mut Pass<'_, '_>) -> Flow {
        if !self.forwarder.is_loop_probe(pass.name) {
            return Flow::Next;
        }
        // Our own probe came back: answer it so the loop ends here.
        answer_rcode(pass.out, pass.query, pass.limit, Rcode::NXDOMAIN);
        Flow::Answered(Plugin::Forward)
    }
}

impl ForwardStage {
    fn suspend(&self, at: usize, pass: &mut Pass<'_, '_>) -> Flow {
        if !self.forwarder.serves(pass.name) {
            return Flow::Next;
        }
        let question = Question {
            client_tcp: pass.transport == Transport::Tcp,
            ..Question::of(pass.query)
        };
        Flow::Suspend(Pending::Forward { at, question })
    }
}

/// A response with no records and this code.
pub fn answer_rcode(out: &mut Vec<u8>, q: &Query<'_>, limit: usize, code: Rcode) {
    let mut w = ResponseWriter::new(out, q, limit);
    w.set_rcode(code);
    w.finish();
}
