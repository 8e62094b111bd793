//! `[[blocks]]`: server blocks beside the default one (the top level), as a Corefile
//! holds several: each with its own listen addresses, its own chain of stages, and its
//! own `[blocks.forward]`, `[blocks.cache]` and `[blocks.hosts]`. The cluster zone is
//! shared.

use std::net::SocketAddr;

use serde::Deserialize;

use super::cache::CacheConfig;
use super::forward::ForwardConfig;
use super::hosts::HostsConfig;
use super::{Refusal, first_repeat};

/// A stage of a block's chain, by the name of the CoreDNS plugin it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    /// The cluster zones (`[kubernetes]`), shared with the default block.
    Kubernetes,
    /// Answers our own forwarding-loop probes.
    Loop,
    Cache,
    Forward,
    /// Rotates the A/AAAA records of the answers of the stages after it.
    Loadbalance,
    /// Names from a hosts table (`[hosts]`, `[blocks.hosts]`).
    Hosts,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockConfig {
    /// Names the block in logs and on reload.
    pub name: String,
    pub listen: Vec<SocketAddr>,
    /// The stages in order; the default is the default block's chain.
    #[serde(default = "default_chain")]
    pub chain: Vec<StageName>,
    #[serde(default)]
    pub forward: ForwardConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    /// The table of its `hosts` stage.
    pub hosts: Option<HostsConfig>,
}

/// The default block's chain: CoreDNS's kubernetes, loop, cache, forward.
pub(super) fn default_chain() -> Vec<StageName> {
    vec![
        StageName::Kubernetes,
        StageName::Loop,
        StageName::Cache,
        StageName::Forward,
    ]
}

impl BlockConfig {
    pub(super) fn check(&self, i: usize) -> Result<(), Refusal> {
        let refuse = |key, reason: String| Err(Refusal::new("blocks", key, reason).entry(i));
        if self.name.is_empty() || self.name == "default" {
            return refuse(
                "name",
                format!("{:?} is not a block name of its own", self.name),
            );
        }
        if self.listen.is_empty() {
            return refuse("listen", "empty: give at least one address".into());
        }
        check_chain("blocks", &self.chain, self.hosts.as_ref()).map_err(|r| r.entry(i))?;
        self.forward.check()?;
        self.cache.check()
    }
}

/// A chain is not empty, names each stage once, and has a `hosts` stage exactly when
/// there is a hosts table (`section` is where both are: `""` or `blocks`).
pub(super) fn check_chain(
    section: &'static str,
    chain: &[StageName],
    hosts: Option<&HostsConfig>,
) -> Result<(), Refusal> {
    let refuse = |key, reason: String| Err(Refusal::new(section, key, reason));
    if chain.is_empty() {
        return refuse("chain", "empty: a block needs at least one stage".into());
    }
    if let Some(r) = first_repeat(chain) {
        return refuse("chain", format!("{:?} is listed twice", chain[r]));
    }
    let hosts_section = if section.is_empty() {
        "[hosts]"
    } else {
        "[blocks.hosts]"
    };
    match (chain.contains(&StageName::Hosts), hosts) {
        (true, None) => refuse(
            "chain",
            format!("\"hosts\" needs a {hosts_section} table (a file, entries or both)"),
        ),
        (false, Some(_)) => refuse(
            "hosts",
            format!(
                "{hosts_section} is set but \"hosts\" is not in the chain: add it where it answers (CoreDNS puts it before kubernetes)"
            ),
        ),
        (_, Some(h)) => h.check(if section.is_empty() { "hosts" } else { section }),
        (false, None) => Ok(()),
    }
}

/// Block names are unique, and no address is listened on by two blocks.
pub(super) fn check_blocks(listen: &[SocketAddr], blocks: &[BlockConfig]) -> Result<(), Refusal> {
    for (i, b) in blocks.iter().enumerate() {
        b.check(i)?;
        if blocks[..i].iter().any(|o| o.name == b.name) {
            let reason = format!("a block named {:?} is already there", b.name);
            return Err(Refusal::new("blocks", "name", reason).entry(i));
        }
        let taken = |a: &SocketAddr| {
            a.port() != 0
                && (listen.contains(a) || blocks[..i].iter().any(|o| o.listen.contains(a)))
        };
        if let Some(a) = b.listen.iter().find(|a| taken(a)) {
            let reason = format!("{a} is already listened on by another block");
            return Err(Refusal::new("blocks", "listen", reason).entry(i));
        }
    }
    Ok(())
}
