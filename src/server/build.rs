//! A block's chain from its config: the stages it names, in order, each made from what
//! the block has (the shared cluster zone, its cache and forwarder, its hosts table).

use std::sync::Arc;

use super::chain::{
    CacheStage, Chain, ForwardStage, HostsStage, LoadBalance, LoopGuard, Stage, ZoneStage,
};
use crate::cache::ResponseCache;
use crate::config::{HostsConfig, StageName};
use crate::forward::Forwarder;
use crate::hosts::Hosts;
use crate::zone::{ClusterZone, ZoneSettings};

/// What a block's stages are made from.
pub struct Parts<'a> {
    pub zone: &'a Arc<ClusterZone>,
    pub zone_settings: ZoneSettings,
    /// The cache and forwarder, when the block has upstreams: without them the loop
    /// guard, cache and forward stages are left out.
    pub upstreams: Option<(&'a Arc<ResponseCache>, &'a Arc<Forwarder>)>,
    pub hosts: Option<&'a HostsConfig>,
}

/// The chain of the stages `names`, in that order. Must be called inside a Tokio
/// runtime when there is a hosts file to watch.
pub fn chain(names: &[StageName], parts: Parts<'_>) -> Chain {
    let stages = names
        .iter()
        .filter_map(|name| match (name, parts.upstreams) {
            (StageName::Kubernetes, _) => Some(Stage::Zone(ZoneStage {
                zone: parts.zone.clone(),
                settings: parts.zone_settings.clone(),
            })),
            (StageName::Loop, Some((_, forwarder))) => Some(Stage::LoopGuard(LoopGuard {
                forwarder: forwarder.clone(),
            })),
            (StageName::Cache, Some((cache, _))) => Some(Stage::Cache(CacheStage {
                cache: cache.clone(),
            })),
            (StageName::Forward, Some((_, forwarder))) => Some(Stage::Forward(ForwardStage {
                forwarder: forwarder.clone(),
            })),
            (StageName::Loadbalance, _) => Some(Stage::LoadBalance(LoadBalance)),
            (StageName::Hosts, _) => parts.hosts.map(|h| {
                Stage::Hosts(HostsStage {
                    hosts: Hosts::start(h.settings()),
                })
            }),
            (StageName::Loop | StageName::Cache | StageName::Forward, None) => None,
        })
        .collect();
    Chain { stages }
}
