//! Keeps the link and the steering rules as the settings say, reconcile after reconcile,
//! and says what each reconcile had to repair; removes everything on uninstall.
//!
//! A reconcile that finds everything as it left it writes nothing: it compares the
//! listing of our rules with the one it read right after its last write, so an
//! unchanged node costs only the reads, and anything else (a flush, a deleted chain or
//! jump, a stray copy) is rewritten whole.

use std::net::IpAddr;

use super::detect::{self, Backend};
use super::error::SetupError;
use super::iptables::{self, Variant};
use super::link::{self, LinkChanges};
use super::nft;
use super::settings::{BackendSetting, NetworkSettings};
use super::steering::{Family, Steering};

/// How a step compares with what this process last left in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// As left: nothing written.
    Unchanged,
    /// Written for the first time by this process (whatever was there before).
    Installed,
    /// Found changed since this process last wrote it, and rewritten.
    Repaired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOutcome {
    pub change: Change,
    pub details: LinkChanges,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesOutcome {
    pub backend: Backend,
    pub change: Change,
}

/// What one reconcile did. A failed step is in `errors` and its outcome is None; the
/// steps are independent, so one failing does not stop the other.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// None when `setup_interface` is off or the step failed.
    pub link: Option<LinkOutcome>,
    /// None when `setup_rules` is off or the step failed.
    pub rules: Option<RulesOutcome>,
    pub errors: Vec<SetupError>,
}

impl Reconciled {
    /// How many steps found something broken and repaired it (for a repairs counter).
    pub fn repairs(&self) -> u64 {
        let link = self.link.as_ref().map(|l| l.change);
        let rules = self.rules.as_ref().map(|r| r.change);
        [link, rules]
            .into_iter()
            .filter(|c| *c == Some(Change::Repaired))
            .count() as u64
    }
}

/// The network setup of one NodeLocal process.
#[derive(Debug)]
pub struct NetworkSetup {
    settings: NetworkSettings,
    steering: Steering,
    /// Resolved on the first rules step (`auto` looks at the node once).
    backend: Option<Backend>,
    link_installed: bool,
    /// Our rules' listing right after the last write; None until a write succeeded.
    rules_written: Option<String>,
}

impl NetworkSetup {
    pub fn new(settings: NetworkSettings) -> NetworkSetup {
        NetworkSetup {
            steering: Steering::new(&settings),
            settings,
            backend: None,
            link_installed: false,
            rules_written: None,
        }
    }

    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    /// The backend the rules are written with, once the first rules step has chosen it.
    pub fn backend(&self) -> Option<Backend> {
        self.backend
    }

    /// Whether the rules were written and have not been found broken since (for
    /// readiness). True when `setup_rules` is off: there is nothing to wait for.
    pub fn rules_in_place(&self) -> bool {
        !self.settings.setup_rules || self.rules_written.is_some()
    }

    /// Creates or repairs the link and its addresses; None when `setup_interface` is
    /// off. Run it before binding: the addresses must exist to bind them.
    pub async fn ensure_link(&mut self) -> Result<Option<LinkOutcome>, SetupError> {
        if !self.settings.setup_interface {
            return Ok(None);
        }
        let addresses: Vec<IpAddr> = self.settings.all_addresses().collect();
        let details = link::ensure_link(
            &self.settings.link_name,
            self.settings.link_kind,
            &addresses,
        )
        .await?;
        let change = match (details.is_empty(), self.link_installed) {
            (true, _) => Change::Unchanged,
            (false, false) => Change::Installed,
            (false, true) => Change::Repaired,
        };
        self.link_installed = true;
        Ok(Some(LinkOutcome { change, details }))
    }

    /// Writes or repairs the steering rules; None when `setup_rules` is off. Run it
    /// after binding: a request rule only steers while a socket is bound, so the order
    /// is not needed for safety, but readiness should mean the rules steer.
    pub async fn ensure_rules(&mut self) -> Result<Option<RulesOutcome>, SetupError> {
        if !self.settings.setup_rules {
            return Ok(None);
        }
        let backend = match self.backend {
            Some(b) => b,
            None => {
                let b = resolve(self.settings.backend).await?;
                // Families without addresses may hold rules of an earlier config.
                if let Some(variant) = variant(b) {
                    for family in Family::BOTH {
                        if self.steering.family(family).is_empty() {
                            iptables::remove(variant, family).await?;
                        }
                    }
                }
                self.backend = Some(b);
                b
            }
        };
        let found = self.listing(backend).await?;
        if self.rules_written.as_ref() == Some(&found) {
            return Ok(Some(RulesOutcome {
                backend,
                change: Change::Unchanged,
            }));
        }
        let change = if self.rules_written.is_some() {
            Change::Repaired
        } else {
            Change::Installed
        };
        // Broken until rewritten: readiness must not claim rules in place meanwhile.
        self.rules_written = None;
        self.write(backend).await?;
        self.rules_written = Some(self.listing(backend).await?);
        Ok(Some(RulesOutcome { backend, change }))
    }

    /// Both steps, link first.
    pub async fn reconcile(&mut self) -> Reconciled {
        let mut done = Reconciled::default();
        match self.ensure_link().await {
            Ok(link) => done.link = link,
            Err(e) => done.errors.push(e),
        }
        match self.ensure_rules().await {
            Ok(rules) => done.rules = rules,
            Err(e) => done.errors.push(e),
        }
        done
    }

    /// Our rules as the backend lists them.
    async fn listing(&self, backend: Backend) -> Result<String, SetupError> {
        match variant(backend) {
            None => Ok(nft::read().await?.unwrap_or_default()),
            Some(variant) => {
                let mut listing = String::new();
                for family in self.families() {
                    let present = iptables::read(variant, family).await?;
                    listing.push_str(&present.fingerprint);
                }
                Ok(listing)
            }
        }
    }

    async fn write(&self, backend: Backend) -> Result<(), SetupError> {
        match variant(backend) {
            None => nft::apply(&self.steering).await,
            Some(variant) => {
                for family in self.families() {
                    // Read again right before writing: the jump count must be current.
                    let present = iptables::read(variant, family).await?;
                    iptables::apply(variant, family, &self.steering, &present).await?;
                }
                Ok(())
            }
        }
    }

    fn families(&self) -> impl Iterator<Item = Family> + '_ {
        Family::BOTH
            .into_iter()
            .filter(|f| !self.steering.family(*f).is_empty())
    }
}

/// The iptables variant of a backend; None for nft.
fn variant(backend: Backend) -> Option<Variant> {
    match backend {
        Backend::Nft => None,
        Backend::IptablesNft => Some(Variant::Nft),
        Backend::IptablesLegacy => Some(Variant::Legacy),
    }
}

async fn resolve(setting: BackendSetting) -> Result<Backend, SetupError> {
    Ok(match setting {
        BackendSetting::Auto => detect::detect().await?,
        BackendSetting::Nft => Backend::Nft,
        BackendSetting::IptablesNft => Backend::IptablesNft,
        BackendSetting::IptablesLegacy => Backend::IptablesLegacy,
    })
}

/// What [`cleanup`] removed, and what it could not.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// Rule sets removed: (backend, family), nft's one table counting as both.
    pub rules: Vec<(Backend, Option<Family>)>,
    pub link: bool,
    pub errors: Vec<SetupError>,
}

/// Removes our rules from every backend whose tools are installed (whichever one an
/// earlier config or `auto` chose) and the link (unless `setup_interface` is off: then
/// the link is not ours). Fine when nothing exists; a missing tool is not an error.
pub async fn cleanup(settings: &NetworkSettings) -> Cleaned {
    let mut cleaned = Cleaned::default();
    let mut note = |result: Result<bool, SetupError>, what: (Backend, Option<Family>)| match result
    {
        Ok(true) => cleaned.rules.push(what),
        Ok(false) | Err(SetupError::ToolUnavailable { .. }) => {}
        Err(e) => cleaned.errors.push(e),
    };
    note(nft::remove().await, (Backend::Nft, None));
    for (backend, v) in [
        (Backend::IptablesNft, Variant::Nft),
        (Backend::IptablesLegacy, Variant::Legacy),
    ] {
        for family in Family::BOTH {
            note(iptables::remove(v, family).await, (backend, Some(family)));
        }
    }
    if settings.setup_interface {
        match link::remove_link(&settings.link_name).await {
            Ok(removed) => cleaned.link = removed,
            Err(e) => cleaned.errors.push(e),
        }
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_repairs_count_as_repairs() {
        let mut done = Reconciled {
            link: Some(LinkOutcome {
                change: Change::Installed,
                details: LinkChanges::default(),
            }),
            rules: Some(RulesOutcome {
                backend: Backend::Nft,
                change: Change::Repaired,
            }),
            errors: Vec::new(),
        };
        assert_eq!(done.repairs(), 1);
        done.link.as_mut().unwrap().change = Change::Repaired;
        assert_eq!(done.repairs(), 2);
        assert_eq!(Reconciled::default().repairs(), 0);
    }

    #[tokio::test]
    async fn switched_off_steps_do_nothing_and_rules_count_as_in_place() {
        let mut setup = NetworkSetup::new(NetworkSettings {
            setup_interface: false,
            setup_rules: false,
            ..NetworkSettings::default()
        });
        let done = setup.reconcile().await;
        assert!(done.link.is_none() && done.rules.is_none() && done.errors.is_empty());
        assert!(setup.rules_in_place());
        assert_eq!(setup.backend(), None);
    }
}
