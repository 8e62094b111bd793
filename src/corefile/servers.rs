//! Server blocks onto clusterdns blocks. CoreDNS picks a server block by the address a
//! query came to, then by the longest zone among the blocks there; clusterdns answers
//! each address with one chain. So the server blocks that listen on the same addresses
//! become one clusterdns block: a zone's `forward .` a stub domain of its forwarder,
//! `kubernetes` and `hosts` their own zones, the rest merged (a value two of them set
//! differently is a warning). Each set of addresses is a block: the first one that
//! serves the cluster zone (or else `.`) the default block, the others `[[blocks]]`.

use std::net::{IpAddr, SocketAddr};

use super::parse::ServerBlock;
use super::values;

/// The server blocks (indices into the Corefile) that listen on the same addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Group {
    pub(super) members: Vec<usize>,
    pub(super) listen: Vec<SocketAddr>,
}

/// Where each server block goes.
#[derive(Debug)]
pub(super) struct Placement {
    pub(super) groups: Vec<Group>,
    /// The group that becomes the top-level (default) block.
    pub(super) default: usize,
    /// A group whose addresses overlap an earlier group's without being the same: (its
    /// group, the server block's line, why).
    clashes: Vec<(usize, usize, String)>,
}

impl Placement {
    pub(super) fn clashes_of(&self, group: &Group) -> Vec<(usize, String)> {
        let at = self.groups.iter().position(|g| g == group);
        self.clashes
            .iter()
            .filter(|(g, _, _)| Some(*g) == at)
            .map(|(_, line, why)| (*line, why.clone()))
            .collect()
    }
}

pub(super) fn has(block: &ServerBlock, plugin: &str) -> bool {
    block.directives.iter().any(|d| d.name.text == plugin)
}

/// Every address of both families at `port`, as CoreDNS listens without `bind`.
pub(super) fn wildcard(port: u16) -> Vec<String> {
    vec![format!("0.0.0.0:{port}"), format!("[::]:{port}")]
}

/// The port of a block's keys (53 when none says) and the addresses it binds.
fn listen_of(block: &ServerBlock) -> Vec<SocketAddr> {
    let port = block
        .keys
        .iter()
        .find_map(|k| values::block_key(&k.text).ok())
        .map_or(53, |k| k.port);
    let bound: Vec<SocketAddr> = block
        .directives
        .iter()
        .filter(|d| d.name.text == "bind")
        .flat_map(|d| &d.args)
        .filter_map(|a| a.text.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let mut listen = if bound.is_empty() {
        wildcard(port)
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    } else {
        bound
    };
    listen.sort();
    listen.dedup();
    listen
}

/// Whether two addresses cannot both be listened on by different blocks: the same, or
/// one the wildcard of the other's family at the same port.
fn overlap(a: &SocketAddr, b: &SocketAddr) -> bool {
    a == b
        || (a.port() == b.port()
            && a.is_ipv4() == b.is_ipv4()
            && (a.ip().is_unspecified() || b.ip().is_unspecified()))
}

/// Groups the server blocks by the addresses they listen on, and picks the default.
pub(super) fn place(blocks: &[ServerBlock]) -> Placement {
    let mut groups: Vec<Group> = Vec::new();
    let mut clashes = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let listen = listen_of(block);
        if let Some(g) = groups.iter_mut().find(|g| g.listen == listen) {
            g.members.push(i);
            continue;
        }
        let clash = groups.iter().find_map(|g| {
            let (a, b) = g
                .listen
                .iter()
                .find_map(|a| listen.iter().find(|b| overlap(a, b)).map(|b| (a, b)))?;
            Some(format!(
                "it listens on {b}, which the server block at line {} covers with {a} among other addresses: clusterdns answers each address with one block, so server blocks that share an address need the same `bind` list",
                blocks[g.members[0]].line()
            ))
        });
        if let Some(why) = clash {
            clashes.push((groups.len(), block.line(), why));
        }
        groups.push(Group {
            members: vec![i],
            listen,
        });
    }
    let serves = |g: &Group, test: &dyn Fn(&ServerBlock) -> bool| {
        g.members.iter().any(|&b| test(&blocks[b]))
    };
    let root = |b: &ServerBlock| {
        b.keys
            .iter()
            .any(|k| values::block_key(&k.text).is_ok_and(|k| k.zone == "."))
    };
    let default = groups
        .iter()
        .position(|g| serves(g, &|b| has(b, "kubernetes")))
        .or_else(|| groups.iter().position(|g| serves(g, &root)))
        .unwrap_or(0);
    Placement {
        groups,
        default,
        clashes,
    }
}

/// A `[[blocks]]` name: the keys of its server blocks.
pub(super) fn block_name(blocks: &[ServerBlock], group: &Group) -> String {
    let keys: Vec<&str> = group
        .members
        .iter()
        .flat_map(|&b| blocks[b].keys.iter().map(|k| k.text.as_str()))
        .collect();
    keys.join(" ")
}

/// The chain of a clusterdns block, in CoreDNS's plugin order (plugin.cfg: loadbalance,
/// hosts, kubernetes, loop, cache, forward), whatever order the Corefile lists them in;
/// and why, for the TOML's comment.
pub(super) fn chain(blocks: &[&ServerBlock]) -> (Vec<&'static str>, String) {
    let any = |plugin: &str| blocks.iter().any(|b| has(b, plugin));
    let forward = any("forward") || any("proxy");
    let stages: Vec<&'static str> = [
        ("loadbalance", any("loadbalance")),
        ("hosts", any("hosts")),
        ("kubernetes", any("kubernetes")),
        // clusterdns's loop guard answers its own loop probes: wherever it forwards.
        ("loop", forward),
        ("cache", any("cache")),
        ("forward", forward),
    ]
    .into_iter()
    .filter_map(|(stage, on)| on.then_some(stage))
    .collect();
    let lines: Vec<String> = blocks.iter().map(|b| b.line().to_string()).collect();
    let why = format!(
        "the plugins of the server block(s) at line {}, in CoreDNS's plugin order",
        lines.join(", ")
    );
    (stages, why)
}
