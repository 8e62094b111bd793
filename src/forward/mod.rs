//! Forwarding names that are not ours: upstream groups (the default one and stub
//! domains, longest zone wins), a selection policy, health with background probes,
//! a cap on queries in flight, coalescing of identical questions, and detection of the
//! loop where an upstream sends our queries back to us.

pub mod metrics;
pub mod resolv_conf;
pub mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::seq::SliceRandom;
use thiserror::Error;
use tokio::sync::{Semaphore, oneshot};

use crate::logging::Consolidator;
use crate::wire::{QName, Query, Rcode, ZoneName};
pub use metrics::ForwardMetrics;
use upstream::Upstream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    #[default]
    Random,
    RoundRobin,
    Sequential,
}

/// An upstream as configured: an address, or a resolv.conf whose nameservers to use
/// (read by the forwarder when it is made, at start and on reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nameserver {
    Addr(SocketAddr),
    ResolvConf(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSettings {
    pub upstreams: Vec<Nameserver>,
    /// Stub domains: names in the zone go to these upstreams instead.
    pub stub_domains: Vec<(ZoneName, Vec<Nameserver>)>,
    pub policy: Policy,
    pub force_tcp: bool,
    /// Keep a truncated UDP answer rather than retrying over TCP.
    pub prefer_udp: bool,
    /// Wait for one upstream before trying the next.
    pub timeout: Duration,
    /// Everything for one question, retries included.
    pub deadline: Duration,
    /// Failures in a row that mark an upstream down; 0 never marks it down.
    pub max_fails: u32,
    /// How often a down upstream is probed.
    pub health_check: Duration,
    /// Upstream queries in flight at most; beyond it, REFUSED at once.
    pub max_concurrent: usize,
    /// Window over which repeated upstream errors are logged as one line.
    pub consolidate: Duration,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        ForwardSettings {
            upstreams: vec![Nameserver::ResolvConf("/etc/resolv.conf".into())],
            stub_domains: Vec::new(),
            policy: Policy::Random,
            force_tcp: false,
            prefer_udp: false,
            timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
            max_fails: 2,
            health_check: Duration::from_millis(500),
            max_concurrent: 1000,
            consolidate: Duration::from_secs(10),
        }
    }
}

/// The upstreams' addresses: the configured ones, and those of the resolv.conf files
/// named, read now. A file that cannot be read is reported and contributes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub upstreams: Vec<SocketAddr>,
    pub stub_domains: Vec<(ZoneName, Vec<SocketAddr>)>,
}

impl Resolved {
    pub fn read(settings: &ForwardSettings) -> Resolved {
        Resolved {
            upstreams: resolve(&settings.upstreams),
            stub_domains: settings
                .stub_domains
                .iter()
                .map(|(z, u)| (z.clone(), resolve(u)))
                .collect(),
        }
    }
}

/// Loopback nameservers from a resolv.conf are kept but warned about: they are how
/// forwarding loops start (the loop probe checks them at start).
fn resolve(nameservers: &[Nameserver]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for n in nameservers {
        match n {
            Nameserver::Addr(a) => out.push(*a),
            Nameserver::ResolvConf(path) => match resolv_conf::nameservers(path) {
                Ok(found) => {
                    for a in found.iter().filter(|a| a.ip().is_loopback()) {
                        tracing::warn!(
                            "{} lists {a}, a loopback resolver: if it forwards back to clusterdns, names will loop (clusterdns checks for this at start)",
                            path.display()
                        );
                    }
                    out.extend(found);
                }
                Err(e) => tracing::warn!("cannot read upstreams from {}: {e}", path.display()),
            },
        }
    }
    out
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ForwardError {
    #[error("too many upstream queries in flight")]
    Overloaded,
    #[error("no upstream answered")]
    NoAnswer,
    #[error("every upstream sends our queries back to us (forwarding loop)")]
    Loop,
}

/// The question as sent upstream, owned so it can outlive the packet it came in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// Lower-case wire name.
    pub name: Box<[u8]>,
    pub qtype: u16,
    pub qclass: u16,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
    /// The client asked over TCP: a truncated UDP answer is no answer for it.
    pub client_tcp: bool,
}

impl Question {
    pub fn of(q: &Query<'_>) -> Self {
        Question::with_name(&QName::question(q), q)
    }

    /// The question with another name (the target of a CNAME being chased).
    pub fn with_name(name: &QName<'_>, q: &Query<'_>) -> Self {
        let mut wire = Vec::with_capacity(name.suffix_wire(0).len());
        for l in name.labels() {
            wire.push(l.len() as u8);
            wire.extend_from_slice(l);
        }
        wire.push(0);
        Question {
            name: wire.into(),
            qtype: q.qtype,
            qclass: q.qclass,
            dnssec_ok: q.edns.is_some_and(|e| e.dnssec_ok),
            checking_disabled: q.flags & 0x0010 != 0,
            client_tcp: false,
        }
    }

    /// The cache key: the same bytes as [`crate::cache::key_of`].
    pub fn key(&self) -> Box<[u8]> {
        let mut k = self.name.to_vec();
        k.extend_from_slice(&self.qtype.to_be_bytes());
        k.extend_from_slice(&self.qclass.to_be_bytes());
        k.push(u8::from(self.dnssec_ok));
        k.into()
    }

    /// The query sent upstream: recursion desired, our EDNS (1232, the client's DO).
    pub fn to_wire(&self, id: u16) -> Vec<u8> {
        let mut p = Vec::with_capacity(self.name.len() + 32);
        p.extend_from_slice(&id.to_be_bytes());
        p.push(0x01);
        p.push(if self.checking_disabled { 0x10 } else { 0 });
        p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&self.name);
        p.extend_from_slice(&self.qtype.to_be_bytes());
        p.extend_from_slice(&self.qclass.to_be_bytes());
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0]);
        p.push(if self.dnssec_ok { 0x80 } else { 0 });
        p.extend_from_slice(&[0, 0, 0]);
        p
    }
}

struct Group {
    zone: ZoneName,
    upstreams: Vec<Arc<Upstream>>,
    next: AtomicUsize,
}

type Waiters = Vec<oneshot::Sender<Result<Arc<[u8]>, ForwardError>>>;

pub struct Forwarder {
    /// The upstreams' addresses, resolv.conf files read.
    resolved: Resolved,
    /// Stub domains first, most specific first; the default group (root zone) last.
    groups: Vec<Group>,
    settings: ForwardSettings,
    inflight: Mutex<HashMap<Question, Waiters>>,
    slots: Arc<Semaphore>,
    /// Random token in the names of our loop probes.
    loop_token: u64,
    metrics: ForwardMetrics,
    errors: Consolidator,
}

/// The label under which loop probes are sent: `<token>-<upstream>.clusterdns-loop-check.`
const LOOP_LABEL: &[u8] = b"clusterdns-loop-check";

impl Forwarder {
    pub fn new(settings: ForwardSettings, metrics: ForwardMetrics) -> Self {
        let group = |zone: ZoneName, addrs: &[SocketAddr]| Group {
            zone,
            upstreams: addrs.iter().map(|a| Arc::new(Upstream::new(*a))).collect(),
            next: AtomicUsize::new(0),
        };
        let resolved = Resolved::read(&settings);
        let mut groups: Vec<Group> = resolved
            .stub_domains
            .iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|(z, a)| group(z.clone(), a))
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.zone.labels.len()));
        if !resolved.upstreams.is_empty() {
            groups.push(group(
                ZoneName::parse(".").expect("root"),
                &resolved.upstreams,
            ));
        }
        Forwarder {
            resolved,
            groups,
            slots: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            errors: Consolidator::new(settings.consolidate),
            settings,
            inflight: Mutex::new(HashMap::new()),
            loop_token: rand::random(),
            metrics,
        }
    }

    pub fn settings(&self) -> &ForwardSettings {
        &self.settings
    }

    /// Whether any name is forwarded at all.
    pub fn has_upstreams(&self) -> bool {
        !self.groups.is_empty()
    }

    /// The addresses the forwarder was made with; compared on reload with a fresh
    /// [`Resolved::read`] to notice a changed resolv.conf.
    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    /// Whether some upstream group takes `name`.
    pub fn serves(&self, name: &QName<'_>) -> bool {
        self.group_for(name).is_some()
    }

    /// Where `name` would go: the zone of the upstream group that takes it (`.` for the
    /// default group), and each upstream with whether it is taken to be up (for
    /// `clusterdns explain`).
    pub fn route(&self, name: &QName<'_>) -> Option<(String, Vec<(SocketAddr, bool)>)> {
        let g = self.group_for(name)?;
        let zone: Vec<String> = g
            .zone
            .labels
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let ups = g.upstreams.iter().map(|u| (u.addr, u.is_healthy()));
        Some((format!("{}.", zone.join(".")), ups.collect()))
    }

    fn group_for(&self, name: &QName<'_>) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| name.zone_start(&g.zone.labels).is_some())
    }

    /// Resolves `question` upstream. Identical questions in flight share one exchange.
    pub async fn forward(self: &Arc<Self>, question: Question) -> Result<Arc<[u8]>, ForwardError> {
        let waiter = {
            // A panic elsewhere cannot leave the map half-changed (insert and remove are
            // whole), so a poisoned lock is taken as it is, like the other locks here.
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get_mut(&question) {
                Some(waiters) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    inflight.insert(question.clone(), Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = waiter {
            return rx.await.unwrap_or(Err(ForwardError::NoAnswer));
        }
        // The leader: whatever happens, the waiters get the result and the entry goes.
        let result = self.exchange(&question).await;
        let waiters = self
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&question)
            .unwrap_or_default();
        for w in waiters {
            let _ = w.send(result.clone());
        }
        result
    }

    async fn exchange(self: &Arc<Self>, question: &Question) -> Result<Arc<[u8]>, ForwardError> {
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            self.metrics.max_concurrent_rejects.inc();
            return Err(ForwardError::Overloaded);
        };

        let name = QName::written(&question.name, 0).ok_or(ForwardError::NoAnswer)?;
        let group = self.group_for(&name).ok_or(ForwardError::NoAnswer)?;
        let order = self.order(group)?;
        let s = &self.settings;
        let deadline = tokio::time::Instant::now() + s.deadline;
        let query = question.to_wire(rand::random());
        let mut servfail = None;
        for up in order {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let wait = s.timeout.min(left);
            let started = std::time::Instant::now();
            let answer = if s.force_tcp {
                up.exchange_tcp(&query, wait).await
            } else {
                match up.exchange_udp(&query, wait).await {
                    Ok(a) if a[2] & 0x02 != 0 && (!s.prefer_udp || question.client_tcp) => {
                        up.exchange_tcp(&query, wait).await
                    }
                    other => other,
                }
            };
            let code = match &answer {
                Ok(a) => Rcode::from_parts(a[3], 0).name(),
                Err(_) => "timeout",
            };
            let to = up.addr.to_string();
            self.metrics
                .request_duration
                .with_label_values(&["forward", &to, code])
                .observe(started.elapsed().as_secs_f64());
            match answer {
                Ok(a) if Rcode::from_parts(a[3], 0) == Rcode::SERVFAIL => {
                    // Answered, but could not resolve: another upstream may.
                    up.succeeded();
                    servfail = Some(a);
                }
                Ok(a) => {
                    up.succeeded();
                    return Ok(a.into());
                }
                Err(e) => {
                    let addr = up.addr;
                    self.errors
                        .error("upstream", || format!("upstream {addr} failed: {e}"));
                    if up.failed(s.max_fails) {
                        tracing::warn!(upstream = %up.addr, "upstream marked down after {} failures; probing it", s.max_fails);
                        let (up, metrics) = (up.clone(), self.metrics.clone());
                        let (every, per_try) = (s.health_check, s.timeout);
                        tokio::spawn(async move {
                            up.probe_until_healthy(every, per_try, &metrics).await
                        });
                    }
                }
            }
        }
        servfail.map(Into::into).ok_or(ForwardError::NoAnswer)
    }

    /// The upstreams to try, in order: healthy ones by the policy; when none is healthy,
    /// one anyway (a down mark may be stale).
    fn order(&self, group: &Group) -> Result<Vec<Arc<Upstream>>, ForwardError> {
        let usable: Vec<&Arc<Upstream>> =
            group.upstreams.iter().filter(|u| !u.is_looping()).collect();
        if usable.is_empty() {
            return Err(ForwardError::Loop);
        }
        let mut healthy: Vec<Arc<Upstream>> = usable
            .iter()
            .filter(|u| u.is_healthy())
            .map(|u| (*u).clone())
            .collect();
        match self.settings.policy {
            Policy::Random => healthy.shuffle(&mut rand::rng()),
            Policy::RoundRobin => {
                let n = healthy.len().max(1);
                healthy.rotate_left(group.next.fetch_add(1, Ordering::Relaxed) % n);
            }
            Policy::Sequential => {}
        }
        if healthy.is_empty() {
            // Every upstream is down (CoreDNS counts this as a broken health check).
            self.metrics.healthcheck_broken.inc();
            let pick = rand::random_range(0..usable.len());
            healthy.push(usable[pick].clone());
        }
        Ok(healthy)
    }

    /// Upstreams on this machine (127.0.0.0/8, ::1) that could send our queries back to us.
    fn loopback_upstreams(&self) -> impl Iterator<Item = (usize, usize, &Arc<Upstream>)> {
        self.groups.iter().enumerate().flat_map(|(g, group)| {
            group
                .upstreams
                .iter()
                .enumerate()
                .filter(|(_, u)| u.addr.ip().is_loopback())
                .map(move |(i, u)| (g, i, u))
        })
    }

    /// Sends one probe name through every loopback upstream (CoreDNS's `loop` plugin
    /// does the same). If a probe reaches us, [`Forwarder::is_loop_probe`] sees it.
    pub async fn probe_loops(self: Arc<Self>) {
        for (g, i, up) in self.loopback_upstreams() {
            let name = self.probe_name(g, i);
            let q = Question {
                name: name.into(),
                qtype: 13, // HINFO, as CoreDNS's probe
                qclass: 1,
                dnssec_ok: false,
                checking_disabled: false,
                client_tcp: false,
            };
            let _ = up
                .exchange_udp(&q.to_wire(rand::random()), self.settings.timeout)
                .await;
        }
    }

    fn probe_name(&self, group: usize, upstream: usize) -> Vec<u8> {
        let label = format!("{:016x}-{group}-{upstream}", self.loop_token);
        let mut wire = vec![label.len() as u8];
        wire.extend_from_slice(label.as_bytes());
        wire.push(LOOP_LABEL.len() as u8);
        wire.extend_from_slice(LOOP_LABEL);
        wire.push(0);
        wire
    }

    /// Whether `name` is one of our loop probes. If it is, the upstream it went through
    /// sends our queries back to us: it is logged loudly and never used again.
    pub fn is_loop_probe(&self, name: &QName<'_>) -> bool {
        let [first, second] = name.labels() else {
            return false;
        };
        if *second != LOOP_LABEL {
            return false;
        }
        let loops: Vec<(usize, usize, Arc<Upstream>)> = self
            .loopback_upstreams()
            .map(|(g, i, u)| (g, i, u.clone()))
            .collect();
        for (g, i, up) in loops {
            let probe = self.probe_name(g, i);
            if probe[1..=probe[0] as usize] == **first && !up.is_looping() {
                up.mark_looping();

                tracing::error!(
                    upstream = %up.addr,
                    "forwarding loop: {} sends our queries back to us (is clusterdns its own upstream, e.g. via /etc/resolv.conf?); it will not be used",
                    up.addr
                );
            }
        }
        true
    }
}
