//! Applying a changed configuration to a running server without a restart and without
//! dropping a query: everything new is built and bound first; only then is it swapped
//! in and what it replaces stopped. Listeners whose address did not change stay open,
//! and the cache survives when its settings did not change. If anything fails, nothing
//! changes and the error says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use thiserror::Error;

use crate::app::{
    Server, StartError, block_chain, build_upstreams, chain_of, start_source, upstreams_of,
};
use crate::config::{Config, ConfigError};
use crate::zone::ClusterZone;

#[derive(Debug, Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Notices when the config file changes (modification time and size).
pub struct ConfigWatcher {
    path: PathBuf,
    stamp: Option<(Option<SystemTime>, u64)>,
}

impl ConfigWatcher {
    pub fn new(path: &Path) -> Self {
        let mut w = ConfigWatcher {
            path: path.to_owned(),
            stamp: None,
        };
        w.stamp = w.read_stamp();
        w
    }

    fn read_stamp(&self) -> Option<(Option<SystemTime>, u64)> {
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok(), m.len()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file changed since the last call.
    pub fn changed(&mut self) -> bool {
        let now = self.read_stamp();
        if now.is_some() && now != self.stamp {
            self.stamp = now;
            return true;
        }
        false
    }
}

impl Server {
    /// Reads the config file again and applies it; on error the running config stays
    /// and `coredns_reload_failed_total` goes up.
    pub async fn reload_from(
        &mut self,
        path: &Path,
        overrides: impl Fn(&mut Config),
    ) -> Result<(), ReloadError> {
        let result = match Config::load(path) {
            Ok(mut c) => {
                overrides(&mut c);
                self.reload(c).await
            }
            Err(e) => Err(e.into()),
        };
        match &result {
            Ok(()) => tracing::info!(config = %path.display(), "configuration reloaded"),
            Err(e) => {
                self.metrics.reload_failed.inc();
                tracing::error!("configuration refused, the running one stays: {e}");
            }
        }
        result
    }

    /// Applies `new` to the running server.
    pub async fn reload(&mut self, mut new: Config) -> Result<(), ReloadError> {
        if self.nodelocal.is_some() || new.nodelocal.is_some() {
            self.reload_nodelocal(new);
            return Ok(());
        }
        if new.blocks != self.config.blocks {
            tracing::warn!("[[blocks]] change at the next restart");
            new.blocks = self.config.blocks.clone();
        }
        // A resolv.conf named by [forward] is read again: its nameservers may have changed
        // though the config did not (a SIGHUP asks for exactly that).
        let old = self.driver.chain();
        let nameservers_changed = old.forwarder().is_some_and(|f| {
            *f.resolved() != crate::forward::Resolved::read(&new.forward_settings())
        });
        if new == self.config && !nameservers_changed {
            return Ok(());
        }
        if new.server != self.config.server {
            tracing::warn!("[server] settings change at the next restart");
        }
        // 1. A new source when what feeds the zone changed: loaded before it is used.
        let source_changed = new.source != self.config.source
            || new.index_settings() != self.config.index_settings()
            || new.file_selection() != self.config.file_selection()
            || (new.uses_kubernetes() && new.kube_settings() != self.config.kube_settings())
            || self.source.is_none();
        let new_source = if source_changed && new.serves_zone() {
            let source = start_source(&new, Arc::new(ClusterZone::new()), &self.metrics)?;
            // A zone fed by watches starts empty: swap it in once it has been listed, so
            // no query meets an empty zone (or after the startup timeout, as at start).
            let deadline = tokio::time::Instant::now() + new.kubernetes.startup_timeout;
            while !source.zone.listed() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Some(source)
        } else {
            None
        };
        // 2. New listeners for new addresses, bound before anything is swapped.
        let mut added = Vec::new();
        for addr in new
            .listen
            .iter()
            .filter(|a| !self.config.listen.contains(a))
        {
            match self.bind_dns(*addr, &new.listen, &self.driver.clone()) {
                Ok(l) => added.push(l),
                Err(e) => {
                    for l in added {
                        l.stop.trigger();
                    }
                    if let Some(s) = new_source {
                        s.stop().await;
                    }
                    return Err(e.into());
                }
            }
        }
        let mut added_http = Vec::new();
        let old_http = self.config.http_endpoints();
        for (endpoint, addr) in new
            .http_endpoints()
            .into_iter()
            .filter(|e| !old_http.contains(e))
        {
            match self.bind_http(endpoint, addr).await {
                Ok(h) => added_http.push(h),
                Err(e) => {
                    tracing::error!("{e}");
                    for h in added_http {
                        h.stop.trigger();
                    }
                    for l in added {
                        l.stop.trigger();
                    }
                    if let Some(s) = new_source {
                        s.stop().await;
                    }
                    return Err(e.into());
                }
            }
        }
        // 3. The chain: zone, settings, upstreams (keeping the cache if its settings stay).
        let upstreams = if new.forward != self.config.forward
            || new.cache != self.config.cache
            || nameservers_changed
        {
            let keep = (new.cache == self.config.cache)
                .then(|| old.cache().cloned())
                .flatten();
            build_upstreams(&new, &self.metrics, keep)
        } else {
            upstreams_of(&old)
        };
        let zone = match (&new_source, &self.source) {
            (Some(s), _) | (None, Some(s)) => s.zone.clone(),
            (None, None) => old
                .zone_stage()
                .map(|z| z.zone.clone())
                .unwrap_or_else(|| Arc::new(ClusterZone::new())),
        };
        self.driver
            .set_chain(chain_of(&new, zone.clone(), upstreams));
        // The other blocks share the zone and the [kubernetes] settings.
        for b in &self.blocks {
            b.driver.set_chain(block_chain(
                &new,
                &b.config,
                zone.clone(),
                b.upstreams.clone(),
            ));
        }
        self.query_log.set(new.log.query_log());
        // 4. Stop what was replaced.
        let replaced = match new_source {
            Some(s) => self.source.replace(s),
            // A chain without a `kubernetes` stage reads no cluster.
            None if !new.serves_zone() => self.source.take(),
            None => None,
        };
        if let Some(old) = replaced {
            old.stop().await;
        }
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dns)
            .into_iter()
            .partition(|l| new.listen.contains(&l.configured));
        self.dns = keep;
        self.dns.extend(added);
        for l in gone {
            tracing::info!(udp = %l.udp, "no longer listening");
            l.stop.trigger();
            let _ = l.task.await;
        }
        let new_http = new.http_endpoints();
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.http)
            .into_iter()
            .partition(|h| new_http.contains(&(h.endpoint, h.configured)));
        self.http = keep;
        self.http.extend(added_http);
        for h in gone {
            h.stop.trigger();
            let _ = h.task.await;
        }
        self.config = new;
        Ok(())
    }
}
